"""F6, spaced repetition: does a spaced-repetition sampler beat random sampling?
(docs/method.md section 8)

Budgeted runs of each kind are paired by (architecture, seed); the difference spaced
minus random of the final held-out accuracy and the final train retention is taken per
seed and compared with Student's t over seeds, per architecture (seeds as the unit; a
Wilcoxon test over 5 pairs cannot reach p < 0.0625, so none is used). The paper's claim,
"no improvement", is tested as non-superiority: H0 the spaced sampler improves held-out
accuracy by at least ``sampler.margin``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention import io
from retention.errors import DataError
from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.registry import by_id
from retention.stats.tables import estimate_row, summary_columns

OUTCOMES = ("heldout_acc", "train_retention")


def final_outcomes(traces: dict) -> dict[str, float]:
    """Final held-out accuracy and final train retention of one run.

    Train retention: the share of train samples learned at some epoch t >= 0 that are
    still correct at the last epoch (forgetting measured where there was learning).
    """
    fine = np.asarray(traces["t"]) >= 0
    correct = np.asarray(traces["correct"])[:, fine]
    learned = correct.any(axis=1)
    retention = float(correct[learned, -1].mean()) if learned.any() else float("nan")
    return {
        "heldout_acc": float(np.asarray(traces["heldout_correct"])[:, -1].mean()),
        "train_retention": retention,
    }


def compare_samplers(outcomes: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Paired comparison spaced minus random, per architecture, seeds as the unit.

    outcomes: one row per run with columns arch, kind, seed, the OUTCOMES and
    ``coverage`` (the share of the train set trained on at least once; NaN if unknown).
    Runs are paired by (arch, seed). Returns one row per (arch, outcome): n_pairs,
    mean_diff with its t interval over seeds, p (paired t, two-sided), p_non_superiority
    (one-sided t of H0: the difference >= ``margin``), the means per kind, the mean
    coverage per kind and the per-seed differences as text.
    """
    kinds = set(outcomes["kind"])
    if not {"random", "spaced"} <= kinds:
        raise DataError(f"the sampler comparison needs runs of both kinds, got {sorted(kinds)}")
    wide = outcomes.pivot_table(
        index=["arch", "seed"], columns="kind", values=[*OUTCOMES, "coverage"], dropna=False
    )
    rows = []
    for arch in dict.fromkeys(outcomes["arch"]):
        part = wide.loc[[arch]]
        for outcome in OUTCOMES:
            res = inf.paired_t(
                part[(outcome, "spaced")].to_numpy(float), part[(outcome, "random")].to_numpy(float)
            )
            diff = (part[(outcome, "spaced")] - part[(outcome, "random")]).dropna().to_numpy()
            rows.append(
                {
                    "arch": arch,
                    "outcome": outcome,
                    "n_pairs": res.n,
                    "mean_diff": res.estimate,
                    "se": res.se,
                    "ci_low": res.low,
                    "ci_high": res.high,
                    "p": res.p,
                    "p_non_superiority": inf.non_superiority_p(res.estimate, res.se, res.df, margin),
                    "margin": margin,
                    "mean_random": float(part[(outcome, "random")].mean()),
                    "mean_spaced": float(part[(outcome, "spaced")].mean()),
                    "coverage_random": float(part[("coverage", "random")].mean()),
                    "coverage_spaced": float(part[("coverage", "spaced")].mean()),
                    "differences": " ".join(f"{d:+.4f}" for d in diff),
                }
            )
    return pd.DataFrame(rows)


def sampler_summary(comparison: pd.DataFrame, dataset: str, trace: str) -> pd.DataFrame:
    """The F6 rows of the findings (registry ids F6.heldout, primary: non-superiority of
    the spaced sampler's held-out accuracy; F6.retention: train retention, two-sided), in
    the columns of every summary.csv."""
    registry = by_id()
    rows = []
    for r in comparison.itertuples(index=False):
        heldout = r.outcome == "heldout_acc"
        finding = registry["F6.heldout" if heldout else "F6.retention"]
        est = Estimate(
            arch=r.arch,
            value=r.mean_diff,
            ci_low=r.ci_low,
            ci_high=r.ci_high,
            n_runs=2 * int(r.n_pairs),
            extra={"mean_random": r.mean_random, "mean_spaced": r.mean_spaced},
        )
        if np.isfinite(r.se):
            est.interval = f"t over {int(r.n_pairs)} seeds"
            if heldout:
                est.p_value = r.p_non_superiority
                est.test = f"one-sided paired t over seeds: spaced - random < {r.margin:g}"
                est.extra |= {"bound": r.margin, "p_zero": r.p}
            else:
                est.p_value, est.test = r.p, "paired t over seeds, two-sided"
        else:
            est.note = f"interval needs at least 2 seeds ({int(r.n_pairs)} pairs)"
        rows.append(estimate_row(finding, est, dataset, trace, "lambda", {}))
    return pd.DataFrame(rows, columns=summary_columns())


#: the columns of curves.csv taken from each budgeted run's metrics.csv
CURVE_COLUMNS = ["epoch", "t", "phase", "train_acc", "heldout_acc", "n_trained", "n_distinct_trained"]


def read_run(traces_path, metrics_path) -> tuple[dict, pd.DataFrame]:
    """Final outcomes (with coverage: the share of the train set trained at least once)
    and the learning curve of one budgeted run."""
    keys = ("sample_id", "t", "correct", "heldout_correct")
    traces = io.read_npz(traces_path, "budgeted run's traces", keys=keys)
    outcomes = final_outcomes(traces)
    n_train = len(traces["sample_id"])
    curve = io.read_table(metrics_path, "budgeted run's metrics", columns=("epoch", "heldout_acc"))
    curve = curve.reindex(columns=CURVE_COLUMNS)
    last = curve["n_distinct_trained"].iloc[-1] if len(curve) else np.nan
    return {**outcomes, "coverage": float(last) / n_train if pd.notna(last) else np.nan}, curve


def sampler_tables(
    runs, traces_paths, metrics_paths, dataset: str, trace: str, margin: float
) -> dict[str, pd.DataFrame]:
    """The tables of one dataset's budgeted runs ((arch, kind, seed) each, with its
    traces.npz and metrics.csv): ``comparison`` (:func:`compare_samplers`), ``curves`` (every
    run's learning curve) and ``summary`` (the F6 rows of the findings)."""
    rows, curves = [], []
    for (arch, kind, seed), traces_path, metrics_path in zip(runs, traces_paths, metrics_paths):
        outcomes, curve = read_run(traces_path, metrics_path)
        rows.append({"arch": arch, "kind": kind, "seed": int(seed), **outcomes})
        curves.append(curve.assign(arch=arch, kind=kind, seed=int(seed)))
    comparison = compare_samplers(pd.DataFrame(rows), margin)
    return {
        "comparison": comparison,
        "curves": pd.concat(curves, ignore_index=True),
        "summary": sampler_summary(comparison, dataset, trace),
    }

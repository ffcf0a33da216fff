"""The statistics tables of one dataset, derived from the registry.

:func:`dataset_tables` is the entry point: fits tables of every run (+ their null runs and
class similarity) -> every table of ``results/stats/{dataset}/``. ``summary.csv`` has one
row per estimate of every finding of the registry: value, interval, test, whether it is
primary, its null value and interval (each null kind), the excess over the memoryless
null, and the finding's own columns. ``robustness.csv`` recomputes the primary findings
under every other rank score and trace definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from retention.errors import DataError
from retention.fitting.nulls import KINDS as NULL_KINDS
from retention.paths import STATS_TABLES
from retention.stats import f1, f2, f3, f4, f5, samples, scores
from retention.stats.estimate import Estimate, Finding
from retention.stats.registry import FINDINGS, extra_columns
from retention.stats.settings import RANK_SCORES, StatsConfig
from retention.stats.stack import StatsInput, check_runs, stack_runs, status_counts_table, trace_labels

# fmt: off
NULL_COLUMNS = [f"null_{k}{s}" for k in NULL_KINDS for s in ("", "_low", "_high", "_p")]
BASE_COLUMNS = [
    "id", "dataset", "trace", "score", "arch", "arch_b", "case", "value", "ci_low", "ci_high",
    "interval", "test", "p_value", "primary", "claim", "unit", "null_direction", *NULL_COLUMNS, "excess",
    "n_samples", "n_runs", "pairs_used", "pairs_total", "note",
]
# fmt: on


def summary_columns(findings: Sequence[Finding] = FINDINGS) -> list[str]:
    """The columns of summary.csv: the common ones, then every finding's own."""
    return BASE_COLUMNS + [c for c in extra_columns(tuple(findings)) if c not in BASE_COLUMNS]


def estimates(finding: Finding, data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """The finding's estimator on ``data``; an estimate with an undeclared column, or two
    with the same key, is an error (nothing is dropped silently). Every undefined value
    carries a reason: the study-wide one first where no or too few samples were learned."""
    out = finding.estimate(data, cfg)
    keys = set()
    for est in out:
        extra = sorted(set(est.extra) - set(finding.columns))
        if extra:
            raise ValueError(
                f"finding {finding.id}: column(s) {extra} are not declared in its registry entry"
            )
        if est.key in keys:
            raise ValueError(f"finding {finding.id}: two estimates for {est.key}")
        keys.add(est.key)
    why = data.stack.why_undefined(cfg.min_samples)
    for est in out:
        if not np.isfinite(est.value):
            est.note = f"{why}; {est.note}" if why and est.note else (why or est.note or "undefined")
    return out


def null_values(finding: Finding, nulls: dict[str, list[StatsInput]], cfg: StatsConfig) -> dict:
    """{(estimate key, null kind): the finding's values over the null draws}."""
    values: dict = {}
    null_cfg = cfg.for_nulls()
    for kind, draws in nulls.items():
        for data in draws:
            for est in finding.estimate(data, null_cfg):
                values.setdefault((est.key, kind), []).append(est.value)
    return {key: np.asarray(v, dtype=float) for key, v in values.items()}


#: a null whose draws all equal its mean within this (relative) tolerance has no spread
DEGENERATE_RTOL = 1e-12


def null_comparison(
    observed: float, draws: np.ndarray | None, direction: str = "two-sided", level: float = 0.95
) -> dict:
    """Where ``observed`` falls in a null model's distribution, from its draws.

    Returns the null mean, the 95% prediction interval of one more draw (mean +- t sd
    sqrt(1 + 1/B), B draws, t on B - 1 df: the range a statistic of a null world falls
    in) and the p of ``observed`` under that predictive t distribution in ``direction``:
    "greater" (H0: the value is not above the null's), "less", "toward_zero" (the value
    lies closer to 0 than the null's: "less" where the null mean is positive, else
    "greater") or "two-sided". Draws without spread (every draw equal to the mean) give
    p = 1 where ``observed`` equals the mean and NaN otherwise (no distribution to
    judge a difference by). NaN without at least 3 finite draws."""
    v = np.asarray(draws if draws is not None else [], dtype=float)
    v = v[np.isfinite(v)]
    out = {"mean": float(v.mean()) if v.size else math.nan, "low": math.nan, "high": math.nan, "p": math.nan}
    if v.size < 3:
        return out
    mean, sd, b = out["mean"], float(v.std(ddof=1)), v.size
    scale = sd * math.sqrt(1 + 1 / b)
    half = sps.t.ppf(0.5 + level / 2, b - 1) * scale
    out |= {"low": mean - half, "high": mean + half}
    if not np.isfinite(observed):
        return out
    if direction == "toward_zero":
        direction = "less" if mean > 0 else "greater"
    tol = DEGENERATE_RTOL * max(1.0, abs(mean))
    if scale <= tol:
        out["p"] = 1.0 if abs(observed - mean) <= tol else math.nan
        return out
    t = (observed - mean) / scale
    out["p"] = float(
        {
            "greater": sps.t.sf(t, b - 1),
            "less": sps.t.cdf(t, b - 1),
            "two-sided": 2 * sps.t.sf(abs(t), b - 1),
        }[direction]
    )
    return out


def null_direction(finding: Finding) -> str:
    """The direction of a finding's null p: its claim's (primary findings), else two-sided."""
    return finding.claim.null_direction if finding.claim else "two-sided"


def estimate_row(finding: Finding, est: Estimate, dataset: str, trace: str, score: str, nulls: dict) -> dict:
    """The summary.csv row of one estimate (``nulls``: from :func:`null_values`)."""
    row = {
        "id": finding.id,
        "dataset": dataset,
        "trace": trace,
        "score": score,
        "arch": est.arch,
        "arch_b": est.arch_b,
        "case": est.case,
        "value": est.value,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "interval": est.interval,
        "test": est.test,
        "p_value": est.p_value,
        "primary": finding.primary,
        "claim": finding.claim.kind if finding.claim else "",
        "unit": finding.unit,
        "n_samples": est.n_samples,
        "n_runs": est.n_runs,
        "pairs_used": est.pairs_used,
        "pairs_total": est.pairs_total,
        "note": est.note,
        **est.extra,
    }
    direction = null_direction(finding)
    row["null_direction"] = direction if finding.null else ""
    for kind in NULL_KINDS:
        cmp = null_comparison(est.value, nulls.get((est.key, kind)), direction)
        row |= {
            f"null_{kind}": cmp["mean"],
            f"null_{kind}_low": cmp["low"],
            f"null_{kind}_high": cmp["high"],
            f"null_{kind}_p": cmp["p"],
        }
    row["excess"] = est.value - row[f"null_{NULL_KINDS[0]}"]
    low, high = finding.limits
    row["ci_low"], row["ci_high"] = max(est.ci_low, low), min(est.ci_high, high)  # NaN stays NaN
    return row


def summary_table(
    data: StatsInput,
    cfg: StatsConfig,
    dataset: str,
    findings: Sequence[Finding] = FINDINGS,
    nulls: dict[str, list[StatsInput]] | None = None,
    only: callable = lambda f: True,
) -> pd.DataFrame:
    """One row per estimate of every finding with an estimator (``only`` filters them)."""
    rows = []
    for finding in findings:
        if finding.estimate is None or not only(finding):
            continue
        null = null_values(finding, nulls, cfg) if (finding.null and nulls) else {}
        rows += [
            estimate_row(finding, est, dataset, data.stack.trace, data.stack.score_name, null)
            for est in estimates(finding, data, cfg)
        ]
    return pd.DataFrame(rows, columns=summary_columns(findings))


def null_inputs(
    null_fits: Sequence[pd.DataFrame], runs: Sequence, trace: str, score: str, class_names, class_infos
) -> dict[str, list[StatsInput]]:
    """The null runs of every run, as one StatsInput per null kind and draw."""
    split = [{key: part for key, part in nf.groupby(["null", "draw"], sort=True)} for nf in null_fits]
    keys = sorted(set.intersection(*(set(s) for s in split))) if split else []
    if split and any(set(s) != set(keys) for s in split):
        raise DataError("the null fits of the runs hold different (null, draw) sets; rerun rule fit_nulls")
    out: dict[str, list[StatsInput]] = {}
    for kind, draw in keys:
        stack = stack_runs([s[(kind, draw)] for s in split], runs, trace, score)
        out.setdefault(kind, []).append(StatsInput(stack, class_names, class_infos, values_only=True))
    return out


def robustness_table(
    fits, runs, cfg: StatsConfig, dataset: str, primary: str, class_names, class_infos, findings=FINDINGS
) -> pd.DataFrame:
    """Every primary finding under each other rank score (primary trace) and each other
    trace definition present in the fits tables (configured score)."""
    variants = [(primary, s) for s in RANK_SCORES if s != cfg.rank_score]
    variants += [(t, cfg.rank_score) for t in trace_labels(fits) if t != primary]
    frames = []
    for trace, score in variants:
        data = StatsInput(stack_runs(fits, runs, trace, score), class_names, class_infos)
        keep = (lambda f: f.primary) if score == cfg.rank_score else (lambda f: f.primary and f.uses_score)
        frames.append(summary_table(data, cfg, dataset, findings, only=keep))
    columns = summary_columns(findings)
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def class_names_of(stack, class_infos) -> list[str]:
    """Class names from the runs' class info (all must agree), else 0..C-1."""
    infos = [ci for ci in (class_infos or []) if ci is not None]
    if infos:
        names = list(infos[0].class_names)
        for ci in infos[1:]:
            if list(ci.class_names) != names:
                raise DataError(f"runs disagree on class_names: {names} vs {list(ci.class_names)}")
        return names
    n = int(stack.label.max()) + 1 if stack.label.size else 0
    return [str(k) for k in range(n)]


def dataset_tables(
    fits: Sequence[pd.DataFrame],
    runs: Sequence,
    cfg: StatsConfig,
    dataset: str,
    primary: str,
    class_infos: Sequence | None = None,
    null_fits: Sequence[pd.DataFrame] | None = None,
    findings: Sequence[Finding] = FINDINGS,
    manifest: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every statistics table of one dataset, keyed by ``retention.paths.STATS_TABLES``.

    fits: one fits table per run (every trace definition); runs: the (arch, seed) of each,
    same order; primary: the configured trace label; class_infos: one
    :class:`retention.stats.f4.RunClassInfo` per run (or None); null_fits: one null fits
    table per run (:func:`retention.fitting.nulls.null_fit_table`; None: no null columns);
    manifest: the dataset's manifest.csv (samples.csv then names each sample's file).
    """
    runs = check_runs(fits, runs)
    if primary not in trace_labels(fits):
        raise DataError(
            f"primary trace {primary!r} is not in the fits tables (they have {trace_labels(fits)})"
        )
    if class_infos is not None and len(class_infos) != len(runs):
        raise DataError(f"{len(class_infos)} traces files for {len(runs)} runs; give one per run")
    stack = stack_runs(fits, runs, primary, cfg.rank_score)
    names = class_names_of(stack, class_infos)
    data = StatsInput(stack, names, list(class_infos) if class_infos is not None else None)
    nulls = (
        null_inputs(null_fits, runs, primary, cfg.rank_score, names, data.class_infos) if null_fits else None
    )
    tables = {
        "f1_jaccard": f1.detail_table(stack, cfg),
        "f2_r2": f2.detail_table(stack),
        "f3_seed_stability": f3.detail_table(stack),
        **f4.detail_tables(data),
        "f5_early_predictor": f5.detail_table(stack),
        **scores.detail_tables(stack, cfg),
        "status_counts": status_counts_table(fits, runs),
        "samples": samples.samples_table(stack, manifest, cfg.seed),
        "summary": summary_table(data, cfg, dataset, findings, nulls),
        "robustness": robustness_table(fits, runs, cfg, dataset, primary, names, data.class_infos, findings),
    }
    return {name: tables[name] for name in STATS_TABLES}

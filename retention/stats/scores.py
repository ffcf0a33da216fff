"""Beyond the paper: the other per-sample scores, the fit's bounds and the model choice.

Every score is tested on the same samples as the rank score (eligible under the trace
definition: never-learned and too-short samples are excluded for all scores alike).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from retention.stats import inference as inf
from retention.stats.correlation import meta_estimate
from retention.stats.estimate import Estimate
from retention.stats.f3 import pair_rhos, rho_of
from retention.stats.pairs import pair_means
from retention.stats.settings import RANK_SCORES, StatsConfig
from retention.stats.stack import RunStack, StatsInput, frame, rank_score

#: per-sample scores of other methods (fits-table columns) compared with the rank score
SCORES = ("forget_events", "confidence", "variability", "el2n_t0")


def vs_rank_score(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Spearman of each score and the rank score per run, random effects over the runs of
    each architecture (two-sided)."""
    stack = data.stack
    out = []
    for score in SCORES:
        x = stack.values[score]
        for arch in stack.archs:
            per = [
                rho_of(np.where(stack.eligible[i], x[i], np.nan), stack.score[i])
                for i in stack.run_index(arch)
            ]
            est = meta_estimate([r["value"] for r in per], [r["n_samples"] for r in per], cfg)
            est.arch, est.case = arch, score
            est.n_samples = max((r["n_samples"] for r in per), default=0)
            est.note = not_recorded(stack, score) or est.note
            out.append(est)
    return out


def not_recorded(stack: RunStack, score: str) -> str:
    """The note of a score the runs' traces do not record (an import without p_true or
    el2n: all NaN, docs/contracts.md); "" otherwise."""
    if np.isfinite(stack.values[score]).any():
        return ""
    return f"no {score} in the runs' traces (not recorded)"


def stability(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Each score's own seed stability: mean seed-pair Spearman per architecture
    (jackknife over seeds, t test against 0), as F3 does for the rank score."""
    stack = data.stack
    out = []
    for score in SCORES:
        for est in pair_means(stack, pair_rhos(stack, stack.values[score], key=score), "within"):
            est.case = score
            est.note = not_recorded(stack, score) or est.note
            out.append(est)
    return out


def _share_per_run(stack: RunStack, hit: np.ndarray, base: np.ndarray) -> list[float]:
    return [float(hit[i][base[i]].mean()) if base[i].any() else math.nan for i in range(len(stack.runs))]


def _per_arch(stack: RunStack, per_run: list[float], case: str) -> list[Estimate]:
    out = []
    for arch in stack.archs:
        idx = stack.run_index(arch)
        res = inf.t_interval([per_run[i] for i in idx])
        est = Estimate(
            arch=arch,
            case=case,
            value=res.estimate,
            n_runs=len(idx),
            n_samples=int(stack.eligible[idx].any(0).sum()),
        )
        if np.isfinite(res.se):
            est.ci_low, est.ci_high, est.interval = res.low, res.high, f"t over {res.n} seeds"
        out.append(est)
    return out


def aic_share(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Share of fitted samples whose exponential fit beats the power law by AIC, mean
    over seeds per architecture."""
    stack = data.stack
    ae, ap = stack.values["aic_exp"], stack.values["aic_power"]
    both = (stack.status == "fitted") & np.isfinite(ae) & np.isfinite(ap)
    return _per_arch(stack, _share_per_run(stack, ae < ap, both), "exponential beats power law")


def bounds(stack: RunStack, lambda_max: float) -> dict[str, list[float]]:
    """Per run: the share of eligible samples whose lambda sits at lambda_max and at 0."""
    lam = np.where(stack.eligible, stack.values["lambda"], np.nan)
    return {
        "at_max": _share_per_run(stack, lam >= lambda_max * (1 - 1e-9), stack.eligible),
        "at_zero": _share_per_run(stack, lam <= 0.0, stack.eligible),
    }


def lambda_at_bound(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Share of eligible samples with lambda at lambda_max, and at 0, per architecture
    (mean over seeds): where most sit at a bound, lambda is nearly an indicator."""
    per = bounds(data.stack, cfg.lambda_max)
    return _per_arch(data.stack, per["at_max"], "lambda = lambda_max") + _per_arch(
        data.stack, per["at_zero"], "lambda = 0"
    )


def detail_tables(stack: RunStack, cfg: StatsConfig) -> dict[str, pd.DataFrame]:
    """scores.csv (per run: each score against the rank score; every pair's stability),
    bounds.csv (per run: shares at the bounds) and rank_scores.csv (per run: how far the
    rank scores agree, Spearman of each pair)."""
    rows = []
    for score in SCORES:
        x = stack.values[score]
        for i, (arch, seed) in enumerate(stack.runs):
            res = rho_of(np.where(stack.eligible[i], x[i], np.nan), stack.score[i])
            rows.append({"kind": "vs_rank_score", "score": score, "arch": arch, "seed": seed, **res})
        pm = pair_rhos(stack, x, key=score)
        rows += pm.rows(stack, score=score)
    scores = frame(
        rows, ["kind", "score", "arch", "seed", "arch_b", "seed_b", "value", "n_samples"], "scores"
    )
    per = bounds(stack, cfg.lambda_max)
    b_rows = [
        {
            "arch": a,
            "seed": s,
            "n_eligible": int(stack.eligible[i].sum()),
            "at_max": per["at_max"][i],
            "at_zero": per["at_zero"][i],
        }
        for i, (a, s) in enumerate(stack.runs)
    ]
    agree = []
    for i, (arch, seed) in enumerate(stack.runs):
        values = {k: stack.values[k][i] for k in stack.values}
        ranked = {name: np.where(stack.eligible[i], rank_score(values, name), np.nan) for name in RANK_SCORES}
        for x, y in itertools.combinations(RANK_SCORES, 2):
            agree.append(
                {"arch": arch, "seed": seed, "score": x, "score_b": y, **rho_of(ranked[x], ranked[y])}
            )
    return {
        "scores": scores,
        "bounds": frame(b_rows, ["arch", "seed", "n_eligible", "at_max", "at_zero"], "bounds"),
        "rank_scores": frame(
            agree, ["arch", "seed", "score", "score_b", "value", "n_samples"], "rank_scores"
        ),
    }

"""F5, an early predictor: does the loss at t = 0 (end of head warmup) predict the rank
score? (docs/method.md section 7)

Per run, the Spearman rho of loss_t0 and the rank score over the eligible samples; the
runs are combined by a random-effects meta-analysis of Fisher z (signed; interval and p
from :func:`retention.stats.correlation.meta_estimate`), never by "the largest p".
Also among the samples learned at t = 0 only, and as a partial Spearman given the
forgetting-event count (is loss a proxy for how often a sample drops?).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention.stats.correlation import meta_estimate, partial_spearman
from retention.stats.estimate import Estimate
from retention.stats.f3 import rho_of
from retention.stats.settings import StatsConfig
from retention.stats.stack import RunStack, StatsInput, frame

SUBSETS = ("all", "learned at t = 0", "given forgetting events")
#: the note where the runs' traces record no loss (imported runs: docs/contracts.md)
NO_LOSS = "no loss at t = 0 in the runs' traces (not recorded)"


def run_rhos(stack: RunStack, subset: str = "all") -> list[dict]:
    """Per run: rho, n (and the number of controlled variables) of one subset."""

    def compute():
        loss = stack.values["loss_t0"]
        out = []
        for i in range(len(stack.runs)):
            x, y = loss[i], stack.score[i]
            if subset == "learned at t = 0":
                keep = stack.values["t_learn"][i] == 0
                res, controlled = rho_of(np.where(keep, x, np.nan), y), 0
            elif subset == "given forgetting events":
                rho, n = partial_spearman(
                    x, y, np.where(stack.eligible[i], stack.values["forget_events"][i], np.nan)
                )
                res, controlled = {"value": rho, "n_samples": n}, 1
            else:
                res, controlled = rho_of(x, y), 0
            out.append({**res, "controlled": controlled})
        return out

    return stack.cached(("f5", subset), compute)


def _meta(stack: RunStack, cfg: StatsConfig, subset: str, runs: list[int], alternative: str) -> Estimate:
    per = run_rhos(stack, subset)
    est = meta_estimate(
        [per[i]["value"] for i in runs],
        [per[i]["n_samples"] for i in runs],
        cfg,
        per[0]["controlled"] if per else 0,
        alternative,
    )
    est.n_samples = int(max((per[i]["n_samples"] for i in runs), default=0))
    if not np.isfinite(stack.values["loss_t0"][runs]).any():
        est.note = NO_LOSS
    return est


def meta(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """F5 primary: Spearman of loss at t = 0 and the rank score, random effects over every
    run of the dataset (one-sided: positive, the paper's claim)."""
    stack = data.stack
    est = _meta(stack, cfg, "all", list(range(len(stack.runs))), "greater")
    return [est]


def meta_by_arch(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """The same per architecture (two-sided)."""
    out = []
    for arch in data.stack.archs:
        est = _meta(data.stack, cfg, "all", data.stack.run_index(arch), "two-sided")
        est.arch = arch
        out.append(est)
    return out


def subsets(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Among the samples learned at t = 0; and partial given forgetting events (all runs,
    two-sided)."""
    out = []
    for subset in SUBSETS[1:]:
        est = _meta(data.stack, cfg, subset, list(range(len(data.stack.runs))), "two-sided")
        est.case = subset
        out.append(est)
    return out


def detail_table(stack: RunStack) -> pd.DataFrame:
    """Per run and subset: Spearman of loss at t = 0 and the rank score (f5_early_predictor.csv)."""
    rows = []
    for subset in SUBSETS:
        for (arch, seed), res in zip(stack.runs, run_rhos(stack, subset)):
            rows.append(
                {
                    "subset": subset,
                    "arch": arch,
                    "seed": seed,
                    "value": res["value"],
                    "n_samples": res["n_samples"],
                }
            )
    return frame(rows, ["subset", "arch", "seed", "value", "n_samples"], "f5_early_predictor")

"""F3, seed stability: does a sample's score repeat across seeds? (docs/method.md section 7)

For every pair of runs, the Spearman rho of the rank score over the samples eligible in
both (ties averaged). The mean over the seed pairs of one architecture, with a jackknife
over seeds, is tested for equivalence to 0 (TOST against +- ``stats.equivalence_bound``:
the paper's "not stable" claim) beside the usual test against 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.pairs import PairMatrix, criterion_row, pair_matrix, pair_means, seed_estimate
from retention.stats.settings import StatsConfig
from retention.stats.stack import RunStack, StatsInput, frame


def rho_of(x: np.ndarray, y: np.ndarray) -> dict:
    """Spearman rho (ties averaged: the Pearson correlation of the mid-ranks, as
    scipy.stats.spearmanr) and n over the samples finite in both (NaN when constant or
    fewer than 3)."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3:
        return {"value": np.nan, "n_samples": n}
    rx, ry = sps.rankdata(x[ok]), sps.rankdata(y[ok])
    rx -= rx.mean()
    ry -= ry.mean()
    den = np.sqrt((rx @ rx) * (ry @ ry))
    return {"value": float(rx @ ry / den) if den > 0 else np.nan, "n_samples": n}


UNDEFINED_RHO = "undefined for the seed pairs: fewer than 3 samples eligible in both, or a constant score"


def pair_rhos(stack: RunStack, values: np.ndarray | None = None, key: str = "score") -> PairMatrix:
    """Spearman of ``values`` (default: the rank score) for every pair of runs, over the
    samples eligible in both (cached on the stack under ``key``)."""
    v = stack.score if values is None else np.where(stack.eligible, values, np.nan)
    return stack.cached(("rho_pairs", key), lambda: pair_matrix(stack, lambda i, j: rho_of(v[i], v[j])))


def within(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """F3 primary: mean seed-pair Spearman of the rank score per architecture; p: TOST
    against +- equivalence_bound (``p_zero``: t test against 0)."""
    stack = data.stack
    pm = pair_rhos(stack)
    out = []
    for arch in stack.archs:
        est, jk = seed_estimate(stack, pm, "within", arch)
        est.extra = {"bound": cfg.equivalence_bound}
        if np.isfinite(jk.se):
            est.p_value = inf.tost_p(jk.estimate, jk.se, jk.df, cfg.equivalence_bound)
            est.test = f"TOST over seeds (jackknife t): |rho| < {cfg.equivalence_bound:g}"
            est.extra["p_zero"] = inf.t_p(jk.estimate, jk.se, jk.df)
        elif not np.isfinite(est.value):
            few = len(stack.run_index(arch)) < 2
            est.note = est.note or (f"needs two seeds of {arch}" if few else UNDEFINED_RHO)
        out.append(est)
    return out


#: the paper's settling criterion (docs/method.md): a seed Spearman above this settles F3
#: against the paper (per-sample forgetting is stable across seeds)
SETTLING_RHO = 0.4


def settling(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """The seed-pair Spearman of each architecture against the paper's settling criterion
    0.4: one-sided t over seeds (jackknife) of H0 rho <= 0.4; ``above``: the 95% interval
    lies above it."""
    stack = data.stack
    pm = pair_rhos(stack)
    return [
        criterion_row(*seed_estimate(stack, pm, "within", arch), SETTLING_RHO, "rho", pm)
        for arch in stack.archs
    ]


def cross(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean Spearman of the rank score between the seeds of two architectures (jackknife
    over seeds, t test against 0)."""
    return pair_means(data.stack, pair_rhos(data.stack), "cross")


def detail_table(stack: RunStack) -> pd.DataFrame:
    """Every pair of runs' Spearman of the rank score (f3_seed_stability.csv)."""
    pm = pair_rhos(stack)
    rows = pm.rows(stack)
    return frame(
        rows, ["kind", "arch", "seed", "arch_b", "seed_b", "value", "n_samples"], "f3_seed_stability"
    )

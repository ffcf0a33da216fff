"""Spearman correlations: of two runs, of one run's per-sample quantities, and their
combination over runs by a random-effects meta-analysis of Fisher z (seeds as the unit).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.settings import StatsConfig, rng_for


def spearman(x: np.ndarray, y: np.ndarray, cfg: StatsConfig | None = None) -> tuple[float, float, int]:
    """Spearman rho (ties averaged), two-sided p and n over the pairs finite in both.

    NaN when fewer than 3 pairs or either side is constant. Below
    ``cfg.spearman_permutation_below`` pairs (e.g. OCTDL's 7 classes) the t-approximation
    of scipy's spearmanr is far too liberal, so p comes from a permutation test over
    pairings: exact up to 8 pairs, else ``cfg.permutations`` seeded permutations.
    """
    cfg = cfg or StatsConfig()
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan, math.nan, n
    res = sps.spearmanr(x[ok], y[ok])
    if n >= cfg.spearman_permutation_below:
        return float(res.statistic), float(res.pvalue), n
    rx, ry = sps.rankdata(x[ok]), sps.rankdata(y[ok])
    ry = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())

    def rho(ranks: np.ndarray, axis: int = -1) -> np.ndarray:
        centred = ranks - ranks.mean(axis=axis, keepdims=True)
        return (centred * ry).sum(axis=axis) / np.linalg.norm(centred, axis=axis)

    perm = sps.permutation_test(
        (rx,),
        rho,
        permutation_type="pairings",
        vectorized=True,
        alternative="two-sided",
        n_resamples=math.factorial(n) if n <= 8 else cfg.permutations,
        rng=rng_for(cfg, "spearman", n, *np.round(rx, 3), *np.round(ry, 6)),
    )
    return float(res.statistic), float(perm.pvalue), n


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, int]:
    """Spearman of x and y given z: the Pearson correlation of the ranks of x and y after
    removing from each its linear dependence on the ranks of z (pairs finite in all
    three); NaN when fewer than 4 or a residual is constant."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    n = int(ok.sum())
    if n < 4:
        return math.nan, n
    rx, ry, rz = (sps.rankdata(v[ok]) for v in (x, y, z))
    design = np.column_stack([np.ones(n), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    den = np.linalg.norm(res_x) * np.linalg.norm(res_y)
    return (float(res_x @ res_y / den) if den > 1e-12 else math.nan), n


def meta_estimate(
    rhos, ns, cfg: StatsConfig, n_controlled: int = 0, alternative: str = "two-sided"
) -> Estimate:
    """Random-effects meta-analysis of per-run Spearman rhos (Fisher z, variance
    1.06 / (n - 3 - n_controlled); DerSimonian-Laird tau^2; interval cfg.meta_interval),
    back-transformed to rho. ``alternative`` picks the p-value reported."""
    rhos, ns = np.asarray(rhos, float), np.asarray(ns, float)
    ok = np.isfinite(rhos) & (np.abs(rhos) < 1) & (ns - 3 - n_controlled > 0)
    est = Estimate(n_runs=int(ok.sum()))
    if not ok.any():
        est.note = "no run with a defined Spearman rho"
        return est
    meta = inf.random_effects_meta(
        inf.fisher_z(rhos[ok]), inf.spearman_z_var(ns[ok], n_controlled), interval=cfg.meta_interval
    )
    est.value = float(np.tanh(meta.estimate))
    est.extra = {
        "tau2": meta.tau2,
        "i2": meta.I2,
        "rho_min": float(rhos[ok].min()),
        "rho_max": float(rhos[ok].max()),
    }
    if meta.k >= 2 and np.isfinite(meta.low):
        est.ci_low, est.ci_high = float(np.tanh(meta.low)), float(np.tanh(meta.high))
        how = "Hartung-Knapp t" if cfg.meta_interval == "hartung_knapp" else "normal"
        est.interval = f"random effects over {meta.k} runs (DerSimonian-Laird, {how})"
        est.p_value = {"two-sided": meta.p_two_sided, "greater": meta.p_greater, "less": meta.p_less}[
            alternative
        ]
        est.test = f"random-effects meta-analysis of Fisher z, {alternative}"
    else:
        est.note = "interval needs at least 2 runs"
    return est

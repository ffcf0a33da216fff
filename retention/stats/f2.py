"""F2, structure: how well the decay model fits, per architecture (docs/method.md section 7).

R^2 is defined for fitted samples whose trace is not constant. A run's mean R^2 is taken
over its defined values; the share of eligible samples with a defined R^2 is reported in
its own right. The architectures are compared at the run level, paired by seed and by
sample: for each seed, the mean R^2 of each architecture over the samples defined in
both, their difference, and Student's t over seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.pairs import for_arch_pairs
from retention.stats.settings import StatsConfig, rng_for
from retention.stats.stack import RunStack, StatsInput, frame, masked_mean

#: the R^2 of each F2 scale: ours (the binary trace's decay fit) and the paper's scale (the
#: p_true trace fitted with a free amplitude, c + a exp(-lam tau))
SCALES = {"binary": "r2", "soft": "soft_r2"}


def defined_r2(stack: RunStack, scale: str = "binary") -> np.ndarray:
    """(runs, samples) R^2 where defined (an eligible sample with a non-constant trace; on
    the binary scale a fitted one), else NaN."""
    r2 = stack.values[SCALES[scale]]
    ok = stack.eligible & np.isfinite(r2)
    if scale == "binary":
        ok &= stack.status == "fitted"
    return np.where(ok, r2, np.nan)


def _mean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _from_t(est: Estimate, res, what: str) -> Estimate:
    est.value = res.estimate
    if np.isfinite(res.se):
        est.ci_low, est.ci_high = res.low, res.high
        est.interval = f"t over {res.n} seeds"
    elif np.isfinite(res.estimate):
        est.note = f"interval needs at least 2 seeds ({what})"
    return est


def arch_difference(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """F2 primary: per seed, mean R^2 of one architecture minus the other's over the
    samples defined in both; paired t over seeds, two-sided."""
    stack = data.stack
    r2 = defined_r2(stack)

    def one(a: str, b: str) -> Estimate:
        ma, mb, n_common = [], [], []
        for seed in stack.seeds:
            i, j = stack.index(a, seed), stack.index(b, seed)
            if i is None or j is None:
                continue
            both = np.isfinite(r2[i]) & np.isfinite(r2[j])
            ma.append(_mean(r2[i][both]))
            mb.append(_mean(r2[j][both]))
            n_common.append(int(both.sum()))
        res = inf.paired_t(ma, mb)
        est = Estimate(arch=a, arch_b=b, n_samples=max(n_common, default=0), n_runs=2 * len(ma))
        _from_t(est, res, "paired by seed")
        if np.isfinite(res.se):
            est.p_value, est.test = res.p, "paired t over seeds, two-sided"
        est.extra = {
            "mean_a": _mean(np.asarray(ma)),
            "mean_b": _mean(np.asarray(mb)),
            "se": res.se,
            "df": res.df,
        }
        return est

    return for_arch_pairs(stack, one)


def _per_run(stack: RunStack, scale: str = "binary") -> dict[int, dict]:
    r2 = defined_r2(stack, scale)
    out = {}
    for i in range(len(stack.runs)):
        v = r2[i][np.isfinite(r2[i])]
        n_el = int(stack.eligible[i].sum())
        out[i] = {
            "mean": _mean(v),
            "frac": v.size / n_el if n_el else math.nan,
            "n_defined": v.size,
            "n_eligible": n_el,
        }
    return out


def arch_mean(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean R^2 of each architecture: the mean over seeds of each run's mean over its
    defined R^2 (the paper's quantity), t over seeds."""
    return _per_arch(data.stack, "mean")


def arch_mean_soft(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean R^2 on the paper's scale: the same as :func:`arch_mean` for the p_true trace
    fitted with a free amplitude (the binary trace's R^2 is far smaller: a 0/1 trace with
    one or two errors is fitted poorly by any smooth curve)."""
    return _per_arch(data.stack, "mean", "soft")


def fraction_defined(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Share of the eligible samples with a defined R^2 per architecture, t over seeds."""
    return _per_arch(data.stack, "frac")


def _per_arch(stack: RunStack, field: str, scale: str = "binary") -> list[Estimate]:
    per = _per_run(stack, scale)
    out = []
    for arch in stack.archs:
        idx = stack.run_index(arch)
        res = inf.t_interval([per[i][field] for i in idx])
        est = Estimate(arch=arch, n_samples=int(stack.eligible[idx].any(0).sum()), n_runs=len(idx))
        est.extra = {"se": res.se, "df": res.df}
        out.append(_from_t(est, res, "over seeds"))
    return out


def paired_by_sample(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Per-sample mean R^2 over seeds, one architecture minus the other, on the samples
    defined in both (unit: sample; bootstrap interval, Wilcoxon signed-rank)."""
    stack = data.stack
    r2 = defined_r2(stack)

    def one(a: str, b: str) -> Estimate:
        ia, ib = stack.run_index(a), stack.run_index(b)
        pa = masked_mean(r2[ia], np.isfinite(r2[ia]))
        pb = masked_mean(r2[ib], np.isfinite(r2[ib]))
        both = np.isfinite(pa) & np.isfinite(pb)
        diff = pa[both] - pb[both]
        est = Estimate(
            arch=a, arch_b=b, value=_mean(diff), n_samples=int(both.sum()), n_runs=len(ia) + len(ib)
        )
        if diff.size >= 2 and np.any(diff != 0):
            rng = rng_for(cfg, "f2_paired", stack.trace, a, b)
            boot = diff[rng.integers(0, diff.size, size=(cfg.bootstrap, diff.size))].mean(axis=1)
            est.ci_low, est.ci_high = inf.percentile_interval(boot)
            est.interval = f"bootstrap over samples (B = {cfg.bootstrap})"
            est.p_value = float(sps.wilcoxon(diff).pvalue)
            est.test = "Wilcoxon signed-rank over samples, two-sided"
        else:
            est.note = "fewer than two samples with R^2 defined in both architectures"
        return est

    return for_arch_pairs(stack, one)


def detail_table(stack: RunStack) -> pd.DataFrame:
    """Per run: mean and quantiles of the defined R^2, the share defined (f2_r2.csv)."""
    r2, runs = defined_r2(stack), _per_run(stack)
    rows = []
    for i, (arch, seed) in enumerate(stack.runs):
        v = r2[i][np.isfinite(r2[i])]
        qs = np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9]) if v.size else [math.nan] * 5
        per = runs[i]
        rows.append(
            {
                "arch": arch,
                "seed": seed,
                "value": per["mean"],
                "frac_defined": per["frac"],
                "n_defined": per["n_defined"],
                "n_eligible": per["n_eligible"],
                **dict(zip(("q10", "q25", "median", "q75", "q90"), map(float, qs))),
            }
        )
    columns = [
        "arch",
        "seed",
        "value",
        "frac_defined",
        "n_defined",
        "n_eligible",
        "q10",
        "q25",
        "median",
        "q75",
        "q90",
    ]
    return frame(rows, columns, "f2_r2")

"""F1, architecture dependence: overlap of the top-q most-forgotten sets (docs/method.md section 7).

For every pair of runs the Jaccard of their exactly-k top sets is computed on the samples
eligible in both (mean over tie-break draws). The primary statistic is the mean
within-architecture Jaccard minus the mean cross-architecture Jaccard (seeds as the unit:
jackknife, t on seeds - 1 df, one-sided: within > cross). The seed-pooled ranking (a
sample's mean score over seeds) gives the number the paper reports; its interval resamples
samples, which is valid within one ranking.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.pairs import (
    PairMatrix,
    criterion_row,
    for_arch_pairs,
    pair_matrix,
    pm_reason,
    seed_estimate,
    seed_statistic,
)
from retention.stats.ranksets import bootstrap_jaccard, chance_jaccard, jaccard_draws, overlap_p, top_sets
from retention.stats.settings import StatsConfig, rng_for
from retention.stats.stack import RunStack, StatsInput, frame, masked_mean

ALL = "all"


def subsets(cfg: StatsConfig) -> list[str]:
    """The sample subsets of the sensitivity analysis: all, and R^2 >= r2_min in both."""
    return [ALL, f"r2>={cfg.r2_min:g}"]


def _in_subset(r2a: np.ndarray, r2b: np.ndarray, subset: str, cfg: StatsConfig) -> np.ndarray:
    if subset == ALL:
        return np.ones(r2a.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return (r2a >= cfg.r2_min) & (r2b >= cfg.r2_min)


def _jaccard(sa: np.ndarray, sb: np.ndarray, q: float, cfg: StatsConfig, key: tuple) -> dict:
    """Jaccard of the exactly-k top sets of two rankings of the same samples."""
    a = top_sets(sa, q, cfg.tie_draws, rng_for(cfg, *key, "a"), cfg.min_samples)
    b = top_sets(sb, q, cfg.tie_draws, rng_for(cfg, *key, "b"), cfg.min_samples)
    out = {"n_samples": int(sa.size), "k": a.k, "chance": chance_jaccard(sa.size, a.k)}
    if not (a.defined and b.defined):
        return {
            **out,
            "value": math.nan,
            "draw_min": math.nan,
            "draw_max": math.nan,
            "note": a.reason or b.reason,
        }
    j = jaccard_draws(a, b)
    return {
        **out,
        "value": float(j.mean()),
        "draw_min": float(j.min()),
        "draw_max": float(j.max()),
        "note": "",
    }


def pair_jaccards(stack: RunStack, cfg: StatsConfig, q: float, subset: str = ALL) -> PairMatrix:
    """The Jaccard of every pair of runs (cached on the stack)."""
    r2 = stack.values["r2"]

    def one(i: int, j: int) -> dict:
        u = stack.eligible[i] & stack.eligible[j] & _in_subset(r2[i], r2[j], subset, cfg)
        key = ("f1", stack.trace, stack.score_name, q, subset, stack.runs[i], stack.runs[j])
        return _jaccard(stack.score[i][u], stack.score[j][u], q, cfg, key)

    return stack.cached(("f1_pairs", q, subset), lambda: pair_matrix(stack, one))


def pooled_scores(stack: RunStack, arch: str) -> tuple[np.ndarray, np.ndarray]:
    """A sample's mean score over the seeds in which it is eligible, and its mean R^2."""
    idx = stack.run_index(arch)
    el = stack.eligible[idx]
    return masked_mean(stack.score[idx], el), masked_mean(stack.values["r2"][idx], el)


def _difference(data: StatsInput, cfg: StatsConfig, q: float, subset: str) -> list[Estimate]:
    stack = data.stack
    pm = pair_jaccards(stack, cfg, q, subset)

    def one(a: str, b: str) -> Estimate:
        est, jk = seed_estimate(stack, pm, "difference", a, b)
        everyone = np.ones(len(stack.seeds), dtype=bool)
        runs = stack.run_index(a) + stack.run_index(b)
        est.extra = {
            "q": q,
            "within": _nanmean([seed_statistic(stack, pm.value, "within", x)(everyone) for x in (a, b)]),
            "cross": seed_statistic(stack, pm.value, "cross", a, b)(everyone),
            "chance": _chance(pm, itertools.combinations(runs, 2)),
        }
        if np.isfinite(jk.se):
            est.p_value = inf.t_p(jk.estimate, jk.se, jk.df, alternative="greater")
            est.test = "one-sided t over seeds (jackknife): within > cross"
        elif not est.note:
            est.note = pm_reason(pm)
        return est

    return _with_q(for_arch_pairs(stack, one), q)


def difference(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """F1 primary: mean within- minus mean cross-architecture Jaccard of top-q sets."""
    return _difference(data, cfg, cfg.top_q, ALL)


def within(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean Jaccard between the seeds of each architecture, tested against chance; beside
    it (``p_tost``) the equivalence test of "the sets are not stable across seeds": the
    excess over chance within +- equivalence_bound."""
    stack = data.stack
    pm = pair_jaccards(stack, cfg, cfg.top_q)
    out = []
    for arch in stack.archs:
        est, jk = seed_estimate(stack, pm, "within", arch)
        chance = _chance(pm, itertools.combinations(stack.run_index(arch), 2))
        est.extra = {"q": cfg.top_q, "chance": chance}
        if np.isfinite(jk.se):
            est.p_value = inf.t_p(jk.estimate, jk.se, jk.df, null=chance, alternative="greater")
            est.test = "one-sided t over seeds (jackknife): above chance"
            est.extra |= {
                "bound": cfg.equivalence_bound,
                "p_tost": inf.tost_p(jk.estimate - chance, jk.se, jk.df, cfg.equivalence_bound),
            }
        elif not np.isfinite(est.value):
            est.note = est.note or pm_reason(pm) or f"needs two seeds of {arch}"
        out.append(est)
    return out


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _with_q(estimates: list[Estimate], q: float) -> list[Estimate]:
    """Every estimate carries its q (also the row that says the grid cannot support it)."""
    for est in estimates:
        est.extra.setdefault("q", q)
    return estimates


def _chance(pm: PairMatrix, pairs) -> float:
    """Mean chance Jaccard (exact, at each pair's n and k) over the pairs (i, j)."""
    vals = [pm.extra[(min(i, j), max(i, j))]["chance"] for i, j in pairs]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else math.nan


def cross(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Mean Jaccard between the seeds of two architectures (the paper's quantity, paired
    by seed), tested against chance."""
    stack = data.stack
    pm = pair_jaccards(stack, cfg, cfg.top_q)

    def one(a: str, b: str) -> Estimate:
        est, jk = seed_estimate(stack, pm, "cross", a, b)
        chance = _chance(pm, itertools.product(stack.run_index(a), stack.run_index(b)))
        est.extra = {"q": cfg.top_q, "chance": chance}
        if np.isfinite(jk.se):
            est.p_value = inf.t_p(jk.estimate, jk.se, jk.df, null=chance)
            est.test = "two-sided t over seeds (jackknife): against chance"
        elif not np.isfinite(est.value):
            est.note = est.note or pm_reason(pm)
        return est

    return _with_q(for_arch_pairs(stack, one), cfg.top_q)


#: the paper's settling criteria (docs/method.md): a cross-architecture Jaccard above this
#: settles F1 against the paper (the architectures agree on the most-forgotten samples)
SETTLING_JACCARD = 0.6


def settling(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """The cross-architecture Jaccard (seed pairs) against the paper's settling criterion
    0.6: one-sided t over seeds (jackknife) of H0 J <= 0.6; ``above``: the 95% interval
    lies above it."""
    stack = data.stack
    pm = pair_jaccards(stack, cfg, cfg.top_q)

    def one(a: str, b: str) -> Estimate:
        est, jk = seed_estimate(stack, pm, "cross", a, b)
        return criterion_row(est, jk, SETTLING_JACCARD, "Jaccard", pm)

    return _with_q(for_arch_pairs(stack, one), cfg.top_q)


def _pooled(
    data: StatsInput, cfg: StatsConfig, q: float, subset: str, interval: bool = True
) -> list[Estimate]:
    stack = data.stack

    def one(a: str, b: str) -> Estimate:
        (sa, ra), (sb, rb) = pooled_scores(stack, a), pooled_scores(stack, b)
        u = np.isfinite(sa) & np.isfinite(sb) & _in_subset(ra, rb, subset, cfg)
        key = ("f1_pooled", stack.trace, stack.score_name, q, subset, a, b)
        res = _jaccard(sa[u], sb[u], q, cfg, key)
        est = Estimate(
            arch=a,
            arch_b=b,
            value=res["value"],
            n_samples=res["n_samples"],
            n_runs=len(stack.run_index(a)) + len(stack.run_index(b)),
            note=res["note"],
            extra={k: res[k] for k in ("q", "k", "chance", "draw_min", "draw_max") if k in res} | {"q": q},
        )
        if interval and np.isfinite(est.value):
            boot = bootstrap_jaccard(
                sa[u], sb[u], q, cfg.bootstrap, rng_for(cfg, *key, "boot"), cfg.min_samples
            )
            est.ci_low, est.ci_high = inf.percentile_interval(boot)
            est.interval = f"bootstrap over samples (B = {cfg.bootstrap})"
            est.p_value = overlap_p(res["n_samples"], res["k"], est.value)
            est.test = "hypergeometric, one-sided: overlap above chance"
        return est

    return _with_q(for_arch_pairs(stack, one), q)


def pooled(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Jaccard of the seed-pooled top-q sets of two architectures (the paper's number)."""
    return _pooled(data, cfg, cfg.top_q, ALL, interval=not data.values_only)


def label_permutation(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """Within- minus cross-architecture Jaccard tested by reassigning the architecture
    labels of the runs over every distinct split (a cross-check of the primary t test;
    not run where the smallest attainable p is not below alpha)."""
    stack = data.stack
    pm = pair_jaccards(stack, cfg, cfg.top_q)

    def one(a: str, b: str) -> Estimate:
        runs = stack.run_index(a) + stack.run_index(b)
        mat = pm.value[np.ix_(runs, runs)]
        off = ~np.eye(len(runs), dtype=bool)

        def statistic(groups: np.ndarray) -> np.ndarray:
            same = (groups[:, :, None] == groups[:, None, :]) & off & np.isfinite(mat)
            other = (groups[:, :, None] != groups[:, None, :]) & np.isfinite(mat)
            vals = np.nan_to_num(mat)[None]
            with np.errstate(invalid="ignore", divide="ignore"):
                return (vals * same).sum((1, 2)) / same.sum((1, 2)) - (vals * other).sum((1, 2)) / other.sum(
                    (1, 2)
                )

        n_a = len(stack.run_index(a))
        est = Estimate(arch=a, arch_b=b, n_runs=len(runs))
        p, n_splits, p_min = inf.permutation_p(
            statistic, n_a, len(runs) - n_a, alternative="greater", symmetric=True
        )
        est.value = float(statistic(np.arange(len(runs))[None] < n_a)[0])
        est.extra = {"splits": n_splits, "p_min": p_min}
        if inf.attainable(p_min, cfg.alpha):
            est.p_value, est.test = p, f"run-label permutation, {n_splits} distinct splits"
        else:
            est.note = (
                f"{n_splits} distinct splits: the smallest attainable p ({p_min:.3g}) is not below alpha; "
                "not tested"
            )
        return est

    return for_arch_pairs(stack, one)


def sensitivity(data: StatsInput, cfg: StatsConfig) -> list[Estimate]:
    """The primary difference and the seed-pooled Jaccard for every q of sensitivity_q and
    both subsets (all samples; R^2 >= r2_min in both). No intervals: a map of how the two
    numbers move, not a test."""
    out = []
    for q in sorted({float(cfg.top_q), *map(float, cfg.sensitivity_q)}):
        for subset in subsets(cfg):
            for statistic, ests in (
                ("within minus cross", _difference(data, cfg, q, subset)),
                ("seed-pooled Jaccard", _pooled(data, cfg, q, subset, interval=False)),
            ):
                for est in ests:
                    est.case = f"{statistic}, top-{q:.0%}, {subset}"
                    est.ci_low = est.ci_high = est.p_value = math.nan
                    est.interval = est.test = ""
                    est.extra = {"q": q, "subset": subset, "statistic": statistic}
                    out.append(est)
    return out


def detail_table(stack: RunStack, cfg: StatsConfig) -> pd.DataFrame:
    """Every pair's Jaccard and the seed-pooled ones, for every q and subset (f1_jaccard.csv)."""
    rows = []
    for q in sorted({float(cfg.top_q), *map(float, cfg.sensitivity_q)}):
        for subset in subsets(cfg):
            pm = pair_jaccards(stack, cfg, q, subset)
            rows += pm.rows(stack, extra=True, q=q, subset=subset)
            for est in _pooled(StatsInput(stack, []), cfg, q, subset, interval=False):
                rows.append(
                    {
                        "kind": "pooled",
                        "q": q,
                        "subset": subset,
                        "arch": est.arch,
                        "arch_b": est.arch_b,
                        "value": est.value,
                        "n_samples": est.n_samples,
                        "note": est.note,
                        **est.extra,
                    }
                )
    return frame(rows, DETAIL_COLUMNS, "f1_jaccard")


DETAIL_COLUMNS = [
    "kind",
    "q",
    "subset",
    "arch",
    "seed",
    "arch_b",
    "seed_b",
    "value",
    "draw_min",
    "draw_max",
    "n_samples",
    "k",
    "chance",
    "note",
]

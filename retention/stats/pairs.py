"""Statistics of pairs of runs, aggregated with seeds as the unit of replication.

A pair statistic (a Jaccard of two runs' top sets, a Spearman of their scores) is computed
for every pair of runs. Means over within-architecture pairs, over cross-architecture
pairs, and their difference, are functions of the seeds: pairs that share a seed are not
independent, so their interval and test come from a jackknife over seeds (each
replicate leaves one seed out: both architectures' runs of that seed), with Student's t
on (seeds - 1) degrees of freedom (:mod:`retention.stats.inference`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retention.stats import inference as inf
from retention.stats.estimate import Estimate
from retention.stats.stack import RunStack


@dataclass(frozen=True)
class PairMatrix:
    """A statistic for every pair of runs (R x R, NaN on the diagonal and where
    undefined), the samples behind each pair, and extra per-pair columns."""

    value: np.ndarray
    n: np.ndarray
    extra: dict

    def pairs(self, stack: RunStack):
        """(i, j) of every pair of runs, i < j."""
        return itertools.combinations(range(len(stack.runs)), 2)

    def rows(self, stack: RunStack, extra: bool = False, **fields) -> list[dict]:
        """One table row per pair of runs: kind (within_pair or cross_pair), ``fields``,
        arch, seed, arch_b, seed_b, value, n_samples (and the pair's extra columns)."""
        out = []
        for i, j in self.pairs(stack):
            (a, sa), (b, sb) = stack.runs[i], stack.runs[j]
            out.append(
                {
                    "kind": "within_pair" if a == b else "cross_pair",
                    **fields,
                    "arch": a,
                    "seed": sa,
                    "arch_b": b,
                    "seed_b": sb,
                    "value": self.value[i, j],
                    "n_samples": self.n[i, j],
                    **(self.extra[(i, j)] if extra else {}),
                }
            )
        return out


def pair_matrix(stack: RunStack, fn: Callable[[int, int], dict]) -> PairMatrix:
    """``fn(i, j)`` -> {"value", "n_samples", ...} for every pair of runs i < j."""
    r = len(stack.runs)
    value, n, extra = np.full((r, r), np.nan), np.zeros((r, r), dtype=np.int64), {}
    for i, j in itertools.combinations(range(r), 2):
        res = fn(i, j)
        value[i, j] = value[j, i] = res["value"]
        n[i, j] = n[j, i] = res["n_samples"]
        extra[(i, j)] = {k: v for k, v in res.items() if k not in ("value", "n_samples")}
    return PairMatrix(value, n, extra)


def _mean_over(mat: np.ndarray, rows: list[int], cols: list[int] | None) -> float:
    """Mean of mat over pairs of ``rows`` (within) or rows x cols (cross), ignoring NaN."""
    if cols is None:
        vals = [mat[i, j] for i, j in itertools.combinations(rows, 2)]
    else:
        vals = [mat[i, j] for i in rows for j in cols]
    vals = np.asarray(vals, dtype=float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else math.nan


def _runs_of(stack: RunStack, arch: str, keep: np.ndarray | None = None) -> list[int]:
    seeds = stack.seeds
    out = []
    for i in stack.run_index(arch):
        if keep is None or keep[seeds.index(stack.runs[i][1])]:
            out.append(i)
    return out


def seed_statistic(stack: RunStack, mat: np.ndarray, kind: str, arch: str, arch_b: str = "") -> Callable:
    """statistic(keep) over the seeds kept: ``within`` (mean over pairs of arch),
    ``cross`` (mean over arch x arch_b pairs) or ``difference`` (mean over the within
    pairs of both architectures minus the cross mean)."""

    def statistic(keep: np.ndarray) -> float:
        a = _runs_of(stack, arch, keep)
        if kind == "within":
            return _mean_over(mat, a, None)
        b = _runs_of(stack, arch_b, keep)
        cross = _mean_over(mat, a, b)
        if kind == "cross":
            return cross
        within = [mat[i, j] for runs in (a, b) for i, j in itertools.combinations(runs, 2)]
        within = np.asarray(within, dtype=float)
        within = within[np.isfinite(within)]
        return float(within.mean()) - cross if within.size else math.nan

    return statistic


def relevant_pairs(
    stack: RunStack, kind: str, arch: str, arch_b: str = "", keep=None
) -> list[tuple[int, int]]:
    """The pairs of runs (i, j) a ``kind`` statistic averages over, among the seeds kept."""
    a = _runs_of(stack, arch, keep)
    if kind == "within":
        return list(itertools.combinations(a, 2))
    b = _runs_of(stack, arch_b, keep)
    cross = [(i, j) for i in a for j in b]
    if kind == "cross":
        return cross
    return [p for runs in (a, b) for p in itertools.combinations(runs, 2)] + cross


def balanced_seeds(stack: RunStack, pm: PairMatrix, kind: str, arch: str, arch_b: str = "") -> np.ndarray:
    """The seeds whose pairs are all defined: seeds are left out one at a time, the one in
    the most undefined pairs first (ties: the lowest seed), until every pair the statistic
    averages over is defined. One pair set then serves the estimate and every jackknife
    replicate (no replicate averages over a different mix of pairs)."""
    keep = np.ones(len(stack.seeds), dtype=bool)
    seed_of = {i: stack.seeds.index(s) for i, (_, s) in enumerate(stack.runs)}
    while True:
        bad = [
            (i, j)
            for i, j in relevant_pairs(stack, kind, arch, arch_b, keep)
            if not np.isfinite(pm.value[i, j])
        ]
        if not bad:
            return keep
        counts = np.zeros(keep.size, dtype=int)
        for i, j in bad:
            counts[seed_of[i]] += 1
            counts[seed_of[j]] += 1
        keep[int(np.argmax(counts))] = False


def _pair_note(pm: PairMatrix, pairs) -> str:
    """The first reason among ``pairs`` for being undefined."""
    notes = [pm.extra[(min(i, j), max(i, j))].get("note", "") for i, j in pairs]
    return next((n for n in notes if n), "")


def seed_estimate(
    stack: RunStack, pm: PairMatrix, kind: str, arch: str, arch_b: str = ""
) -> tuple[Estimate, inf.Jackknife]:
    """The seed-level mean of a pair statistic (see :func:`seed_statistic`) over the seeds
    whose pairs are all defined (:func:`balanced_seeds`), with its jackknife-over-seeds
    standard error and t interval. ``n_samples`` counts the samples behind the pairs used
    (the largest pair), ``n_runs`` the runs, ``pairs_used`` / ``pairs_total`` the pairs;
    the note names the seeds left out and why."""
    usable = balanced_seeds(stack, pm, kind, arch, arch_b)
    full = seed_statistic(stack, pm.value, kind, arch, arch_b)
    n_kept = int(usable.sum())

    def on_kept(keep: np.ndarray) -> float:
        mask = usable.copy()
        mask[usable] = keep
        return full(mask)

    jk = inf.jackknife(n_kept, on_kept)
    all_pairs = relevant_pairs(stack, kind, arch, arch_b)
    used = relevant_pairs(stack, kind, arch, arch_b, usable)
    runs = _runs_of(stack, arch, usable) + (_runs_of(stack, arch_b, usable) if arch_b else [])
    est = Estimate(
        arch=arch,
        arch_b=arch_b,
        value=jk.estimate,
        n_samples=int(max(pm.n[i, j] for i, j in used)) if used else 0,
        n_runs=len(runs),
        pairs_used=len(used),
        pairs_total=len(all_pairs),
    )
    if n_kept < usable.size:
        left = [str(s) for s, k in zip(stack.seeds, usable) if not k]
        undefined = [(i, j) for i, j in all_pairs if not np.isfinite(pm.value[i, j])]
        est.note = (
            f"seed(s) {', '.join(left)} left out: {len(undefined)} of {len(all_pairs)} pairs undefined "
            f"({_pair_note(pm, undefined)})"
        )
    if np.isfinite(jk.se):
        est.ci_low, est.ci_high = inf.t_ci(jk.estimate, jk.se, jk.df)
        est.interval = f"t over {jk.n_units} seeds (jackknife)"
    elif np.isfinite(jk.estimate) or n_kept < usable.size:
        need = f"interval needs at least 3 seeds with defined pairs (has {n_kept})"
        est.note = f"{est.note}; {need}" if est.note else need
    return est, jk


def criterion_row(est: Estimate, jk: inf.Jackknife, criterion: float, what: str, pm: PairMatrix) -> Estimate:
    """A seed-level mean tested against a fixed criterion: one-sided t over seeds
    (jackknife) of H0 value <= criterion; extra ``criterion`` and ``above`` (1 where the
    95% interval lies above the criterion, 0 where not, NaN without an interval)."""
    est.extra = {
        "criterion": criterion,
        "above": float(est.ci_low > criterion) if np.isfinite(est.ci_low) else math.nan,
    }
    if np.isfinite(jk.se):
        est.p_value = inf.t_p(jk.estimate, jk.se, jk.df, null=criterion, alternative="greater")
        est.test = f"one-sided t over seeds (jackknife): {what} above {criterion:g}"
    elif not est.note:
        est.note = pm_reason(pm)
    return est


def pm_reason(pm: PairMatrix) -> str:
    """The first reason a pair statistic gave for being undefined, and how many pairs are."""
    notes = [e.get("note", "") for e in pm.extra.values() if e.get("note")]
    return f"{len(notes)} pair(s) undefined, e.g. {notes[0]}" if notes else ""


def pair_means(stack: RunStack, pm: PairMatrix, kind: str) -> list[Estimate]:
    """The seed-level mean of a pair statistic per architecture (``within``) or per pair
    of architectures (``cross``), each tested against 0 with its jackknife t."""

    def one(a: str, b: str = "") -> Estimate:
        est, jk = seed_estimate(stack, pm, kind, a, b)
        if np.isfinite(jk.se):
            est.p_value, est.test = inf.t_p(jk.estimate, jk.se, jk.df), "two-sided t over seeds (jackknife)"
        return est

    return [one(a) for a in stack.archs] if kind == "within" else for_arch_pairs(stack, one)


def for_arch_pairs(stack: RunStack, estimate: Callable[[str, str], Estimate]) -> list[Estimate]:
    """``estimate(a, b)`` for every pair of architectures; one row that says so when the
    grid has a single architecture."""
    note = needs_two_archs(stack)
    if note:
        return [Estimate(arch=stack.archs[0], note=note)]
    return [estimate(a, b) for a, b in arch_pairs(stack)]


def needs_two_archs(stack: RunStack) -> str:
    """The note of a cross-architecture row the grid cannot support ("" when it can)."""
    archs = stack.archs
    if len(archs) >= 2:
        return ""
    return f"needs two architectures; the grid has {len(archs)} ({', '.join(archs)})"


def arch_pairs(stack: RunStack) -> list[tuple[str, str]]:
    """Every pair of architectures, in config order."""
    return list(itertools.combinations(stack.archs, 2))

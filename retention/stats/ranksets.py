"""Top-q "most forgotten" sets with exactly k members (docs/method.md section 6).

A top-q set of N samples has exactly k = ceil(q N) members: every sample scoring above
the cut-off value, plus as many of the samples tied at the cut-off as k needs, chosen at
random. A statistic on sets is averaged over ``draws`` such random tie-breaks (and its
range over draws reported). When fewer than k samples score above the lowest value, the
cut-off falls inside the lowest-score group (for lambda: the unforgettable samples at 0):
the "set" would be a random pick from that group, so it is undefined and says why.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


def top_k(q: float, n: int) -> int:
    """ceil(q * n), clamped to [1, n] (0 for n = 0), robust to float round-off."""
    if not 0 < q <= 1:
        raise ValueError(f"q = {q} is outside (0, 1]")
    if n == 0:
        return 0
    return min(n, max(1, math.ceil(round(q * n, 9))))


@dataclass(frozen=True)
class TopSets:
    """The top-k sets of one ranking under ``draws`` tie-breaks.

    masks: (draws, n) bool, or (1, n) when no tie needs breaking; None when undefined
    (``reason`` says why). n_above: samples strictly above the cut-off value; tie_size:
    samples at it (the set takes k - n_above of them).
    """

    masks: np.ndarray | None
    k: int
    n: int
    n_above: int
    tie_size: int
    reason: str = ""

    @property
    def defined(self) -> bool:
        return self.masks is not None


def undefined_reason(score: np.ndarray, k: int, min_samples: int) -> str:
    """Why a top-k set of ``score`` is undefined ("" when it is defined)."""
    n = score.size
    if n < max(min_samples, 1):
        return f"{n} samples, fewer than {min_samples}"
    above = int((score > score.min()).sum())
    if above < k:
        return (
            f"cut-off inside the lowest-score group: {above} of {n} samples score above the "
            f"lowest value ({score.min():.3g}), k = {k}"
        )
    return ""


def top_sets(
    score: np.ndarray, q: float, draws: int, rng: np.random.Generator, min_samples: int = 2
) -> TopSets:
    """Exactly-k top sets of ``score`` (finite, higher = more forgotten) under ``draws``
    random tie-breaks at the cut-off; undefined sets as the module docstring says."""
    s = np.asarray(score, dtype=float)
    if not np.all(np.isfinite(s)):
        raise ValueError("top_sets: score has NaN; keep eligible samples only")
    n = s.size
    k = top_k(q, n)
    reason = undefined_reason(s, k, min_samples)
    if reason:
        return TopSets(None, k, n, 0, 0, reason)
    cutoff = np.partition(s, n - k)[n - k]  # the k-th largest value
    above = s > cutoff
    tie = np.flatnonzero(s == cutoff)
    take = k - int(above.sum())
    if take == tie.size:
        return TopSets((above | (s == cutoff))[None], k, n, int(above.sum()), tie.size)
    keys = rng.random((draws, tie.size))
    chosen = np.argpartition(keys, take - 1, axis=1)[:, :take]
    masks = np.repeat(above[None], draws, axis=0)
    rows = np.repeat(np.arange(draws)[:, None], take, axis=1)
    masks[rows, tie[chosen]] = True
    return TopSets(masks, k, n, int(above.sum()), tie.size)


def jaccard_draws(a: TopSets, b: TopSets) -> np.ndarray:
    """Jaccard |A & B| / |A | B| of two defined top-k sets over the same samples, per
    tie-break draw (draw d of one with draw d of the other; independent draws)."""
    if not (a.defined and b.defined):
        raise ValueError("jaccard_draws: a set is undefined")
    if a.n != b.n:
        raise ValueError(f"jaccard_draws: the sets rank {a.n} and {b.n} samples")
    inter = (a.masks & b.masks).sum(axis=1)
    return inter / (a.masks.sum(axis=1) + b.masks.sum(axis=1) - inter)


@functools.lru_cache(maxsize=4096)
def chance_jaccard(n: int, k: int) -> float:
    """Expected Jaccard of two independent random k-subsets of n items (exact:
    E[I / (2k - I)] with I hypergeometric); about q / (2 - q) for q = k / n."""
    if n <= 0 or k <= 0:
        return math.nan
    i = np.arange(max(0, 2 * k - n), k + 1)
    pmf = sps.hypergeom.pmf(i, n, k, k)
    return float(np.sum(pmf * i / (2 * k - i)))


def overlap_p(n: int, k: int, jaccard: float) -> float:
    """One-sided p of an overlap at least as large as ``jaccard`` between two random
    k-subsets of n items (hypergeometric; the intersection rounded to an integer)."""
    if not (n > 0 and k > 0 and np.isfinite(jaccard)):
        return math.nan
    inter = int(round(2 * k * jaccard / (1 + jaccard)))
    return float(sps.hypergeom.sf(inter - 1, n, k, k))


def bootstrap_jaccard(
    score_a: np.ndarray,
    score_b: np.ndarray,
    q: float,
    n_boot: int,
    rng: np.random.Generator,
    min_samples: int = 2,
) -> np.ndarray:
    """Jaccard of the exactly-k top sets of two rankings of the same samples, on ``n_boot``
    resamples of the samples (duplicates count with their multiplicity; each replicate
    breaks ties at random; NaN where a replicate's set is undefined)."""
    a, b = np.asarray(score_a, float), np.asarray(score_b, float)
    n = a.size
    out = np.full(n_boot, np.nan)
    if n == 0:
        return out
    k = top_k(q, n)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        ia = _topk_rows(a[idx], k, rng)
        ib = _topk_rows(b[idx], k, rng)
        ok = _defined_rows(a[idx], k, min_samples) & _defined_rows(b[idx], k, min_samples)
        inter = (ia & ib).sum(axis=1)
        out[start : start + m] = np.where(ok, inter / (2 * k - inter), np.nan)
    return out


def _topk_rows(s: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per row, the k highest values, ties broken at random (a mask)."""
    order = np.lexsort((rng.random(s.shape), -s), axis=-1)[:, :k]
    mask = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def _defined_rows(s: np.ndarray, k: int, min_samples: int) -> np.ndarray:
    return ((s > s.min(axis=1, keepdims=True)).sum(axis=1) >= k) & (s.shape[1] >= min_samples)

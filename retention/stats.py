"""Statistics for every finding (METHOD.md sections 6 and 7), per dataset.

Pure functions on arrays and DataFrames. The entry point is :func:`dataset_tables`:
it takes the fits tables of one dataset's runs (docs/contracts.md "fits table"), the
(arch, seed) key of each run, the held-out confusion and centroid similarity of each
run (:class:`RunClassInfo`, from ``traces.npz``) and a :class:`StatsConfig`, and
returns every statistics table of ``results/stats/{dataset}/`` as a DataFrame.

Choices the specification leaves open, fixed here:

- Comparisons of two runs use the samples eligible in both (status ``fitted`` or
  ``unforgettable``); the top-q sets of a Jaccard are ranked within that common set.
  METHOD's chance level q / (2 - q) assumes sets of ceil(q N); samples tied at the
  cut-off (typically many unforgettable ones at lambda = 0) all join a set, so every
  row also gives ``k`` = ceil(q N), the actual set sizes and ``chance_sizes``, the
  expected Jaccard of random sets of those sizes (hypergeometric, exact).
- Excluded samples (never_learned, too_short) are counted per run and trace
  definition in ``status_counts``; the F1 summary rows give the totals.
- The seed-pooled score of an architecture is a sample's mean lambda over the seeds in
  which it is eligible (ties broken by mean forgetting events, then mean retention).
- Intervals are 95% percentile bootstraps (B = ``StatsConfig.bootstrap``, numpy
  Generator seeded from ``StatsConfig.seed`` and a fixed key per quantity). Means over
  seed pairs are bootstrapped by resampling seeds (pairs share runs, so resampling
  pairs would understate the spread); means over runs by resampling runs; pooled
  means (R^2, AIC share) by resampling samples and runs together. An interval over
  seeds or runs needs at least ``MIN_UNITS`` of them; below that it is left empty.
- The mean of seed-pair Spearman rhos is tested against 0 with a z test: under
  independent runs the pair rhos are uncorrelated with variance 1 / (n - 1) each; for
  cross-architecture pairs the variance allows the runs within each architecture to
  correlate (:func:`cross_pair_mean_z_test`).
- Means of per-run correlations (F5, scores against lambda) carry, as p-value, the
  largest per-run p: "every run shows it" (an intersection-union test).
- Architecture dependence of the top-q sets (F1, seed pairs) is tested by permuting
  the architecture labels of the runs (exact when feasible): statistic = mean
  within-architecture Jaccard minus mean cross-architecture Jaccard.
- A comparison the grid cannot support (one seed, one architecture) gives a row with
  an empty value and a ``note`` that says what it needs, not an error.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .errors import ConfigError, DataError

ELIGIBLE = ("fitted", "unforgettable")
EXCLUDED = ("never_learned", "too_short")
STATUSES = ELIGIBLE + EXCLUDED
#: beyond-the-paper scores compared with lambda (fits-table columns)
SCORES = ("forget_events", "confidence", "variability", "el2n_t0")
# fmt: off
#: fits-table columns this module reads
REQUIRED_COLUMNS = (
    "trace", "sample_id", "label", "status", "lambda", "r2", "forget_events",
    "mean_retention", "loss_t0", "el2n_t0", "confidence", "variability",
    "aic_exp", "aic_power",
)
_NUMERIC = REQUIRED_COLUMNS[4:]
#: the tables of results/stats/{dataset}/, in the order they are written
TABLE_NAMES = (
    "f1_jaccard", "f2_r2", "f3_seed_stability", "f4_class", "f4_class_similarity",
    "f5_early_predictor", "scores", "status_counts", "robustness", "summary",
)
SUMMARY_COLUMNS = [
    "finding", "dataset", "trace", "value", "ci_low", "ci_high", "interval", "test",
    "p_value", "n_samples", "n_runs", "detail",
]
#: fewest seeds or runs a bootstrap over seeds or runs is drawn from
MIN_UNITS = 3
#: a top-q set this many times k = ceil(q N) is flagged (ties at the cut-off)
TIES_WARNING = 1.5
#: most label assignments enumerated exactly by the run-label permutation test
MAX_EXACT_ASSIGNMENTS = 20000
LEVEL = 0.95

_COLUMNS = {
    "f1_jaccard": [
        "kind", "q", "subset", "arch", "seed", "arch_b", "seed_b", "value", "ci_low",
        "ci_high", "band_low", "band_high", "chance", "chance_sizes", "p_value", "test",
        "n_samples", "n_runs", "k", "size_a", "size_b", "note",
    ],
    "status_counts": [
        "trace", "arch", "seed", "n_samples", "fitted", "unforgettable", "never_learned",
        "too_short",
    ],
    "f2_r2": [
        "kind", "arch", "seed", "arch_b", "value", "ci_low", "ci_high", "frac_defined",
        "n_defined", "n_samples", "n_runs", "q10", "q25", "median", "q75", "q90",
        "statistic", "effect", "p_value", "test", "note",
    ],
    "f3_seed_stability": [
        "kind", "arch", "seed", "arch_b", "seed_b", "value", "ci_low", "ci_high",
        "p_value", "test", "n_samples", "n_runs", "note",
    ],
    "f4_class": [
        "kind", "arch", "seed", "arch_b", "seed_b", "class_index", "class_name", "value",
        "ci_low", "ci_high", "p_value", "test", "n_samples", "n_runs", "n_classes",
        "rank", "position", "note",
    ],
    "f4_class_similarity": [
        "kind", "arch", "seed", "class_index", "class_name", "forgetting",
        "max_confusion", "confused_with", "nearest_cosine", "nearest_class", "measure",
        "value", "ci_low", "ci_high", "p_value", "test", "n_classes", "n_samples",
        "n_runs", "note",
    ],
    "f5_early_predictor": [
        "kind", "arch", "seed", "value", "ci_low", "ci_high", "min", "max", "p_value",
        "test", "n_samples", "n_runs", "note",
    ],
    "scores": [
        "kind", "score", "arch", "seed", "arch_b", "seed_b", "value", "ci_low",
        "ci_high", "min", "max", "p_value", "test", "n_samples", "n_runs", "note",
    ],
}
_INT_COLUMNS = ("seed", "seed_b", "n_samples", "n_runs", "n_defined", "size_a",
                "size_b", "k", "n_classes", "class_index", "rank", *ELIGIBLE, *EXCLUDED)
_TEXT_COLUMNS = ("kind", "arch", "arch_b", "test", "note", "subset", "score", "class_name",
                 "position", "measure", "confused_with", "nearest_class")
# fmt: on


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class StatsConfig:
    """The ``stats`` section of the config (METHOD section 7)."""

    top_q: float = 0.10
    sensitivity_q: tuple[float, ...] = (0.05, 0.10, 0.20)
    r2_min: float = 0.6
    bootstrap: int = 1000
    permutations: int = 1000
    spearman_permutation_below: int = 30
    seed: int = 0

    @classmethod
    def from_mapping(cls, values: Mapping) -> "StatsConfig":
        """Build from a ``config["stats"]`` mapping; unknown or bad values raise ConfigError."""
        known = {
            "top_q", "sensitivity_q", "r2_min", "bootstrap", "permutations",
            "spearman_permutation_below", "seed",
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"stats: unknown key(s) {unknown}; known: {sorted(known)}")
        kw = dict(values)
        if "sensitivity_q" in kw:
            kw["sensitivity_q"] = tuple(float(q) for q in kw["sensitivity_q"])
        cfg = cls(**kw)
        for q in (cfg.top_q, *cfg.sensitivity_q):
            if not 0 < float(q) <= 1:
                raise ConfigError(f"stats: q = {q} is outside (0, 1]; use e.g. top_q: 0.10")
        if not 0 <= float(cfg.r2_min) <= 1:
            raise ConfigError(f"stats.r2_min = {cfg.r2_min} is outside [0, 1]")
        for key in ("bootstrap", "permutations"):
            if int(getattr(cfg, key)) < 10:
                raise ConfigError(
                    f"stats.{key} = {getattr(cfg, key)}; use at least 10 (default 1000)"
                )
        return cfg


def _rng(cfg: StatsConfig, *key) -> np.random.Generator:
    """A Generator seeded by ``cfg.seed`` and a stable key, so every quantity gets the
    same draws however many others were computed before it."""
    tag = zlib.crc32("|".join(str(k) for k in key).encode())
    return np.random.default_rng([int(cfg.seed), tag])


# ------------------------------------------------------------------ ranking and sets


def _top_k(q: float, n: int) -> int:
    """ceil(q * n), clamped to [1, n] (0 for n = 0), robust to float round-off."""
    if not 0 < q <= 1:
        raise ValueError(f"q = {q} is outside (0, 1]")
    if n == 0:
        return 0
    return min(n, max(1, math.ceil(round(q * n, 9))))


def forgetting_rank(
    score: np.ndarray, events: np.ndarray | None = None, retention: np.ndarray | None = None
) -> np.ndarray:
    """Dense rank of every sample from most to least forgotten (0 = most forgotten).

    Order: higher ``score`` (lambda) first; ties by more forgetting ``events``, then by
    lower mean ``retention`` (METHOD section 6). Samples equal on all three share a
    rank. NaN events count as 0, NaN retention as +inf (last). NaN scores are an error:
    exclude never_learned / too_short samples first.
    """
    s = np.asarray(score, dtype=float)
    if np.isnan(s).any():
        raise ValueError("forgetting_rank: score has NaN; exclude never_learned / too_short first")
    n = s.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    e = np.zeros(n) if events is None else np.nan_to_num(np.asarray(events, float), nan=0.0)
    r = np.zeros(n) if retention is None else np.asarray(retention, float).copy()
    r[np.isnan(r)] = np.inf
    order = np.lexsort((r, -e, -s))
    ss, es, rs = s[order], e[order], r[order]
    change = np.zeros(n, dtype=bool)
    change[1:] = (ss[1:] != ss[:-1]) | (es[1:] != es[:-1]) | (rs[1:] != rs[:-1])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.cumsum(change)
    return rank


def top_q_mask(rank: np.ndarray, q: float) -> np.ndarray:
    """Membership of the top-q set: every sample ranked at or above the sample at
    position ceil(q * N) (ties at the threshold included, so the set may be larger)."""
    rank = np.asarray(rank)
    k = _top_k(q, rank.size)
    if k == 0:
        return np.zeros(0, dtype=bool)
    threshold = np.partition(rank, k - 1)[k - 1]
    return rank <= threshold


@dataclass(frozen=True)
class TopQSet:
    """The top-q most-forgotten set of one fits table (one trace definition)."""

    sample_id: np.ndarray  # ids in the set, most forgotten first
    size: int  # len(sample_id); >= k when samples tie at the threshold
    k: int  # ceil(q * n_eligible)
    threshold: float  # lambda of the sample at rank k
    n_eligible: int
    n_excluded: dict  # status -> count (never_learned, too_short)


def top_q_set(fits: pd.DataFrame, q: float) -> TopQSet:
    """Top-q set of one run's fits table for a single trace definition (METHOD section 6).

    ``fits`` has the contract columns ``sample_id``, ``status``, ``lambda``,
    ``forget_events``, ``mean_retention``; it must hold one trace definition only.
    """
    if "trace" in fits.columns and fits["trace"].nunique() > 1:
        raise ValueError(
            "top_q_set: the table holds several trace definitions "
            f"{sorted(fits['trace'].unique())}; select one first"
        )
    status = fits["status"].astype(str).to_numpy()
    lam = fits["lambda"].to_numpy(dtype=float)
    eligible = np.isin(status, ELIGIBLE) & np.isfinite(lam)
    n_excluded = {s: int((status == s).sum()) for s in EXCLUDED}
    sub = fits[eligible]
    rank = forgetting_rank(
        sub["lambda"].to_numpy(float),
        sub["forget_events"].to_numpy(float),
        sub["mean_retention"].to_numpy(float),
    )
    mask = top_q_mask(rank, q)
    order = np.argsort(rank[mask], kind="stable")
    ids = sub["sample_id"].to_numpy()[mask][order]
    k = _top_k(q, rank.size)
    threshold = float(np.sort(sub["lambda"].to_numpy(float))[::-1][k - 1]) if k else math.nan
    return TopQSet(ids, int(mask.sum()), k, threshold, int(eligible.sum()), n_excluded)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A & B| / |A | B| of two boolean masks over the same samples (NaN if both empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else math.nan


def jaccard_sets(a, b) -> float:
    """Jaccard index of two collections of ids (NaN if both empty)."""
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / len(a | b) if (a or b) else math.nan


def chance_jaccard(q: float) -> float:
    """METHOD's chance level of a top-q Jaccard: q / (2 - q), the ratio of the expected
    intersection (q^2 N) and union ((2q - q^2) N) of two random q-subsets."""
    return q / (2.0 - q)


def topq_sets(ma: np.ndarray, mb: np.ndarray, q: float) -> dict:
    """Jaccard of two top-q masks over the same samples, with k = ceil(q N), the actual
    set sizes (larger than k when samples tie at the cut-off) and the chance Jaccard at
    those sizes (the columns of an F1 row)."""
    n, sa, sb = ma.size, int(ma.sum()), int(mb.sum())
    return {
        "value": jaccard(ma, mb),
        "n_samples": n,
        "k": _top_k(q, n),
        "size_a": sa,
        "size_b": sb,
        "chance_sizes": chance_jaccard_sizes(n, sa, sb),
    }


def ties_enlarge(sizes, k) -> bool:
    """Whether ties at the cut-off made a top-q set more than TIES_WARNING times k."""
    return bool(np.any(np.asarray(sizes, float) > TIES_WARNING * np.asarray(k, float)))


def chance_jaccard_sizes(n: int, size_a: int, size_b: int) -> float:
    """Expected Jaccard of two independent random subsets of sizes ``size_a`` and
    ``size_b`` of ``n`` items: E[I / (a + b - I)], I hypergeometric (exact)."""
    if n <= 0 or size_a + size_b == 0:
        return math.nan
    i = np.arange(max(0, size_a + size_b - n), min(size_a, size_b) + 1)
    pmf = sps.hypergeom.pmf(i, n, size_a, size_b)
    return float(np.sum(pmf * i / (size_a + size_b - i)))


# ------------------------------------------------------------- resampling primitives


def percentile_interval(boot: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (NaN replicates ignored)."""
    boot = np.asarray(boot, dtype=float)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return math.nan, math.nan
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _chunks(n_total: int, size: int):
    for start in range(0, n_total, size):
        yield start, min(size, n_total - start)


def _chunk_rows(n: int, budget: int = 2_000_000) -> int:
    return max(1, budget // max(n, 1))


def bootstrap_mean(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of the finite ``values``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    out = np.full(n_boot, np.nan)
    if v.size == 0:
        return out
    for start, m in _chunks(n_boot, _chunk_rows(v.size)):
        idx = rng.integers(0, v.size, size=(m, v.size))
        out[start : start + m] = v[idx].mean(axis=1)
    return out


def _resample_counts(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """(m, n) multiplicities of n units drawn with replacement, m times."""
    idx = rng.integers(0, n, size=(m, n)) + (np.arange(m) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=m * n).reshape(m, n).astype(float)


def bootstrap_topq_jaccard(
    rank_a: np.ndarray, rank_b: np.ndarray, q: float, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Jaccard of the top-q sets of two rankings of the same samples, recomputed on
    ``n_boot`` resamples of the samples (duplicates count with their multiplicity).

    Its percentile interval is slightly conservative for small sets (about 97-98%
    coverage at N = 1000, q = 0.1; about 95% at N = 2000; tests/test_stats.py)."""
    rank_a, rank_b = np.asarray(rank_a), np.asarray(rank_b)
    n = rank_a.size
    out = np.full(n_boot, np.nan)
    if n == 0:
        return out
    k = _top_k(q, n)
    for start, m in _chunks(n_boot, _chunk_rows(n)):
        idx = rng.integers(0, n, size=(m, n))
        ra, rb = rank_a[idx], rank_b[idx]
        ia = ra <= np.partition(ra, k - 1, axis=1)[:, k - 1 : k]
        ib = rb <= np.partition(rb, k - 1, axis=1)[:, k - 1 : k]
        out[start : start + m] = (ia & ib).sum(1) / (ia | ib).sum(1)
    return out


def permutation_jaccard(
    mask_a: np.ndarray, mask_b: np.ndarray, n_perm: int, rng: np.random.Generator
) -> np.ndarray:
    """Null distribution of the Jaccard of two sets of fixed sizes: ``mask_b`` is
    shuffled over the samples ``n_perm`` times."""
    mask_a, mask_b = np.asarray(mask_a, bool), np.asarray(mask_b, bool)
    n = mask_a.size
    out = np.full(n_perm, np.nan)
    if n == 0:
        return out
    for start, m in _chunks(n_perm, _chunk_rows(n)):
        perm = rng.permuted(np.tile(mask_b, (m, 1)), axis=1)
        union = (perm | mask_a).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + m] = (perm & mask_a).sum(1) / union
    return out


def bootstrap_pair_mean(
    matrix: np.ndarray, n_boot: int, rng: np.random.Generator, symmetric: bool
) -> np.ndarray:
    """Mean of a seed-pair statistic over ``n_boot`` resamples of the seeds.

    symmetric: ``matrix`` (n, n) holds the within-architecture pairs (diagonal NaN);
    seeds are resampled and the mean is taken over the pairs of distinct seeds.
    Otherwise ``matrix`` (n_a, n_b) holds cross pairs; rows and columns are resampled
    independently. NaN entries are ignored; a replicate with no pair is NaN.
    """
    m = np.asarray(matrix, dtype=float)
    if symmetric:
        idx = rng.integers(0, m.shape[0], size=(n_boot, m.shape[0]))
        sub = m[idx[:, :, None], idx[:, None, :]]
    else:
        ri = rng.integers(0, m.shape[0], size=(n_boot, m.shape[0]))
        ci = rng.integers(0, m.shape[1], size=(n_boot, m.shape[1]))
        sub = m[ri[:, :, None], ci[:, None, :]]
    valid = np.isfinite(sub)
    count = valid.sum(axis=(1, 2))
    total = np.where(valid, sub, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bootstrap_ratio(
    num: np.ndarray,
    den: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    resample_runs: bool,
    sample_counts: np.ndarray | None = None,
) -> np.ndarray:
    """Pooled ratio sum(num) / sum(den) over runs x samples, on ``n_boot`` resamples of
    the samples (and of the runs when ``resample_runs``).

    num, den: (runs, samples). ``sample_counts`` (n_boot, samples) supplies shared
    sample multiplicities (to pair two architectures on the same resamples).
    """
    num = np.nan_to_num(np.asarray(num, float))
    den = np.nan_to_num(np.asarray(den, float))
    n_runs, n = num.shape
    if sample_counts is None:
        sample_counts = np.vstack(
            [_resample_counts(rng, n, m) for _, m in _chunks(n_boot, _chunk_rows(n))]
        )
    num_s = sample_counts @ num.T  # (B, runs)
    den_s = sample_counts @ den.T
    if resample_runs:
        v = _resample_counts(rng, n_runs, n_boot)
        num_s, den_s = num_s * v, den_s * v
    with np.errstate(invalid="ignore", divide="ignore"):
        return num_s.sum(1) / den_s.sum(1)


def bootstrap_spearman(
    x: np.ndarray, y: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Spearman rho of ``n_boot`` resamples of the pairs (x_i, y_i) (NaN if constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    out = np.full(n_boot, np.nan)
    if n < 3:
        return out
    for start, m in _chunks(n_boot, _chunk_rows(n)):
        idx = rng.integers(0, n, size=(m, n))
        rx = sps.rankdata(x[idx], axis=1)
        ry = sps.rankdata(y[idx], axis=1)
        rx -= rx.mean(1, keepdims=True)
        ry -= ry.mean(1, keepdims=True)
        den = np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + m] = np.where(den > 0, (rx * ry).sum(1) / den, np.nan)
    return out


def spearman(x: np.ndarray, y: np.ndarray, cfg: StatsConfig | None = None) -> tuple[float, float, int]:
    """Spearman rho (ties averaged), two-sided p and n over the pairs finite in both
    (scipy.stats.spearmanr). NaN when fewer than 3 pairs or either side is constant.

    Below ``cfg.spearman_permutation_below`` pairs (e.g. OCTDL's 7 classes) the
    t-approximation of spearmanr is far too liberal, so p comes from a permutation test
    (scipy.stats.permutation_test over pairings): exact for n <= 8, else
    ``cfg.permutations`` seeded random permutations.
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
    rx = sps.rankdata(x[ok])
    ry = sps.rankdata(y[ok])
    ry = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())

    def rho(ranks: np.ndarray, axis: int = -1) -> np.ndarray:  # Pearson of the ranks
        centred = ranks - ranks.mean(axis=axis, keepdims=True)
        return (centred * ry).sum(axis=axis) / np.linalg.norm(centred, axis=axis)

    perm = sps.permutation_test(
        (rx,), rho, permutation_type="pairings", vectorized=True, alternative="two-sided",
        n_resamples=math.factorial(n) if n <= 8 else cfg.permutations,
        rng=_rng(cfg, "spearman", n, *np.round(rx, 3), *np.round(ry, 6)),
    )
    return float(res.statistic), float(perm.pvalue), n


def pair_mean_z_test(rhos: np.ndarray, ns: np.ndarray) -> float:
    """Two-sided p of H0: mean of pair Spearman rhos = 0.

    Under independent runs each rho has mean 0 and variance 1 / (n - 1), and rhos of
    pairs that share a run are uncorrelated, so Var(mean) = sum(1 / (n_p - 1)) / m^2.
    """
    rhos, ns = np.asarray(rhos, float), np.asarray(ns, float)
    ok = np.isfinite(rhos) & (ns > 2)
    if not ok.any():
        return math.nan
    m = ok.sum()
    se = math.sqrt(float(np.sum(1.0 / (ns[ok] - 1.0)))) / m
    return float(2 * sps.norm.sf(abs(rhos[ok].mean()) / se))


def cross_pair_mean_z_test(
    rhos: np.ndarray, ns: np.ndarray, within_a: np.ndarray, within_b: np.ndarray
) -> float:
    """Two-sided p of H0: mean of cross-architecture pair Spearman rhos = 0, allowing
    the runs within each architecture to be correlated.

    rhos, ns: (n_a, n_b) cross-pair rhos and sample counts; within_a (n_a, n_a) and
    within_b (n_b, n_b): rank correlations between the runs of each architecture (the
    diagonal is taken as 1, NaN as 0). With A independent of B,
    Cov(r(A_i, B_j), r(A_k, B_l)) = rho(A_i, A_k) rho(B_j, B_l) / (n - 1), so over the
    m pairs with a defined rho (indicator V), Var(mean) =
    sum_ik within_a[i, k] (V within_b V^T)[i, k] / ((n - 1) m^2). With every pair
    defined and uncorrelated runs this is :func:`pair_mean_z_test`.
    """
    rhos, ns = np.asarray(rhos, float), np.asarray(ns, float)
    ok = np.isfinite(rhos) & (ns > 2)
    if not ok.any():
        return math.nan

    def unit_diagonal(w: np.ndarray) -> np.ndarray:
        w = np.nan_to_num(np.array(w, dtype=float))
        np.fill_diagonal(w, 1.0)
        return w

    v = ok.astype(float)
    m = float(v.sum())
    total = float(np.sum(unit_diagonal(within_a) * (v @ unit_diagonal(within_b) @ v.T)))
    var = max(total, m) / (float(np.mean(ns[ok])) - 1.0) / m**2
    return float(2 * sps.norm.sf(abs(rhos[ok].mean()) / math.sqrt(var)))


def arch_label_permutation(
    matrix: np.ndarray,
    in_a: np.ndarray,
    rng: np.random.Generator,
    n_max: int = MAX_EXACT_ASSIGNMENTS,
) -> tuple[float, float, int]:
    """Permutation test of architecture dependence on a run x run similarity matrix.

    Statistic: mean similarity of same-architecture pairs minus mean of cross pairs.
    The architecture labels (``in_a``: run belongs to the first architecture) are
    reassigned over the runs, keeping group sizes; all assignments when at most
    ``n_max``, else ``n_max`` random ones plus the observed. Returns (statistic,
    one-sided p of "within > cross", number of assignments).
    """
    m = np.asarray(matrix, dtype=float)
    in_a = np.asarray(in_a, bool)
    n, n_a = in_a.size, int(in_a.sum())
    off = ~np.eye(n, dtype=bool)

    def stat(groups: np.ndarray) -> np.ndarray:  # groups: (K, n) bool
        same = (groups[:, :, None] == groups[:, None, :]) & off
        cross = (groups[:, :, None] != groups[:, None, :]) & off
        valid = np.isfinite(m)[None]
        vals = np.where(np.isfinite(m), m, 0.0)[None]
        w_s, w_c = same & valid, cross & valid
        with np.errstate(invalid="ignore", divide="ignore"):
            return (vals * w_s).sum((1, 2)) / w_s.sum((1, 2)) - (vals * w_c).sum((1, 2)) / w_c.sum(
                (1, 2)
            )

    observed = float(stat(in_a[None])[0])
    total = math.comb(n, n_a)
    if total <= n_max:
        groups = np.zeros((total, n), dtype=bool)
        for row, combo in enumerate(itertools.combinations(range(n), n_a)):
            groups[row, list(combo)] = True
    else:
        keys = rng.random((n_max, n)).argsort(axis=1)[:, :n_a]
        groups = np.zeros((n_max, n), dtype=bool)
        np.put_along_axis(groups, keys, True, axis=1)
        groups = np.vstack([in_a[None], groups])
    null = stat(groups)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return observed, math.nan, int(groups.shape[0])
    p = float(np.mean(null >= observed - 1e-12))
    return observed, p, int(groups.shape[0])


# ----------------------------------------------------------------------- run stack


@dataclass(frozen=True)
class RunStack:
    """One trace definition of every run of a dataset, aligned by sample.

    ``values[col]`` is (runs, samples) float for each numeric fits column; ``status``
    (runs, samples) str ('missing' where a run lacks the sample); ``eligible`` marks
    fitted / unforgettable samples; ``lam`` is lambda where eligible, else NaN.
    """

    trace: str
    runs: tuple[tuple[str, int], ...]
    sample_id: np.ndarray
    label: np.ndarray
    status: np.ndarray
    values: dict
    eligible: np.ndarray
    lam: np.ndarray

    @property
    def archs(self) -> list[str]:
        """Architectures in order of first appearance."""
        return list(dict.fromkeys(a for a, _ in self.runs))

    def run_index(self, arch: str) -> list[int]:
        return [i for i, (a, _) in enumerate(self.runs) if a == arch]

    def seed(self, i: int) -> int:
        return self.runs[i][1]


def _check_runs(fits: Sequence[pd.DataFrame], runs: Sequence) -> list[tuple[str, int]]:
    runs = [(str(a), int(s)) for a, s in runs]
    if len(fits) != len(runs):
        raise DataError(
            f"{len(fits)} fits tables but {len(runs)} run keys; give one (arch, seed) per table"
        )
    if not runs:
        raise DataError("statistics need at least one run")
    dup = [r for r in runs if runs.count(r) > 1]
    if dup:
        raise DataError(f"run {dup[0][0]}/seed{dup[0][1]} is given twice")
    return runs


def trace_labels(fits: Sequence[pd.DataFrame]) -> list[str]:
    """Trace definitions present in the fits tables, in order of first appearance."""
    labels: list[str] = []
    for df in fits:
        if "trace" not in df.columns:
            raise DataError("fits table lacks column 'trace'; see docs/contracts.md 'fits table'")
        for t in pd.unique(df["trace"].astype(str)):
            if t not in labels:
                labels.append(t)
    return labels


def stack_runs(fits: Sequence[pd.DataFrame], runs: Sequence, trace: str) -> RunStack:
    """Align the rows of ``trace`` in every run's fits table by ``sample_id``."""
    runs = _check_runs(fits, runs)
    subs = []
    for (arch, seed), df in zip(runs, fits):
        name = f"{arch}/seed{seed}"
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise DataError(
                f"fits table of run {name} lacks column(s) {missing}; "
                "see docs/contracts.md 'fits table'"
            )
        sub = df[df["trace"].astype(str) == trace]
        if sub.empty:
            raise DataError(
                f"fits table of run {name} has no rows for trace {trace!r}; "
                f"it has {sorted(df['trace'].astype(str).unique())}"
            )
        if sub["sample_id"].duplicated().any():
            dup = sub.loc[sub["sample_id"].duplicated(), "sample_id"].iloc[0]
            raise DataError(
                f"fits table of run {name}, trace {trace!r}: sample_id {dup} appears twice"
            )
        bad = sorted(set(sub["status"].astype(str)) - set(STATUSES))
        if bad:
            raise DataError(
                f"fits table of run {name}: unknown status {bad}; expected {list(STATUSES)}"
            )
        lam = sub["lambda"].to_numpy(float)
        broken = np.isin(sub["status"].astype(str).to_numpy(), ELIGIBLE) & ~np.isfinite(lam)
        if broken.any():
            sid = sub["sample_id"].to_numpy()[broken][0]
            raise DataError(
                f"fits table of run {name}: sample {sid} is fitted/unforgettable but lambda is NaN"
            )
        subs.append(sub.set_index("sample_id"))
    ids = np.unique(np.concatenate([s.index.to_numpy() for s in subs]))
    aligned = [s.reindex(ids) for s in subs]
    labels = np.vstack([a["label"].to_numpy(float) for a in aligned])
    first = np.nanmax(np.where(np.isfinite(labels), labels, -np.inf), axis=0)
    clash = np.isfinite(labels) & (labels != first[None])
    if clash.any():
        r, c = np.argwhere(clash)[0]
        raise DataError(
            f"sample {ids[c]} has label {int(labels[r, c])} in run {runs[r][0]}/seed{runs[r][1]} "
            f"but {int(first[c])} in another run; the runs must share one split"
        )
    status = np.vstack(
        [a["status"].astype(object).fillna("missing").astype(str).to_numpy() for a in aligned]
    )
    values = {c: np.vstack([a[c].to_numpy(float) for a in aligned]) for c in _NUMERIC}
    eligible = np.isin(status, ELIGIBLE) & np.isfinite(values["lambda"])
    lam = np.where(eligible, values["lambda"], np.nan)
    return RunStack(trace, tuple(runs), ids, first.astype(np.int64), status, values, eligible, lam)


def _masked_mean(values: np.ndarray, mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean of ``values`` where ``mask`` (and finite) along ``axis``; NaN where none."""
    ok = mask & np.isfinite(values)
    count = ok.sum(axis)
    total = np.where(ok, values, 0.0).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _finite_mean(values) -> float:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


# --------------------------------------------------------------------- pair tables


def _needs_two_seeds(arch: str, n: int) -> str:
    return f"within-architecture comparison needs two seeds of {arch}; the grid has {n}"


def _needs_two_archs(archs: list[str]) -> str:
    return (
        "cross-architecture comparison needs two architectures; "
        f"the grid has {len(archs)} ({', '.join(archs)})"
    )


@dataclass
class _Pairs:
    """A statistic for every pair of runs: value, p and n (R x R), the samples used."""

    value: np.ndarray
    p: np.ndarray
    n: np.ndarray
    used: dict
    extra: dict


def _all_pairs(n_runs: int, fn: Callable[[int, int], tuple[dict, np.ndarray]]) -> _Pairs:
    shape = (n_runs, n_runs)
    out = _Pairs(np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, int), {}, {})
    for i, j in itertools.combinations(range(n_runs), 2):
        res, used = fn(i, j)
        out.value[i, j] = out.value[j, i] = res["value"]
        out.p[i, j] = out.p[j, i] = res.get("p_value", math.nan)
        out.n[i, j] = out.n[j, i] = res["n_samples"]
        out.used[(i, j)] = used
        out.extra[(i, j)] = {
            k: v for k, v in res.items() if k not in ("value", "p_value", "n_samples")
        }
    return out


def _union_used(pairs: _Pairs, keys: list[tuple[int, int]]) -> int:
    masks = [pairs.used[k] for k in keys if pairs.used.get(k) is not None]
    return int(np.logical_or.reduce(masks).sum()) if masks else 0


def _pair_rows(stack: RunStack, pairs: _Pairs, base: dict) -> list[dict]:
    rows = []
    for (i, j), extra in pairs.extra.items():
        (a, sa), (b, sb) = stack.runs[i], stack.runs[j]
        rows.append(
            {
                **base,
                "kind": "within_pair" if a == b else "cross_pair",
                "arch": a,
                "seed": sa,
                "arch_b": b,
                "seed_b": sb,
                "value": pairs.value[i, j],
                "p_value": pairs.p[i, j],
                "n_samples": pairs.n[i, j],
                "n_runs": 2,
                **extra,
            }
        )
    return rows


def _aggregate_rows(
    stack: RunStack, pairs: _Pairs, cfg: StatsConfig, base: dict, key: tuple, test: str
) -> list[dict]:
    """Mean over within-architecture and cross-architecture seed pairs, with a seed
    bootstrap interval and a test: 'z' (mean rho = 0), 'arch_permutation' (F1) or ''."""
    rows = []
    archs = stack.archs
    interval_note = f"interval needs >= {MIN_UNITS} seeds per architecture"
    for arch in archs:
        idx = stack.run_index(arch)
        row = {**base, "kind": "within_mean", "arch": arch, "n_runs": len(idx)}
        if len(idx) < 2:
            rows.append({**row, "note": _needs_two_seeds(arch, len(idx))})
            continue
        sub = pairs.value[np.ix_(idx, idx)]
        keys = [(i, j) for i, j in itertools.combinations(idx, 2)]
        vals = np.array([pairs.value[k] for k in keys])
        ns = np.array([pairs.n[k] for k in keys])
        row.update(value=_finite_mean(vals), n_samples=_union_used(pairs, keys))
        if len(idx) >= MIN_UNITS:
            boot = bootstrap_pair_mean(sub, cfg.bootstrap, _rng(cfg, *key, "within", arch), True)
            row["ci_low"], row["ci_high"] = percentile_interval(boot)
        else:
            row["note"] = interval_note
        if test == "z":
            row["p_value"] = pair_mean_z_test(vals, ns)
            row["test"] = "z test: mean seed-pair Spearman rho = 0"
        rows.append(row)
    if len(archs) < 2:
        rows.append(
            {
                **base,
                "kind": "cross_mean",
                "arch": archs[0],
                "n_runs": len(stack.runs),
                "note": _needs_two_archs(archs),
            }
        )
        return rows
    for a, b in itertools.combinations(archs, 2):
        ia, ib = stack.run_index(a), stack.run_index(b)
        keys = [(min(i, j), max(i, j)) for i in ia for j in ib]
        vals = np.array([pairs.value[k] for k in keys])
        ns = np.array([pairs.n[k] for k in keys])
        row = {
            **base,
            "kind": "cross_mean",
            "arch": a,
            "arch_b": b,
            "n_runs": len(ia) + len(ib),
            "value": _finite_mean(vals),
            "n_samples": _union_used(pairs, keys),
        }
        if min(len(ia), len(ib)) >= MIN_UNITS:
            block = pairs.value[np.ix_(ia, ib)]
            boot = bootstrap_pair_mean(block, cfg.bootstrap, _rng(cfg, *key, "cross", a, b), False)
            row["ci_low"], row["ci_high"] = percentile_interval(boot)
        else:
            row["note"] = interval_note
        if test == "z":
            row["p_value"] = cross_pair_mean_z_test(
                pairs.value[np.ix_(ia, ib)],
                pairs.n[np.ix_(ia, ib)],
                pairs.value[np.ix_(ia, ia)],
                pairs.value[np.ix_(ib, ib)],
            )
            row["test"] = (
                "z test: mean cross-pair Spearman rho = 0 "
                "(runs within an architecture may correlate)"
            )
        elif test == "arch_permutation":
            both = ia + ib
            if len(ia) < 2 and len(ib) < 2:
                row["note"] = "architecture permutation test needs two seeds of one architecture"
            else:
                mat = pairs.value[np.ix_(both, both)]
                in_a = np.array([k < len(ia) for k in range(len(both))])
                _, p, n_assign = arch_label_permutation(mat, in_a, _rng(cfg, *key, "perm", a, b))
                row["p_value"] = p
                row["test"] = (
                    "run-label permutation, within-arch > cross-arch Jaccard "
                    f"({n_assign} assignments)"
                )
        rows.append(row)
    return rows


def _frame(rows: list[dict], table: str) -> pd.DataFrame:
    df = pd.DataFrame(rows).reindex(columns=_COLUMNS[table])
    for c in _INT_COLUMNS:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
    for c in _TEXT_COLUMNS:
        if c in df.columns:
            df[c] = df[c].astype(object).where(df[c].notna(), "")
    return df


# ---------------------------------------------------------------------------- F1


def _pooled_arch(stack: RunStack, idx: list[int]) -> dict[str, np.ndarray]:
    """Seed-pooled score of one architecture: mean lambda (and tie-break keys, R^2)
    over the seeds where each sample is eligible."""
    el = stack.eligible[idx]
    return {
        "score": _masked_mean(stack.lam[idx], el),
        "events": _masked_mean(stack.values["forget_events"][idx], el),
        "retention": _masked_mean(stack.values["mean_retention"][idx], el),
        "r2": _masked_mean(stack.values["r2"][idx], el),
    }


def f1_jaccard_table(stack: RunStack, cfg: StatsConfig, sensitivity: bool = True) -> pd.DataFrame:
    """F1: Jaccard of top-q most-forgotten sets (METHOD section 7).

    Rows (``kind``): ``cross_pair`` / ``within_pair`` (every seed pair),
    ``cross_mean`` / ``within_mean`` (mean with a seed-bootstrap interval; cross rows
    carry the run-label permutation p), ``pooled`` (seed-pooled ranking per pair of
    architectures: bootstrap-over-samples interval, permutation band and p against
    chance). ``chance`` = q / (2 - q) on every row. With ``sensitivity``, for every q in
    {top_q} | sensitivity_q and for subset 'all' and 'r2>=r2_min' (R^2 >= r2_min in
    both; seed-pooled: the mean R^2 over seeds).
    """
    qs = sorted({float(cfg.top_q), *(map(float, cfg.sensitivity_q if sensitivity else ()))})
    subsets = [("all", None)] + (
        [(f"r2>={cfg.r2_min:g}", float(cfg.r2_min))] if sensitivity else []
    )
    lam, ev, ret, r2 = (
        stack.lam,
        stack.values["forget_events"],
        stack.values["mean_retention"],
        stack.values["r2"],
    )
    archs = stack.archs
    pooled = {a: _pooled_arch(stack, stack.run_index(a)) for a in archs}
    rows: list[dict] = []
    for q in qs:
        for subset, r2_min in subsets:
            base = {"q": q, "subset": subset, "chance": chance_jaccard(q)}

            def pair(i: int, j: int, q=q, r2_min=r2_min):
                u = stack.eligible[i] & stack.eligible[j]
                if r2_min is not None:
                    with np.errstate(invalid="ignore"):
                        u = u & (r2[i] >= r2_min) & (r2[j] >= r2_min)
                ma = top_q_mask(forgetting_rank(lam[i][u], ev[i][u], ret[i][u]), q)
                mb = top_q_mask(forgetting_rank(lam[j][u], ev[j][u], ret[j][u]), q)
                return topq_sets(ma, mb, q), u

            if len(stack.runs) >= 2:
                pairs = _all_pairs(len(stack.runs), pair)
                rows += _pair_rows(stack, pairs, base)
                rows += _aggregate_rows(
                    stack, pairs, cfg, base, ("f1", stack.trace, q, subset), "arch_permutation"
                )
            else:
                a = archs[0]
                rows.append(
                    {
                        **base,
                        "kind": "within_mean",
                        "arch": a,
                        "n_runs": 1,
                        "note": _needs_two_seeds(a, 1),
                    }
                )
                rows.append(
                    {
                        **base,
                        "kind": "cross_mean",
                        "arch": a,
                        "n_runs": 1,
                        "note": _needs_two_archs(archs),
                    }
                )
            if len(archs) < 2:
                rows.append(
                    {
                        **base,
                        "kind": "pooled",
                        "arch": archs[0],
                        "n_runs": len(stack.runs),
                        "note": _needs_two_archs(archs),
                    }
                )
                continue
            for a, b in itertools.combinations(archs, 2):
                pa, pb = pooled[a], pooled[b]
                u = np.isfinite(pa["score"]) & np.isfinite(pb["score"])
                if r2_min is not None:
                    with np.errstate(invalid="ignore"):
                        u = u & (pa["r2"] >= r2_min) & (pb["r2"] >= r2_min)
                ra = forgetting_rank(pa["score"][u], pa["events"][u], pa["retention"][u])
                rb = forgetting_rank(pb["score"][u], pb["events"][u], pb["retention"][u])
                ma, mb = top_q_mask(ra, q), top_q_mask(rb, q)
                key = ("f1_pooled", stack.trace, q, subset, a, b)
                row = {
                    **base,
                    "kind": "pooled",
                    "arch": a,
                    "arch_b": b,
                    "n_runs": len(stack.run_index(a)) + len(stack.run_index(b)),
                    **topq_sets(ma, mb, q),
                }
                value = row["value"]
                if row["n_samples"] >= 2:
                    boot = bootstrap_topq_jaccard(ra, rb, q, cfg.bootstrap, _rng(cfg, *key, "boot"))
                    row["ci_low"], row["ci_high"] = percentile_interval(boot)
                    null = permutation_jaccard(ma, mb, cfg.permutations, _rng(cfg, *key, "perm"))
                    row["band_low"], row["band_high"] = percentile_interval(null)
                    centre = null.mean()
                    extreme = np.abs(null - centre) >= abs(value - centre) - 1e-12
                    row["p_value"] = float((1 + extreme.sum()) / (1 + null.size))
                    row["test"] = (
                        f"sample permutation vs chance, two-sided ({cfg.permutations} permutations)"
                    )
                else:
                    row["note"] = "fewer than two samples eligible in both architectures"
                rows.append(row)
    return _frame(rows, "f1_jaccard")


# ---------------------------------------------------------------------------- F2


def _quantiles(v: np.ndarray) -> dict[str, float]:
    """10th, 25th, 50th, 75th and 90th percentiles of ``v`` (NaN when empty)."""
    qs = np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9]) if v.size else [math.nan] * 5
    return dict(zip(("q10", "q25", "median", "q75", "q90"), map(float, qs)))


def f2_r2_table(stack: RunStack, cfg: StatsConfig) -> pd.DataFrame:
    """F2: R^2 of the decay fits (defined R^2 only; METHOD section 7).

    Rows: ``run`` (mean R^2 of one run, bootstrap over samples), ``arch`` (pooled over
    the architecture's runs: bootstrap over samples and runs), ``arch_fraction_defined``
    (share of eligible samples with defined R^2), ``arch_difference`` (difference of
    the pooled means, first minus second architecture, paired bootstrap; Mann-Whitney U
    on per-sample mean R^2 over seeds, two-sided; ``effect`` = U / (n_a n_b)), and
    ``arch_difference_paired``: both architectures score the same samples, so beside
    METHOD's Mann-Whitney U the per-sample differences of mean R^2 (samples defined in
    both) with a bootstrap-over-samples interval and a Wilcoxon signed-rank test.
    """
    r2 = stack.values["r2"]
    defined = stack.eligible & np.isfinite(r2) & (stack.status == "fitted")
    r2_def = np.where(defined, r2, np.nan)
    rows: list[dict] = []
    n = stack.sample_id.size
    sample_counts = np.vstack(
        [
            _resample_counts(_rng(cfg, "f2_samples", stack.trace, s), n, m)
            for s, m in _chunks(cfg.bootstrap, _chunk_rows(n))
        ]
    )
    for i, (arch, seed) in enumerate(stack.runs):
        v = r2_def[i][defined[i]]
        n_el = int(stack.eligible[i].sum())
        row = {
            "kind": "run",
            "arch": arch,
            "seed": seed,
            "value": _finite_mean(v),
            "frac_defined": v.size / n_el if n_el else math.nan,
            "n_defined": v.size,
            "n_samples": n_el,
            "n_runs": 1,
            **_quantiles(v),
        }
        row["ci_low"], row["ci_high"] = percentile_interval(
            bootstrap_mean(v, cfg.bootstrap, _rng(cfg, "f2_run", stack.trace, arch, seed))
        )
        rows.append(row)
    archs = stack.archs
    boot_means = {}
    for arch in archs:
        idx = stack.run_index(arch)
        resample_runs = len(idx) >= MIN_UNITS
        v = r2_def[idx][defined[idx]]
        n_el = int(stack.eligible[idx].sum())
        num, den = np.where(defined[idx], r2[idx], 0.0), defined[idx].astype(float)
        boot = bootstrap_ratio(
            num,
            den,
            cfg.bootstrap,
            _rng(cfg, "f2_arch", stack.trace, arch),
            resample_runs,
            sample_counts,
        )
        boot_means[arch] = boot
        how = "" if resample_runs else f"runs not resampled (fewer than {MIN_UNITS})"
        row = {
            "kind": "arch",
            "arch": arch,
            "value": _finite_mean(v),
            "n_defined": v.size,
            "frac_defined": v.size / n_el if n_el else math.nan,
            "n_samples": int(stack.eligible[idx].any(0).sum()),
            "n_runs": len(idx),
            "note": how,
            **_quantiles(v),
        }
        row["ci_low"], row["ci_high"] = percentile_interval(boot)
        rows.append(row)
        fboot = bootstrap_ratio(
            defined[idx].astype(float),
            stack.eligible[idx].astype(float),
            cfg.bootstrap,
            _rng(cfg, "f2_frac", stack.trace, arch),
            resample_runs,
            sample_counts,
        )
        frow = {
            "kind": "arch_fraction_defined",
            "arch": arch,
            "value": row["frac_defined"],
            "n_defined": v.size,
            "n_samples": row["n_samples"],
            "n_runs": len(idx),
            "note": how,
        }
        frow["ci_low"], frow["ci_high"] = percentile_interval(fboot)
        rows.append(frow)
    if len(archs) < 2:
        rows.append(
            {
                "kind": "arch_difference",
                "arch": archs[0],
                "n_runs": len(stack.runs),
                "note": "Mann-Whitney U between architectures: " + _needs_two_archs(archs),
            }
        )
    for a, b in itertools.combinations(archs, 2):
        ia, ib = stack.run_index(a), stack.run_index(b)
        per_a = _masked_mean(r2[ia], defined[ia])
        per_b = _masked_mean(r2[ib], defined[ib])
        xa, xb = per_a[np.isfinite(per_a)], per_b[np.isfinite(per_b)]
        value = _finite_mean(r2_def[ia][defined[ia]]) - _finite_mean(r2_def[ib][defined[ib]])
        row = {
            "kind": "arch_difference",
            "arch": a,
            "arch_b": b,
            "value": value,
            "n_samples": int((np.isfinite(per_a) | np.isfinite(per_b)).sum()),
            "n_runs": len(ia) + len(ib),
        }
        row["ci_low"], row["ci_high"] = percentile_interval(boot_means[a] - boot_means[b])
        if xa.size and xb.size:
            res = sps.mannwhitneyu(xa, xb, alternative="two-sided")
            row.update(
                statistic=float(res.statistic),
                effect=float(res.statistic) / (xa.size * xb.size),
                p_value=float(res.pvalue),
                test="Mann-Whitney U, two-sided, per-sample mean R2 over seeds",
            )
        else:
            row["note"] = "no defined R^2 in one architecture"
        rows.append(row)
        both = np.isfinite(per_a) & np.isfinite(per_b)
        diff = per_a[both] - per_b[both]
        paired = {
            "kind": "arch_difference_paired",
            "arch": a,
            "arch_b": b,
            "value": _finite_mean(diff),
            "n_samples": int(both.sum()),
            "n_runs": len(ia) + len(ib),
        }
        if diff.size >= 2 and np.any(diff != 0):
            paired["ci_low"], paired["ci_high"] = percentile_interval(
                bootstrap_mean(diff, cfg.bootstrap, _rng(cfg, "f2_paired", stack.trace, a, b))
            )
            res = sps.wilcoxon(diff)
            paired.update(
                statistic=float(res.statistic),
                p_value=float(res.pvalue),
                test="Wilcoxon signed-rank, two-sided, per-sample mean R2 over seeds",
            )
        else:
            paired["note"] = "fewer than two samples with defined R^2 in both architectures"
        rows.append(paired)
    return _frame(rows, "f2_r2")


# ---------------------------------------------------------------------------- F3


def _spearman_p_method(cfg: StatsConfig) -> str:
    return f"p by permutation below {cfg.spearman_permutation_below} classes"


def _spearman_pair(
    x: np.ndarray, y: np.ndarray, ok: np.ndarray, cfg: StatsConfig
) -> tuple[dict, np.ndarray]:
    rho, p, n = spearman(np.where(ok, x, np.nan), np.where(ok, y, np.nan), cfg)
    return {"value": rho, "p_value": p, "n_samples": n}, ok & np.isfinite(x) & np.isfinite(y)


def f3_seed_stability_table(stack: RunStack, cfg: StatsConfig) -> pd.DataFrame:
    """F3: Spearman rho of lambda for every pair of runs on the samples eligible in
    both (``within_pair`` / ``cross_pair``), and the mean over pairs per architecture
    and per pair of architectures (seed-bootstrap interval, z test of mean rho = 0)."""
    rows: list[dict] = []
    if len(stack.runs) >= 2:
        pairs = _all_pairs(
            len(stack.runs),
            lambda i, j: _spearman_pair(
                stack.lam[i], stack.lam[j], stack.eligible[i] & stack.eligible[j], cfg
            ),
        )
        rows += _pair_rows(stack, pairs, {"test": "Spearman (scipy.stats.spearmanr)"})
        rows += _aggregate_rows(stack, pairs, cfg, {}, ("f3", stack.trace), "z")
    else:
        a = stack.archs[0]
        rows += [
            {"kind": "within_mean", "arch": a, "n_runs": 1, "note": _needs_two_seeds(a, 1)},
            {"kind": "cross_mean", "arch": a, "n_runs": 1, "note": _needs_two_archs([a])},
        ]
    return _frame(rows, "f3_seed_stability")


# ---------------------------------------------------------------------------- F4


@dataclass(frozen=True)
class RunClassInfo:
    """Class-level similarity of one run (from its traces.npz).

    confusion: (C, C) held-out confusion rates at the last epoch, row = true class,
    rows normalised (NaN for a class without held-out samples). centroid_cosine:
    (C, C) cosine similarity of the class centroids of penultimate features at t = 0.
    """

    class_names: tuple
    confusion: np.ndarray
    centroid_cosine: np.ndarray


def class_similarity(
    heldout_label: np.ndarray,
    heldout_pred: np.ndarray,
    centroid_cosine: np.ndarray,
    class_names: Sequence[str],
) -> RunClassInfo:
    """Held-out confusion rates from labels and predictions (one epoch) and the
    centroid cosine matrix, as a :class:`RunClassInfo`."""
    names = tuple(str(c) for c in class_names)
    c = len(names)
    label = np.asarray(heldout_label, np.int64).ravel()
    pred = np.asarray(heldout_pred, np.int64).ravel()
    cos = np.asarray(centroid_cosine, float)
    if label.shape != pred.shape:
        raise DataError(
            f"heldout_label {label.shape} and heldout_pred {pred.shape} differ in length"
        )
    for name, v in (("heldout_label", label), ("heldout_pred", pred)):
        if v.size and (v.min() < 0 or v.max() >= c):
            raise DataError(f"{name} has values outside 0..{c - 1} (there are {c} class_names)")
    if cos.shape != (c, c):
        raise DataError(f"class_centroid_cosine has shape {cos.shape}, expected ({c}, {c})")
    counts = np.bincount(label * c + pred, minlength=c * c).reshape(c, c).astype(float)
    totals = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    return RunClassInfo(names, rates, cos)


def class_info_from_traces(arrays: Mapping[str, np.ndarray], run: str = "") -> RunClassInfo:
    """:func:`class_similarity` from the arrays of one ``traces.npz`` (e.g. ``np.load``
    output): held-out predictions at the last epoch (largest ``t``)."""
    where = f" of run {run}" if run else ""
    keys = ("t", "class_names", "heldout_label", "heldout_pred", "class_centroid_cosine")
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(
            f"traces.npz{where} lacks key(s) {missing}; see docs/contracts.md 'traces.npz'"
        )
    t = np.asarray(arrays["t"])
    pred = np.asarray(arrays["heldout_pred"])
    if pred.ndim != 2 or pred.shape[1] != t.size:
        raise DataError(
            f"traces.npz{where}: heldout_pred has shape {pred.shape}, expected (N, {t.size})"
        )
    last = int(np.argmax(t))
    return class_similarity(
        arrays["heldout_label"],
        pred[:, last],
        arrays["class_centroid_cosine"],
        [str(c) for c in np.asarray(arrays["class_names"])],
    )


def _off_diagonal_max(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest off-diagonal entry of each row and its column (-1 where none)."""
    m = np.array(mat, dtype=float)
    c = m.shape[0]
    if c < 2:
        return np.full(c, np.nan), np.full(c, -1)
    np.fill_diagonal(m, -np.inf)
    m[np.isnan(m)] = -np.inf
    arg = m.argmax(1)
    best = m[np.arange(c), arg]
    ok = np.isfinite(best)
    return np.where(ok, best, np.nan), np.where(ok, arg, -1)


def class_means(stack: RunStack, n_classes: int) -> np.ndarray:
    """Mean lambda per class per run (runs, classes) over eligible samples; NaN where a
    class has none."""
    out = np.full((len(stack.runs), n_classes), np.nan)
    lab = stack.label
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise DataError(
            f"fits labels range {lab.min()}..{lab.max()} but there are {n_classes} classes"
        )
    for i in range(len(stack.runs)):
        el = stack.eligible[i]
        total = np.bincount(lab[el], weights=stack.lam[i][el], minlength=n_classes)
        count = np.bincount(lab[el], minlength=n_classes)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _class_counts(stack: RunStack, n_classes: int) -> np.ndarray:
    return np.vstack(
        [
            np.bincount(stack.label[stack.eligible[i]], minlength=n_classes)
            for i in range(len(stack.runs))
        ]
    )


def _n_extreme(n_classes: int) -> int:
    return max(1, min(5, n_classes // 2))


def f4_class_table(stack: RunStack, cfg: StatsConfig, class_names: Sequence[str]) -> pd.DataFrame:
    """F4: mean lambda per class per run (``run_class``), per architecture over seeds
    (``arch_class``, ranked, 1 = most forgotten; ``position`` top / bottom for the
    extreme classes), and the Spearman rho of class vectors for every pair of runs
    with its means (``within_mean`` / ``cross_mean``: seed bootstrap, z test)."""
    names = [str(c) for c in class_names]
    c = len(names)
    means = class_means(stack, c)
    counts = _class_counts(stack, c)
    rows: list[dict] = []
    for i, (arch, seed) in enumerate(stack.runs):
        for k in range(c):
            rows.append(
                {
                    "kind": "run_class",
                    "arch": arch,
                    "seed": seed,
                    "class_index": k,
                    "class_name": names[k],
                    "value": means[i, k],
                    "n_samples": counts[i, k],
                    "n_runs": 1,
                }
            )
    n_ext = _n_extreme(c)
    for arch in stack.archs:
        idx = stack.run_index(arch)
        pooled = _masked_mean(means[idx], np.ones_like(means[idx], bool))
        order = [
            k
            for k in np.argsort(-np.nan_to_num(pooled, nan=-np.inf), kind="stable")
            if np.isfinite(pooled[k])
        ]
        rank = {k: r + 1 for r, k in enumerate(order)}
        top = set(order[:n_ext])
        bottom = set(order[::-1][:n_ext]) - top
        for k in range(c):
            rows.append(
                {
                    "kind": "arch_class",
                    "arch": arch,
                    "class_index": k,
                    "class_name": names[k],
                    "value": pooled[k],
                    "n_samples": int(counts[idx, k].sum()),
                    "n_runs": len(idx),
                    "rank": rank.get(k),
                    "n_classes": c,
                    "position": "top" if k in top else ("bottom" if k in bottom else ""),
                }
            )
    base = {"n_classes": c}
    if len(stack.runs) >= 2:

        def pair(i, j):
            ok = np.isfinite(means[i]) & np.isfinite(means[j])
            res, used = _spearman_pair(means[i], means[j], ok, cfg)
            cls = np.isin(stack.label, np.flatnonzero(used))
            return res, cls & stack.eligible[i] & stack.eligible[j]

        pairs = _all_pairs(len(stack.runs), pair)
        # pairs.n counts classes (the z test's n); the rows report samples behind them
        test = f"Spearman of class vectors ({_spearman_p_method(cfg)})"
        for row, key in zip(_pair_rows(stack, pairs, {**base, "test": test}), pairs.extra):
            row["n_samples"] = int(pairs.used[key].sum())
            rows.append(row)
        rows += _aggregate_rows(stack, pairs, cfg, base, ("f4", stack.trace), "z")
    else:
        a = stack.archs[0]
        rows += [
            {**base, "kind": "within_mean", "arch": a, "n_runs": 1, "note": _needs_two_seeds(a, 1)},
            {**base, "kind": "cross_mean", "arch": a, "n_runs": 1, "note": _needs_two_archs([a])},
        ]
    return _frame(rows, "f4_class")


def extreme_classes(f4_class: pd.DataFrame, arch: str) -> tuple[list[str], list[str]]:
    """Names of the most and least forgotten classes of ``arch`` (from f4_class)."""
    sub = f4_class[(f4_class["kind"] == "arch_class") & (f4_class["arch"] == arch)]
    top = sub[sub["position"] == "top"].sort_values("rank")["class_name"].tolist()
    bottom = (
        sub[sub["position"] == "bottom"].sort_values("rank", ascending=False)["class_name"].tolist()
    )
    return top, bottom


def f4_similarity_table(
    stack: RunStack, cfg: StatsConfig, class_infos: Sequence[RunClassInfo | None] | None
) -> pd.DataFrame:
    """F4: class forgetting against visual similarity.

    Per class (``run_class``, ``arch_class`` = mean over the architecture's runs): mean
    lambda, largest off-diagonal held-out confusion rate (and with which class), cosine
    of the nearest other class centroid. Spearman over classes of forgetting vs each
    ``measure`` (max_confusion, nearest_cosine) per run (``run_spearman``) and per
    architecture (``arch_spearman``, bootstrap-over-classes interval, spearmanr p).
    """
    if class_infos is None or any(ci is None for ci in class_infos):
        return _frame(
            [
                {
                    "kind": "arch_spearman",
                    "arch": a,
                    "note": "class similarity needs every run's traces.npz",
                }
                for a in stack.archs
            ],
            "f4_class_similarity",
        )
    if len(class_infos) != len(stack.runs):
        raise ValueError(f"{len(class_infos)} class infos for {len(stack.runs)} runs")
    names = list(class_infos[0].class_names)
    c = len(names)
    means = class_means(stack, c)
    counts = _class_counts(stack, c)
    rows: list[dict] = []

    def class_rows(kind, arch, seed, forgetting, conf, cos, n_samples, n_runs):
        mc, cw = _off_diagonal_max(conf)
        nc, nn = _off_diagonal_max(cos)
        out = []
        for k in range(c):
            out.append(
                {
                    "kind": kind,
                    "arch": arch,
                    "seed": seed,
                    "class_index": k,
                    "class_name": names[k],
                    "forgetting": forgetting[k],
                    "max_confusion": mc[k],
                    "confused_with": names[cw[k]] if cw[k] >= 0 else "",
                    "nearest_cosine": nc[k],
                    "nearest_class": names[nn[k]] if nn[k] >= 0 else "",
                    "n_samples": n_samples[k],
                    "n_runs": n_runs,
                }
            )
        return out, {"max_confusion": mc, "nearest_cosine": nc}

    def spearman_rows(kind, arch, seed, forgetting, measures, n_runs, n_samples, boot_key=None):
        out = []
        for measure, x in measures.items():
            rho, p, n = spearman(forgetting, x, cfg)
            row = {
                "kind": kind,
                "arch": arch,
                "seed": seed,
                "measure": measure,
                "value": rho,
                "p_value": p,
                "n_classes": n,
                "n_runs": n_runs,
                "n_samples": n_samples,
                "test": f"Spearman over classes ({_spearman_p_method(cfg)})",
            }
            if boot_key is not None and n >= MIN_UNITS:
                ok = np.isfinite(forgetting) & np.isfinite(x)
                boot = bootstrap_spearman(
                    forgetting[ok], x[ok], cfg.bootstrap, _rng(cfg, *boot_key, measure)
                )
                row["ci_low"], row["ci_high"] = percentile_interval(boot)
            out.append(row)
        return out

    for i, (arch, seed) in enumerate(stack.runs):
        info = class_infos[i]
        if list(info.class_names) != names:
            raise DataError(
                f"run {arch}/seed{seed} has class_names {list(info.class_names)}, "
                f"another run {names}; the runs must share one dataset"
            )
        cr, meas = class_rows(
            "run_class", arch, seed, means[i], info.confusion, info.centroid_cosine, counts[i], 1
        )
        rows += cr
        rows += spearman_rows(
            "run_spearman", arch, seed, means[i], meas, 1, int(stack.eligible[i].sum())
        )
    for arch in stack.archs:
        idx = stack.run_index(arch)
        conf = (
            np.nanmean(np.stack([class_infos[i].confusion for i in idx]), axis=0)
            if c
            else np.zeros((0, 0))
        )
        cos = np.mean(np.stack([class_infos[i].centroid_cosine for i in idx]), axis=0)
        forgetting = _masked_mean(means[idx], np.ones_like(means[idx], bool))
        cr, meas = class_rows(
            "arch_class", arch, None, forgetting, conf, cos, counts[idx].sum(0), len(idx)
        )
        rows += cr
        rows += spearman_rows(
            "arch_spearman",
            arch,
            None,
            forgetting,
            meas,
            len(idx),
            int(stack.eligible[idx].any(0).sum()),
            ("f4_sim", stack.trace, arch),
        )
    return _frame(rows, "f4_class_similarity")


# ---------------------------------------------------------------------------- F5


def _per_run_correlation_rows(
    stack: RunStack,
    cfg: StatsConfig,
    x: np.ndarray,
    mask: np.ndarray,
    key: tuple,
    base: dict,
    kinds=("run", "arch", "all"),
) -> list[dict]:
    """Spearman of x vs lambda per run, then mean (bootstrap over runs), range and
    largest p per architecture and over all runs."""
    rows: list[dict] = []
    per = []
    for i, (arch, seed) in enumerate(stack.runs):
        rho, p, n = spearman(np.where(mask[i], x[i], np.nan), stack.lam[i], cfg)
        per.append((rho, p, n))
        rows.append(
            {
                **base,
                "kind": kinds[0],
                "arch": arch,
                "seed": seed,
                "value": rho,
                "p_value": p,
                "n_samples": n,
                "n_runs": 1,
                "test": "Spearman (scipy.stats.spearmanr)",
            }
        )
    groups = [(kinds[1], a, stack.run_index(a)) for a in stack.archs]
    if kinds[2]:
        groups.append((kinds[2], "all", list(range(len(stack.runs)))))
    for kind, arch, idx in groups:
        rho = np.array([per[i][0] for i in idx])
        p = np.array([per[i][1] for i in idx])
        ok = np.isfinite(rho)
        row = {
            **base,
            "kind": kind,
            "arch": arch,
            "value": _finite_mean(rho),
            "n_runs": len(idx),
            "n_samples": int((mask[idx] & stack.eligible[idx] & np.isfinite(x[idx])).any(0).sum()),
            "min": float(rho[ok].min()) if ok.any() else math.nan,
            "max": float(rho[ok].max()) if ok.any() else math.nan,
            "p_value": float(p[ok].max()) if ok.any() else math.nan,
            "test": "Spearman per run; p = largest per-run p (every run significant)",
        }
        if ok.sum() >= MIN_UNITS:
            boot = bootstrap_mean(rho[ok], cfg.bootstrap, _rng(cfg, *key, arch))
            row["ci_low"], row["ci_high"] = percentile_interval(boot)
        else:
            row["note"] = f"interval needs >= {MIN_UNITS} runs"
        rows.append(row)
    return rows


def f5_early_predictor_table(stack: RunStack, cfg: StatsConfig) -> pd.DataFrame:
    """F5: Spearman of loss at t = 0 against lambda per run (``run``), mean with a
    bootstrap-over-runs interval, range and largest p per architecture (``arch``) and
    over all runs (``all``)."""
    x = stack.values["loss_t0"]
    rows = _per_run_correlation_rows(stack, cfg, x, stack.eligible, ("f5", stack.trace), {})
    return _frame(rows, "f5_early_predictor")


# -------------------------------------------------------------- beyond the paper


def scores_table(stack: RunStack, cfg: StatsConfig) -> pd.DataFrame:
    """Beyond the paper: each score of ``SCORES`` against lambda per run
    (``vs_lambda``; mean per architecture ``vs_lambda_mean``), each score's own seed
    stability (pairs and means, as F3; lambda included for reference), and the share
    of fitted samples where the exponential model beats the power law by AIC
    (``aic_run``; pooled per architecture ``aic_arch``: bootstrap over samples and runs).
    """
    rows: list[dict] = []
    for score in SCORES:
        x = stack.values[score]
        rows += _per_run_correlation_rows(
            stack,
            cfg,
            x,
            stack.eligible,
            ("scores", stack.trace, score),
            {"score": score},
            ("vs_lambda", "vs_lambda_mean", ""),
        )
    for score in ("lambda",) + SCORES:
        x = stack.lam if score == "lambda" else stack.values[score]
        base = {"score": score}
        if len(stack.runs) >= 2:
            ok = np.isfinite(x)
            pairs = _all_pairs(
                len(stack.runs), lambda i, j: _spearman_pair(x[i], x[j], ok[i] & ok[j], cfg)
            )
            rows += _pair_rows(stack, pairs, {**base, "test": "Spearman (scipy.stats.spearmanr)"})
            rows += _aggregate_rows(
                stack, pairs, cfg, base, ("scores_stab", stack.trace, score), "z"
            )
        else:
            a = stack.archs[0]
            rows.append(
                {
                    **base,
                    "kind": "within_mean",
                    "arch": a,
                    "n_runs": 1,
                    "note": _needs_two_seeds(a, 1),
                }
            )
    ae, ap = stack.values["aic_exp"], stack.values["aic_power"]
    both = (stack.status == "fitted") & np.isfinite(ae) & np.isfinite(ap)
    better = both & (ae < ap)
    for i, (arch, seed) in enumerate(stack.runs):
        n = int(both[i].sum())
        rows.append(
            {
                "kind": "aic_run",
                "score": "aic_exp_better",
                "arch": arch,
                "seed": seed,
                "value": better[i].sum() / n if n else math.nan,
                "n_samples": n,
                "n_runs": 1,
            }
        )
    for arch in stack.archs:
        idx = stack.run_index(arch)
        n = int(both[idx].sum())
        boot = bootstrap_ratio(
            better[idx].astype(float),
            both[idx].astype(float),
            cfg.bootstrap,
            _rng(cfg, "aic", stack.trace, arch),
            len(idx) >= MIN_UNITS,
        )
        lo, hi = percentile_interval(boot)
        rows.append(
            {
                "kind": "aic_arch",
                "score": "aic_exp_better",
                "arch": arch,
                "value": better[idx].sum() / n if n else math.nan,
                "ci_low": lo,
                "ci_high": hi,
                "n_samples": int(both[idx].any(0).sum()),
                "n_runs": len(idx),
                "note": "" if n else "no fitted samples with both AICs",
            }
        )
    return _frame(rows, "scores")


# ------------------------------------------------------------------------- summary


def _qlabel(q: float) -> str:
    return f"top-{q * 100:g}%"


def _pick(df: pd.DataFrame, **eq) -> list[pd.Series]:
    sel = np.ones(len(df), bool)
    for k, v in eq.items():
        sel &= (df[k] == v).to_numpy()
    return [r for _, r in df[sel].iterrows()]


def _num(v) -> float:
    return math.nan if v is None or pd.isna(v) else float(v)


def _srow(
    finding: str, r: pd.Series, interval: str, detail: str = "", test: str | None = None
) -> dict:
    note = str(r.get("note", "") or "")
    has_ci = np.isfinite(_num(r.get("ci_low")))
    return {
        "finding": finding,
        "value": _num(r.get("value")),
        "ci_low": _num(r.get("ci_low")),
        "ci_high": _num(r.get("ci_high")),
        "interval": interval if has_ci else "",
        "test": (str(r.get("test", "") or "") if test is None else test),
        "p_value": _num(r.get("p_value")),
        "n_samples": r.get("n_samples"),
        "n_runs": r.get("n_runs"),
        "detail": "; ".join(x for x in (detail, note) if x),
    }


def _set_size_detail(pair_rows: pd.DataFrame) -> str:
    """Chance at the actual set sizes of seed-pair rows, and a warning when ties at the
    cut-off made the sets much larger than k = ceil(q N)."""
    if pair_rows.empty:
        return ""
    text = f"; at the pairs' set sizes {np.nanmean(pair_rows['chance_sizes'].to_numpy(float)):.3f}"
    sizes = pair_rows[["size_a", "size_b"]].to_numpy(float)
    k = pair_rows["k"].to_numpy(float)[:, None]
    if ties_enlarge(sizes, k):
        text += (
            f"; set sizes {int(np.nanmin(sizes))} to {int(np.nanmax(sizes))} for k = "
            f"{int(np.nanmin(k))} to {int(np.nanmax(k))}: ties at the cut-off enlarge the sets"
        )
    return text


def _excluded_detail(status_counts: pd.DataFrame | None, trace: str) -> str:
    """Totals of the samples left out of the rankings (METHOD section 6)."""
    if status_counts is None or status_counts.empty:
        return ""
    part = status_counts[status_counts["trace"] == trace]
    counts = ", ".join(f"{s} {int(part[s].sum())}" for s in EXCLUDED)
    return f"; excluded from the rankings (all runs): {counts} of {int(part['n_samples'].sum())}"


def summary_table(
    tables: Mapping[str, pd.DataFrame],
    dataset: str,
    trace: str,
    cfg: StatsConfig,
    status_counts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per finding (the headline rows of the detail tables): value, interval,
    the interval's method, test, raw p-value, n_samples, n_runs and a free-text detail.
    Rows the grid cannot support have an empty value and say why in ``detail``.
    ``status_counts`` (:func:`status_counts_table`) adds the excluded totals to F1."""
    B = cfg.bootstrap
    q = float(cfg.top_q)
    ql = _qlabel(q)
    rows: list[dict] = []
    f1 = tables["f1_jaccard"]
    f1 = f1[(f1["q"] == q) & (f1["subset"] == "all")]
    excluded = _excluded_detail(status_counts, trace)
    for r in _pick(f1, kind="pooled"):
        pair = f"{r['arch']} vs {r['arch_b']}" if r["arch_b"] else "across architectures"
        detail = f"chance {r['chance']:.3f}"
        if np.isfinite(_num(r["band_low"])):
            detail += f"; at these set sizes {r['chance_sizes']:.3f}"
            detail += f"; permutation band {r['band_low']:.3f} to {r['band_high']:.3f}"
            detail += f"; set sizes {r['size_a']} and {r['size_b']} of {r['n_samples']} (k = {r['k']})"
            if ties_enlarge([r["size_a"], r["size_b"]], r["k"]):
                detail += ": ties at the cut-off enlarge the sets"
        rows.append(
            _srow(
                f"F1 Jaccard {ql} {pair} (seed-pooled)",
                r,
                f"bootstrap over samples (B={B})",
                detail + excluded,
            )
        )
    for r in _pick(f1, kind="cross_mean"):
        pair = f"{r['arch']} vs {r['arch_b']}" if r["arch_b"] else "across architectures"
        pairs = f1[(f1["kind"] == "cross_pair") & (f1["arch"] == r["arch"]) & (f1["arch_b"] == r["arch_b"])]
        rows.append(
            _srow(
                f"F1 Jaccard {ql} {pair} (seed pairs)",
                r,
                f"bootstrap over seeds (B={B})",
                f"chance {r['chance']:.3f}" + _set_size_detail(pairs) + excluded,
            )
        )
    for r in _pick(f1, kind="within_mean"):
        pairs = f1[(f1["kind"] == "within_pair") & (f1["arch"] == r["arch"])]
        rows.append(
            _srow(
                f"F1 Jaccard {ql} within {r['arch']} (seed pairs)",
                r,
                f"bootstrap over seeds (B={B})",
                f"chance {r['chance']:.3f}" + _set_size_detail(pairs) + excluded,
            )
        )

    f2 = tables["f2_r2"]
    for r in _pick(f2, kind="arch"):
        rows.append(
            _srow(
                f"F2 mean R2 ({r['arch']})",
                r,
                f"bootstrap over samples and runs (B={B})",
                f"{r['n_defined']} defined R2 values",
            )
        )
    for r in _pick(f2, kind="arch_fraction_defined"):
        rows.append(
            _srow(
                f"F2 fraction R2 defined ({r['arch']})",
                r,
                f"bootstrap over samples and runs (B={B})",
            )
        )
    for r in _pick(f2, kind="arch_difference"):
        pair = f"{r['arch']} minus {r['arch_b']}" if r["arch_b"] else "between architectures"
        detail = (
            f"U = {r['statistic']:.6g}, P(first > second) = {r['effect']:.3f}"
            if np.isfinite(_num(r["statistic"]))
            else ""
        )
        rows.append(
            _srow(
                f"F2 mean R2 {pair}", r, f"paired bootstrap over samples and runs (B={B})", detail
            )
        )
    for r in _pick(f2, kind="arch_difference_paired"):
        rows.append(
            _srow(
                f"F2 R2 {r['arch']} minus {r['arch_b']}, paired by sample",
                r,
                f"bootstrap over samples (B={B})",
                "per-sample mean R2 over seeds, samples with R2 defined in both",
            )
        )

    f3 = tables["f3_seed_stability"]
    pair_rows = f3[f3["kind"].isin(["within_pair", "cross_pair"])]
    for r in _pick(f3, kind="within_mean"):
        vals = pair_rows[(pair_rows["kind"] == "within_pair") & (pair_rows["arch"] == r["arch"])][
            "value"
        ]
        detail = (
            f"{len(vals)} seed pairs, rho {vals.min():.3f} to {vals.max():.3f}" if len(vals) else ""
        )
        rows.append(
            _srow(
                f"F3 Spearman lambda across seeds ({r['arch']})",
                r,
                f"bootstrap over seeds (B={B})",
                detail,
            )
        )
    for r in _pick(f3, kind="cross_mean"):
        pair = f"{r['arch']} vs {r['arch_b']}" if r["arch_b"] else "across architectures"
        rows.append(
            _srow(f"F3 Spearman lambda {pair} (seed pairs)", r, f"bootstrap over seeds (B={B})")
        )

    f4 = tables["f4_class"]
    for r in _pick(f4, kind="within_mean"):
        top, bottom = extreme_classes(f4, r["arch"])
        detail = f"most forgotten: {', '.join(top)}; least forgotten: {', '.join(bottom)}"
        rows.append(
            _srow(
                f"F4 class forgetting across seeds ({r['arch']})",
                r,
                f"bootstrap over seeds (B={B})",
                detail,
            )
        )
    for r in _pick(f4, kind="cross_mean"):
        pair = f"{r['arch']} vs {r['arch_b']}" if r["arch_b"] else "across architectures"
        rows.append(
            _srow(f"F4 class forgetting {pair} (seed pairs)", r, f"bootstrap over seeds (B={B})")
        )
    sim = tables["f4_class_similarity"]
    label = {"max_confusion": "held-out confusion", "nearest_cosine": "centroid cosine"}
    for r in _pick(sim, kind="arch_spearman"):
        if r["measure"]:
            rows.append(
                _srow(
                    f"F4 class forgetting vs {label[r['measure']]} ({r['arch']})",
                    r,
                    f"bootstrap over classes (B={B})",
                    f"{r['n_classes']} classes",
                )
            )
        else:
            rows.append(_srow(f"F4 class forgetting vs similarity ({r['arch']})", r, ""))

    f5 = tables["f5_early_predictor"]
    for kind in ("arch", "all"):
        for r in _pick(f5, kind=kind):
            who = "all runs" if kind == "all" else r["arch"]
            detail = (
                f"range {r['min']:.3f} to {r['max']:.3f} over {r['n_runs']} runs"
                if np.isfinite(_num(r["min"]))
                else ""
            )
            rows.append(
                _srow(
                    f"F5 Spearman loss_t0 vs lambda ({who})",
                    r,
                    f"bootstrap over runs (B={B})",
                    detail,
                )
            )

    sc = tables["scores"]
    for score in SCORES:
        for r in _pick(sc, kind="vs_lambda_mean", score=score):
            detail = (
                f"range {r['min']:.3f} to {r['max']:.3f}" if np.isfinite(_num(r["min"])) else ""
            )
            rows.append(
                _srow(
                    f"Score {score} vs lambda ({r['arch']})",
                    r,
                    f"bootstrap over runs (B={B})",
                    detail,
                )
            )
        for r in _pick(sc, kind="within_mean", score=score):
            rows.append(
                _srow(
                    f"Score {score} across seeds ({r['arch']})", r, f"bootstrap over seeds (B={B})"
                )
            )
    for r in _pick(sc, kind="aic_arch"):
        rows.append(
            _srow(
                f"Score exp beats power by AIC ({r['arch']})",
                r,
                f"bootstrap over samples and runs (B={B})",
                "share of fitted samples with aic_exp < aic_power",
            )
        )
    df = pd.DataFrame(rows)
    df.insert(1, "dataset", dataset)
    df.insert(2, "trace", trace)
    df = df.reindex(columns=SUMMARY_COLUMNS)
    for c in ("n_samples", "n_runs"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    return df


# ---------------------------------------------------------------------- entry point


def finding_tables(
    stack: RunStack,
    cfg: StatsConfig,
    class_names: Sequence[str],
    class_infos: Sequence[RunClassInfo | None] | None = None,
    sensitivity: bool = True,
) -> dict[str, pd.DataFrame]:
    """The seven detail tables (F1-F5, scores) of one trace definition."""
    return {
        "f1_jaccard": f1_jaccard_table(stack, cfg, sensitivity),
        "f2_r2": f2_r2_table(stack, cfg),
        "f3_seed_stability": f3_seed_stability_table(stack, cfg),
        "f4_class": f4_class_table(stack, cfg, class_names),
        "f4_class_similarity": f4_similarity_table(stack, cfg, class_infos),
        "f5_early_predictor": f5_early_predictor_table(stack, cfg),
        "scores": scores_table(stack, cfg),
    }


def status_counts_table(fits: Sequence[pd.DataFrame], runs: Sequence) -> pd.DataFrame:
    """Fit status counts per run and trace definition (METHOD section 6: the samples
    excluded from the rankings, never_learned and too_short, are counted)."""
    rows = []
    for df, (arch, seed) in zip(fits, runs):
        for trace, part in df.groupby("trace", sort=False):
            counts = part["status"].astype(str).value_counts()
            rows.append(
                {"trace": trace, "arch": arch, "seed": seed, "n_samples": len(part)}
                | {s: int(counts.get(s, 0)) for s in ELIGIBLE + EXCLUDED}
            )
    return _frame(rows, "status_counts")


def _class_names(stack: RunStack, class_infos) -> list[str]:
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
    primary: str | None = None,
    class_infos: Sequence[RunClassInfo | None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every statistics table of one dataset, keyed by ``TABLE_NAMES``.

    fits: one fits table per run (contract columns; every trace definition);
    runs: the (arch, seed) of each table, same order; primary: the configured trace
    label (default: the rows flagged ``primary``); class_infos: one
    :class:`RunClassInfo` per run (or None: the similarity rows then say so).
    The detail tables and ``summary`` use the primary trace; ``robustness`` holds the
    summary rows of every trace definition present (column ``trace``, flag ``primary``).
    """
    runs = _check_runs(fits, runs)
    labels = trace_labels(fits)
    if primary is None:
        flagged = {
            str(t)
            for df in fits
            if "primary" in df.columns
            for t in df.loc[df["primary"].astype(bool), "trace"]
        }
        if len(flagged) != 1:
            raise DataError(
                "cannot tell the primary trace definition from the fits tables "
                f"(flagged: {sorted(flagged)}); "
                "pass primary explicitly"
            )
        primary = flagged.pop()
    if primary not in labels:
        raise DataError(f"primary trace {primary!r} is not in the fits tables (they have {labels})")
    if class_infos is not None and len(class_infos) != len(runs):
        raise ValueError(f"{len(class_infos)} class infos for {len(runs)} runs")
    stack = stack_runs(fits, runs, primary)
    names = _class_names(stack, class_infos)
    counts = status_counts_table(fits, runs)
    tables = finding_tables(stack, cfg, names, class_infos)
    summary = summary_table(tables, dataset, primary, cfg, counts)
    robust = []
    for trace in [primary] + [t for t in labels if t != primary]:
        if trace == primary:
            s = summary
        else:
            st = stack_runs(fits, runs, trace)
            s = summary_table(
                finding_tables(st, cfg, names, class_infos, sensitivity=False), dataset, trace, cfg, counts
            )
        robust.append(s.assign(primary=trace == primary))
    tables["status_counts"] = counts
    tables["robustness"] = pd.concat(robust, ignore_index=True)
    tables["summary"] = summary
    return tables

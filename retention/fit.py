"""Least-squares decay fits for every retention trace of a run at once (METHOD section 5).

Models (tau = 0, 1, ... epochs since the trace's origin):

* ``decay``:  R(tau) = b + (1 - b) exp(-lam tau), lam in [0, lam_max], b in [0, 1].
* ``power``:  R(tau) = b + (1 - b) (1 + tau)^(-beta), beta in [0, beta_max]. This is the
  decay model on the time axis log(1 + tau), so it shares its solver. The default bound
  ``beta_max = lam_max / ln 2`` gives the two models the same fastest possible one-epoch
  drop: 2^(-beta_max) = exp(-lam_max).
* ``raw``:    R(t) = c + a exp(-lam t), a in [-1, 1], c free, lam in [0, lam_max]; the
  forgetting score is lam where a > 0 and 0 otherwise.

How the fit works (variable projection, all rows at once, numpy only):

1. For a fixed lam the model is linear in its other parameters, so they have a closed
   form: b = clip(sum(z g) / sum(g^2), 0, 1) with z = y - e, g = 1 - e, e = exp(-lam tau)
   (the SSE is a convex quadratic in b, so clipping the unconstrained minimiser is the
   exact constrained minimiser); for ``raw`` the 2 x 2 normal equations in (c, a), with a
   clipped to [-1, 1] and c re-solved (again exact, because c is unbounded). This gives
   the profile SSE(lam) of every row.
2. The profile is evaluated on a grid of lam (0 and 64 log-spaced values from
   lam_max * 1e-5 to lam_max) for every row with a few matrix products.
3. The lowest local minima of each row's grid profile (up to 3: binary traces often
   have two basins) are refined by a bracketed Newton search on the profile's
   derivative, between the grid neighbours: analytic first and second derivatives of
   the profile, a bisection step wherever a Newton step would leave the bracket; it
   stops when a Newton step is below 1e-6 relative (the error is then about its square)
   or the bracket below 1e-8 relative. The best refined candidate is kept, and never
   one worse than the best grid point. All rows move in lock step (rows leave as they
   converge); there is no per-trace Python loop and nothing that fails to converge.
4. Identical rows (common for binary traces) are fitted once; rows are processed in
   cache-sized blocks with BLAS limited to one thread (faster on a busy machine).

Conventions: where a row's b is 1 (the model is the constant 1, lam has no meaning)
lam is reported as 0; where lam is 0, b is reported as 1 (``raw``: a = 0, c = the mean).
R^2 = 1 - SSE / SST over the fitted points, NaN where SST = 0 (constant rows).
AIC = n log(max(SSE / n, 1e-12)) + 2 k: the floor keeps a perfect fit finite (it reads
as a residual standard deviation of 1e-6).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import traces as tr

try:  # installed with scikit-learn; optional
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover
    ThreadpoolController = None

log = logging.getLogger("retention.fit")

#: Number of log-spaced grid points (plus lam = 0) of the first search stage.
GRID_POINTS = 64
#: The grid spans lam_max * GRID_LOW_RATIO .. lam_max (and 0); the search brackets reach 0.
GRID_LOW_RATIO = 1e-5
#: The search stops when the bracket is below LAM_RTOL * |lam| + LAM_ATOL.
LAM_RTOL = 1e-8
LAM_ATOL = 1e-12
#: Local minima of the grid profile refined per row (the lowest ones).
N_CANDIDATES = 3
#: A Newton step smaller than this times |lam| is the last one (its error is ~ its square).
NEWTON_STOP = 1e-6
#: Floor on SSE / n in the AIC (a residual standard deviation of 1e-6).
AIC_MSE_FLOOR = 1e-12
#: SST at or below this (times n) counts as a constant row: R^2 is NaN.
SST_ZERO = 1e-20
#: Rows per block: keeps the (rows, points) work arrays in cache.
CHUNK_ROWS = 2048


@dataclass(frozen=True)
class DecayFit:
    """Per-row result of :func:`fit_decay` / :func:`fit_power` (arrays of length n_rows).

    ``lam``: decay rate (per epoch; for the power model: the exponent beta), ``b``: floor,
    ``sse``/``sst``: sums of squares over the fitted points, ``r2``: 1 - SSE/SST (NaN where
    SST = 0), ``n_points``: fitted points. Rows without points are NaN throughout.
    """

    lam: np.ndarray
    b: np.ndarray
    sse: np.ndarray
    sst: np.ndarray
    r2: np.ndarray
    n_points: np.ndarray

    @property
    def aic(self) -> np.ndarray:
        """AIC with k = 2 parameters (lam, b)."""
        return aic(self.sse, self.n_points, 2)


@dataclass(frozen=True)
class RawFit:
    """Per-row result of :func:`fit_raw`: R(t) = c + a exp(-lam t).

    ``score`` is the forgetting score: lam where a > 0, else 0 (NaN for rows without
    points). The other fields as in :class:`DecayFit`.
    """

    lam: np.ndarray
    a: np.ndarray
    c: np.ndarray
    sse: np.ndarray
    sst: np.ndarray
    r2: np.ndarray
    n_points: np.ndarray

    @property
    def score(self) -> np.ndarray:
        out = np.where(self.a > 0, self.lam, 0.0)
        return np.where(self.n_points > 0, out, np.nan)

    @property
    def aic(self) -> np.ndarray:
        """AIC with k = 3 parameters (lam, a, c)."""
        return aic(self.sse, self.n_points, 3)


def aic(sse: np.ndarray, n: np.ndarray, k: int) -> np.ndarray:
    """Akaike information criterion n log(SSE / n) + 2 k of least-squares fits.

    SSE / n is floored at ``AIC_MSE_FLOOR`` (1e-12) so perfect fits stay finite; NaN
    where n = 0 or SSE is NaN.
    """
    sse = np.asarray(sse, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.maximum(sse / n, AIC_MSE_FLOOR)
        out = n * np.log(mse) + 2.0 * k
    return np.where((n > 0) & np.isfinite(sse), out, np.nan)


# --------------------------------------------------------------------------- inputs


def _prepare(y: np.ndarray, mask: np.ndarray, tau: np.ndarray | None):
    y = np.asarray(y, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if y.ndim != 2 or mask.shape != y.shape:
        raise ValueError(f"y and mask must be 2-D arrays of the same shape, got {y.shape} and {mask.shape}")
    if tau is None:
        tau = np.arange(y.shape[1], dtype=np.float64)
    tau = np.asarray(tau, dtype=np.float64)
    if tau.shape != (y.shape[1],):
        raise ValueError(f"tau must have shape ({y.shape[1]},), got {tau.shape}")
    if np.any(tau < 0) or not np.all(np.isfinite(tau)):
        raise ValueError("tau must be finite and >= 0")
    if not np.all(np.isfinite(y[mask])):
        raise ValueError("y has NaN or infinite values at valid (mask=True) points")
    m = mask.astype(np.float64)
    ym = np.where(mask, y, 0.0)
    return ym, m, tau


def _unique_rows(ym: np.ndarray, m: np.ndarray):
    """Indices of distinct (y, mask) rows and the inverse map, or None if not worth it.

    Rows are hashed with a fixed random projection and the grouping is verified exactly,
    so a hash collision only costs the speed-up, never correctness.
    """
    n = ym.shape[0]
    if n < 64:
        return None
    rng = np.random.default_rng(12345)
    r1 = rng.standard_normal(ym.shape[1])
    r2 = rng.standard_normal(ym.shape[1])
    h = np.einsum("ij,j->i", ym, r1) + np.einsum("ij,j->i", m, r2)
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    if first.size > 0.8 * n:
        return None
    rep = first[inv]
    if not (np.array_equal(ym[rep], ym) and np.array_equal(m[rep], m)):
        return None
    return first, inv


def _lam_grid(lam_max: float) -> np.ndarray:
    if not (np.isfinite(lam_max) and lam_max > 0):
        raise ValueError(f"lam_max must be a positive number, got {lam_max!r}")
    return np.concatenate(([0.0], np.geomspace(lam_max * GRID_LOW_RATIO, lam_max, GRID_POINTS)))


# --------------------------------------------------------------------------- search


def _newton(
    deriv: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    lo: np.ndarray,
    hi: np.ndarray,
    x: np.ndarray,
    maxiter: int = 80,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Bracketed Newton search for a minimum of each row's profile f in [lo, hi].

    deriv(u, rows) returns f, f' and f'' of the given rows at u. Each step is a Newton
    step on f' where f'' > 0 and the step stays inside the bracket, else bisection; the
    bracket shrinks by the sign of f' (a minimum lies where f' changes from - to +).
    Every row moves in lock step and leaves when a Newton step is below NEWTON_STOP * |x|
    (the step is taken: its error is about the step squared) or its bracket is below
    LAM_RTOL * |x| + LAM_ATOL. Returns the final points, the best evaluated point and
    its value per row, and the number of iterations.
    """
    lo, hi, x = lo.copy(), hi.copy(), x.copy()
    best_x = x.copy()
    best_f = np.full(x.shape, np.inf)
    active = np.ones(x.shape, dtype=bool)
    it = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for it in range(1, maxiter + 1):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            xi = x[idx]
            f, g, h = deriv(xi, idx)
            better = f < best_f[idx]
            best_x[idx] = np.where(better, xi, best_x[idx])
            best_f[idx] = np.where(better, f, best_f[idx])
            loi = np.where(g < 0, xi, lo[idx])
            hii = np.where(g > 0, xi, hi[idx])
            step = g / h
            xn = xi - step
            newton = (h > 0) & (xn > loi) & (xn < hii)
            xn = np.where(newton, xn, 0.5 * (loi + hii))
            tol = LAM_RTOL * np.abs(xi) + LAM_ATOL
            # a Newton step below NEWTON_STOP * |x| leaves an error of about its square
            small = newton & (np.abs(step) <= NEWTON_STOP * np.abs(xi) + LAM_ATOL)
            done = (g == 0) | ~np.isfinite(g) | (hii - loi <= tol) | small
            lo[idx], hi[idx] = loi, hii
            x[idx] = np.where(g == 0, xi, xn)
            active[idx[done]] = False
    return x, best_x, best_f, it


def _search(
    grid_sse: np.ndarray,
    grid: np.ndarray,
    deriv: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refine each row's best grid minima by bracketed Newton between grid neighbours.

    The profile can have more than one local minimum (binary traces often do), and the
    grid value of the deepest basin is not always the lowest; so up to N_CANDIDATES
    local minima of the grid (the lowest ones) are refined per row and the best result
    is kept. Returns the refined lam, the best evaluated lam and its profile SSE (the
    caller keeps whichever of the two is better, so the result is never worse than the
    grid).
    """
    n_rows, k = grid_sse.shape
    gs = np.where(np.isfinite(grid_sse), grid_sse, np.inf)
    padded = np.pad(gs, ((0, 0), (1, 1)), constant_values=np.inf)
    local = (gs <= padded[:, :-2]) & (gs <= padded[:, 2:])
    ranked = np.where(local, gs, np.inf)
    n_cand = min(N_CANDIDATES, k)
    order = np.argsort(ranked, axis=1, kind="stable")[:, :n_cand]
    rows = np.repeat(np.arange(n_rows)[:, None], n_cand, axis=1)
    valid = np.isfinite(np.take_along_axis(ranked, order, axis=1))
    valid[:, 0] = True  # every row refines its overall best grid point
    cand_row, cand = rows[valid], order[valid]
    lo_i, hi_i = np.maximum(cand - 1, 0), np.minimum(cand + 1, k - 1)
    # start at the vertex of the parabola through the three grid points (in log lam,
    # where the grid is even), when the point has two positive neighbours
    f0, f1, f2 = gs[cand_row, lo_i], gs[cand_row, cand], gs[cand_row, hi_i]
    curv = f0 - 2.0 * f1 + f2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        offset = 0.5 * (f0 - f2) / curv
    use = (cand >= 2) & (cand <= k - 2) & (curv > 0) & np.isfinite(offset)
    offset = np.clip(np.where(use, offset, 0.0), -0.5, 0.5)
    start = grid[cand] * np.exp(offset * np.log(grid[2] / grid[1]))

    def cand_deriv(u: np.ndarray, idx: np.ndarray):
        return deriv(u, cand_row[idx])

    x, best_x, best_f, iters = _newton(cand_deriv, grid[lo_i], grid[hi_i], start)
    use_grid = f1 < best_f
    best_x = np.where(use_grid, grid[cand], best_x)
    x = np.where(use_grid, grid[cand], x)
    best_f = np.where(use_grid, f1, best_f)
    # the best candidate of each row
    pick = np.lexsort((best_f, cand_row))
    first = np.ones(pick.size, dtype=bool)
    first[1:] = cand_row[pick][1:] != cand_row[pick][:-1]
    pick = pick[first]
    log.debug("Newton refinement: %d rows, %d candidates, %d iterations", n_rows, cand.size, iters)
    return x[pick], best_x[pick], best_f[pick]


# --------------------------------------------------------------------------- decay model


def _decay_params(ym: np.ndarray, m: np.ndarray, e: np.ndarray):
    """Closed-form b and the SSE for per-row basis values e (n, L)."""
    g = m - m * e  # (1 - e) on valid points
    z = ym - m * e
    szg = np.einsum("ij,ij->i", z, g)
    sgg = np.einsum("ij,ij->i", g, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(sgg > 0, np.clip(szg / sgg, 0.0, 1.0), 1.0)
    r = z - b[:, None] * g
    return b, np.einsum("ij,ij->i", r, r)


def _decay_deriv(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lam: np.ndarray):
    """Profile SSE f(lam) = min_b SSE(lam, b) and its first two derivatives in lam.

    With mu = b + s e, s = 1 - b, e = exp(-lam x), r = y - mu: f' = 2 s sum(r x e);
    f'' = H_ll - H_lb^2 / H_bb where b is inside (0, 1), else H_ll (b held at its bound).
    """
    e = np.exp(-lam[:, None] * x[None, :])
    em = e * m
    g = m - em
    z = ym - em
    szg = np.einsum("ij,ij->i", z, g)
    sgg = np.einsum("ij,ij->i", g, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_free = szg / sgg
    inside = (sgg > 0) & (b_free > 0.0) & (b_free < 1.0)
    b = np.where(sgg > 0, np.clip(b_free, 0.0, 1.0), 1.0)
    s = 1.0 - b
    r = z - b[:, None] * g
    xe = em * x
    s1 = np.einsum("ij,ij->i", r, xe)
    s2 = np.einsum("ij,ij->i", xe, xe)
    s3 = np.einsum("ij,ij->i", r * x, xe)
    s4 = np.einsum("ij,ij->i", xe, g)
    f = np.einsum("ij,ij->i", r, r)
    d1 = 2.0 * s * s1
    h_ll = 2.0 * (s * s * s2 - s * s3)
    h_lb = -2.0 * (s * s4 + s1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = np.where(inside, h_ll - h_lb * h_lb / (2.0 * sgg), h_ll)
    return f, d1, d2


def _decay_grid_sse(ym: np.ndarray, m: np.ndarray, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Profile SSE of every row at every grid lam, (n_rows, n_grid), from sums."""
    E = np.exp(-np.outer(x, grid))  # (L, K)
    n = m.sum(axis=1)[:, None]
    sy = ym.sum(axis=1)[:, None]
    syy = np.einsum("ij,ij->i", ym, ym)[:, None]
    sye = ym @ E
    se = m @ E
    see = m @ (E * E)
    sgg = n - 2.0 * se + see
    szg = (sy - sye) - (se - see)
    szz = syy - 2.0 * sye + see
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(sgg > 0, np.clip(szg / sgg, 0.0, 1.0), 1.0)
    return szz - 2.0 * b * szg + b * b * sgg


def _sst(ym: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = ym.sum(axis=1) / n
    c = (ym - mean[:, None]) * m
    return np.einsum("ij,ij->i", c, c)


def _r2(sse: np.ndarray, sst: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    return np.where(sst > SST_ZERO * np.maximum(n, 1), r2, np.nan)


def _fit_decay_axis(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lam_max: float) -> DecayFit:
    n_rows = ym.shape[0]
    n = m.sum(axis=1)
    grid = _lam_grid(lam_max)
    lam = np.full(n_rows, np.nan)
    b = np.full(n_rows, np.nan)
    sse = np.full(n_rows, np.nan)
    has = n > 0
    if has.any():
        yh, mh = ym[has], m[has]
        gsse = _decay_grid_sse(yh, mh, x, grid)

        def deriv(u: np.ndarray, rows: np.ndarray):
            return _decay_deriv(yh[rows], mh[rows], x, u)

        lh, best_l, best_f = _search(gsse, grid, deriv)
        bh, fh = _decay_params(yh, mh, np.exp(-lh[:, None] * x[None, :]))
        worse = best_f < fh  # the last Newton point was not evaluated: keep the best one
        if worse.any():
            lh = np.where(worse, best_l, lh)
            bh = np.where(worse, _decay_params(yh, mh, np.exp(-lh[:, None] * x[None, :]))[0], bh)
        # canonical form: b = 1 means "no decay" (lam meaningless) -> lam = 0, and v.v.
        flat = (bh >= 1.0 - 1e-12) | (lh <= 0.0)
        lh = np.where(flat, 0.0, lh)
        bh = np.where(flat, 1.0, bh)
        e = np.exp(-lh[:, None] * x[None, :])
        r = yh - mh * (bh[:, None] + (1.0 - bh[:, None]) * e)
        lam[has], b[has] = lh, bh
        sse[has] = np.einsum("ij,ij->i", r, r)
    sst = np.where(has, _sst(ym, m, n), np.nan)
    return DecayFit(lam=lam, b=b, sse=sse, sst=sst, r2=_r2(sse, sst, n), n_points=n.astype(np.int64))


def _chunked(fit_fn, ym: np.ndarray, m: np.ndarray, *args):
    """Run fit_fn on blocks of CHUNK_ROWS rows (cache-sized work arrays: ~3x faster)."""
    n_rows = ym.shape[0]
    if n_rows <= CHUNK_ROWS:
        return fit_fn(ym, m, *args)
    parts = [fit_fn(ym[s : s + CHUNK_ROWS], m[s : s + CHUNK_ROWS], *args) for s in range(0, n_rows, CHUNK_ROWS)]
    cls = type(parts[0])
    return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in cls.__dataclass_fields__})


_CONTROLLER = None


def _single_blas_thread():
    """Limit BLAS to one thread: the matrix products here are small, and a multi-threaded
    BLAS that alternates with element-wise work slows them down many times on a busy
    machine. A no-op without threadpoolctl."""
    global _CONTROLLER
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _dedup(fit_fn, ym: np.ndarray, m: np.ndarray, *args):
    """Fit distinct rows only (in cache-sized blocks, BLAS single-threaded)."""
    with _single_blas_thread():
        u = _unique_rows(ym, m)
        if u is None:
            return _chunked(fit_fn, ym, m, *args)
        first, inv = u
        res = _chunked(fit_fn, ym[first], m[first], *args)
    return type(res)(**{k: getattr(res, k)[inv] for k in res.__dataclass_fields__})


def fit_decay(y: np.ndarray, mask: np.ndarray, lam_max: float = 5.0, tau: np.ndarray | None = None) -> DecayFit:
    """Least-squares fit of R(tau) = b + (1 - b) exp(-lam tau) to every row of y.

    y, mask: (n_traces, n_points); mask marks the valid points of each row (values of y
    at invalid points are ignored). tau: the time of each column in epochs (default
    0, 1, ..., n_points - 1). lam in [0, lam_max] per epoch, b in [0, 1].
    Returns lam, b, sse, sst, r2 per row (r2 is NaN where a row is constant; every field
    NaN where a row has no valid point). Where b = 1 the reported lam is 0.
    """
    ym, m, x = _prepare(y, mask, tau)
    return _dedup(_fit_decay_axis, ym, m, x, float(lam_max))


def default_beta_max(lam_max: float) -> float:
    """Bound on the power-law exponent: the same fastest one-epoch drop as lam_max."""
    return float(lam_max) / math.log(2.0)


def fit_power(
    y: np.ndarray,
    mask: np.ndarray,
    beta_max: float | None = None,
    tau: np.ndarray | None = None,
    lam_max: float = 5.0,
) -> DecayFit:
    """Fit R(tau) = b + (1 - b) (1 + tau)^(-beta) to every row, beta in [0, beta_max].

    beta_max defaults to lam_max / ln 2 (7.21 for lam_max = 5): then 2^(-beta_max) =
    exp(-lam_max), the power law's fastest one-epoch drop equals the exponential's.
    Returned as a DecayFit whose ``lam`` field holds beta.
    """
    ym, m, x = _prepare(y, mask, tau)
    if beta_max is None:
        beta_max = default_beta_max(lam_max)
    return _dedup(_fit_decay_axis, ym, m, np.log1p(x), float(beta_max))


# --------------------------------------------------------------------------- raw model


def _raw_params(yc: np.ndarray, m: np.ndarray, n: np.ndarray, e: np.ndarray):
    """Closed-form a, the mean of e and the SSE of c + a e, for centred y (yc) and basis e."""
    em = e * m
    with np.errstate(divide="ignore", invalid="ignore"):
        ebar = em.sum(axis=1) / n
    ec = em - ebar[:, None] * m
    see = np.einsum("ij,ij->i", ec, ec)
    sye = np.einsum("ij,ij->i", yc, ec)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(see > 0, np.clip(sye / see, -1.0, 1.0), 0.0)
    r = yc - a[:, None] * ec
    return a, ebar, np.einsum("ij,ij->i", r, r)


def _raw_deriv(yc: np.ndarray, m: np.ndarray, n: np.ndarray, x: np.ndarray, lam: np.ndarray):
    """Profile SSE f(lam) = min_{c, a} SSE and its first two derivatives in lam.

    c is eliminated by centring (yc, ec = centred e); with q = x e, r = yc - a ec:
    f' = 2 a sum(r q); f'' = H_ll - H_la^2 / H_aa where a is inside (-1, 1), else H_ll.
    """
    e = np.exp(-lam[:, None] * x[None, :])
    em = e * m
    with np.errstate(divide="ignore", invalid="ignore"):
        ebar = em.sum(axis=1) / n
    ec = em - ebar[:, None] * m
    see = np.einsum("ij,ij->i", ec, ec)
    sye = np.einsum("ij,ij->i", yc, ec)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_free = sye / see
    inside = (see > 0) & (np.abs(a_free) < 1.0)
    a = np.where(see > 0, np.clip(a_free, -1.0, 1.0), 0.0)
    r = yc - a[:, None] * ec
    q = em * x
    with np.errstate(divide="ignore", invalid="ignore"):
        qbar = q.sum(axis=1) / n
    qc = q - qbar[:, None] * m
    s_rq = np.einsum("ij,ij->i", r, q)
    s_qq = np.einsum("ij,ij->i", qc, qc)
    s_rq2 = np.einsum("ij,ij->i", r * x, q)
    s_qe = np.einsum("ij,ij->i", qc, ec)
    f = np.einsum("ij,ij->i", r, r)
    d1 = 2.0 * a * s_rq
    h_ll = 2.0 * (a * a * s_qq - a * s_rq2)
    h_la = 2.0 * (s_rq - a * s_qe)
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = np.where(inside, h_ll - h_la * h_la / (2.0 * see), h_ll)
    return f, d1, d2


def _raw_grid_sse(ym: np.ndarray, m: np.ndarray, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    E = np.exp(-np.outer(x, grid))
    n = m.sum(axis=1)[:, None]
    sy = ym.sum(axis=1)[:, None]
    syy_c = np.einsum("ij,ij->i", ym, ym)[:, None] - sy * sy / n
    se = m @ E
    see_c = m @ (E * E) - se * se / n
    sye_c = ym @ E - sy * se / n
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(see_c > 1e-14 * n, np.clip(sye_c / see_c, -1.0, 1.0), 0.0)
    return syy_c - 2.0 * a * sye_c + a * a * np.maximum(see_c, 0.0)


def _fit_raw_axis(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lam_max: float) -> RawFit:
    n_rows = ym.shape[0]
    n = m.sum(axis=1)
    grid = _lam_grid(lam_max)
    lam, a, c, sse = (np.full(n_rows, np.nan) for _ in range(4))
    has = n > 0
    if has.any():
        yh, mh, nh = ym[has], m[has], n[has]
        ybar = yh.sum(axis=1) / nh
        yc = (yh - ybar[:, None]) * mh
        with np.errstate(divide="ignore", invalid="ignore"):
            gsse = _raw_grid_sse(yh, mh, x, grid)

        def deriv(u: np.ndarray, rows: np.ndarray):
            return _raw_deriv(yc[rows], mh[rows], nh[rows], x, u)

        lh, best_l, best_f = _search(gsse, grid, deriv)
        ah, ebar, fh = _raw_params(yc, mh, nh, np.exp(-lh[:, None] * x[None, :]))
        worse = best_f < fh
        if worse.any():
            lh = np.where(worse, best_l, lh)
            ah, ebar, _ = _raw_params(yc, mh, nh, np.exp(-lh[:, None] * x[None, :]))
        flat = (np.abs(ah) <= 1e-12) | (lh <= 0.0)
        lh = np.where(flat, 0.0, lh)
        ah = np.where(flat, 0.0, ah)
        ch = ybar - ah * np.where(flat, 0.0, ebar)
        e = np.exp(-lh[:, None] * x[None, :])
        r = yh - mh * (ch[:, None] + ah[:, None] * e)
        lam[has], a[has], c[has] = lh, ah, ch
        sse[has] = np.einsum("ij,ij->i", r, r)
    sst = np.where(has, _sst(ym, m, n), np.nan)
    return RawFit(lam=lam, a=a, c=c, sse=sse, sst=sst, r2=_r2(sse, sst, n), n_points=n.astype(np.int64))


def fit_raw(y: np.ndarray, mask: np.ndarray, lam_max: float = 5.0, tau: np.ndarray | None = None) -> RawFit:
    """Least-squares fit of R(t) = c + a exp(-lam t) to every row, a in [-1, 1], c free.

    lam in [0, lam_max] per epoch. For each lam the 2 x 2 normal equations in (c, a) are
    solved in closed form; where the solution has |a| > 1, a is set to the violated
    bound and c re-solved (exact, the SSE being convex with c unbounded). Returns lam, a,
    c, sse, sst, r2 and the forgetting score (lam where a > 0, else 0). Where a = 0 the
    reported lam is 0 (lam has no meaning) and c is the row mean.
    """
    ym, m, x = _prepare(y, mask, tau)
    return _dedup(_fit_raw_axis, ym, m, x, float(lam_max))


def fit_raw_power(
    y: np.ndarray,
    mask: np.ndarray,
    beta_max: float | None = None,
    tau: np.ndarray | None = None,
    lam_max: float = 5.0,
) -> RawFit:
    """Power-law counterpart of :func:`fit_raw`: c + a (1 + t)^(-beta), beta in [0, beta_max].

    beta_max defaults to lam_max / ln 2 as in :func:`fit_power`; ``lam`` holds beta.
    """
    ym, m, x = _prepare(y, mask, tau)
    if beta_max is None:
        beta_max = default_beta_max(lam_max)
    return _dedup(_fit_raw_axis, ym, m, np.log1p(x), float(beta_max))


# --------------------------------------------------------------------------- fits table

#: Columns of the fits table, in order (docs/contracts.md).
FIT_COLUMNS = (
    "trace",
    "primary",
    "sample_id",
    "label",
    "status",
    "lambda",
    "b",
    "r2",
    "sse",
    "n_points",
    "t_learn",
    "forget_events",
    "loss_t0",
    "el2n_t0",
    "confidence",
    "variability",
    "mean_retention",
    "aic_exp",
    "aic_power",
)


def fit_trace_set(ts: tr.TraceSet, lam_max: float = 5.0) -> dict[str, np.ndarray]:
    """Fit every ``fitted`` sample of a :class:`retention.traces.TraceSet`.

    Returns per-sample arrays ``lambda`` (the forgetting score: decay rate; for ``raw``
    lam where a > 0, else 0; 0 for unforgettable; NaN for never_learned / too_short),
    ``b`` (the floor; for ``raw`` the asymptote c), ``r2``, ``sse``, ``aic_exp`` and
    ``aic_power`` (the power-law alternative fitted to the same points; k = 2 for the
    decay models, 3 for the raw ones).
    """
    n = ts.status.shape[0]
    out = {k: np.full(n, np.nan) for k in ("lambda", "b", "r2", "sse", "aic_exp", "aic_power")}
    fitted = ts.status == "fitted"
    unforgettable = ts.status == "unforgettable"
    k = 3 if ts.model == "raw" else 2
    if fitted.any():
        y, mask = ts.y[fitted], ts.mask[fitted]
        if ts.model == "raw":
            main = fit_raw(y, mask, lam_max, tau=ts.tau)
            power = fit_raw_power(y, mask, tau=ts.tau, lam_max=lam_max)
            out["lambda"][fitted] = main.score
            out["b"][fitted] = main.c
        else:
            main = fit_decay(y, mask, lam_max, tau=ts.tau)
            power = fit_power(y, mask, tau=ts.tau, lam_max=lam_max)
            out["lambda"][fitted] = main.lam
            out["b"][fitted] = main.b
        out["r2"][fitted] = main.r2
        out["sse"][fitted] = main.sse
        out["aic_exp"][fitted] = main.aic
        out["aic_power"][fitted] = power.aic
    if unforgettable.any():
        # R = 1 fits exactly under both models: lambda 0, floor 1, SSE 0, R^2 undefined
        out["lambda"][unforgettable] = 0.0
        out["b"][unforgettable] = 1.0
        out["sse"][unforgettable] = 0.0
        a0 = aic(np.zeros(int(unforgettable.sum())), ts.n_points[unforgettable], k)
        out["aic_exp"][unforgettable] = a0
        out["aic_power"][unforgettable] = a0
    return out


def fit_table(
    traces: tr.Traces,
    definitions: Sequence[str],
    primary: str = "since_learned",
    min_points: int = 3,
    lam_max: float = 5.0,
) -> pd.DataFrame:
    """The fits table of one run: one row per (trace definition, train sample).

    traces: a :class:`retention.traces.Traces`; definitions: labels such as
    ``since_learned``, ``raw``, ``since_learned_soft`` (the primary one is added first
    when missing, duplicates are dropped); primary: the configured definition.
    Returns a pandas DataFrame with exactly the columns ``FIT_COLUMNS`` (contracts.md).
    """
    labels = list(dict.fromkeys([primary, *definitions]))
    for label in labels:
        tr.parse_definition(label)  # ValueError for unknown labels, before any work
    scores = tr.sample_scores(traces)
    n = traces.n_samples
    frames = []
    for label in labels:
        ts = tr.build_traces(traces.correct, traces.p_true, traces.t, label, min_points)
        fits = fit_trace_set(ts, lam_max)
        counts = {s: int((ts.status == s).sum()) for s in tr.STATUSES}
        log.info("%s: trace %s: %s", traces.run_name, label, ", ".join(f"{v} {k}" for k, v in counts.items()))
        frames.append(
            pd.DataFrame(
                {
                    "trace": np.full(n, label, dtype=object),
                    "primary": np.full(n, label == primary),
                    "sample_id": traces.sample_id.astype(np.int64),
                    "label": traces.label.astype(np.int64),
                    "status": ts.status.astype(object),
                    "lambda": fits["lambda"],
                    "b": fits["b"],
                    "r2": fits["r2"],
                    "sse": fits["sse"],
                    "n_points": ts.n_points.astype(np.int64),
                    "t_learn": scores["t_learn"],
                    "forget_events": scores["forget_events"],
                    "loss_t0": scores["loss_t0"],
                    "el2n_t0": scores["el2n_t0"],
                    "confidence": scores["confidence"],
                    "variability": scores["variability"],
                    "mean_retention": ts.mean_retention,
                    "aic_exp": fits["aic_exp"],
                    "aic_power": fits["aic_power"],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    return table[list(FIT_COLUMNS)]

"""The variable-projection solver behind :mod:`retention.fitting.fit` (see its docstring for the
method): grid search of the profile SSE over lambda, bracketed Newton refinement of the
best local minima, closed-form linear parameters, all rows at once.

Internal: use the public functions of :mod:`retention.fitting.fit`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

try:  # installed with scikit-learn; optional
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover
    ThreadpoolController = None

log = logging.getLogger("retention.fitting.fit")

#: Number of log-spaced grid points (plus lam = 0) of the first search stage.
GRID_POINTS = 64
#: The grid spans lambda_max * GRID_LOW_RATIO .. lambda_max (and 0); the search brackets reach 0.
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


def _lam_grid(lambda_max: float) -> np.ndarray:
    if not (np.isfinite(lambda_max) and lambda_max > 0):
        raise ValueError(f"lambda_max must be a positive number, got {lambda_max!r}")
    return np.concatenate(([0.0], np.geomspace(lambda_max * GRID_LOW_RATIO, lambda_max, GRID_POINTS)))


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
        for it in range(1, maxiter + 1):  # noqa: B007  (the count is returned)
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


def _fit_decay_axis(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lambda_max: float) -> DecayFit:
    n_rows = ym.shape[0]
    n = m.sum(axis=1)
    grid = _lam_grid(lambda_max)
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
    parts = [
        fit_fn(ym[s : s + CHUNK_ROWS], m[s : s + CHUNK_ROWS], *args) for s in range(0, n_rows, CHUNK_ROWS)
    ]
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


def _fit_raw_axis(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lambda_max: float) -> RawFit:
    n_rows = ym.shape[0]
    n = m.sum(axis=1)
    grid = _lam_grid(lambda_max)
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

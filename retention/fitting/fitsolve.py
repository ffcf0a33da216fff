"""The variable-projection solver behind :mod:`retention.fitting.fit` (see its docstring for the
method), shared by its models (:mod:`retention.fitting.fitmodels`): input checks, the lambda
grid, bracketed Newton refinement of each row's best grid minima, R^2 and AIC, and the
de-duplication and blocking of rows.

Internal: use the public functions of :mod:`retention.fitting.fit`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

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


def prepare(y: np.ndarray, mask: np.ndarray, tau: np.ndarray | None):
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


def unique_rows(ym: np.ndarray, m: np.ndarray):
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


def lam_grid(lambda_max: float) -> np.ndarray:
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


def search(
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


def centred_ss(ym: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = ym.sum(axis=1) / n
    c = (ym - mean[:, None]) * m
    return np.einsum("ij,ij->i", c, c)


def r_squared(sse: np.ndarray, sst: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - sse / sst
    return np.where(sst > SST_ZERO * np.maximum(n, 1), r2, np.nan)


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


def dedup(fit_fn, ym: np.ndarray, m: np.ndarray, *args):
    """Fit distinct rows only (in cache-sized blocks, BLAS single-threaded)."""
    with _single_blas_thread():
        u = unique_rows(ym, m)
        if u is None:
            return _chunked(fit_fn, ym, m, *args)
        first, inv = u
        res = _chunked(fit_fn, ym[first], m[first], *args)
    return type(res)(**{k: getattr(res, k)[inv] for k in res.__dataclass_fields__})

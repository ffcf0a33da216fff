"""The fit models behind :mod:`retention.fitting.fit`: for the decay model (also the power
model, on the time axis log(1 + tau)) and the raw model, the per-row result type, the
closed-form linear parameters at a fixed lambda, the profile SSE with its first two
derivatives in lambda, the profile on the lambda grid from sums, and the fit of every row
on a given time axis with the shared solver of :mod:`retention.fitting.fitsolve`.

Internal: use the public functions of :mod:`retention.fitting.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retention.fitting.fitsolve import aic, centred_ss, lam_grid, r_squared, search


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


def decay_deriv(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lam: np.ndarray):
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


def fit_decay_axis(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lambda_max: float) -> DecayFit:
    n_rows = ym.shape[0]
    n = m.sum(axis=1)
    grid = lam_grid(lambda_max)
    lam = np.full(n_rows, np.nan)
    b = np.full(n_rows, np.nan)
    sse = np.full(n_rows, np.nan)
    has = n > 0
    if has.any():
        yh, mh = ym[has], m[has]
        gsse = _decay_grid_sse(yh, mh, x, grid)

        def deriv(u: np.ndarray, rows: np.ndarray):
            return decay_deriv(yh[rows], mh[rows], x, u)

        lh, best_l, best_f = search(gsse, grid, deriv)
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
    sst = np.where(has, centred_ss(ym, m, n), np.nan)
    return DecayFit(lam=lam, b=b, sse=sse, sst=sst, r2=r_squared(sse, sst, n), n_points=n.astype(np.int64))


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


def raw_deriv(yc: np.ndarray, m: np.ndarray, n: np.ndarray, x: np.ndarray, lam: np.ndarray):
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


def fit_raw_axis(ym: np.ndarray, m: np.ndarray, x: np.ndarray, lambda_max: float) -> RawFit:
    n_rows = ym.shape[0]
    n = m.sum(axis=1)
    grid = lam_grid(lambda_max)
    lam, a, c, sse = (np.full(n_rows, np.nan) for _ in range(4))
    has = n > 0
    if has.any():
        yh, mh, nh = ym[has], m[has], n[has]
        ybar = yh.sum(axis=1) / nh
        yc = (yh - ybar[:, None]) * mh
        with np.errstate(divide="ignore", invalid="ignore"):
            gsse = _raw_grid_sse(yh, mh, x, grid)

        def deriv(u: np.ndarray, rows: np.ndarray):
            return raw_deriv(yc[rows], mh[rows], nh[rows], x, u)

        lh, best_l, best_f = search(gsse, grid, deriv)
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
    sst = np.where(has, centred_ss(ym, m, n), np.nan)
    return RawFit(lam=lam, a=a, c=c, sse=sse, sst=sst, r2=r_squared(sse, sst, n), n_points=n.astype(np.int64))

"""Least-squares decay fits for every retention trace of a run at once (docs/method.md section 5).

Models (tau = 0, 1, ... epochs since the trace's origin):

* ``decay``:  R(tau) = b + (1 - b) exp(-lam tau), lam in [0, lambda_max], b in [0, 1].
* ``power``:  R(tau) = b + (1 - b) (1 + tau)^(-beta), beta in [0, beta_max]. This is the
  decay model on the time axis log(1 + tau), so it shares its solver. The default bound
  ``beta_max = lambda_max / ln 2`` gives the two models the same fastest possible one-epoch
  drop: 2^(-beta_max) = exp(-lambda_max).
* ``raw``:    R(t) = c + a exp(-lam t), a in [-1, 1], c free, lam in [0, lambda_max]; the
  forgetting score is lam where a > 0 and 0 otherwise.

How the fit works (variable projection, all rows at once, numpy only):

1. For a fixed lam the model is linear in its other parameters, so they have a closed
   form: b = clip(sum(z g) / sum(g^2), 0, 1) with z = y - e, g = 1 - e, e = exp(-lam tau)
   (the SSE is a convex quadratic in b, so clipping the unconstrained minimiser is the
   exact constrained minimiser); for ``raw`` the 2 x 2 normal equations in (c, a), with a
   clipped to [-1, 1] and c re-solved (again exact, because c is unbounded). This gives
   the profile SSE(lam) of every row.
2. The profile is evaluated on a grid of lam (0 and 64 log-spaced values from
   lambda_max * 1e-5 to lambda_max) for every row with a few matrix products.
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

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from retention.config import schema_default
from retention.fitting import traces as tr
from retention.fitting.fitmodels import DecayFit, RawFit, fit_decay_axis, fit_raw_axis
from retention.fitting.fitsolve import aic, dedup, prepare

log = logging.getLogger("retention.fitting.fit")

#: The upper bound of lambda (per epoch): the schema's default of retention.lambda_max.
LAMBDA_MAX = schema_default("retention", "lambda_max")


def fit_decay(
    y: np.ndarray, mask: np.ndarray, lambda_max: float = LAMBDA_MAX, tau: np.ndarray | None = None
) -> DecayFit:
    """Least-squares fit of R(tau) = b + (1 - b) exp(-lam tau) to every row of y.

    y, mask: (n_traces, n_points); mask marks the valid points of each row (values of y
    at invalid points are ignored). tau: the time of each column in epochs (default
    0, 1, ..., n_points - 1). lam in [0, lambda_max] per epoch, b in [0, 1].
    Returns lam, b, sse, sst, r2 per row (r2 is NaN where a row is constant; every field
    NaN where a row has no valid point). Where b = 1 the reported lam is 0.
    """
    ym, m, x = prepare(y, mask, tau)
    return dedup(fit_decay_axis, ym, m, x, float(lambda_max))


def default_beta_max(lambda_max: float) -> float:
    """Bound on the power-law exponent: the same fastest one-epoch drop as lambda_max."""
    return float(lambda_max) / math.log(2.0)


def fit_power(
    y: np.ndarray,
    mask: np.ndarray,
    beta_max: float | None = None,
    tau: np.ndarray | None = None,
    lambda_max: float = LAMBDA_MAX,
) -> DecayFit:
    """Fit R(tau) = b + (1 - b) (1 + tau)^(-beta) to every row, beta in [0, beta_max].

    beta_max defaults to lambda_max / ln 2 (7.21 for lambda_max = 5): then 2^(-beta_max) =
    exp(-lambda_max), the power law's fastest one-epoch drop equals the exponential's.
    Returned as a DecayFit whose ``lam`` field holds beta.
    """
    ym, m, x = prepare(y, mask, tau)
    if beta_max is None:
        beta_max = default_beta_max(lambda_max)
    return dedup(fit_decay_axis, ym, m, np.log1p(x), float(beta_max))


# --------------------------------------------------------------------------- raw model


def fit_raw(
    y: np.ndarray, mask: np.ndarray, lambda_max: float = LAMBDA_MAX, tau: np.ndarray | None = None
) -> RawFit:
    """Least-squares fit of R(t) = c + a exp(-lam t) to every row, a in [-1, 1], c free.

    lam in [0, lambda_max] per epoch. For each lam the 2 x 2 normal equations in (c, a) are
    solved in closed form; where the solution has |a| > 1, a is set to the violated
    bound and c re-solved (exact, the SSE being convex with c unbounded). Returns lam, a,
    c, sse, sst, r2 and the forgetting score (lam where a > 0, else 0). Where a = 0 the
    reported lam is 0 (lam has no meaning) and c is the row mean.
    """
    ym, m, x = prepare(y, mask, tau)
    return dedup(fit_raw_axis, ym, m, x, float(lambda_max))


def fit_raw_power(
    y: np.ndarray,
    mask: np.ndarray,
    beta_max: float | None = None,
    tau: np.ndarray | None = None,
    lambda_max: float = LAMBDA_MAX,
) -> RawFit:
    """Power-law counterpart of :func:`fit_raw`: c + a (1 + t)^(-beta), beta in [0, beta_max].

    beta_max defaults to lambda_max / ln 2 as in :func:`fit_power`; ``lam`` holds beta.
    """
    ym, m, x = prepare(y, mask, tau)
    if beta_max is None:
        beta_max = default_beta_max(lambda_max)
    return dedup(fit_raw_axis, ym, m, np.log1p(x), float(beta_max))


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
    "rate",
    "amplitude",
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
    "soft_lambda",
    "soft_mean_retention",
    "soft_r2",
)


def fit_trace_set(
    ts: tr.TraceSet, lambda_max: float = LAMBDA_MAX, power: bool = True
) -> dict[str, np.ndarray]:
    """Fit every ``fitted`` sample of a :class:`retention.fitting.traces.TraceSet`.

    Returns per-sample arrays ``lambda`` (the forgetting score: decay rate; for ``raw``
    lam where a > 0, else 0; 0 for unforgettable; NaN for never_learned / too_short),
    ``b`` (the floor; for ``raw`` the asymptote c), ``rate`` and ``amplitude`` (the fitted
    model is b + amplitude exp(-rate tau) for every definition: amplitude is 1 - b for the
    decay model, a for the free-amplitude one, whose rate is its fitted lam even where the
    score is 0), ``r2``, ``sse``, ``aic_exp`` and
    ``aic_power`` (the power-law alternative fitted to the same points; k = 2 for the
    decay models, 3 for the raw ones; NaN without ``power``: the null runs skip it).
    """
    n = ts.status.shape[0]
    out = {
        k: np.full(n, np.nan)
        for k in ("lambda", "b", "rate", "amplitude", "r2", "sse", "aic_exp", "aic_power")
    }
    fitted = ts.status == "fitted"
    unforgettable = ts.status == "unforgettable"
    k = 3 if ts.model == "raw" else 2
    if fitted.any():
        y, mask = ts.y[fitted], ts.mask[fitted]
        if ts.model == "raw":
            main = fit_raw(y, mask, lambda_max, tau=ts.tau)
            alt = fit_raw_power(y, mask, tau=ts.tau, lambda_max=lambda_max) if power else None
            out["lambda"][fitted] = main.score
            out["b"][fitted] = main.c
            out["rate"][fitted], out["amplitude"][fitted] = main.lam, main.a
        else:
            main = fit_decay(y, mask, lambda_max, tau=ts.tau)
            alt = fit_power(y, mask, tau=ts.tau, lambda_max=lambda_max) if power else None
            out["lambda"][fitted] = main.lam
            out["b"][fitted] = main.b
            out["rate"][fitted], out["amplitude"][fitted] = main.lam, 1.0 - main.b
        out["r2"][fitted] = main.r2
        out["sse"][fitted] = main.sse
        out["aic_exp"][fitted] = main.aic
        if alt is not None:
            out["aic_power"][fitted] = alt.aic
    if unforgettable.any():
        # R = 1 fits exactly under both models: lambda 0, floor 1, SSE 0, R^2 undefined
        out["lambda"][unforgettable] = out["rate"][unforgettable] = 0.0
        out["b"][unforgettable] = 1.0
        out["amplitude"][unforgettable] = 0.0
        out["sse"][unforgettable] = 0.0
        a0 = aic(np.zeros(int(unforgettable.sum())), ts.n_points[unforgettable], k)
        out["aic_exp"][unforgettable] = a0
        out["aic_power"][unforgettable] = a0 if power else np.nan
    return out


def _fit_label(traces: tr.Traces, label: str, min_points: int, lambda_max: float, power: bool = True) -> dict:
    """Status, trace summary and fit of every train sample under one trace label."""
    ts = tr.build_traces(traces.correct, traces.p_true, traces.t, label, min_points)
    counts = {s: int((ts.status == s).sum()) for s in tr.STATUSES}
    log.info("%s: trace %s: %s", traces.run_name, label, ", ".join(f"{v} {k}" for k, v in counts.items()))
    return {
        "status": ts.status.astype(object),
        "n_points": ts.n_points.astype(np.int64),
        "t_learn": ts.t_learn,
        "mean_retention": ts.mean_retention,
        **fit_trace_set(ts, lambda_max, power),
    }


def fit_table(
    traces: tr.Traces,
    definitions: Sequence[str],
    primary: str = "since_learned",
    min_points: int = 3,
    lambda_max: float = LAMBDA_MAX,
    soft_columns: bool = True,
    power: bool = True,
) -> pd.DataFrame:
    """The fits table of one run: one row per (trace definition, train sample).

    traces: a :class:`retention.fitting.traces.Traces`; definitions: labels such as
    ``since_learned``, ``raw``, ``since_learned_soft``, ``since_learned_la2`` (the
    primary one is added first when missing, duplicates are dropped); primary: the
    configured definition. Every row also carries its definition's soft counterpart
    (``soft_lambda``, ``soft_mean_retention``, ``soft_r2``: the same definition fitted on
    p_true with a free amplitude, the inputs of the rank scores ``soft_lambda`` and
    ``mean_p_true_since_learned`` and the R^2 on the paper's scale; NaN
    without ``soft_columns``). ``power``: also fit the power law (the AIC columns; NaN
    without). Returns a pandas DataFrame with exactly the columns ``FIT_COLUMNS`` (contracts.md).
    """
    labels = list(dict.fromkeys([primary, *definitions]))
    specs = {label: tr.parse_label(label) for label in labels}  # ValueError before any work
    scores = tr.sample_scores(traces)
    n = traces.n_samples
    fitted: dict[str, dict] = {}

    def fits_of(label: str) -> dict:
        if label not in fitted:
            fitted[label] = _fit_label(traces, label, min_points, lambda_max, power)
        return fitted[label]

    frames = []
    for label in labels:
        fits = fits_of(label)
        soft = (
            fits_of(specs[label].soft_counterpart.label)
            if soft_columns
            else {k: np.full(n, np.nan) for k in fits}
        )
        columns = {
            "trace": np.full(n, label, dtype=object),
            "primary": np.full(n, label == primary),
            "sample_id": traces.sample_id.astype(np.int64),
            "label": traces.label.astype(np.int64),
            **fits,
            "soft_lambda": soft["lambda"],
            "soft_mean_retention": soft["mean_retention"],
            "soft_r2": soft["r2"],
            **scores,
        }
        frames.append(pd.DataFrame({c: columns[c] for c in FIT_COLUMNS}))
    return pd.concat(frames, ignore_index=True)

"""Retention traces of one run (docs/method.md section 4) and per-sample difficulty scores.

``load_traces`` reads and validates a ``traces.npz`` (docs/contracts.md).
``build_traces`` turns correctness (or p_true) over the fine-tuning epochs t >= 0 into one
trace per train sample, left-aligned in a (samples, points) array with a mask, ready
for :mod:`retention.fitting.fit`:

* ``since_learned`` (default): t_learn = the first t >= 0 that starts ``learned_after``
  consecutive correct epochs (default 1: the first correct epoch); the trace is
  y(tau) = s(t_learn + tau), tau = 0..E - t_learn.
* ``since_warmup``: only samples learned at t = 0 (correct at t = 0..learned_after - 1);
  y(t) = s(t), t = 0..E. Other samples get the status ``never_learned`` (not learned by
  the trace's origin).
* ``raw``: every sample, y(t) = s(t), t = 0..E (fitted with c + a exp(-lam t)).
* soft variants of any definition are fitted with the free-amplitude model c + a exp(-lam
  tau) too: p_true at the learning epoch is rarely 1, and the decay model's R(0) = 1 would
  put most soft fits at lambda_max with a negative R^2.
* ``conditional``: R(d) = sum_t s(t) s(t+d) / sum_t s(t), d = 0..floor(E/2); both sums
  run over t = 0..E - d (the pairs that exist), so for binary traces R(0) = 1 and R(d)
  is P(correct at t + d | correct at t). Points whose denominator is 0 are left out.

s is ``correct`` (0/1), or ``p_true`` for the soft variants. A label names the
definition and its options: ``<definition>[_soft][_la<n>]`` (``since_learned_soft_la2``:
p_true, learned after 2 consecutive correct epochs; :func:`parse_label`).

Status (same rules for hard and soft traces):

* ``never_learned``: no learning epoch (``since_warmup``: not learned at t = 0; ``raw``
  has none: a never-correct sample is fitted, to a flat trace that scores 0). Decided
  on ``correct`` also for soft traces.
* ``too_short``: fewer than ``min_points`` points (default 3).
* ``unforgettable``: every point of y equals 1 (lambda = 0, R^2 undefined). For soft
  traces this needs p_true = 1 exactly, so nearly every learned sample is ``fitted``
  and gets a continuous score.
* ``fitted``: everything else.
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from retention.errors import DataError
from retention.fitting.labels import (  # noqa: F401  (the label grammar lives in retention.fitting.labels; re-exported)
    DEFINITIONS,
    SOFT_SUFFIX,
    TraceSpec,
    parse_definition,
    parse_label,
    trace_label,
)
from retention.paths import run_of

log = logging.getLogger("retention.fitting.traces")

STATUSES = ("fitted", "unforgettable", "never_learned", "too_short")

# key -> (dtype kind, dtype the array is converted to, symbolic shape)
_SPEC: dict[str, tuple[str, np.dtype, tuple[str, ...]]] = {
    "sample_id": ("int", np.dtype(np.int64), ("N",)),
    "label": ("int", np.dtype(np.int64), ("N",)),
    "class_names": ("str", np.dtype(str), ("C",)),
    "t": ("int", np.dtype(np.int64), ("T",)),
    "correct": ("bool", np.dtype(bool), ("N", "T")),
    "p_true": ("float", np.dtype(np.float32), ("N", "T")),
    "loss": ("float", np.dtype(np.float32), ("N", "T")),
    "el2n": ("float", np.dtype(np.float32), ("N", "T")),
    "pred": ("int", np.dtype(np.int32), ("N", "T")),
    "heldout_sample_id": ("int", np.dtype(np.int64), ("M",)),
    "heldout_label": ("int", np.dtype(np.int64), ("M",)),
    "heldout_correct": ("bool", np.dtype(bool), ("M", "T")),
    "heldout_p_true": ("float", np.dtype(np.float32), ("M", "T")),
    "heldout_loss": ("float", np.dtype(np.float32), ("M", "T")),
    "heldout_el2n": ("float", np.dtype(np.float32), ("M", "T")),
    "heldout_pred": ("int", np.dtype(np.int32), ("M", "T")),
    "class_centroid_cosine": ("float", np.dtype(np.float32), ("C", "C")),
}
_KINDS = {"int": "iu", "bool": "b", "float": "f", "str": "U"}
_KIND_WORDS = {"int": "an integer", "bool": "a bool", "float": "a floating-point", "str": "a str"}
# which key fixes each dimension (first in _SPEC order)
_DIM_SOURCE = {"N": "sample_id", "C": "class_names", "T": "t", "M": "heldout_sample_id"}


@dataclass(frozen=True)
class Traces:
    """The arrays of one run's ``traces.npz`` (contracts.md), validated.

    ``path`` is the file, ``run_name`` names the run in messages. Per-sample arrays are
    (N,) or (N, T) with T the epochs including warmup (``t`` < 0).
    """

    path: str
    run_name: str
    sample_id: np.ndarray
    label: np.ndarray
    class_names: np.ndarray
    t: np.ndarray
    correct: np.ndarray
    p_true: np.ndarray
    loss: np.ndarray
    el2n: np.ndarray
    pred: np.ndarray
    heldout_sample_id: np.ndarray
    heldout_label: np.ndarray
    heldout_correct: np.ndarray
    heldout_p_true: np.ndarray
    heldout_loss: np.ndarray
    heldout_el2n: np.ndarray
    heldout_pred: np.ndarray
    class_centroid_cosine: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.sample_id.shape[0])

    @property
    def finetune(self) -> np.ndarray:
        """Boolean mask of the epochs t >= 0 (the ones every fit uses)."""
        return self.t >= 0

    @property
    def epochs(self) -> int:
        """E: the last fine-tuning epoch (t = 0..E)."""
        return int(self.t.max())

    @property
    def has_p_true(self) -> bool:
        """Whether p_true is recorded (an imported run may lack it: all NaN, contracts.md)."""
        return not (self.p_true.size and np.isnan(self.p_true).all())


def run_name_from_path(path: str | os.PathLike) -> str:
    """``octdl/resnet18/seed0`` for ``.../octdl/resnet18/seed0/traces.npz`` (a run's file,
    retention.paths.run_of), else the path."""
    run = run_of(path)
    return f"{run['dataset']}/{run['arch']}/seed{run['seed']}" if run else str(path)


def load_traces(path: str | os.PathLike, run_name: str | None = None) -> Traces:
    """Read and validate a run's ``traces.npz``; return it as a :class:`Traces`.

    Raises DataError naming the file and key for a missing key, a dtype of the wrong kind
    (integer / bool / floating / str as in contracts.md; widths are normalised to the
    contract's), shapes that do not fit together, ``t`` that is not strictly increasing
    with t >= 0 exactly 0..E, repeated sample ids or labels outside the classes; and
    naming the run and sample_id for NaN or values outside [0, 1] in p_true.
    """
    path = str(path)
    run = run_name or run_name_from_path(path)
    if not os.path.exists(path):
        raise DataError(f"traces file {path} does not exist (run {run}); run the finetune rule first")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(
            f"traces file {path} is not a readable .npz ({err}); delete it and rerun the run"
        ) from err
    arrays: dict[str, np.ndarray] = {}
    with npz:
        present = set(npz.files)
        missing = [k for k in _SPEC if k not in present]
        if missing:
            raise DataError(
                f"traces file {path}: missing key {missing[0]!r}"
                + (f" (and {', '.join(map(repr, missing[1:]))})" if len(missing) > 1 else "")
                + "; see docs/contracts.md for the keys of traces.npz"
            )
        for key, (kind, dtype, _) in _SPEC.items():
            try:
                arr = npz[key]
            except (ValueError, OSError) as err:
                raise DataError(
                    f"traces file {path}: key {key!r} cannot be read without pickle ({err}); "
                    f"it must be {_KIND_WORDS[kind]} array"
                ) from err
            if arr.dtype.kind not in _KINDS[kind]:
                raise DataError(
                    f"traces file {path}: key {key!r} has dtype {arr.dtype}, expected "
                    f"{_KIND_WORDS[kind]} array ({dtype if kind != 'str' else 'str'})"
                )
            arrays[key] = arr if kind == "str" else arr.astype(dtype, copy=False)
    _check_shapes(path, arrays)
    _check_values(path, run, arrays)
    return Traces(path=path, run_name=run, **arrays)


def _check_shapes(path: str, arrays: dict[str, np.ndarray]) -> None:
    dims: dict[str, int] = {}
    for sym, key in _DIM_SOURCE.items():
        arr = arrays[key]
        if arr.ndim != 1:
            raise DataError(f"traces file {path}: key {key!r} must be 1-D, has shape {arr.shape}")
        dims[sym] = arr.shape[0]
    for key, (_, _, shape) in _SPEC.items():
        want = tuple(dims[s] for s in shape)
        got = arrays[key].shape
        if got != want:
            names = ", ".join(f"{s}={dims[s]} from {_DIM_SOURCE[s]!r}" for s in dict.fromkeys(shape))
            raise DataError(
                f"traces file {path}: key {key!r} has shape {got}, expected "
                f"({', '.join(shape)}) = {want} ({names})"
            )


def _check_values(path: str, run: str, arrays: dict[str, np.ndarray]) -> None:
    t = arrays["t"]
    if t.size == 0 or np.any(np.diff(t) <= 0):
        raise DataError(
            f"traces file {path}: key 't' must be strictly increasing and non-empty, got {t.tolist()}"
        )
    tf = t[t >= 0]
    if tf.size == 0 or not np.array_equal(tf, np.arange(tf.size)):
        raise DataError(
            f"traces file {path}: key 't' must hold the fine-tuning epochs 0..E without gaps "
            f"(t = 0 is the end of warmup), got t >= 0: {tf.tolist()}"
        )
    for prefix in ("", "heldout_"):
        sid = arrays[prefix + "sample_id"]
        if np.unique(sid).size != sid.size:
            raise DataError(f"traces file {path}: key {prefix + 'sample_id'!r} has repeated ids")
        label = arrays[prefix + "label"]
        n_classes = arrays["class_names"].shape[0]
        bad = (label < 0) | (label >= n_classes)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"traces file {path}: key {prefix + 'label'!r} has {int(label[i])} at sample_id "
                f"{int(sid[i])}, outside 0..{n_classes - 1} (class_names has {n_classes} entries)"
            )
        p = arrays[prefix + "p_true"]
        if p.size and np.isnan(p).all():  # not recorded (an imported run): docs/contracts.md
            continue
        for what, bad in (
            ("NaN", np.isnan(p)),
            ("values outside [0, 1]", ~np.isnan(p) & ((p < 0) | (p > 1 + 1e-5))),
        ):
            if bad.any():
                rows, cols = np.nonzero(bad)
                raise DataError(
                    f"run {run}: {prefix}p_true has {what} at sample_id {int(sid[rows[0]])} "
                    f"(t = {int(t[cols[0]])}; {int(bad.sum())} value(s) in "
                    f"{np.unique(rows).size} sample(s)) in {path}; the run probably diverged, rerun it"
                )


# --------------------------------------------------------------------------- traces


@dataclass(frozen=True)
class TraceSet:
    """One trace per train sample under one definition, left-aligned.

    ``y`` (N, L) float64, 0 where ``mask`` is False; ``tau`` (L,) the time of each column
    (epochs since the trace's origin, or the lag d for ``conditional``); ``status`` (N,)
    str; ``t_learn`` (N,) float (the learning epoch of the definition: the first t >= 0
    that starts ``learned_after`` consecutive correct epochs; NaN if none);
    ``n_points`` (N,) int; ``model``: ``decay`` (b + (1 - b) exp(-lam tau)) or ``raw``
    (the free amplitude c + a exp(-lam tau): the raw and every soft definition).
    """

    label: str
    definition: str
    soft: bool
    y: np.ndarray
    mask: np.ndarray
    tau: np.ndarray
    status: np.ndarray
    t_learn: np.ndarray
    n_points: np.ndarray
    model: str
    learned_after: int = 1

    @property
    def mean_retention(self) -> np.ndarray:
        """Mean of y over the trace's points (NaN where it has none)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n_points > 0, self.y.sum(axis=1) / self.n_points, np.nan)


def _finetune(correct: np.ndarray, p_true: np.ndarray | None, t: np.ndarray):
    t = np.asarray(t)
    keep = t >= 0
    c = np.asarray(correct, dtype=bool)[:, keep]
    p = None if p_true is None else np.asarray(p_true, dtype=np.float64)[:, keep]
    return c, p


def learning_epoch(correct: np.ndarray, t: np.ndarray, learned_after: int = 1) -> np.ndarray:
    """t_learn: the first epoch t >= 0 that starts ``learned_after`` consecutive correct
    epochs, as float (NaN where there is none)."""
    if learned_after < 1:
        raise ValueError(f"learned_after must be >= 1, got {learned_after}")
    c, _ = _finetune(correct, None, t)
    n, length = c.shape
    if learned_after > length:
        return np.full(n, np.nan)
    run = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(c, axis=1)], axis=1)
    starts = (run[:, learned_after:] - run[:, : length - learned_after + 1]) == learned_after
    found = starts.any(axis=1)
    return np.where(found, np.argmax(starts, axis=1).astype(np.float64), np.nan)


def first_correct(correct: np.ndarray, t: np.ndarray) -> np.ndarray:
    """t_learn: the first epoch t >= 0 with correct = 1, as float (NaN if never)."""
    return learning_epoch(correct, t, 1)


def _conditional(s: np.ndarray, learned: np.ndarray):
    """R(d) = sum_t s(t) s(t+d) / sum_t s(t), d = 0..floor(E/2), for learned rows."""
    n_samples, length = s.shape
    n_lags = (length - 1) // 2 + 1  # d = 0..floor(E/2), E = length - 1
    y = np.zeros((n_samples, n_lags))
    mask = np.zeros((n_samples, n_lags), dtype=bool)
    for d in range(n_lags):
        head = s[:, : length - d]
        num = np.einsum("ij,ij->i", head, s[:, d:])
        den = head.sum(axis=1)
        ok = learned & (den > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            y[:, d] = np.where(ok, num / den, 0.0)
        mask[:, d] = ok
    return y, mask, np.arange(n_lags, dtype=np.float64)


def build_traces(
    correct: np.ndarray,
    p_true: np.ndarray | None,
    t: np.ndarray,
    label: str = "since_learned",
    min_points: int = 3,
) -> TraceSet:
    """Build the retention trace of every sample for the definition ``label``.

    correct (N, T) bool, p_true (N, T) (needed for ``_soft`` labels), t (T,) int with
    t >= 0 the fine-tuning epochs 0..E; only those are used. Returns a :class:`TraceSet`.
    """
    spec = parse_label(label)
    if min_points < 1:
        raise ValueError(f"min_points must be >= 1, got {min_points}")
    c, p = _finetune(correct, p_true, t)
    if spec.soft and p is None:
        raise ValueError(f"trace definition {label!r} needs p_true")
    n_samples, length = c.shape
    if length == 0:
        raise ValueError("no epochs with t >= 0")
    s = p if spec.soft else c.astype(np.float64)
    t_learn = learning_epoch(correct, t, spec.learned_after)
    learned = np.isfinite(t_learn)
    t_first = np.where(learned, t_learn, 0).astype(np.int64)
    cols = np.arange(length)
    model = "decay"

    if spec.definition == "since_learned":
        n = np.where(learned, length - t_first, 0)
        mask = cols[None, :] < n[:, None]
        src = np.minimum(t_first[:, None] + cols[None, :], length - 1)
        y = np.where(mask, np.take_along_axis(s, src, axis=1), 0.0)
        tau = cols.astype(np.float64)
        excluded = ~learned
    elif spec.definition in ("since_warmup", "raw"):
        # raw: every sample, a never-correct one too (its flat trace scores 0)
        if spec.definition == "since_warmup":
            eligible = learned & (t_first == 0)
        else:
            eligible = np.ones(n_samples, dtype=bool)
            t_learn = first_correct(correct, t)
            model = "raw"
        mask = np.repeat(eligible[:, None], length, axis=1)
        y = np.where(mask, s, 0.0)
        tau = cols.astype(np.float64)
        excluded = ~eligible
    else:  # conditional
        y, mask, tau = _conditional(s, learned)
        excluded = ~learned

    if spec.soft:
        # p_true after learning need not start at 1: a free amplitude (c + a exp(-lam tau))
        model = "raw"
    n_points = mask.sum(axis=1).astype(np.int64)
    all_ones = np.all(np.where(mask, y == 1.0, True), axis=1)
    status = np.full(n_samples, "fitted", dtype=object)
    status[all_ones] = "unforgettable"
    status[n_points < min_points] = "too_short"
    status[excluded] = "never_learned"
    return TraceSet(
        label=spec.label,
        definition=spec.definition,
        soft=spec.soft,
        y=y.astype(np.float64),
        mask=mask,
        tau=tau,
        status=status.astype(str),
        t_learn=t_learn,
        n_points=n_points,
        model=model,
        learned_after=spec.learned_after,
    )


# --------------------------------------------------------------------------- scores


def forgetting_events(correct: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Forgetting events (Toneva et al. 2019): the number of 1 -> 0 transitions of
    correct between consecutive epochs t >= 0.

    A sample never correct at t >= 0 gets the originals' convention, the maximum: the
    number of epochs t >= 0 (as ``sort_examples_by_forgetting`` of Toneva et al.'s code
    and ``compute_forgetfulness`` of dataset cartography, which rank such samples as
    the most forgotten). The statistics exclude never-learned samples from every score's
    tests (docs/method.md), so this convention shapes only the per-sample tables.
    """
    c, _ = _finetune(correct, None, t)
    events = (c[:, :-1] & ~c[:, 1:]).sum(axis=1).astype(np.int64)
    return np.where(c.any(axis=1), events, c.shape[1])


def cartography(p_true: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dataset-cartography confidence and variability (Swayamdipta et al. 2020).

    Mean and standard deviation (ddof = 0) of p_true over the epochs t >= 0.
    """
    p = np.asarray(p_true, dtype=np.float64)[:, np.asarray(t) >= 0]
    return p.mean(axis=1), p.std(axis=1)


def at_t0(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The column of ``values`` (N, T) at t = 0 (end of warmup), as float64."""
    col = np.flatnonzero(np.asarray(t) == 0)
    if col.size != 1:
        raise ValueError("t must contain 0 exactly once")
    return np.asarray(values, dtype=np.float64)[:, col[0]]


def sample_scores(traces: Traces) -> dict[str, np.ndarray]:
    """Per-sample scores that do not depend on the trace definition.

    Returns arrays (N,): ``forget_events``, ``loss_t0``, ``el2n_t0``, ``confidence``,
    ``variability``.
    """
    confidence, variability = cartography(traces.p_true, traces.t)
    return {
        "forget_events": forgetting_events(traces.correct, traces.t),
        "loss_t0": at_t0(traces.loss, traces.t),
        "el2n_t0": at_t0(traces.el2n, traces.t),
        "confidence": confidence,
        "variability": variability,
    }


# --------------------------------------------------------------------------- synthetic runs

"""Budgeted samplers for fine-tuning on a fraction of the train set (docs/method.md section 8, F6).

Each epoch trains on ``budget_size(n, fraction)`` distinct train samples:

- ``random``: a uniformly random subset, drawn afresh every epoch.
- ``spaced``: spaced repetition. Sample i has the half-life h_i = ln 2 / lambda_i
  (lambda from a scout run, in 1/epoch) and the predicted recall
  p_i = 2^(-delta_i / h_i), where delta_i = epoch - (the last epoch i was trained on).
  Each epoch picks the ``budget`` samples of lowest predicted recall; exact ties are
  broken at random. Samples unforgettable in the scout run (lambda = 0) get
  lambda = ``min_lambda`` (default: the scout run's smallest positive lambda), a long
  but finite half-life, so they come up for review at long intervals rather than never
  (a scheduler that never reviews what it once knew would starve part of the data).

Conventions, fixed here so that every caller agrees:

- Epochs are the fine-tuning epochs t = 1, 2, ... of ``traces.npz``. Every sample
  counts as trained at ``start_epoch`` (default 0, the end of the warmup, which
  trains on the whole train set), so at epoch 1 every delta is 1 and the spaced
  sampler starts with the samples of highest lambda (shortest half-life).
- ``lam`` NaN (fit status ``never_learned`` or ``too_short``) is replaced by
  ``nan_lambda``, by default +infinity: h = 0, predicted recall 0 at every epoch,
  i.e. such samples are treated as the most in need of training. Pass
  ``nan_lambda=0.0`` to treat them as unforgettable, or any finite value instead.
  lambda = +infinity in ``lam`` is allowed and means the same as h = 0.
- The budget is round(fraction * n) with halves rounded up, and at least 1.
- The training order of an epoch is a seeded shuffle of the chosen indices: they are
  sorted ascending and then permuted by a generator that depends only on (seed,
  epoch). With fraction = 1 both kinds choose every sample, so ``random`` and
  ``spaced`` with the same seed give identical index sequences, epoch by epoch.
- All randomness of an epoch comes from generators seeded with (seed, epoch), so the
  schedule is a function of (seed, lam, the epochs asked for); ``state_dict`` holds
  the rest (the last epoch each sample was trained on), and a run resumed from it
  continues the identical schedule.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import numpy as np
import torch.utils.data

from retention.errors import ConfigError, DataError, TrainingError

KINDS = ("random", "spaced")

# Independent random streams of one epoch.
_STREAM_SELECT = 0
_STREAM_ORDER = 1
_STATE_VERSION = 1


def budget_size(n: int, fraction: float) -> int:
    """Number of samples trained on per epoch: round(fraction * n), halves up, >= 1."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"sampler fraction must be in (0, 1], got {fraction!r} (config sampler.fraction)")
    return int(min(n, max(1, math.floor(fraction * n + 0.5))))


def predicted_recall(lam: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Predicted recall 2^(-delta / h) with h = ln 2 / lam, as float64.

    lam: decay rate per epoch (>= 0 or +inf); delta: epochs since last trained (>= 0).
    lam = 0 gives 1 (never forgotten); lam = +inf gives 0 for delta > 0.
    """
    lam = np.asarray(lam, dtype=np.float64)
    delta = np.asarray(delta, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(2.0) / lam
        p = np.power(2.0, -delta / h)
    # delta = 0 with h = 0 is 0/0: a sample trained this very epoch is fully recalled.
    return np.where(delta == 0, 1.0, p)


def align_lambda(fits, sample_id: np.ndarray, trace: str | None = None) -> np.ndarray:
    """Per-sample lambda of a scout run's fits table, in the order of ``sample_id``.

    fits: the fits table of one run (docs/contracts.md); the rows of ``trace``, or of the
    primary trace definition when None, are used. Returns float64 (len(sample_id)), NaN
    where the fit status is never_learned / too_short. Raises DataError when a sample
    of ``sample_id`` has no row.
    """
    rows = fits[fits["trace"] == trace] if trace is not None else fits[fits["primary"].astype(bool)]
    if rows.empty:
        raise DataError(f"scout fits have no rows for trace {trace or '(primary)'}")
    by_id = dict(zip(rows["sample_id"].to_numpy(np.int64).tolist(), rows["lambda"].to_numpy(np.float64)))
    sample_id = np.asarray(sample_id, dtype=np.int64)
    missing = [int(s) for s in sample_id if int(s) not in by_id]
    if missing:
        raise DataError(
            f"scout fits lack {len(missing)} train samples (first sample_id {missing[0]}); the "
            "scout run must use the same dataset, split and train set as the sampler runs"
        )
    return np.array([by_id[int(s)] for s in sample_id], dtype=np.float64)


def smallest_positive(lam: np.ndarray) -> float:
    """The smallest positive finite lambda (1.0 when there is none)."""
    lam = np.asarray(lam, dtype=np.float64)
    pos = lam[np.isfinite(lam) & (lam > 0)]
    return float(pos.min()) if pos.size else 1.0


def _lam_digest(lam: np.ndarray | None) -> str:
    if lam is None:
        return ""
    return hashlib.sha256(np.ascontiguousarray(lam, dtype=np.float64).tobytes()).hexdigest()


class BudgetSampler:
    """Which train samples to train on each epoch, and in which order.

    n: train-set size (indices 0..n-1, in the order of the train arrays);
    fraction: share of the train set per epoch, in (0, 1]; kind: 'random' | 'spaced';
    lam: per-sample lambda of the scout run (float, shape (n,); needed for 'spaced',
    ignored by 'random'); seed: schedule seed (non-negative int); start_epoch: the epoch
    at which every sample counts as last trained; nan_lambda: stands in for NaN lambda;
    min_lambda: stands in for lambda = 0 (default: the smallest positive lambda).
    """

    def __init__(
        self,
        n: int,
        fraction: float,
        kind: str = "spaced",
        lam: np.ndarray | None = None,
        seed: int = 0,
        start_epoch: int = 0,
        nan_lambda: float = math.inf,
        min_lambda: float | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown sampler kind {kind!r} (config sampler.kinds); use one of {KINDS}")
        if int(n) < 1:
            raise DataError(f"sampler needs a non-empty train set, got n={n}")
        if int(seed) < 0 or int(start_epoch) < 0:
            raise ConfigError(f"sampler seed and start epoch must be >= 0, got {seed}, {start_epoch}")
        self.n = int(n)
        self.fraction = float(fraction)
        self.kind = kind
        self.seed = int(seed)
        self.budget = budget_size(self.n, self.fraction)
        self.lam: np.ndarray | None = None
        if kind == "spaced":
            if lam is None:
                raise DataError("the spaced sampler needs the scout run's lambda per train sample")
            lam = np.asarray(lam, dtype=np.float64)
            if lam.shape != (self.n,):
                raise DataError(f"lambda has shape {lam.shape}, the train set has {self.n} samples")
            if np.any(lam[~np.isnan(lam)] < 0):
                raise DataError("lambda has negative values; the scout fits are malformed")
            if not (nan_lambda >= 0):
                raise ConfigError(f"nan_lambda must be >= 0 or inf, got {nan_lambda!r}")
            self.min_lambda = smallest_positive(lam) if min_lambda is None else float(min_lambda)
            if not self.min_lambda > 0:
                raise ConfigError(f"config key 'sampler.min_lambda': {self.min_lambda!r} must be > 0")
            lam = np.where(lam == 0, self.min_lambda, lam)
            self.lam = np.where(np.isnan(lam), float(nan_lambda), lam)
        self._lam_digest = _lam_digest(self.lam)
        self.last_trained = np.full(self.n, int(start_epoch), dtype=np.int64)
        self.epoch = int(start_epoch)  # the last epoch drawn (or the start)
        self._indices: np.ndarray | None = None  # the indices of self.epoch, once drawn

    def _rng(self, epoch: int, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), stream]))

    def recall(self, epoch: int) -> np.ndarray:
        """Predicted recall (float64, (n,)) of every sample at ``epoch``, before training.

        The random sampler has no lambda and returns NaN.
        """
        if self.lam is None:
            return np.full(self.n, np.nan)
        return predicted_recall(self.lam, epoch - self.last_trained)

    def _select(self, epoch: int) -> np.ndarray:
        rng = self._rng(epoch, _STREAM_SELECT)
        if self.budget == self.n:
            return np.arange(self.n, dtype=np.int64)
        if self.kind == "random":
            return np.sort(rng.choice(self.n, size=self.budget, replace=False)).astype(np.int64)
        p = self.recall(epoch)
        tie = rng.random(self.n)
        order = np.lexsort((tie, p))  # lowest predicted recall first, ties at random
        return np.sort(order[: self.budget]).astype(np.int64)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """Indices (int64, length ``budget``, distinct) to train on at ``epoch``, in order.

        Marks them trained at ``epoch``. Epochs must increase (gaps are allowed and
        count as epochs without training); asking again for the latest epoch returns
        the same indices without marking anything.
        """
        epoch = int(epoch)
        if epoch == self.epoch and self._indices is not None:
            return self._indices.copy()
        if epoch <= self.epoch:
            raise ValueError(f"sampler epochs must increase: asked for {epoch} after {self.epoch}")
        chosen = self._select(epoch)
        order = self._rng(epoch, _STREAM_ORDER).permutation(len(chosen))
        indices = chosen[order]
        self.last_trained[indices] = epoch
        self.epoch = epoch
        self._indices = indices
        return indices.copy()

    def state_dict(self) -> dict:
        """The sampler's state as plain Python values (safe for torch.load(weights_only=True))."""
        return {
            "version": _STATE_VERSION,
            "kind": self.kind,
            "n": self.n,
            "budget": self.budget,
            "seed": self.seed,
            "lam_sha256": self._lam_digest,
            "epoch": self.epoch,
            "last_trained": self.last_trained.tolist(),
            "indices": None if self._indices is None else self._indices.tolist(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``; raises TrainingError when it belongs to another setup."""
        for key, mine in (
            ("version", _STATE_VERSION),
            ("kind", self.kind),
            ("n", self.n),
            ("budget", self.budget),
            ("seed", self.seed),
            ("lam_sha256", self._lam_digest),
        ):
            if state.get(key) != mine:
                raise TrainingError(
                    f"the checkpoint's sampler state has {key}={state.get(key)!r}, this run has "
                    f"{mine!r}; delete the checkpoint to start the run over"
                )
        last = np.asarray(state["last_trained"], dtype=np.int64)
        if last.shape != (self.n,):
            raise TrainingError("the checkpoint's sampler state is malformed; delete the checkpoint")
        self.last_trained = last.copy()
        self.epoch = int(state["epoch"])
        ind = state["indices"]
        self._indices = None if ind is None else np.asarray(ind, dtype=np.int64)


class EpochSampler(torch.utils.data.Sampler[int]):
    """A torch Sampler over a BudgetSampler, for use with a DataLoader.

    Each ``iter()`` yields the indices of one epoch. The epoch is the one given to
    ``set_epoch`` or, without it, the one after the last epoch iterated (starting at
    ``budget_sampler.epoch + 1``), so a DataLoader that is simply iterated once per
    epoch walks the schedule in order.
    """

    def __init__(self, budget_sampler: BudgetSampler) -> None:
        self.budget_sampler = budget_sampler
        self._next_epoch = budget_sampler.epoch + 1

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield the indices of ``epoch``."""
        self._next_epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        epoch = self._next_epoch
        indices = self.budget_sampler.epoch_indices(epoch)
        self._next_epoch = epoch + 1
        yield from indices.tolist()

    def __len__(self) -> int:
        return self.budget_sampler.budget

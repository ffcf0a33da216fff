"""A run's held-out accuracy against chance and at its end, defined once for the training
log and the findings.

The chance level of a run is the larger of 1 / C and the held-out share of its largest
class (what always answering that class scores). A run whose held-out accuracy at t = 0
(the end of the head warmup) or at its last epoch is within :data:`NEAR_CHANCE` of it
learned little: the fine-tuning job logs a warning (``retention.training.finetune``), the
statistics count such runs (``Runs.accuracy``, column ``near_chance``) and findings.md
names them.

A run has not converged when its held-out accuracy is still rising at its end
(:func:`accuracy_rise`: the mean over its last ``convergence.epochs`` epochs minus the
mean over the epochs before them, above ``convergence.tolerance``): the training and
pretraining jobs log it, the statistics count such runs (``Runs.accuracy``, columns
``rise`` and ``still_rising``; the pretraining as its own row) and findings.md's "Read
with care" names them. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: a run whose held-out accuracy is at most chance plus this (a share, 0.05 = 5 points) is near chance
NEAR_CHANCE = 0.05


@dataclass(frozen=True)
class RunAccuracy:
    """Held-out accuracy of one run at t = 0 and at its last epoch, and its chance level
    (shares in [0, 1]; NaN where the run has no such epoch or no held-out sample); rise:
    :func:`accuracy_rise` over its last ``rise_epochs`` epochs, and rising: whether it is
    above the tolerance (NaN, 0 and False where not computed)."""

    t0: float
    end: float
    chance: float
    rise: float = math.nan
    rising: bool = False
    rise_epochs: int = 0


def rise_window(n_epochs: int, epochs: int) -> int:
    """The epochs :func:`accuracy_rise` compares at the end of a run of ``n_epochs``:
    ``epochs``, or half the run when it is shorter than twice that (0: too short)."""
    return max(0, min(int(epochs), int(n_epochs) // 2))


def accuracy_rise(accuracy, epochs: int) -> float:
    """How much held-out ``accuracy`` (one value per epoch, in order) still rose at the
    end: the mean of the last ``epochs`` values minus the mean of the ``epochs`` before
    them (fewer, half the run each, in a run shorter than 2 x ``epochs``); NaN for fewer
    than two epochs. Comparing means, not two single epochs, keeps an epoch's noise from
    passing for a trend."""
    acc = np.asarray(accuracy, dtype=float)
    acc = acc[np.isfinite(acc)]
    k = rise_window(acc.size, epochs)
    if k < 1:
        return math.nan
    return float(acc[-k:].mean() - acc[-2 * k : -k].mean())


def still_rising(rise: float, tolerance: float) -> bool:
    """Whether a run's :func:`accuracy_rise` is above ``tolerance`` (False for NaN)."""
    return bool(np.isfinite(rise) and rise > tolerance)


def rising_warning(acc: RunAccuracy, run: str, what: str = "run") -> str | None:
    """One line naming ``run`` when its held-out accuracy is still rising at the end
    (``acc.rising``), else None; ``what``: "run" or "pretraining"."""
    if not acc.rising:
        return None
    key = "pretrain.epochs" if what == "pretraining" else "train.epochs"
    k = acc.rise_epochs
    compared = f"the mean of its last {k} epochs is" if k > 1 else "its last epoch is"
    before = f"the {k} before" if k > 1 else "the one before"
    return (
        f"{what} {run}: held-out accuracy still rising at the end ({acc.end:.1%}; {compared} "
        f"{acc.rise * 100:.1f} points above {before}, more than "
        f"convergence.tolerance): it has not converged; train longer ({key}) or read its results as those "
        "of an unfinished run"
    )


def chance_level(labels, n_classes: int) -> float:
    """The larger of 1 / n_classes and the share of the most frequent of ``labels``; NaN
    for fewer than 2 classes (runs imported without labels: docs/contracts.md)."""
    if n_classes < 2:
        return math.nan
    labels = np.asarray(labels, dtype=np.int64).ravel()
    shares = np.bincount(labels, minlength=n_classes) / max(labels.size, 1)
    return max(1 / max(n_classes, 1), float(shares.max()) if shares.size else 0.0)


def near_chance(accuracy, chance):
    """Whether ``accuracy`` is within :data:`NEAR_CHANCE` of ``chance`` or below it
    (elementwise for arrays; False for NaN)."""
    return np.asarray(accuracy) <= np.asarray(chance) + NEAR_CHANCE


def run_accuracy(
    arrays: Mapping[str, np.ndarray], convergence: tuple[int, float] | None = None
) -> RunAccuracy:
    """:class:`RunAccuracy` from the arrays of one run's traces (``traces.npz`` keys ``t``,
    ``class_names``, ``heldout_label``, ``heldout_correct``); convergence: (epochs,
    tolerance) of the config's ``convergence`` section, for the rise over the fine-tuning
    epochs t >= 0 (None: not computed)."""
    t = np.asarray(arrays["t"])
    correct = np.asarray(arrays["heldout_correct"], dtype=bool)
    at0 = np.flatnonzero(t == 0)
    rise, rising, k = math.nan, False, 0
    if convergence is not None and correct.size:
        order = np.argsort(t)
        curve = correct[:, order[t[order] >= 0]].mean(axis=0)
        rise, k = accuracy_rise(curve, convergence[0]), rise_window(curve.size, convergence[0])
        rising = still_rising(rise, convergence[1])
    return RunAccuracy(
        t0=float(correct[:, at0[0]].mean()) if at0.size and correct.size else math.nan,
        end=float(correct[:, int(np.argmax(t))].mean()) if correct.size and t.size else math.nan,
        chance=chance_level(arrays["heldout_label"], len(arrays["class_names"])),
        rise=rise,
        rising=rising,
        rise_epochs=k,
    )


def pretrain_accuracy(
    heldout_acc, heldout_labels, n_classes: int, convergence: tuple[int, float]
) -> RunAccuracy:
    """:class:`RunAccuracy` of a pretraining run: its held-out accuracy per epoch
    (metrics.csv's ``heldout_acc``, in order) and its source's held-out labels (for the
    chance level); ``t0`` is NaN (no head warmup), ``end`` the last epoch's."""
    acc = np.asarray(heldout_acc, dtype=float)
    rise = accuracy_rise(acc, convergence[0])
    return RunAccuracy(
        t0=math.nan,
        end=float(acc[-1]) if acc.size else math.nan,
        chance=chance_level(heldout_labels, n_classes),
        rise=rise,
        rising=still_rising(rise, convergence[1]),
        rise_epochs=rise_window(acc.size, convergence[0]),
    )


def chance_warning(acc: RunAccuracy, run: str, what: str = "run") -> str | None:
    """One line naming ``run`` when its held-out accuracy at t = 0 or at the end is near
    chance (:func:`near_chance`), else None; ``what``: "run" or "pretraining"."""
    near = [
        (when, value)
        for when, value in (("t = 0", acc.t0), ("the end", acc.end))
        if near_chance(value, acc.chance)
    ]
    if not near:
        return None
    where = " and ".join(f"{value:.1%} at {when}" for when, value in near)
    why = (
        "it learned little, so fine-tuning starts from features barely better than random weights"
        if what == "pretraining"
        else "it learned little, its traces describe noise"
    )
    return (
        f"{what} {run}: held-out accuracy {where}, within {NEAR_CHANCE * 100:g} points of chance "
        f"({acc.chance:.1%}); {why}"
    )

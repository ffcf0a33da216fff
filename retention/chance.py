"""A run's held-out accuracy against chance, defined once for the training log and the findings.

The chance level of a run is the larger of 1 / C and the held-out share of its largest
class (what always answering that class scores). A run whose held-out accuracy at t = 0
(the end of the head warmup) or at its last epoch is within :data:`NEAR_CHANCE` of it
learned little: the fine-tuning job logs a warning (``retention.finetune``), the
statistics count such runs (``Runs.accuracy``, column ``near_chance``) and findings.md
names them. Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: a run whose held-out accuracy is at most chance plus this (a share, 0.05 = 5 points) is near chance
NEAR_CHANCE = 0.05


@dataclass(frozen=True)
class RunAccuracy:
    """Held-out accuracy of one run at t = 0 and at its last epoch, and its chance level
    (shares in [0, 1]; NaN where the run has no such epoch or no held-out sample)."""

    t0: float
    end: float
    chance: float


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


def run_accuracy(arrays: Mapping[str, np.ndarray]) -> RunAccuracy:
    """:class:`RunAccuracy` from the arrays of one run's traces (``traces.npz`` keys ``t``,
    ``class_names``, ``heldout_label``, ``heldout_correct``)."""
    t = np.asarray(arrays["t"])
    correct = np.asarray(arrays["heldout_correct"], dtype=bool)
    at0 = np.flatnonzero(t == 0)
    return RunAccuracy(
        t0=float(correct[:, at0[0]].mean()) if at0.size and correct.size else math.nan,
        end=float(correct[:, int(np.argmax(t))].mean()) if correct.size and t.size else math.nan,
        chance=chance_level(arrays["heldout_label"], len(arrays["class_names"])),
    )


def chance_warning(acc: RunAccuracy, run: str) -> str | None:
    """One line naming ``run`` when its held-out accuracy at t = 0 or at the end is near
    chance (:func:`near_chance`), else None."""
    near = [(when, value) for when, value in (("t = 0", acc.t0), ("the end", acc.end))
            if near_chance(value, acc.chance)]
    if not near:
        return None
    where = " and ".join(f"{value:.1%} at {when}" for when, value in near)
    return (
        f"run {run}: held-out accuracy {where}, within {NEAR_CHANCE * 100:g} points of chance "
        f"({acc.chance:.1%}); it learned little, its traces describe noise"
    )

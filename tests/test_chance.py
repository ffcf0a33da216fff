"""retention.chance: the chance level, the near-chance margin and the warning line."""

import math

import numpy as np

from retention import chance


def traces(correct_t0: float, correct_end: float, labels) -> dict:
    """Held-out arrays of a run with t = -1, 0, 1, 2 and the given accuracies at t = 0 and 2."""
    n = len(labels)
    correct = np.zeros((n, 4), dtype=bool)
    correct[: round(correct_t0 * n), 1] = True
    correct[: round(correct_end * n), 3] = True
    return {
        "t": np.array([-1, 0, 1, 2]),
        "class_names": np.array([str(k) for k in range(10)]),
        "heldout_label": np.asarray(labels),
        "heldout_correct": correct,
    }


def test_chance_level_is_one_over_c_or_the_largest_class():
    assert chance.chance_level(np.arange(100) % 10, 10) == 0.1
    assert chance.chance_level([0] * 7 + [1] * 3, 4) == 0.7
    assert chance.chance_level([], 4) == 0.25


def test_near_chance_margin():
    assert chance.NEAR_CHANCE == 0.05
    assert chance.near_chance(0.15, 0.1) and chance.near_chance(0.05, 0.1)  # at the margin, and below chance
    assert not chance.near_chance(0.151, 0.1) and not chance.near_chance(math.nan, 0.1)
    assert chance.near_chance(np.array([0.1, 0.5]), 0.1).tolist() == [True, False]


def test_run_accuracy_and_warning():
    labels = np.arange(200) % 10
    acc = chance.run_accuracy(traces(0.12, 0.9, labels))
    assert (acc.t0, acc.end, acc.chance) == (0.12, 0.9, 0.1)
    line = chance.chance_warning(acc, "results/runs/d/cnn/seed0")
    assert line.startswith("run results/runs/d/cnn/seed0: held-out accuracy 12.0% at t = 0, within 5 points")
    assert "chance (10.0%)" in line and "the end" not in line
    both = chance.chance_warning(chance.run_accuracy(traces(0.1, 0.14, labels)), "r")
    assert "10.0% at t = 0 and 14.0% at the end" in both
    assert chance.chance_warning(chance.run_accuracy(traces(0.16, 0.9, labels)), "r") is None

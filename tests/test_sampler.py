"""Tests of retention.training.sampler: budgets, spaced selection, schedules, resume."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch

from retention.errors import ConfigError, DataError, TrainingError
from retention.training.sampler import (
    BudgetSampler,
    EpochSampler,
    align_lambda,
    budget_size,
    predicted_recall,
)


def _lam(n: int, seed: int = 0) -> np.ndarray:
    """Distinct positive lambdas (no exact ties in predicted recall)."""
    return np.random.default_rng(seed).uniform(0.01, 2.0, n)


def _schedule(sampler: BudgetSampler, epochs) -> list[np.ndarray]:
    return [sampler.epoch_indices(e) for e in epochs]


@pytest.mark.parametrize(
    ("n", "fraction", "budget"),
    [(10, 0.5, 5), (10, 0.25, 3), (10, 0.24, 2), (3, 0.01, 1), (7, 1.0, 7), (1000, 0.333, 333)],
)
def test_budget_size_rounds_half_up_and_is_at_least_one(n, fraction, budget):
    assert budget_size(n, fraction) == budget


@pytest.mark.parametrize("kind", ["random", "spaced"])
@pytest.mark.parametrize(("n", "fraction"), [(50, 0.5), (37, 0.3), (5, 0.01), (20, 1.0)])
def test_each_epoch_uses_exactly_the_budget_of_distinct_samples(kind, n, fraction):
    sampler = BudgetSampler(n, fraction, kind, lam=_lam(n), seed=3)
    for idx in _schedule(sampler, range(1, 9)):
        assert idx.dtype == np.int64
        assert len(idx) == budget_size(n, fraction)
        assert len(np.unique(idx)) == len(idx)
        assert idx.min() >= 0 and idx.max() < n


def test_spaced_picks_lowest_predicted_recall_against_direct_computation():
    n, fraction = 40, 0.3
    lam = _lam(n, seed=1)
    lam[[3, 17]] = np.nan  # never_learned / too_short: treated as recall 0
    sampler = BudgetSampler(n, fraction, "spaced", lam=lam, seed=5)
    budget = budget_size(n, fraction)
    last = np.zeros(n)  # every sample counts as trained at the end of the warmup (t = 0)
    h = np.log(2) / np.where(np.isnan(lam), np.inf, lam)
    for epoch in range(1, 15):
        with np.errstate(divide="ignore"):
            p = 2.0 ** (-(epoch - last) / h)
        expected = set(np.argsort(p, kind="stable")[:budget].tolist())
        chosen = sampler.epoch_indices(epoch)
        assert set(chosen.tolist()) == expected
        assert {3, 17} <= expected
        # the chosen recalls are all <= every recall not chosen
        rest = np.setdiff1d(np.arange(n), chosen)
        assert p[chosen].max() <= p[rest].min()
        last[chosen] = epoch


def test_predicted_recall_matches_half_life_formula():
    lam = np.array([0.0, 0.5, 2.0, np.inf])
    delta = np.array([3, 2, 1, 4])
    h = np.array([np.inf, math.log(2) / 0.5, math.log(2) / 2.0, 0.0])
    expected = np.array([1.0, 2 ** (-2 / h[1]), 2 ** (-1 / h[2]), 0.0])
    np.testing.assert_allclose(predicted_recall(lam, delta), expected, rtol=1e-12)


def test_recall_resets_when_a_sample_is_trained():
    # Equal lambdas: with resets the sampler alternates between two halves (the half
    # not trained last epoch has delta 2, the other delta 1); without resets all
    # recalls would tie and the halves would be random.
    sampler = BudgetSampler(8, 0.5, "spaced", lam=np.full(8, 0.7), seed=0)
    previous = None
    for epoch in range(1, 11):
        before = sampler.recall(epoch)
        chosen = sampler.epoch_indices(epoch)
        after = sampler.recall(epoch + 1)
        # trained samples are back to one epoch since training
        np.testing.assert_allclose(after[chosen], 2 ** (-1 / (math.log(2) / 0.7)))
        assert np.all(sampler.last_trained[chosen] == epoch)
        if previous is not None:
            assert set(chosen.tolist()).isdisjoint(previous.tolist())
            assert np.all(before[chosen] < before[previous].min())
        previous = chosen


@pytest.mark.parametrize("kind", ["random", "spaced"])
def test_same_seed_same_schedule_different_seed_different(kind):
    n = 30
    lam = np.repeat([0.2, 0.9, 1.5], 10)  # ties: the spaced tie-break uses the seed
    a = _schedule(BudgetSampler(n, 0.4, kind, lam=lam, seed=11), range(1, 8))
    b = _schedule(BudgetSampler(n, 0.4, kind, lam=lam, seed=11), range(1, 8))
    c = _schedule(BudgetSampler(n, 0.4, kind, lam=lam, seed=12), range(1, 8))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # and the spaced choice itself (not only the order) depends on the seed under ties
    if kind == "spaced":
        assert set(a[0].tolist()) != set(c[0].tolist())


def test_fraction_one_makes_both_samplers_train_identically():
    n = 25
    rnd = _schedule(BudgetSampler(n, 1.0, "random", seed=4), range(1, 6))
    spc = _schedule(BudgetSampler(n, 1.0, "spaced", lam=_lam(n), seed=4), range(1, 6))
    for r, s in zip(rnd, spc):
        np.testing.assert_array_equal(r, s)
        np.testing.assert_array_equal(np.sort(r), np.arange(n))
    assert not np.array_equal(rnd[0], np.arange(n))  # shuffled
    assert not np.array_equal(rnd[0], rnd[1])  # a new order each epoch


@pytest.mark.parametrize("kind", ["random", "spaced"])
def test_state_dict_round_trip_continues_the_identical_schedule(kind):
    n = 33
    lam = _lam(n, seed=2)
    lam[::5] = 0.0
    full = _schedule(BudgetSampler(n, 0.4, kind, lam=lam, seed=9), range(1, 11))

    first = BudgetSampler(n, 0.4, kind, lam=lam, seed=9)
    _schedule(first, range(1, 5))
    buf = io.BytesIO()
    torch.save({"sampler": first.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["sampler"]

    resumed = BudgetSampler(n, 0.4, kind, lam=lam, seed=9)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(resumed.epoch_indices(4), full[3])  # cached last epoch
    for epoch in range(5, 11):
        np.testing.assert_array_equal(resumed.epoch_indices(epoch), full[epoch - 1])


def test_load_state_dict_refuses_another_setup():
    lam = _lam(10)
    state = BudgetSampler(10, 0.5, "spaced", lam=lam, seed=1).state_dict()
    with pytest.raises(TrainingError, match="seed"):
        BudgetSampler(10, 0.5, "spaced", lam=lam, seed=2).load_state_dict(state)
    with pytest.raises(TrainingError, match="lam"):
        BudgetSampler(10, 0.5, "spaced", lam=lam * 2, seed=1).load_state_dict(state)


def test_unforgettable_samples_are_reviewed_at_long_intervals():
    n = 20
    lam = np.r_[np.full(10, 1.0), np.zeros(10)]  # samples 10..19 unforgettable in the scout run
    sampler = BudgetSampler(n, 0.4, "spaced", lam=lam, seed=0)
    assert sampler.min_lambda == 1.0  # the scout's smallest positive lambda
    trained = np.zeros(n, dtype=int)
    for idx in _schedule(sampler, range(1, 41)):
        trained[idx] += 1
    assert np.all(trained > 0)  # nobody is starved
    explicit = BudgetSampler(n, 0.4, "spaced", lam=lam, seed=0, min_lambda=0.05)
    counts = np.zeros(n, dtype=int)
    for idx in _schedule(explicit, range(1, 41)):
        counts[idx] += 1
    assert counts[:10].mean() > 3 * counts[10:].mean() > 0  # rarely, not never
    with pytest.raises(ConfigError, match="min_lambda"):
        BudgetSampler(n, 0.4, "spaced", lam=lam, seed=0, min_lambda=0.0)


def test_random_sampler_is_uniform():
    n, epochs = 40, 400
    sampler = BudgetSampler(n, 0.25, "random", seed=0)
    counts = np.bincount(np.concatenate(_schedule(sampler, range(1, epochs + 1))), minlength=n)
    expected = epochs * 0.25
    # binomial sd = sqrt(400 * 0.25 * 0.75) ~ 8.7; 5 sd bounds
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(epochs * 0.25 * 0.75))


def test_epoch_indices_repeat_and_order_rules():
    sampler = BudgetSampler(10, 0.5, "random", seed=0)
    a = sampler.epoch_indices(1)
    np.testing.assert_array_equal(sampler.epoch_indices(1), a)
    with pytest.raises(ValueError, match="increase"):
        sampler.epoch_indices(0)
    # a gap counts as epochs without training
    spaced = BudgetSampler(4, 0.5, "spaced", lam=np.array([1.0, 1.0, 0.1, 0.1]), seed=0)
    spaced.epoch_indices(1)
    assert np.all(spaced.recall(5) <= predicted_recall(spaced.lam, np.full(4, 1)))


def test_torch_sampler_walks_the_schedule_with_a_dataloader():
    n = 17
    lam = _lam(n)
    twin_sampler = BudgetSampler(n, 0.5, "spaced", lam=lam, seed=3)
    twin = _schedule(twin_sampler, range(1, 4))
    sampler = EpochSampler(BudgetSampler(n, 0.5, "spaced", lam=lam, seed=3))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.arange(n)), batch_size=4, sampler=sampler
    )
    assert len(sampler) == budget_size(n, 0.5)
    for expected in twin:
        seen = torch.cat([batch[0] for batch in loader]).numpy()
        np.testing.assert_array_equal(seen, expected)
    sampler.set_epoch(7)
    assert list(iter(sampler)) == twin_sampler.epoch_indices(7).tolist()
    assert sampler.budget_sampler.epoch == 7


def test_align_lambda_orders_by_sample_id_and_reports_missing():
    fits = pd.DataFrame(
        {
            "trace": ["since_learned"] * 3 + ["raw"] * 3,
            "primary": [True] * 3 + [False] * 3,
            "sample_id": [10, 11, 12, 10, 11, 12],
            "lambda": [0.5, np.nan, 0.0, 9.0, 9.0, 9.0],
        }
    )
    lam = align_lambda(fits, np.array([12, 10, 11]))
    np.testing.assert_array_equal(lam, [0.0, 0.5, np.nan])
    np.testing.assert_array_equal(align_lambda(fits, np.array([11]), trace="raw"), [9.0])
    with pytest.raises(DataError, match="sample_id 13"):
        align_lambda(fits, np.array([10, 13]))


def test_bad_arguments_raise_user_errors():
    with pytest.raises(ConfigError, match="fraction"):
        BudgetSampler(10, 0.0, "random")
    with pytest.raises(ConfigError, match="kind"):
        BudgetSampler(10, 0.5, "greedy")
    with pytest.raises(DataError, match="shape"):
        BudgetSampler(10, 0.5, "spaced", lam=np.ones(9))
    with pytest.raises(DataError, match="negative"):
        BudgetSampler(3, 0.5, "spaced", lam=np.array([1.0, -1.0, 0.0]))

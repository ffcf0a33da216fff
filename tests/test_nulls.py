"""Tests of retention.fitting.nulls: memoryless null runs keep each sample's record up to its
learning point and redraw what follows from that sample's own post-learning epochs."""

import numpy as np
import pytest

from retention.fitting import nulls
from retention.fitting.fit import FIT_COLUMNS
from retention.fitting.simulate import simulate_traces
from retention.fitting.traces import learning_epoch, load_traces
from retention.io import save_npz


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    arrays = simulate_traces(n_samples=400, n_heldout=20, epochs=15, warmup_epochs=2, seed=3)
    path = tmp_path_factory.mktemp("null") / "traces.npz"
    save_npz(path, arrays)
    return load_traces(path, "d/a/seed0")


@pytest.mark.parametrize("kind", nulls.KINDS)
@pytest.mark.parametrize("learned_after", [1, 2])
def test_null_keeps_the_record_up_to_learning_and_redraws_after(run, kind, learned_after):
    rng = np.random.default_rng(0)
    null = nulls.null_traces(run, learned_after, kind, rng)
    fine = run.t >= 0
    t_learn = learning_epoch(run.correct, run.t, learned_after)
    changed_rows = 0
    for i in range(run.n_samples):
        c, nc = run.correct[i, fine], null.correct[i, fine]
        if not np.isfinite(t_learn[i]):
            np.testing.assert_array_equal(null.correct[i], run.correct[i])
            continue
        cut = int(t_learn[i]) + learned_after
        np.testing.assert_array_equal(nc[:cut], c[:cut])  # before and through the learning run
        post, npost = c[cut:], nc[cut:]
        assert np.sort(npost).tolist() == np.sort(post).tolist()  # both keep the counts
        changed_rows += not np.array_equal(npost, post)
        # p_true comes from the row's own epochs of the same correctness
        pairs = set(zip(c[cut:].tolist(), run.p_true[i, fine][cut:].tolist()))
        assert set(zip(npost.tolist(), null.p_true[i, fine][cut:].tolist())) <= pairs
    np.testing.assert_array_equal(null.correct[:, ~fine], run.correct[:, ~fine])  # warmup untouched
    assert changed_rows > 50  # it does redraw
    np.testing.assert_array_equal(null.loss, run.loss)  # loss at t = 0 is kept


def test_iid_null_keeps_every_samples_and_every_epochs_count(run):
    fine = run.t >= 0
    t_learn = learning_epoch(run.correct, run.t, 1)
    cols = np.arange(fine.sum())
    region = np.isfinite(t_learn)[:, None] & (cols[None] >= np.nan_to_num(t_learn)[:, None] + 1)
    obs = run.correct[:, fine]
    null = nulls.null_traces(run, 1, "iid", np.random.default_rng(3)).correct[:, fine]
    np.testing.assert_array_equal((null & region).sum(axis=1), (obs & region).sum(axis=1))
    np.testing.assert_array_equal((null & region).sum(axis=0), (obs & region).sum(axis=0))
    assert ((null != obs) & region).sum() > 0.1 * ((~obs) & region).sum()  # it does move the errors


def test_trading_rows_keeps_both_margins_and_mixes_in_the_set_sweeps():
    rng = np.random.default_rng(0)
    n, t = 1000, 30
    # a learning curve: accuracy rises with the epoch; ragged regions
    x = rng.random((n, t)) < np.linspace(0.6, 0.95, t)[None] * rng.uniform(0.8, 1, n)[:, None]
    region = np.arange(t)[None] >= rng.integers(0, 15, n)[:, None]
    changed = []
    for sweeps in (5, nulls.CURVEBALL_SWEEPS, 4 * nulls.CURVEBALL_SWEEPS):
        y = nulls.trade_rows(x, region, sweeps, np.random.default_rng(1))
        np.testing.assert_array_equal(y.sum(axis=1), x.sum(axis=1))
        np.testing.assert_array_equal((y & region).sum(axis=0), (x & region).sum(axis=0))
        np.testing.assert_array_equal(y[~region], x[~region])
        changed.append(((y != x) & region).sum() / region.sum())
    assert changed[0] < changed[1] and abs(changed[2] - changed[1]) < 0.02 * changed[2] + 0.003


def test_a_memoryless_learning_curve_is_reproduced_by_the_iid_null():
    """Correct independently with a probability that rises over the epochs (no memory):
    the errors after learning come early, which only a null that keeps each epoch's count
    reproduces. The mean position of the post-learning errors: observed, iid null, shuffle."""
    rng = np.random.default_rng(5)
    n, epochs = 2000, 20
    t = np.arange(0, epochs + 1)
    p = np.clip(0.5 + 0.45 * t / epochs, 0, 1)[None] * np.ones((n, 1))
    correct = rng.random((n, t.size)) < p

    def mean_error_epoch(c):
        t_learn = learning_epoch(c, t, 1)
        after = np.isfinite(t_learn)[:, None] & (t[None] > np.nan_to_num(t_learn)[:, None])
        return (np.where(after & ~c, t[None], 0).sum()) / (after & ~c).sum()

    obs = mean_error_epoch(correct)
    iid = [
        mean_error_epoch(
            np.take_along_axis(correct, nulls.null_columns(correct, t, 1, "iid", np.random.default_rng(k)), 1)
        )
        for k in range(5)
    ]
    shuffle = [
        mean_error_epoch(
            np.take_along_axis(
                correct, nulls.null_columns(correct, t, 1, "shuffle", np.random.default_rng(k)), 1
            )
        )
        for k in range(5)
    ]
    assert abs(np.mean(iid) - obs) < 0.05
    assert np.mean(shuffle) - obs > 0.5  # the shuffle spreads them: it is not this null


def test_null_fit_table_is_reproducible_and_has_every_draw(run):
    a = nulls.null_fit_table(run, "since_learned", draws=3, seed=7, run="d/a/seed0")
    b = nulls.null_fit_table(run, "since_learned", draws=3, seed=7, run="d/a/seed0")
    c = nulls.null_fit_table(run, "since_learned", draws=3, seed=8, run="d/a/seed0")
    assert list(a.columns) == ["null", "draw", *FIT_COLUMNS]
    assert len(a) == 2 * 3 * run.n_samples
    assert a.groupby(["null", "draw"]).size().tolist() == [run.n_samples] * 6
    assert a.equals(b)
    assert not a["lambda"].equals(c["lambda"])
    # the shuffle null keeps each sample's mean retention since learning exactly
    obs = a[(a["null"] == "shuffle") & (a["draw"] == 0)]
    with pytest.raises(ValueError, match="unknown null kind"):
        nulls.null_columns(run.correct, run.t, 1, "bootstrap", np.random.default_rng(0))
    assert np.isfinite(obs["mean_retention"]).sum() > 0

"""Tests of retention.nulls: memoryless null runs keep each sample's record up to its
learning point and redraw what follows from that sample's own post-learning epochs."""

import numpy as np
import pytest

from retention import nulls
from retention.fit import FIT_COLUMNS
from retention.io import save_npz
from retention.simulate import simulate_traces
from retention.traces import learning_epoch, load_traces


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
        if kind == "shuffle":
            assert np.sort(npost).tolist() == np.sort(post).tolist()  # the same counts
        else:
            assert set(npost.tolist()) <= set(post.tolist())  # drawn from the sample's own epochs
        changed_rows += not np.array_equal(npost, post)
        # p_true travels with its epoch: every (correct, p_true) pair is one of the row's
        pairs = set(zip(c[cut:].tolist(), run.p_true[i, fine][cut:].tolist()))
        assert set(zip(npost.tolist(), null.p_true[i, fine][cut:].tolist())) <= pairs
    np.testing.assert_array_equal(null.correct[:, ~fine], run.correct[:, ~fine])  # warmup untouched
    assert changed_rows > 50  # it does redraw
    np.testing.assert_array_equal(null.loss, run.loss)  # loss at t = 0 is kept


def test_iid_null_matches_each_samples_post_learning_rate_on_average(run):
    cut = learning_epoch(run.correct, run.t, 1)
    i = int(np.flatnonzero(np.isfinite(cut) & (cut == 0))[0])
    fine = run.correct[i, run.t >= 0][1:]
    draws = [
        nulls.null_traces(run, 1, "iid", np.random.default_rng(k)).correct[i, run.t >= 0][1:].mean()
        for k in range(300)
    ]
    assert abs(np.mean(draws) - fine.mean()) < 0.02


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

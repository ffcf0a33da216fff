"""Tests of retention.fitting.traces: loading traces.npz, trace definitions, statuses and scores."""

import numpy as np
import pytest

from retention.errors import DataError
from retention.fitting.simulate import simulate_traces
from retention.fitting.traces import (
    build_traces,
    cartography,
    forgetting_events,
    learning_epoch,
    load_traces,
    parse_definition,
    parse_label,
    sample_scores,
    trace_label,
)
from retention.io import save_npz

# t = -2, -1 (warmup), 0..5 (E = 5)
T = np.arange(-2, 6)


def matrix(rows):
    """Correctness rows given over t >= 0 (E + 1 = 6 values); warmup epochs are set to 1."""
    c = np.asarray(rows, dtype=bool)
    return np.hstack([np.ones((c.shape[0], 2), dtype=bool), c])


# --------------------------------------------------------------------------- loading


@pytest.fixture()
def arrays():
    return simulate_traces(n_samples=30, n_heldout=10, epochs=6, warmup_epochs=2, n_classes=4, seed=1)


def write(tmp_path, arrays, name="traces.npz"):
    path = tmp_path / "octdl" / "resnet18" / "seed3" / name
    save_npz(path, arrays)
    return path


def test_load_valid_file_roundtrip(tmp_path, arrays):
    path = write(tmp_path, arrays)
    tr = load_traces(path)
    assert tr.run_name == "octdl/resnet18/seed3"
    assert tr.n_samples == 30 and tr.epochs == 6
    np.testing.assert_array_equal(tr.correct, arrays["correct"])
    assert tr.p_true.dtype == np.float32 and tr.sample_id.dtype == np.int64 and tr.pred.dtype == np.int32
    assert list(tr.class_names) == ["class0", "class1", "class2", "class3"]
    assert load_traces(path, run_name="mine").run_name == "mine"


@pytest.mark.parametrize("key", ["sample_id", "p_true", "heldout_correct", "class_centroid_cosine", "t"])
def test_missing_key_is_named(tmp_path, arrays, key):
    del arrays[key]
    path = write(tmp_path, arrays)
    with pytest.raises(DataError, match=rf"missing key '{key}'") as err:
        load_traces(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "key,value",
    [
        ("correct", lambda a: a["correct"].astype(np.float32)),
        ("sample_id", lambda a: a["sample_id"].astype(np.float64)),
        ("p_true", lambda a: a["p_true"] > 0.5),
        ("class_names", lambda a: np.arange(len(a["class_names"]))),
    ],
)
def test_wrong_dtype_is_named(tmp_path, arrays, key, value):
    arrays[key] = value(arrays)
    path = write(tmp_path, arrays)
    with pytest.raises(DataError, match=rf"key '{key}' has dtype"):
        load_traces(path)


def test_object_array_is_named(tmp_path, arrays):
    arrays["class_names"] = np.array(["a", "b", "c", "d"], dtype=object)
    path = tmp_path / "traces.npz"
    np.savez(path, **arrays)  # needs pickle to read back
    with pytest.raises(DataError, match="key 'class_names'"):
        load_traces(path)


@pytest.mark.parametrize(
    "key,value",
    [
        ("p_true", lambda a: a["p_true"][:, :-1]),
        ("loss", lambda a: a["loss"][:-1]),
        ("label", lambda a: a["label"][:-2]),
        ("heldout_pred", lambda a: a["heldout_pred"].T),
        ("class_centroid_cosine", lambda a: a["class_centroid_cosine"][:2]),
    ],
)
def test_mismatched_shape_is_named(tmp_path, arrays, key, value):
    arrays[key] = value(arrays)
    path = write(tmp_path, arrays)
    with pytest.raises(DataError, match=rf"key '{key}' has shape"):
        load_traces(path)


def test_nan_in_p_true_names_run_and_sample(tmp_path, arrays):
    arrays["p_true"][7, 4] = np.nan
    arrays["p_true"][9, 5] = np.nan
    path = write(tmp_path, arrays)
    with pytest.raises(DataError) as err:
        load_traces(path)
    msg = str(err.value)
    assert "octdl/resnet18/seed3" in msg and "sample_id 7" in msg and "NaN" in msg and "p_true" in msg
    arrays["p_true"][[7, 9]] = 0.5
    arrays["heldout_p_true"][2, 0] = np.nan
    path = write(tmp_path, arrays)
    with pytest.raises(DataError, match=r"heldout_p_true has NaN at sample_id 32"):
        load_traces(path, run_name="x")


def test_bad_values_are_named(tmp_path, arrays):
    bad = dict(arrays, t=arrays["t"] * 2)  # gaps in t >= 0
    with pytest.raises(DataError, match="key 't'"):
        load_traces(write(tmp_path, bad))
    bad = dict(arrays, label=np.where(np.arange(30) == 4, 9, arrays["label"]))
    with pytest.raises(DataError, match="key 'label' has 9 at sample_id 4"):
        load_traces(write(tmp_path, bad))
    sid = arrays["sample_id"].copy()
    sid[1] = sid[0]
    with pytest.raises(DataError, match="key 'sample_id' has repeated ids"):
        load_traces(write(tmp_path, dict(arrays, sample_id=sid)))


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_traces(tmp_path / "nope.npz")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable"):
        load_traces(broken)


# --------------------------------------------------------------------------- definitions

ROWS = [
    [1, 1, 1, 1, 1, 1],  # 0 always correct: unforgettable
    [0, 0, 0, 0, 0, 0],  # 1 never correct: never_learned
    [0, 0, 0, 0, 0, 1],  # 2 learned at the last epoch: 1 point, too_short
    [0, 0, 0, 0, 1, 0],  # 3 learned at E - 1: 2 points, too_short
    [1, 0, 1, 1, 0, 0],  # 4 fitted from t = 0
    [0, 1, 1, 0, 1, 1],  # 5 fitted from t = 1
    [0, 0, 1, 1, 1, 1],  # 6 learned at t = 2, then always: unforgettable (since_learned)
]


def test_since_learned_traces_and_status():
    ts = build_traces(matrix(ROWS), None, T, "since_learned")
    assert ts.status.tolist() == [
        "unforgettable",
        "never_learned",
        "too_short",
        "too_short",
        "fitted",
        "fitted",
        "unforgettable",
    ]
    np.testing.assert_array_equal(ts.n_points, [6, 0, 1, 2, 6, 5, 4])
    np.testing.assert_array_equal(ts.t_learn, [0, np.nan, 5, 4, 0, 1, 2])
    np.testing.assert_array_equal(ts.y[5, :5], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(ts.mask[5], [1, 1, 1, 1, 1, 0])
    assert ts.y[5, 5] == 0  # padding
    np.testing.assert_array_equal(ts.tau, np.arange(6))
    assert ts.model == "decay"
    # the mean retention is the mean of the trace's own points
    assert ts.mean_retention[5] == pytest.approx(0.8) and np.isnan(ts.mean_retention[1])
    # min_points decides too_short: with 2, the two-point trace (1, 0) is fitted
    ts2 = build_traces(matrix(ROWS), None, T, "since_learned", min_points=2)
    assert ts2.status[3] == "fitted" and ts2.status[2] == "too_short"


def test_warmup_epochs_are_ignored():
    c = matrix(ROWS)
    c[:, :2] = False  # warmup epochs differ: nothing changes
    a = build_traces(c, None, T, "since_learned")
    b = build_traces(matrix(ROWS), None, T, "since_learned")
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.status, b.status)


def test_since_warmup_and_raw():
    sw = build_traces(matrix(ROWS), None, T, "since_warmup")
    assert sw.status.tolist() == [
        "unforgettable",
        "never_learned",
        "never_learned",
        "never_learned",
        "fitted",
        "never_learned",
        "never_learned",
    ]
    np.testing.assert_array_equal(sw.y[4], ROWS[4])
    raw = build_traces(matrix(ROWS), None, T, "raw")
    assert raw.model == "raw"
    # raw keeps every sample (docs/method.md section 4): the never-correct row is fitted too
    assert raw.status.tolist() == [
        "unforgettable",
        "fitted",
        "fitted",
        "fitted",
        "fitted",
        "fitted",
        "fitted",
    ]
    np.testing.assert_array_equal(raw.y[5], ROWS[5])
    np.testing.assert_array_equal(raw.n_points, [6, 6, 6, 6, 6, 6, 6])


def test_conditional_matches_formula():
    rng = np.random.default_rng(0)
    c = rng.random((50, 11)) < 0.7
    t = np.arange(11)
    ts = build_traces(c, None, t, "conditional")
    assert ts.y.shape[1] == 6  # d = 0..floor(10 / 2)
    for i in range(50):
        s = c[i].astype(float)
        for d in range(6):
            den = s[: 11 - d].sum()
            if den > 0:
                assert ts.mask[i, d]
                assert ts.y[i, d] == pytest.approx(np.sum(s[: 11 - d] * s[d:]) / den)
            else:
                assert not ts.mask[i, d]
    assert np.all(ts.y[ts.mask[:, 0], 0] == 1.0)  # R(0) = 1 for binary traces
    odd = build_traces(rng.random((5, 8)) < 0.7, None, np.arange(8), "conditional")
    assert odd.y.shape[1] == 4  # E = 7: d = 0..floor(7 / 2) = 0..3
    late = np.zeros((1, 11), dtype=bool)
    late[0, 9:] = True  # learned at t = 9: R(d) defined for d <= 1 only
    one = build_traces(late, None, t, "conditional")
    assert one.n_points[0] == 2 and one.status[0] == "too_short"


def test_soft_traces_use_p_true_and_status_from_correct():
    c = matrix(ROWS)
    p = np.where(c, 0.9, 0.2).astype(np.float32)
    p[0] = 1.0  # an exactly certain sample stays unforgettable
    ts = build_traces(c, p, T, "since_learned_soft")
    assert ts.soft and ts.label == "since_learned_soft" and ts.definition == "since_learned"
    np.testing.assert_allclose(ts.y[5, :5], np.float32([0.9, 0.9, 0.2, 0.9, 0.9]))
    np.testing.assert_array_equal(ts.t_learn, build_traces(c, None, T, "since_learned").t_learn)
    assert ts.status.tolist() == [
        "unforgettable",
        "never_learned",
        "too_short",
        "too_short",
        "fitted",
        "fitted",
        "fitted",
    ]
    with pytest.raises(ValueError, match="needs p_true"):
        build_traces(c, None, T, "raw_soft")


def test_parse_definition():
    assert parse_definition("since_learned") == ("since_learned", False)
    assert parse_definition("conditional_soft") == ("conditional", True)
    with pytest.raises(ValueError, match="unknown trace definition"):
        parse_definition("since_lunch")


def test_trace_labels_round_trip_with_learned_after():
    spec = parse_label("since_learned_soft_la2")
    assert (spec.definition, spec.soft, spec.learned_after) == ("since_learned", True, 2)
    assert spec.label == "since_learned_soft_la2"
    assert parse_label("since_warmup_la3").label == "since_warmup_la3"
    assert parse_label("since_learned_la1").label == "since_learned"  # _la1 is the default
    assert spec.soft_counterpart.label == "since_learned_soft_la2"
    assert parse_label("conditional_la2").soft_counterpart.label == "conditional_soft_la2"
    for bad in ("raw_la2", "since_learned_la0", "since_learned_soft_soft", "since_learned_la"):
        with pytest.raises(ValueError, match=bad):
            parse_label(bad)
    # the configured learned_after (3 by default) does not apply to raw, which has no learning point
    assert (
        trace_label("raw", True, 3) == "raw_soft"
        and trace_label("since_warmup", False, 3) == "since_warmup_la3"
    )


def test_learned_after_two_needs_two_consecutive_correct_epochs():
    rows = [
        [1, 0, 1, 1, 0, 0],  # learned at t = 2 with n = 2 (t = 0 was a single hit)
        [1, 1, 0, 1, 0, 1],  # learned at t = 0 with either n
        [1, 0, 1, 0, 1, 0],  # never two in a row: never learned with n = 2
        [0, 0, 0, 0, 1, 1],  # the last two epochs: learned at t = 4, 2 points: too short
    ]
    c = matrix(rows)
    np.testing.assert_array_equal(learning_epoch(c, T, 1), [0, 0, 0, 4])
    np.testing.assert_array_equal(learning_epoch(c, T, 2), [2, 0, np.nan, 4])
    ts = build_traces(c, None, T, "since_learned_la2")
    assert ts.learned_after == 2
    assert ts.status.tolist() == ["fitted", "fitted", "never_learned", "too_short"]
    np.testing.assert_array_equal(ts.y[0][ts.mask[0]], [1, 1, 0, 0])
    warm = build_traces(c, None, T, "since_warmup_la2")
    assert warm.status.tolist()[:3] == ["never_learned", "fitted", "never_learned"]


# --------------------------------------------------------------------------- scores


def test_forgetting_events_and_cartography():
    c = matrix(ROWS)
    c[:, 1] = False  # a 1 -> 0 transition from t = -2 to t = -1 and -1 -> 0 is not counted
    # the never-correct sample 1 gets the originals' maximum: the 6 epochs t >= 0
    np.testing.assert_array_equal(forgetting_events(c, T), [0, 6, 0, 1, 2, 1, 0])
    rng = np.random.default_rng(1)
    big = rng.random((40, T.size)) < 0.6
    big[0, 2:] = False  # one never-correct sample
    brute = [sum(big[i, k] and not big[i, k + 1] for k in range(2, T.size - 1)) for i in range(40)]
    brute[0] = T.size - 2
    np.testing.assert_array_equal(forgetting_events(big, T), brute)
    p = rng.random((40, T.size)).astype(np.float32)
    conf, var = cartography(p, T)
    np.testing.assert_allclose(conf, p[:, 2:].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(var, p[:, 2:].std(axis=1), rtol=1e-5)


def test_sample_scores_at_t0(tmp_path, arrays):
    tr = load_traces(write(tmp_path, arrays))
    s = sample_scores(tr)
    col = int(np.flatnonzero(arrays["t"] == 0)[0])
    np.testing.assert_array_equal(s["loss_t0"], arrays["loss"][:, col].astype(np.float64))
    np.testing.assert_array_equal(s["el2n_t0"], arrays["el2n"][:, col].astype(np.float64))
    assert set(s) == {"forget_events", "loss_t0", "el2n_t0", "confidence", "variability"}


# The originals' formulas, transcribed: Toneva et al. (2019), github.com/mtoneva/
# example_forgetting, compute_forgetting_statistics + sort_examples_by_forgetting (one
# run); Swayamdipta et al. (2020), github.com/allenai/cartography, compute_forgetfulness,
# confidence, variability; EL2N (Paul et al. 2021): ||softmax - onehot||_2.
def toneva_forgetting(acc: np.ndarray) -> int:
    transitions = acc[1:].astype(int) - acc[:-1].astype(int)
    unlearned = np.where(transitions == -1)[0] + 2
    first_learned = np.nan if not acc.any() else np.argmax(acc)
    return len(acc) if np.isnan(first_learned) else len(unlearned)


def cartography_forgetfulness(trend) -> int:
    if not any(trend):
        return 1000
    learnt, times = False, 0
    for is_correct in trend:
        if (not learnt and not is_correct) or (learnt and is_correct):
            continue
        if learnt and not is_correct:
            learnt, times = False, times + 1
        elif not learnt and is_correct:
            learnt = True
    return times


def test_scores_match_the_original_implementations():
    arrays = simulate_traces(n_samples=300, n_heldout=5, epochs=12, warmup_epochs=2, seed=4)
    arrays["correct"][:7, arrays["t"] >= 0] = False  # some never-learned samples
    keep = arrays["t"] >= 0
    acc, p = arrays["correct"][:, keep], arrays["p_true"][:, keep].astype(np.float64)
    ours = forgetting_events(arrays["correct"], arrays["t"])
    np.testing.assert_array_equal(ours, [toneva_forgetting(a) for a in acc])
    learned = acc.any(axis=1)
    carto = np.array([cartography_forgetfulness(a.tolist()) for a in acc])
    np.testing.assert_array_equal(ours[learned], carto[learned])
    assert np.all(carto[~learned] == 1000) and np.all(ours[~learned] == keep.sum())  # both: the maximum
    conf, var = cartography(arrays["p_true"], arrays["t"])
    np.testing.assert_allclose(conf, np.mean(p, axis=1), rtol=1e-12)
    np.testing.assert_allclose(var, np.std(p, axis=1), rtol=1e-12)


def test_simulated_run_has_planted_structure():
    arrays, truth = simulate_traces(n_samples=3000, n_heldout=10, seed=2, return_truth=True)
    ts = build_traces(arrays["correct"], arrays["p_true"], arrays["t"], "since_learned")
    learned = truth["t_learn"] >= 0
    np.testing.assert_array_equal(ts.t_learn[learned], truth["t_learn"][learned])
    assert np.all(ts.status[~learned] == "never_learned")
    # p_true < 0.5 wherever a sample is incorrect (the argmax is another class)
    assert np.all(arrays["p_true"][~arrays["correct"]] < 0.5)

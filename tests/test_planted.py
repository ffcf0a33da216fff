"""The planted-truth generator of the calibration benchmark (benchmarks/planted.py).

Its studies must be valid traces.npz runs, reproducible, realistic, and carry the truth
they declare. The truth is checked here with simple statistics of our own on the
generated correctness (never the project's estimators): the memory axis by the
clustering of post-learning errors, F3 by realized cross-seed stability, F5 by the loss
at t = 0 against realized errors, F6 by the outcome means.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from retention.fitting.traces import load_traces

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import planted
import planted_scenarios
from planted import generate_study, sampler_outcomes
from planted_scenarios import CLAIMS, SCENARIOS, SIZES


@functools.cache
def study(name: str, size: str = "demo", replicate: int = 0) -> planted.PlantedStudy:
    return generate_study(name, size, replicate)


def post_learning(st: planted.PlantedStudy, arch: str, seed: int) -> np.ndarray:
    """Mask of the epochs t >= 1 after the planted learning epoch (the curve process: 3
    epochs after it, past its rise), samples x epochs."""
    arrays = next(a for r_arch, r_seed, a in st.runs if (r_arch, r_seed) == (arch, seed))
    lag = 3 if st.truth["MEMORY"]["process"][arch] == "curve" else 0
    t_learn = st.planted[(arch, seed)]["t_learn"]
    return arrays["t"][None, :] >= np.maximum(t_learn[:, None] + lag, 1)


def clustering(st: planted.PlantedStudy, arch: str) -> float:
    """Adjacent wrong-wrong pairs after learning over their expectation when each sample's
    post-learning sequence is permuted (k(k-1)/n for k errors in n epochs), over seeds.

    1 when P(correct at t+1 | correct at t, sample) = P(correct at t+1 | wrong at t,
    sample), i.e. no memory; above 1 when errors cluster in time.
    """
    observed = expected = 0.0
    for r_arch, seed, arrays in st.runs:
        if r_arch != arch:
            continue
        mask = post_learning(st, arch, seed)
        wrong = ~arrays["correct"] & mask
        n, k = mask.sum(1), wrong.sum(1)
        ok = n >= 2
        observed += (wrong[:, 1:] & wrong[:, :-1]).sum(1)[ok].sum()
        expected += (k * (k - 1) / np.maximum(n, 1))[ok].sum()
    return observed / expected


def error_share(st: planted.PlantedStudy, arch: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: share of post-learning epochs wrong, and the number of such epochs."""
    arrays = next(a for r_arch, r_seed, a in st.runs if (r_arch, r_seed) == (arch, seed))
    mask = post_learning(st, arch, seed)
    n = mask.sum(1)
    return (~arrays["correct"] & mask).sum(1) / np.maximum(n, 1), n


def realized_seed_rho(st: planted.PlantedStudy) -> float:
    """Mean Spearman of the error share over seed pairs within an architecture."""
    size = SIZES[st.size]
    rhos = []
    for arch in size.archs:
        shares = [error_share(st, arch, s) for s in size.seeds]
        for i in range(len(shares)):
            for j in range(i + 1, len(shares)):
                ok = (shares[i][1] >= 10) & (shares[j][1] >= 10)
                rhos.append(spearmanr(shares[i][0][ok], shares[j][0][ok])[0])
    return float(np.mean(rhos))


def realized_f5(st: planted.PlantedStudy) -> float:
    """Mean over runs of Spearman(loss at t = 0, post-learning error share)."""
    w = SIZES[st.size].warmup
    rhos = []
    for arch, seed, arrays in st.runs:
        share, n = error_share(st, arch, seed)
        ok = n >= 10
        rhos.append(spearmanr(arrays["loss"][ok, w], share[ok])[0])
    return float(np.mean(rhos))


def check_arrays(arrays: dict, size: planted_scenarios.Size) -> None:
    """Internal consistency of one run beyond what load_traces checks."""
    t = arrays["t"]
    assert t.tolist() == list(range(-size.warmup, size.epochs + 1))
    for prefix in ("", "heldout_"):
        correct, p = arrays[prefix + "correct"], arrays[prefix + "p_true"]
        label, pred = arrays[prefix + "label"], arrays[prefix + "pred"]
        assert np.array_equal(pred == label[:, None], correct)
        assert np.all((p > 0.5) == correct)  # above every other class iff correct
        loss = arrays[prefix + "loss"]
        np.testing.assert_allclose(loss, -np.log(p.astype(np.float64)), rtol=1e-4, atol=1e-5)
        el2n = arrays[prefix + "el2n"]
        assert np.all(el2n >= (1 - p) - 1e-6) and np.all(el2n <= np.sqrt(2) + 1e-6)
        assert pred.min() >= 0 and pred.max() < size.n_classes
    cos = arrays["class_centroid_cosine"]
    assert cos.shape == (size.n_classes, size.n_classes)
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-6)
    np.testing.assert_allclose(cos, cos.T)


def save_and_load(arrays: dict, path: Path):
    np.savez(path, **arrays)
    return load_traces(path)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_gives_valid_runs_on_one_split(name, tmp_path):
    st = study(name)
    size = SIZES["demo"]
    assert [(a, s) for a, s, _ in st.runs] == [(a, s) for a in size.archs for s in size.seeds]
    first = st.runs[0][2]
    assert first["sample_id"].size == 1400 and first["heldout_sample_id"].size == 350
    assert np.intersect1d(first["sample_id"], first["heldout_sample_id"]).size == 0
    for arch, seed, arrays in st.runs:
        traces = save_and_load(arrays, tmp_path / f"{arch}_{seed}.npz")
        assert traces.n_samples == 1400 and traces.epochs == 20
        for key in ("sample_id", "label", "heldout_sample_id", "heldout_label", "class_names"):
            assert np.array_equal(arrays[key], first[key]), key
        check_arrays(arrays, size)
    assert set(st.truth) == set(CLAIMS)
    assert all(st.truth[c]["truth"] in ("true", "false", "n/a") for c in CLAIMS)


@pytest.mark.parametrize("size_name", ["paper", "large"])
def test_paper_and_large_sizes(size_name, tmp_path):
    st = generate_study("arch_specific", size_name, 0)
    size = SIZES[size_name]
    assert len(st.runs) == 10
    _, _, arrays = st.runs[-1]
    traces = save_and_load(arrays, tmp_path / "run.npz")
    assert traces.n_samples == size.n_train and traces.epochs == 32 and traces.t.size == 36
    assert traces.heldout_sample_id.size == size.n_train // 4
    check_arrays(arrays, size)
    counts = np.bincount(arrays["label"], minlength=size.n_classes)
    assert counts.sum() == size.n_train and counts.min() >= 1
    if size_name == "paper":
        assert list(arrays["class_names"]) == list(planted_scenarios.OCTDL_COUNTS)
        assert 50 <= counts.max() / counts.min() <= 62  # OCTDL's 56:1
    else:
        assert counts.max() - counts.min() <= 1


def test_a_study_is_a_pure_function_of_its_arguments():
    a, b = generate_study("unstable", "demo", 3, seed=7), generate_study("unstable", "demo", 3, seed=7)
    for (_, _, x), (_, _, y) in zip(a.runs, b.runs):
        for key in x:
            assert np.array_equal(x[key], y[key]), key
    assert a.truth == b.truth
    c = generate_study("unstable", "demo", 4, seed=7)
    assert not np.array_equal(a.runs[0][2]["correct"], c.runs[0][2]["correct"])
    assert not np.array_equal(a.runs[0][2]["label"], c.runs[0][2]["label"])
    # one split per (size, replicate, seed), whatever the scenario
    d = generate_study("shared_decay", "demo", 3, seed=7)
    assert np.array_equal(a.runs[0][2]["label"], d.runs[0][2]["label"])
    assert np.array_equal(a.runs[0][2]["sample_id"], d.runs[0][2]["sample_id"])


def test_bad_arguments_name_the_value():
    with pytest.raises(KeyError, match="no_such"):
        generate_study("no_such", "demo", 0)
    with pytest.raises(KeyError, match="huge"):
        sampler_outcomes("f6_gain", "huge", 0)
    with pytest.raises(ValueError, match="replicate"):
        generate_study("unstable", "demo", -1)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_accuracy_levels_are_realistic(name):
    st = study(name)
    w = SIZES["demo"].warmup
    for arch, seed, arrays in st.runs:
        held = arrays["heldout_correct"].mean(0)
        assert 0.6 <= held[w] <= 0.9 and 0.85 <= held[-1] <= 0.99
        assert held[0] < held[w]
        train = arrays["correct"].mean(0)
        assert train[0] < train[w] - 0.2  # warmup epochs: lower accuracy
        assert 0.85 <= train[-1] <= 0.99
        # loss at t = 0 rises with the sample's planted difficulty
        d = st.planted[(arch, seed)]["difficulty"]
        assert spearmanr(arrays["loss"][:, w], d)[0] > 0.2
        # most learned samples are never wrong again
        mask = post_learning(st, arch, seed)
        learned = mask.any(1)
        never = ~(~arrays["correct"] & mask).any(1)
        assert 0.6 <= never[learned].mean() <= 0.9


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_memory_axis(name):
    """Memoryless processes: post-learning errors are as clustered as a permutation of
    each sample's own sequence gives; the chain: clearly more."""
    st = study(name)
    for arch, memory in st.truth["MEMORY"]["by_arch"].items():
        ratio = clustering(st, arch)
        if memory:
            assert ratio > 1.35, (arch, ratio)
        else:
            assert 0.9 < ratio < 1.1, (arch, ratio)
    assert (st.truth["MEMORY"]["truth"] == "true") == any(st.truth["MEMORY"]["by_arch"].values())


def test_f2_true_has_the_same_error_rate_in_both_architectures():
    st = generate_study("f2_true", "paper", 0)
    cnn, vit = SIZES["paper"].archs
    assert st.truth["F2"]["truth"] == "true" and st.truth["F2"]["decay_by_arch"] == {cnn: False, vit: True}
    rates = {}
    for arch in (cnn, vit):
        wrong = n = 0
        for seed in SIZES["paper"].seeds:
            share, count = error_share(st, arch, seed)
            wrong, n = wrong + (share * count).sum(), n + count.sum()
        rates[arch] = wrong / n
    assert abs(rates[cnn] - rates[vit]) < 0.1 * rates[vit]
    assert clustering(st, cnn) < 1.1 and clustering(st, vit) > 1.35


def test_f1_planted_sets():
    arch_specific = study("arch_specific", "paper")
    f1 = arch_specific.truth["F1"]
    assert f1["truth"] == "true" and f1["jaccard_cross"] == pytest.approx(0.34, abs=0.005)
    assert f1["jaccard_within"] == 1.0  # the same set for every seed
    k = int(np.ceil(0.1 * 1400))
    for plant in arch_specific.planted.values():
        assert plant["fast"].sum() == k
        assert plant["propensity"][plant["fast"]].min() > plant["propensity"][~plant["fast"]].max()
    for name in ("shared_decay", "shared_sets", "unstable", "memoryless_curve"):  # no arch dependence
        f1 = study(name, "paper").truth["F1"]
        assert f1["truth"] == "false"
        assert abs(f1["jaccard_cross"] - f1["jaccard_within"]) < 0.03
    # realized: the planted fast set forgets far more than the rest
    arch, seed = next(iter(arch_specific.planted))
    share, n = error_share(arch_specific, arch, seed)
    fast, ok = arch_specific.planted[(arch, seed)]["fast"], n >= 10
    assert share[fast & ok].mean() > 5 * share[~fast & ok].mean()


def test_f3_planted_and_realized_stability():
    unstable = study("unstable", "paper")
    assert unstable.truth["F3"]["truth"] == "true"
    assert unstable.truth["F3"]["rho_within"] == pytest.approx(0.01, abs=0.02)
    assert abs(realized_seed_rho(unstable)) < 0.04  # difficulty does not leak into forgetting
    for name in ("shared_decay", "shared_sets", "f5_false", "arch_specific", "memoryless_curve"):
        st = study(name, "paper")
        assert st.truth["F3"]["truth"] == "false"
        assert 0.38 <= st.truth["F3"]["rho_within"] <= 0.52
        assert realized_seed_rho(st) > 0.08


def test_f5_planted_and_realized():
    names = (
        "shared_decay",
        "f2_true",
        "f5_false",
        "shared_sets",
        "arch_specific",
        "unstable",
        "memoryless_curve",
    )
    for name in names:
        st = study(name, "paper")
        rho, real = st.truth["F5"]["rho"], realized_f5(st)
        if st.truth["F5"]["truth"] == "true":
            assert 0.33 <= rho <= 0.47 and real > 0.12, (name, rho, real)
        else:
            assert abs(rho) < 0.05 and abs(real) < 0.05, (name, rho, real)


def test_declared_truth_matches_the_planted_values():
    for name in SCENARIOS:
        truth = study(name).truth
        f1, f3, f5, f6 = truth["F1"], truth["F3"], truth["F5"], truth["F6"]
        assert (f1["truth"] == "true") == (f1["jaccard_cross"] < f1["jaccard_within"] - 0.3), name
        assert (f3["truth"] == "true") == (f3["rho_within"] < 0.1), name
        assert (f5["truth"] == "true") == (f5["rho"] > 0.3), name
        assert (f6["truth"] == "true") == (f6["mean_diff_heldout"] < f6["margin"]), name
        decay = set(truth["F2"]["decay_by_arch"].values())
        assert (truth["F2"]["truth"] == "true") == (decay == {True, False}), name


@pytest.mark.parametrize("name, gain", [("f6_no_gain", 0.0), ("f6_gain", 0.03), ("f6_worse", -0.03)])
def test_f6_outcomes(name, gain):
    size = SIZES["paper"]
    frames = [sampler_outcomes(name, "paper", r) for r in range(40)]
    one = frames[0]
    assert list(one.columns) == ["arch", "kind", "seed", "heldout_acc", "train_retention", "coverage"]
    assert len(one) == 2 * 2 * len(size.seeds)
    assert one.equals(sampler_outcomes(name, "paper", 0))
    diffs, sds = [], []
    for frame in frames:
        assert frame["heldout_acc"].between(0.8, 0.98).all()
        assert frame["coverage"].between(0.9, 1.0).all()
        wide = frame.pivot_table(index=["arch", "seed"], columns="kind", values="heldout_acc")
        d = wide["spaced"] - wide["random"]
        diffs.append(d.mean())
        sds.extend(d.groupby(level="arch").std())
    assert np.mean(diffs) == pytest.approx(gain, abs=0.003)
    assert 0.005 <= np.mean(sds) <= 0.01
    assert study(name).truth["F6"]["mean_diff_heldout"] == gain

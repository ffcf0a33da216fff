"""Tests of retention.stats: planted structure recovered, direct computations matched,
interval coverage, and clear messages where the grid cannot support a comparison."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from retention import stats
from retention.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
CFG = stats.StatsConfig(bootstrap=200, permutations=200, seed=0)
ARCHS = ("resnet18", "deit_small")


def fits_frame(
    sample_id, label, lam, rng, trace="since_learned", primary=True, status=None, **cols
):
    """A fits table in the contract format; columns not given are random."""
    n = len(sample_id)
    lam = np.asarray(lam, float)
    if status is None:
        status = np.where(
            np.isnan(lam), "never_learned", np.where(lam == 0, "unforgettable", "fitted")
        )
    fitted = status == "fitted"
    df = pd.DataFrame(
        {
            "trace": trace,
            "primary": primary,
            "sample_id": np.asarray(sample_id, np.int64),
            "label": np.asarray(label, np.int64),
            "status": status,
            "lambda": lam,
            "b": rng.uniform(0, 1, n),
            "r2": np.where(fitted, rng.uniform(0.2, 1.0, n), np.nan),
            "sse": rng.uniform(0, 1, n),
            "n_points": 30,
            "t_learn": 0,
            "forget_events": rng.integers(0, 5, n),
            "loss_t0": rng.normal(0, 1, n),
            "el2n_t0": rng.uniform(0, 1, n),
            "confidence": rng.uniform(0, 1, n),
            "variability": rng.uniform(0, 0.5, n),
            "mean_retention": rng.uniform(0, 1, n),
            "aic_exp": rng.normal(0, 1, n),
            "aic_power": rng.normal(0, 1, n),
        }
    )
    for k, v in cols.items():
        df[k] = v
    return df


N_ELIG, C = 1000, 5
TOP = {"resnet18": np.arange(0, 100), "deit_small": np.arange(50, 150)}  # overlap 50 / 150
R2_MEAN = {"resnet18": 0.52, "deit_small": 0.74}


def planted(seeds=(0, 1, 2), archs=ARCHS, traces=("since_learned",), seed=0):
    """Runs with a planted top-10% set per architecture (true Jaccard 1/3 across, 1
    within), a class effect (class c forgets more with c), R^2 means per architecture,
    loss_t0 rising with lambda, 50 never_learned and 10 too_short samples."""
    rng = np.random.default_rng(seed)
    n = N_ELIG + 60
    ids = np.arange(n) * 2 + 11
    label = np.arange(n) % C
    fits, runs = [], []
    for a in archs:
        for s in seeds:
            parts = []
            for t in traces:
                lam = 0.2 * label + rng.uniform(0, 1, n)
                lam[TOP[a]] = 3.0 + rng.uniform(0, 0.5, TOP[a].size)
                lam[900:N_ELIG] = 0.0  # unforgettable
                status = np.where(lam == 0, "unforgettable", "fitted").astype(object)
                status[N_ELIG : N_ELIG + 50] = "never_learned"
                status[N_ELIG + 50 :] = "too_short"
                lam[N_ELIG:] = np.nan
                r2 = np.clip(rng.normal(R2_MEAN[a], 0.1, n), 0, 1)
                r2[(status != "fitted") | (rng.random(n) < 0.1)] = np.nan
                df = fits_frame(
                    ids,
                    label,
                    lam,
                    rng,
                    trace=t,
                    primary=t == traces[0],
                    status=status.astype(str),
                    r2=r2,
                    loss_t0=np.nan_to_num(lam) + rng.normal(0, 0.5, n),
                )
                parts.append(df)
            fits.append(pd.concat(parts, ignore_index=True))
            runs.append((a, s))
    return fits, runs


def class_infos_for(runs, quality=None):
    """Held-out predictions whose confusion rises with the class index (class c: 5c of
    its 100 samples predicted as the next class) and a centroid cosine matrix."""
    infos = []
    names = [f"class{c}" for c in range(C)]
    lab = np.repeat(np.arange(C), 100)
    pred = lab.copy()
    for c in range(C):
        pred[c * 100 : c * 100 + 5 * c] = (c + 1) % C
    s = 0.1 + 0.15 * np.arange(C)
    cos = np.outer(s, s)
    np.fill_diagonal(cos, 1.0)
    for _ in runs:
        infos.append(stats.class_similarity(lab, pred, cos, names))
    return infos


@pytest.fixture(scope="module")
def planted_tables():
    fits, runs = planted(traces=("since_learned", "raw"))
    tables = stats.dataset_tables(
        fits, runs, CFG, "toy", primary="since_learned", class_infos=class_infos_for(runs)
    )
    return fits, runs, tables


# ------------------------------------------------------------------ ranking and sets


def test_forgetting_rank_breaks_ties_by_events_then_retention():
    lam = np.array([1.0, 2.0, 2.0, 2.0, 0.5, 2.0])
    events = np.array([0, 1, 3, 1, 9, 1])
    retention = np.array([0.1, 0.5, 0.9, 0.2, 0.0, 0.5])
    rank = stats.forgetting_rank(lam, events, retention)
    # most forgotten: lam 2 with 3 events; then lam 2, 1 event, retention 0.2; then the
    # two exact ties (lam 2, 1 event, retention 0.5) share a rank; then lam 1; lam 0.5
    assert rank.tolist() == [3, 2, 0, 1, 4, 2]
    with pytest.raises(ValueError, match="NaN"):
        stats.forgetting_rank(np.array([1.0, np.nan]))


def test_top_q_set_includes_ties_at_threshold_and_counts_exclusions():
    rng = np.random.default_rng(0)
    lam = np.array([5, 4, 3, 3, 3, 1, 1, 1, 0.5, 0.2, np.nan, np.nan], float)
    df = fits_frame(np.arange(12), np.zeros(12), lam, rng, forget_events=0, mean_retention=0.5)
    df.loc[11, "status"] = "too_short"
    top = stats.top_q_set(df, 0.3)  # N = 10 eligible, ceil(3) = 3: score >= 3 -> 5 samples
    assert top.k == 3 and top.size == 5 and top.threshold == 3.0
    assert sorted(top.sample_id.tolist()) == [0, 1, 2, 3, 4]
    assert top.n_eligible == 10 and top.n_excluded == {"never_learned": 1, "too_short": 1}
    # q * N with float round-off (0.1 * 30 = 3.0000000000000004) still means 3
    assert stats._top_k(0.1, 30) == 3


def test_jaccard_matches_direct_set_computation(planted_tables):
    fits, runs, tables = planted_tables
    f1 = tables["f1_jaccard"]
    rows = f1[
        (f1["kind"].isin(["cross_pair", "within_pair"]))
        & (f1["q"] == 0.1)
        & (f1["subset"] == "all")
    ]
    assert len(rows) == math.comb(len(runs), 2)
    for r in rows.itertuples():
        ia, ib = runs.index((r.arch, r.seed)), runs.index((r.arch_b, r.seed_b))
        sets = [
            stats.top_q_set(fits[i][fits[i]["trace"] == "since_learned"], 0.1).sample_id
            for i in (ia, ib)
        ]
        assert r.value == pytest.approx(stats.jaccard_sets(*sets))
        assert r.value == pytest.approx(
            len(set(sets[0]) & set(sets[1])) / len(set(sets[0]) | set(sets[1]))
        )


# ------------------------------------------------------------------- planted truths


def test_f1_recovers_planted_overlap(planted_tables):
    _, _, tables = planted_tables
    f1 = tables["f1_jaccard"]
    main = f1[(f1["q"] == 0.1) & (f1["subset"] == "all")]
    assert np.allclose(main.loc[main["kind"] == "cross_pair", "value"], 1 / 3)
    assert np.allclose(main.loc[main["kind"] == "within_pair", "value"], 1.0)
    pooled = main[main["kind"] == "pooled"].iloc[0]
    assert pooled["value"] == pytest.approx(1 / 3)
    assert pooled["size_a"] == 100 and pooled["size_b"] == 100 and pooled["n_samples"] == N_ELIG
    assert (
        pooled["ci_low"] <= 1 / 3 <= pooled["ci_high"]
        and pooled["ci_high"] - pooled["ci_low"] < 0.3
    )
    assert pooled["chance"] == pytest.approx(0.1 / 1.9)
    # the permutation band sits around chance and excludes the planted overlap
    assert pooled["band_low"] < 0.1 / 1.9 < pooled["band_high"] < 1 / 3
    assert pooled["p_value"] == pytest.approx(1 / (CFG.permutations + 1))
    cross = main[main["kind"] == "cross_mean"].iloc[0]
    # 3 + 3 runs: 20 label assignments, observed and its mirror are the most extreme
    assert cross["p_value"] == pytest.approx(2 / 20)
    assert "20 assignments" in cross["test"]
    # sensitivity rows for every q and the R^2 subset
    assert set(f1["q"]) == {0.05, 0.1, 0.2} and set(f1["subset"]) == {"all", "r2>=0.6"}
    sub = f1[(f1["subset"] == "r2>=0.6") & (f1["kind"] == "cross_pair") & (f1["q"] == 0.1)]
    assert (sub["n_samples"] < 900).all() and (sub["n_samples"] > 0).all()


def test_f2_recovers_planted_r2(planted_tables):
    fits, runs, tables = planted_tables
    f2 = tables["f2_r2"]
    for arch in ARCHS:
        row = f2[(f2["kind"] == "arch") & (f2["arch"] == arch)].iloc[0]
        direct = np.concatenate(
            [
                f.loc[(f["trace"] == "since_learned") & (f["status"] == "fitted"), "r2"]
                .dropna()
                .to_numpy()
                for f, (a, _) in zip(fits, runs)
                if a == arch
            ]
        )
        assert row["value"] == pytest.approx(direct.mean())
        assert abs(row["value"] - R2_MEAN[arch]) < 0.02
        assert row["ci_low"] < row["value"] < row["ci_high"]
        frac = f2[(f2["kind"] == "arch_fraction_defined") & (f2["arch"] == arch)].iloc[0]
        assert frac["value"] == pytest.approx(direct.size / (3 * N_ELIG))
    diff = f2[f2["kind"] == "arch_difference"].iloc[0]
    assert diff["value"] == pytest.approx(-0.22, abs=0.02) and diff["p_value"] < 1e-50
    assert diff["ci_high"] < 0
    paired = f2[f2["kind"] == "arch_difference_paired"].iloc[0]
    per = {}
    for arch in ARCHS:
        wide = pd.concat([f.loc[f["trace"] == "since_learned"].set_index("sample_id")["r2"]
                          .where(f.loc[f["trace"] == "since_learned"].set_index("sample_id")["status"] == "fitted")
                          for f, (a, _) in zip(fits, runs) if a == arch], axis=1)
        per[arch] = wide.mean(axis=1)
    d = (per[ARCHS[0]] - per[ARCHS[1]]).dropna().to_numpy()
    assert paired["n_samples"] == d.size and paired["value"] == pytest.approx(d.mean())
    assert paired["p_value"] == pytest.approx(sps.wilcoxon(d).pvalue)
    assert paired["ci_low"] < paired["value"] < paired["ci_high"] < 0


def test_f3_spearman_matches_scipy_on_common_samples(planted_tables):
    fits, runs, tables = planted_tables
    f3 = tables["f3_seed_stability"]
    pairs = f3[f3["kind"].isin(["within_pair", "cross_pair"])]
    assert len(pairs) == 15
    for r in pairs.itertuples():
        a = fits[runs.index((r.arch, r.seed))]
        b = fits[runs.index((r.arch_b, r.seed_b))]
        a = a[(a["trace"] == "since_learned") & a["status"].isin(["fitted", "unforgettable"])]
        b = b[(b["trace"] == "since_learned") & b["status"].isin(["fitted", "unforgettable"])]
        m = a.merge(b, on="sample_id")
        res = sps.spearmanr(m["lambda_x"], m["lambda_y"])
        assert r.value == pytest.approx(res.statistic) and r.p_value == pytest.approx(res.pvalue)
        assert r.n_samples == len(m)


def test_f3_recovers_planted_seed_correlation():
    """lambda = exp(z); z correlates 0.5 between seeds of an architecture and 0.25
    between architectures: Spearman (6 / pi) asin(r / 2)."""
    rng = np.random.default_rng(3)
    n = 3000
    u, v = rng.normal(size=n), rng.normal(size=n)
    common = {"resnet18": u, "deit_small": 0.5 * u + math.sqrt(0.75) * v}
    fits, runs = [], []
    for a in ARCHS:
        for s in range(4):
            z = math.sqrt(0.5) * common[a] + math.sqrt(0.5) * rng.normal(size=n)
            fits.append(fits_frame(np.arange(n), np.arange(n) % 4, np.exp(z), rng))
            runs.append((a, s))
    tab = stats.f3_seed_stability_table(stats.stack_runs(fits, runs, "since_learned"), CFG)
    truth_within, truth_cross = 6 / math.pi * math.asin(0.25), 6 / math.pi * math.asin(0.125)
    for a in ARCHS:
        row = tab[(tab["kind"] == "within_mean") & (tab["arch"] == a)].iloc[0]
        assert abs(row["value"] - truth_within) < 0.04 and row["p_value"] < 1e-10
        assert row["ci_low"] < row["value"] < row["ci_high"]
    cross = tab[tab["kind"] == "cross_mean"].iloc[0]
    assert abs(cross["value"] - truth_cross) < 0.04 and cross["p_value"] < 1e-6


def test_f4_recovers_class_effect_and_similarity(planted_tables):
    _, runs, tables = planted_tables
    f4 = tables["f4_class"]
    for arch in ARCHS:
        top, bottom = stats.extreme_classes(f4, arch)
        assert top == ["class4", "class3"] and bottom == ["class0", "class1"]
        row = f4[(f4["kind"] == "within_mean") & (f4["arch"] == arch)].iloc[0]
        assert row["value"] == pytest.approx(1.0)
    assert np.allclose(f4.loc[f4["kind"] == "within_pair", "value"], 1.0)
    per_run = f4[f4["kind"] == "run_class"]
    assert len(per_run) == len(runs) * C
    sim = tables["f4_class_similarity"]
    conf = sim[(sim["kind"] == "arch_spearman") & (sim["measure"] == "max_confusion")]
    assert np.allclose(conf["value"], 1.0)  # confusion 0.05 c rises with forgetting
    cls = sim[(sim["kind"] == "arch_class") & (sim["arch"] == "resnet18")].sort_values(
        "class_index"
    )
    assert np.allclose(cls["max_confusion"], 0.05 * np.arange(C))
    assert cls["confused_with"].tolist()[1:] == ["class2", "class3", "class4", "class0"]
    s = 0.1 + 0.15 * np.arange(C)
    nearest = np.array([s[c] * (s[-1] if c < C - 1 else s[-2]) for c in range(C)])
    assert np.allclose(cls["nearest_cosine"], nearest)
    cos = sim[(sim["kind"] == "arch_spearman") & (sim["measure"] == "nearest_cosine")].iloc[0]
    assert cos["value"] == pytest.approx(sps.spearmanr(cls["forgetting"], nearest).statistic)


def test_class_info_uses_last_epoch():
    names = np.array(["a", "b", "c"])
    lab = np.array([0, 0, 1, 1, 2, 2])
    pred = np.stack([np.array([1, 1, 0, 0, 0, 0]), np.array([0, 1, 1, 1, 2, 0])], axis=1)  # (N, T)
    arrays = {
        "t": np.array([0, 1]),
        "class_names": names,
        "heldout_label": lab,
        "heldout_pred": pred,
        "class_centroid_cosine": np.eye(3, dtype=np.float32),
    }
    info = stats.class_info_from_traces(arrays)
    assert np.allclose(info.confusion, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    del arrays["heldout_pred"]
    with pytest.raises(DataError, match="heldout_pred"):
        stats.class_info_from_traces(arrays)


def test_f5_spearman_per_run_and_range(planted_tables):
    fits, runs, tables = planted_tables
    f5 = tables["f5_early_predictor"]
    per = f5[f5["kind"] == "run"]
    for r in per.itertuples():
        f = fits[runs.index((r.arch, r.seed))]
        f = f[(f["trace"] == "since_learned") & f["status"].isin(["fitted", "unforgettable"])]
        res = sps.spearmanr(f["loss_t0"], f["lambda"])
        assert r.value == pytest.approx(res.statistic) and r.p_value == pytest.approx(res.pvalue)
    allrow = f5[f5["kind"] == "all"].iloc[0]
    assert allrow["value"] == pytest.approx(per["value"].mean())
    assert allrow["min"] == pytest.approx(per["value"].min()) and allrow["max"] == pytest.approx(
        per["value"].max()
    )
    assert allrow["p_value"] == pytest.approx(per["p_value"].max()) and allrow["n_runs"] == 6
    assert allrow["value"] > 0.5


def test_scores_and_aic_share(planted_tables):
    fits, runs, tables = planted_tables
    sc = tables["scores"]
    assert set(sc.loc[sc["kind"] == "vs_lambda", "score"]) == set(stats.SCORES)
    assert set(sc.loc[sc["kind"] == "within_mean", "score"]) == {"lambda", *stats.SCORES}
    # random scores: no seed stability, no relation with lambda beyond noise
    stab = sc[(sc["kind"] == "within_mean") & (sc["score"] == "confidence")]
    assert (stab["value"].abs() < 0.1).all()
    for r in sc[sc["kind"] == "aic_run"].itertuples():
        f = fits[runs.index((r.arch, r.seed))]
        f = f[(f["trace"] == "since_learned") & (f["status"] == "fitted")]
        assert r.value == pytest.approx((f["aic_exp"] < f["aic_power"]).mean())


def test_summary_and_robustness(planted_tables):
    _, _, tables = planted_tables
    summary = tables["summary"]
    assert list(summary.columns) == stats.SUMMARY_COLUMNS
    assert not summary["finding"].duplicated().any()
    row = summary.set_index("finding").loc[
        "F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)"
    ]
    assert row["value"] == pytest.approx(1 / 3) and row["n_runs"] == 6 and row["dataset"] == "toy"
    assert (
        "most forgotten: class4, class3"
        in summary.set_index("finding").loc["F4 class forgetting across seeds (resnet18)", "detail"]
    )
    rob = tables["robustness"]
    assert set(rob["trace"]) == {"since_learned", "raw"}
    assert rob.loc[rob["primary"], "trace"].eq("since_learned").all()
    assert (rob.groupby("trace").size() == len(summary)).all()
    for name in stats.TABLE_NAMES:
        assert name in tables and len(tables[name]) > 0


def test_dataset_tables_are_reproducible():
    fits, runs = planted(seeds=(0, 1))
    cfg = stats.StatsConfig(bootstrap=50, permutations=50, seed=7)
    a = stats.dataset_tables(fits, runs, cfg, "toy", primary="since_learned")
    b = stats.dataset_tables(fits, runs, cfg, "toy", primary="since_learned")
    pd.testing.assert_frame_equal(a["summary"], b["summary"])
    c = stats.dataset_tables(
        fits,
        runs,
        stats.StatsConfig(bootstrap=50, permutations=50, seed=8),
        "toy",
        primary="since_learned",
    )
    assert not a["summary"]["ci_low"].equals(c["summary"]["ci_low"])


# ----------------------------------------------------------------- too small a grid


def test_single_seed_gives_a_row_that_says_so():
    fits, runs = planted(seeds=(0,))
    tables = stats.dataset_tables(fits, runs, CFG, "toy", primary="since_learned")
    s = tables["summary"].set_index("finding")
    within = s.loc["F3 Spearman lambda across seeds (resnet18)"]
    assert np.isnan(within["value"]) and "needs two seeds of resnet18" in within["detail"]
    assert "needs two seeds" in s.loc["F1 Jaccard top-10% within deit_small (seed pairs)", "detail"]
    # the cross-architecture comparison still works with one seed each
    assert s.loc[
        "F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)", "value"
    ] == pytest.approx(1 / 3)


def test_single_architecture_gives_a_row_that_says_so():
    fits, runs = planted(archs=("resnet18",))
    tables = stats.dataset_tables(fits, runs, CFG, "toy", primary="since_learned")
    s = tables["summary"].set_index("finding")
    for finding in (
        "F1 Jaccard top-10% across architectures (seed-pooled)",
        "F3 Spearman lambda across architectures (seed pairs)",
        "F2 mean R2 between architectures",
    ):
        assert np.isnan(s.loc[finding, "value"])
        assert "needs two architectures" in s.loc[finding, "detail"]
    assert s.loc["F3 Spearman lambda across seeds (resnet18)", "value"] > 0.5  # class effect shared


def test_single_run_and_bad_input():
    fits, runs = planted(seeds=(0,), archs=("resnet18",))
    tables = stats.dataset_tables(fits, runs, CFG, "toy", primary="since_learned")
    assert "needs two" in " ".join(tables["summary"]["detail"])
    with pytest.raises(DataError, match="need at least one run"):
        stats.dataset_tables([], [], CFG, "toy")
    with pytest.raises(DataError, match="given twice"):
        stats.stack_runs(fits * 2, runs * 2, "since_learned")
    with pytest.raises(DataError, match="primary trace 'raw' is not in the fits tables"):
        stats.dataset_tables(fits, runs, CFG, "toy", primary="raw")
    two, two_runs = planted(seeds=(0, 1), archs=("resnet18",), traces=("since_learned", "raw"))
    two[1] = two[1][two[1]["trace"] == "since_learned"]
    with pytest.raises(DataError, match="run resnet18/seed1 has no rows for trace 'raw'"):
        stats.dataset_tables(two, two_runs, CFG, "toy", primary="since_learned")
    with pytest.raises(DataError, match="lacks column"):
        stats.stack_runs([fits[0].drop(columns="loss_t0")], runs, "since_learned")
    with pytest.raises(ConfigError, match="unknown key"):
        stats.StatsConfig.from_mapping({"top_q": 0.1, "topq": 0.2})
    assert stats.StatsConfig.from_mapping({"sensitivity_q": [0.05, 0.1]}).sensitivity_q == (
        0.05,
        0.1,
    )


# ---------------------------------------------------------------- interval coverage


def test_bootstrap_mean_interval_covers_about_95_percent():
    rng = np.random.default_rng(11)
    hits = [
        lo <= 1.0 <= hi
        for lo, hi in (
            stats.percentile_interval(stats.bootstrap_mean(rng.normal(1.0, 2.0, 40), 200, rng))
            for _ in range(200)
        )
    ]
    assert 0.88 <= np.mean(hits) <= 0.99


def test_pooled_jaccard_interval_covers_about_95_percent():
    """Scores from a bivariate normal with correlation 0.6: the population Jaccard of
    the top-10% sets is P(both) / (2q - P(both))."""
    q, rho, n = 0.1, 0.6, 2000
    z = sps.norm.ppf(1 - q)
    p11 = sps.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([-z, -z])
    truth = p11 / (2 * q - p11)
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):
        x = rng.normal(size=n)
        y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
        ra, rb = stats.forgetting_rank(x), stats.forgetting_rank(y)
        lo, hi = stats.percentile_interval(stats.bootstrap_topq_jaccard(ra, rb, q, 200, rng))
        hits.append(lo <= truth <= hi)
    assert 0.88 <= np.mean(hits) <= 0.99


def _rank_corr(a, b):
    return np.corrcoef(sps.rankdata(a), sps.rankdata(b))[0, 1]


def test_pair_mean_tests_hold_their_level():
    """Independent runs: the within z test rejects ~5%. Runs correlated within an
    architecture (0.7) but independent across: the cross test still rejects ~5%,
    where treating the cross pairs as independent would not."""
    rng = np.random.default_rng(5)
    n, k = 200, 3
    rej_within, rej_cross, rej_naive = [], [], []
    for _ in range(200):
        runs = rng.normal(size=(k, n))
        rhos = [_rank_corr(runs[i], runs[j]) for i in range(k) for j in range(i + 1, k)]
        rej_within.append(stats.pair_mean_z_test(rhos, [n] * len(rhos)) < 0.05)
        ua, ub = rng.normal(size=n), rng.normal(size=n)
        a = math.sqrt(0.7) * ua + math.sqrt(0.3) * rng.normal(size=(k, n))
        b = math.sqrt(0.7) * ub + math.sqrt(0.3) * rng.normal(size=(k, n))
        cross = np.array([[_rank_corr(a[i], b[j]) for j in range(k)] for i in range(k)])
        wa = np.array([[_rank_corr(a[i], a[j]) for j in range(k)] for i in range(k)])
        wb = np.array([[_rank_corr(b[i], b[j]) for j in range(k)] for i in range(k)])
        rej_cross.append(stats.cross_pair_mean_z_test(cross, np.full((k, k), n), wa, wb) < 0.05)
        rej_naive.append(stats.pair_mean_z_test(cross.ravel(), [n] * k * k) < 0.05)
    assert 0.01 <= np.mean(rej_within) <= 0.1
    assert 0.01 <= np.mean(rej_cross) <= 0.1
    assert np.mean(rej_naive) > 0.2


def test_cross_pair_z_test_counts_only_defined_pairs():
    """Undefined (NaN) pairs drop out of the mean and of its variance: with independent
    runs the test equals the plain pair-mean test on the defined pairs."""
    rhos = np.array([[0.05, np.nan], [np.nan, 0.05]])
    eye = np.eye(2)
    p = stats.cross_pair_mean_z_test(rhos, np.full((2, 2), 1000), eye, eye)
    assert p == pytest.approx(stats.pair_mean_z_test([0.05, 0.05], [1000, 1000]))
    assert p > 0.02


def test_arch_label_permutation_is_exact():
    m = np.full((4, 4), 0.1)
    m[:2, :2] = m[2:, 2:] = 0.9
    np.fill_diagonal(m, np.nan)
    stat, p, n_assign = stats.arch_label_permutation(
        m, np.array([1, 1, 0, 0], bool), np.random.default_rng(0)
    )
    assert n_assign == 6 and p == pytest.approx(2 / 6) and stat == pytest.approx(0.8)


# ------------------------------------------------------------------------- script


def test_compute_stats_script_standalone(tmp_path):
    fits, runs = planted(seeds=(0, 1))
    paths, tpaths = [], []
    infos = class_infos_for(runs)
    for (a, s), f, info in zip(runs, fits, infos):
        p = tmp_path / "fits" / a / f"seed{s}.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        f.to_parquet(p)
        paths.append(str(p))
        lab = np.repeat(np.arange(C), 100)
        pred = np.stack([lab, lab], axis=1)
        t = tmp_path / "runs" / a / f"seed{s}" / "traces.npz"
        t.parent.mkdir(parents=True)
        np.savez(
            t,
            t=np.array([0, 1]),
            class_names=np.array(info.class_names),
            heldout_label=lab,
            heldout_pred=pred,
            class_centroid_cosine=info.centroid_cosine.astype(np.float32),
        )
        tpaths.append(str(t))
    out = tmp_path / "stats"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "compute_stats.py"),
        "--dataset",
        "toy",
        "--outdir",
        str(out),
        "--fits",
        *paths,
        "--traces",
        *tpaths,
        "--bootstrap",
        "50",
        "--permutations",
        "50",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for name in stats.TABLE_NAMES:
        assert (out / f"{name}.csv").stat().st_size > 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[summary["finding"].str.contains("seed-pooled"), "value"].iloc[
        0
    ] == pytest.approx(1 / 3)
    # a user error is one line on stderr, exit 1
    bad = subprocess.run(
        cmd[:-8] + ["--fits", str(tmp_path / "missing.parquet"), "--runs", "resnet18:0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_spearman_p_is_exact_for_few_classes_and_scipy_for_many():
    """7 classes (OCTDL): the p of a perfect rank agreement is the exact 2 / 7!, where the
    t-approximation would say 0; with many pairs p is scipy's."""
    x = np.arange(7.0)
    rho, p, n = stats.spearman(x, x ** 2)
    assert (rho, n) == (1.0, 7) and p == pytest.approx(2 / math.factorial(7))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=7), rng.normal(size=7)
    exact = np.mean([abs(sps.spearmanr(a[list(perm)], b).statistic) >= abs(sps.spearmanr(a, b).statistic) - 1e-12
                     for perm in itertools.permutations(range(7))])
    assert stats.spearman(a, b)[1] == pytest.approx(exact)
    a, b = rng.normal(size=12), rng.normal(size=12)  # Monte Carlo, seeded: reproducible
    assert stats.spearman(a, b)[1] == stats.spearman(a, b)[1]
    assert stats.spearman(a, b)[1] == pytest.approx(sps.spearmanr(a, b).pvalue, abs=0.06)
    a, b = rng.normal(size=200), rng.normal(size=200)
    assert stats.spearman(a, b)[1] == sps.spearmanr(a, b).pvalue


def test_chance_at_set_sizes_is_the_hypergeometric_expectation():
    rng = np.random.default_rng(0)
    n, a, b = 1411, 398, 142
    draws = []
    for _ in range(4000):
        sa, sb = np.zeros(n, bool), np.zeros(n, bool)
        sa[rng.choice(n, a, replace=False)] = True
        sb[rng.choice(n, b, replace=False)] = True
        draws.append(stats.jaccard(sa, sb))
    assert stats.chance_jaccard_sizes(n, a, b) == pytest.approx(np.mean(draws), abs=0.002)
    assert stats.chance_jaccard_sizes(n, a, b) > 1.4 * stats.chance_jaccard(0.1)  # sizes matter
    # sets of exactly ceil(q N): METHOD's q / (2 - q)
    assert stats.chance_jaccard_sizes(1000, 100, 100) == pytest.approx(stats.chance_jaccard(0.1), rel=0.01)


def test_status_counts_and_tied_sets_are_reported(planted_tables):
    fits, runs, tables = planted_tables
    counts = tables["status_counts"]
    assert len(counts) == 2 * len(runs)  # two trace definitions
    row = counts[(counts["trace"] == "since_learned")].iloc[0]
    assert (row["never_learned"], row["too_short"], row["n_samples"]) == (50, 10, N_ELIG + 60)
    assert row["fitted"] + row["unforgettable"] == N_ELIG
    f1 = tables["f1_jaccard"]
    pairs = f1[f1["kind"].isin(["cross_pair", "within_pair"])]
    assert (pairs["k"] == np.ceil(pairs["q"] * pairs["n_samples"] - 1e-9)).all()
    assert pairs["chance_sizes"].notna().all()
    summary = tables["summary"].set_index("finding")
    assert f"never_learned {50 * len(runs)}, too_short {10 * len(runs)}" in summary.filter(like="F1", axis=0)["detail"].iloc[0]
    # most samples unforgettable (lambda = 0): the top-10% sets take in the whole tie
    flat = [df.assign(**{"lambda": np.where(df["lambda"] > 3.25, df["lambda"], np.where(df["lambda"].notna(), 0.0, np.nan))},
                      status=np.where(df["status"] == "fitted", np.where(df["lambda"] > 3.25, "fitted", "unforgettable"), df["status"]),
                      forget_events=np.where(df["lambda"] > 3.25, df["forget_events"], 0),
                      mean_retention=np.where(df["lambda"] > 3.25, df["mean_retention"], 1.0))
            for df in fits]
    tied = stats.dataset_tables(flat, runs, CFG, "toy", primary="since_learned")["summary"]
    assert tied["detail"].str.contains("ties at the cut-off enlarge the sets").any()

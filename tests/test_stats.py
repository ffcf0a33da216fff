"""Tests of retention.stats: exactly-k rank sets, seeds as the unit of replication, tests
that can reach significance on a planted effect, null models that cover a planted null,
and rows that say why the grid cannot support a comparison."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from retention import findings, paths, stats
from retention.errors import DataError
from retention.stats import f6, ranksets, tables
from retention.stats.correlation import meta_estimate
from retention.stats.estimate import Estimate, Finding
from retention.stats.registry import FINDINGS

from .stats_fixtures import decay_study, fits_table, memoryless_study, planted, tied_lambda, unstable

ROOT = Path(__file__).resolve().parents[1]
FAST = stats.StatsConfig(bootstrap=50, tie_draws=20, null_draws=0)


def primary_rows(fits, runs, cfg, dataset="toy"):
    data = stats.StatsInput(
        stats.stack_runs(fits, runs, "since_learned", cfg.rank_score), [f"c{k}" for k in range(7)]
    )
    return tables.summary_table(data, cfg, dataset, only=lambda f: f.primary)


# ------------------------------------------------------------------ exactly-k sets


def test_top_sets_have_exactly_k_members_and_break_ties_at_random():
    rng = np.random.default_rng(0)
    score = np.r_[np.full(30, 5.0), rng.uniform(1, 4, 50), np.zeros(120)]  # 30 tied at the top
    sets = ranksets.top_sets(score, 0.1, draws=200, rng=rng)  # k = 20 of the 30 tied
    assert sets.k == 20 and sets.masks.shape == (200, 200)
    assert np.all(sets.masks.sum(axis=1) == 20)
    assert not sets.masks[:, 30:].any()  # nothing below the cut-off
    picked = sets.masks[:, :30].mean(axis=0)
    assert 0.5 < picked.min() and picked.max() < 0.85  # each tied sample in about 2/3 of the draws
    assert len({m.tobytes() for m in sets.masks}) > 150  # the draws differ
    untied = ranksets.top_sets(np.arange(100.0), 0.1, draws=200, rng=rng)
    assert untied.masks.shape == (1, 100) and untied.masks[0, 90:].all()  # no tie to break


def test_top_set_is_undefined_when_the_cutoff_falls_inside_the_lowest_group():
    score = np.r_[np.full(15, 2.0), np.zeros(185)]  # 15 above 0, k = 20
    sets = ranksets.top_sets(score, 0.1, draws=10, rng=np.random.default_rng(0))
    assert not sets.defined
    assert "cut-off inside the lowest-score group: 15 of 200" in sets.reason
    assert "fewer than 30" in ranksets.top_sets(np.arange(20.0), 0.5, 5, np.random.default_rng(0), 30).reason


def test_jaccard_of_untied_sets_matches_the_set_computation_and_chance_is_exact():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=500), rng.normal(size=500)
    sa = ranksets.top_sets(a, 0.1, 5, rng)
    sb = ranksets.top_sets(b, 0.1, 5, rng)
    top_a, top_b = set(np.argsort(-a)[:50]), set(np.argsort(-b)[:50])
    assert ranksets.jaccard_draws(sa, sb)[0] == pytest.approx(len(top_a & top_b) / len(top_a | top_b))
    sims = [
        ranksets.jaccard_draws(*(ranksets.top_sets(rng.normal(size=200), 0.1, 1, rng) for _ in range(2)))[0]
        for _ in range(4000)
    ]
    assert ranksets.chance_jaccard(200, 20) == pytest.approx(np.mean(sims), abs=0.004)
    assert ranksets.chance_jaccard(200, 20) == pytest.approx(0.1 / 1.9, abs=0.01)


def test_every_rank_score_ranks_more_forgotten_higher():
    rng = np.random.default_rng(2)
    n = 6
    status = np.array(["fitted"] * 5 + ["unforgettable"])
    table = fits_table(
        np.arange(n),
        np.zeros(n, int),
        np.array([3.0, 2, 1, 0.5, 0.2, 0]),
        status,
        rng,
        b=np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        mean_retention=np.array([0.2, 0.4, 0.5, 0.7, 0.9, 1]),
        soft_lambda=np.array([2.0, 1.5, 1, 0.5, 0.2, 0.1]),
        soft_mean_retention=np.array([0.3, 0.4, 0.5, 0.6, 0.8, 0.99]),
    )
    for score in stats.RANK_SCORES:
        s = stats.stack_runs([table], [("a", 0)], "since_learned", score).score[0]
        assert np.all(np.diff(s) < 0), score  # sample 0 most forgotten under every score


# ------------------------------------------------------------------ tests that can succeed


def test_planted_effects_reach_the_holm_threshold_with_the_default_counts():
    cfg = stats.StatsConfig(null_draws=0)  # every other count at its default
    rows = primary_rows(*planted(), cfg).set_index("id")
    m = len(rows) + 2  # the primary family of a dataset: these rows and F6 for two architectures
    assert m == 7
    for fid in ("F1.difference", "F2.arch_difference", "F5.meta"):
        assert rows.loc[fid, "p_value"] < cfg.alpha / m, (fid, rows.loc[fid, "p_value"])
    assert rows.loc["F1.difference", "value"] > 0.3
    assert rows.loc["F2.arch_difference", "value"] == pytest.approx(-0.22, abs=0.03)
    f3 = primary_rows(*unstable(), cfg).set_index("id").loc["F3.within"]
    assert np.all(f3["p_value"] < cfg.alpha / m), f3["p_value"].tolist()  # equivalent to 0
    noise = np.random.default_rng(0).normal(0, 0.003, 20)
    outcomes = pd.DataFrame(
        [
            {
                "arch": a,
                "kind": k,
                "seed": s,
                "heldout_acc": 0.8 + 0.01 * s - (0.02 if k == "spaced" else 0) + noise[i],
                "train_retention": 0.9,
                "coverage": 1.0,
            }
            for i, (a, k, s) in enumerate(
                (a, k, s) for a in ("r", "d") for k in ("random", "spaced") for s in range(5)
            )
        ]
    )
    comp = f6.compare_samplers(outcomes, margin=0.01)
    assert np.all(comp[comp["outcome"] == "heldout_acc"]["p_non_superiority"] < cfg.alpha / m)


def test_f1_sets_are_never_built_from_a_tie_group():
    fits, runs = planted(n=600, seeds=(0, 1, 2))
    data = stats.StatsInput(stats.stack_runs(fits, runs, "since_learned"), [])
    detail = stats.f1.detail_table(data.stack, FAST)
    main = detail[(detail["q"] == 0.1) & (detail["subset"] == "all")]
    assert np.all(main["k"] < main["n_samples"])
    assert (main["draw_max"] > main["draw_min"]).any()  # ties at the cut-off are broken at random
    # a run whose 90% sit at lambda = 0: its pairs are undefined, with the reason
    rng = np.random.default_rng(5)
    lam = np.r_[np.full(50, 1.0), np.zeros(550)]
    degenerate = [
        fits_table(np.arange(600), np.zeros(600, int), lam, np.where(lam > 0, "fitted", "unforgettable"), rng)
        for _ in range(3)
    ]
    rows = primary_rows(
        degenerate + degenerate, [("a", s) for s in range(3)] + [("b", s) for s in range(3)], FAST
    )
    row = rows.set_index("id").loc["F1.difference"]
    assert np.isnan(row["value"]) or np.isnan(row["p_value"])
    assert "cut-off inside the lowest-score group" in row["note"]


def test_f5_p_is_not_small_when_the_runs_disagree_in_sign():
    est = meta_estimate(
        [0.6, -0.6, 0.55, -0.5, 0.62, -0.58], [2000] * 6, stats.StatsConfig(), alternative="greater"
    )
    assert abs(est.value) < 0.1 and est.p_value > 0.3
    agree = meta_estimate(
        [0.4, 0.35, 0.45, 0.38, 0.42, 0.41], [2000] * 6, stats.StatsConfig(), alternative="greater"
    )
    assert agree.p_value < 1e-4 and agree.ci_low > 0.3


# ------------------------------------------------------------------ the null model


def test_a_memoryless_study_is_never_beyond_the_null():
    fits, null_fits, runs = memoryless_study()
    cfg = stats.StatsConfig(bootstrap=50, tie_draws=20, null_draws=20)
    out = stats.dataset_tables(fits, runs, cfg, "memoryless", "since_learned", null_fits=null_fits)
    table = findings.assemble_findings([out["summary"]], findings.Study(alpha=0.05))
    primary = table[table["primary"]]
    assert len(primary) == 5
    assert (primary["null_verdict"] == "explained by null").all(), primary[
        ["id", "arch", "value", "null_reason"]
    ]
    # F5 arises from difficulty alone here: the claim holds, and the null gives it too
    f5 = primary.set_index("id").loc["F5.meta"]
    assert f5["claim_verdict"] == "holds" and f5["null_verdict"] == "explained by null"
    # F3: difficulty makes per-sample scores agree across seeds; the claim (rho about 0) fails
    assert set(primary[primary["id"] == "F3.within"]["claim_verdict"]) == {"contradicted"}


def test_real_forgetting_dynamics_are_told_apart_from_the_null():
    fits, null_fits, runs = decay_study()
    cfg = stats.StatsConfig(bootstrap=50, tie_draws=20, null_draws=20)
    out = stats.dataset_tables(fits, runs, cfg, "decay", "since_learned", null_fits=null_fits)
    table = findings.assemble_findings([out["summary"]], findings.Study(alpha=0.05)).set_index("id")
    f3, f5 = table.loc["F3.within"], table.loc["F5.meta"]
    # the samples forget alike in every run: rho across seeds well above the null's
    assert (f3["value"] > f3["null_shuffle_high"]).all()
    assert set(f3["claim_verdict"]) == {"contradicted"}  # stable, so not "about 0"
    # above the null, but against the claim's direction (toward 0): not "beyond null"
    assert set(f3["null_verdict"]) == {"undetermined"}
    assert f3["null_reason"].str.contains("against the claim's direction").all()
    assert f5["value"] > f5["null_iid_high"] and f5["claim_verdict"] == "holds"
    assert f5["null_verdict"] == "beyond null"


# ------------------------------------------------------------------ what the grid cannot support


def test_one_seed_and_one_architecture_give_rows_that_say_so():
    fits, runs = planted(n=400, seeds=(0,))
    rows = primary_rows(fits, runs, FAST).set_index("id")
    assert "interval needs at least" in rows.loc["F2.arch_difference", "note"]
    one_arch = primary_rows(fits[:1], runs[:1], FAST).set_index("id")
    assert "needs two architectures" in one_arch.loc["F1.difference", "note"]


def test_bad_input_is_a_one_line_error():
    fits, runs = planted(n=300, seeds=(0, 1))
    with pytest.raises(DataError, match="given twice"):
        stats.dataset_tables(fits[:2], [runs[0], runs[0]], FAST, "x", "since_learned")
    with pytest.raises(DataError, match="primary trace 'raw' is not in the fits tables"):
        stats.dataset_tables(fits, runs, FAST, "x", "raw")
    bad = fits[0].copy()
    bad.loc[0, "label"] = 6 if bad.loc[0, "label"] != 6 else 5
    with pytest.raises(DataError, match="the runs must share one split"):
        stats.stack_runs([bad, fits[1]], runs[:2], "since_learned")
    with pytest.raises(DataError, match="lacks column"):
        stats.stack_runs([fits[0].drop(columns=["soft_lambda"])], runs[:1], "since_learned")


def test_an_undeclared_column_or_a_repeated_row_is_an_error():
    fits, runs = planted(n=300, seeds=(0, 1))
    data = stats.StatsInput(stats.stack_runs(fits, runs, "since_learned"), [])
    sloppy = Finding(
        "X.sloppy", "X", "x", lambda d, c: [Estimate(arch="a", extra={"surprise": 1})], "seed", "none"
    )
    with pytest.raises(ValueError, match="'surprise'.*not declared"):
        tables.estimates(sloppy, data, FAST)
    twice = Finding(
        "X.twice", "X", "x", lambda d, c: [Estimate(arch="a"), Estimate(arch="a")], "seed", "none"
    )
    with pytest.raises(ValueError, match="two estimates"):
        tables.estimates(twice, data, FAST)


# ------------------------------------------------------------------ nulls, pairs, criteria


@pytest.mark.parametrize(
    "direction, observed, expect",
    [
        ("greater", 0.3, "small"),  # above the null: evidence in the claim's direction
        ("greater", -0.1, "large"),  # significantly BELOW the null: no evidence for "greater"
        ("less", -0.1, "small"),
        ("toward_zero", 0.02, "small"),  # null mean 0.1 > 0: closer to 0 is "less"
        ("two-sided", -0.1, "small"),
    ],
)
def test_the_null_p_is_one_sided_in_the_claims_direction(direction, observed, expect):
    draws = np.random.default_rng(0).normal(0.1, 0.02, 40)
    p = tables.null_comparison(observed, draws, direction)["p"]
    assert (p < 0.001) if expect == "small" else (p > 0.999), p


def test_a_null_without_spread_never_inverts():
    same = np.full(20, 0.25)
    assert tables.null_comparison(0.25, same, "greater")["p"] == 1.0  # the null gives exactly this
    other = tables.null_comparison(0.40, same, "greater")
    assert np.isnan(other["p"]) and other["low"] == other["high"] == 0.25  # no distribution: no p


def test_undefined_pairs_leave_their_seed_out_and_the_row_says_so():
    fits, runs = planted(n=600, seeds=(0, 1, 2, 3))
    rng = np.random.default_rng(5)
    lam = np.r_[np.full(20, 1.0), np.zeros(580)]  # its top set is undefined (cut-off in the ties)
    i = runs.index(("resnet18", 0))
    fits[i] = fits_table(
        fits[i]["sample_id"], fits[i]["label"], lam, np.where(lam > 0, "fitted", "unforgettable"), rng
    )
    row = primary_rows(fits, runs, FAST).set_index("id").loc["F1.difference"]
    assert row["pairs_total"] == 6 + 6 + 16 and row["pairs_used"] == 3 + 3 + 9  # seed 0 out
    assert "seed(s) 0 left out" in row["note"] and "cut-off inside the lowest-score group" in row["note"]
    assert np.isfinite(row["ci_low"])  # the three other seeds give an interval


def test_settling_criteria_rows():
    fits, runs = planted(n=600, seeds=(0, 1, 2))
    data = stats.StatsInput(stats.stack_runs(fits, runs, "since_learned"), [])
    summary = tables.summary_table(data, FAST, "toy", only=lambda f: f.id.endswith("settling"))
    f1 = summary[summary["id"] == "F1.settling"].iloc[0]
    assert f1["criterion"] == 0.6 and f1["value"] < 0.6 and f1["above"] == 0 and f1["p_value"] > 0.5
    stable = summary[summary["id"] == "F3.settling"]
    assert (stable["criterion"] == 0.4).all() and len(stable) == 2


def test_a_study_where_nothing_was_learned_says_so_in_every_empty_row():
    rng = np.random.default_rng(1)
    n = 200
    never = np.full(n, "never_learned")
    fits = [fits_table(np.arange(n), np.arange(n) % 7, np.full(n, np.nan), never, rng) for _ in range(6)]
    runs = [(a, s) for a in ("cnn", "vit") for s in range(3)]
    out = stats.dataset_tables(fits, runs, FAST, "none", "since_learned")
    empty = out["summary"][out["summary"]["value"].isna()]
    assert len(empty) >= 10
    assert empty["note"].str.startswith("no sample was ever learned in any run").all(), empty[["id", "note"]]
    few = [
        fits_table(
            np.arange(n),
            np.arange(n) % 7,
            np.r_[np.full(5, 1.0), np.full(n - 5, np.nan)],
            np.r_[np.full(5, "fitted"), np.full(n - 5, "never_learned")],
            rng,
        )
        for _ in range(6)
    ]
    out = stats.dataset_tables(few, runs, FAST, "few", "since_learned")
    empty = out["summary"][out["summary"]["value"].isna()]
    assert len(empty) and empty["note"].str.startswith("too few samples were learned").all()


# ------------------------------------------------------------------ registry and tables


def test_a_made_up_finding_is_one_registry_entry_plus_one_estimator():
    def mean_score(data, cfg):
        return [
            Estimate(arch=a, value=float(np.nanmean(data.stack.score[data.stack.run_index(a)])), n_runs=2)
            for a in data.stack.archs
        ]

    made_up = Finding(
        "X.mean_score", "X", "mean {score} ({arch})", mean_score, "seed", "none", figure="robustness"
    )
    registry = FINDINGS + (made_up,)
    fits, runs = planted(n=300, seeds=(0, 1))
    out = stats.dataset_tables(fits, runs, FAST, "toy", "since_learned", findings=registry)
    rows = out["summary"][out["summary"]["id"] == "X.mean_score"]
    assert len(rows) == 2 and np.isfinite(rows["value"]).all()
    table = findings.assemble_findings(
        [out["summary"]], findings.Study(labels={"resnet18": "ResNet-18"}), findings=registry
    )
    assert "mean lambda (ResNet-18)" in set(table["finding"])


def test_summary_robustness_and_detail_tables():
    fits, runs = planted(n=500, seeds=(0, 1, 2))
    # a second trace definition for the robustness table
    fits = [pd.concat([f, f.assign(trace="raw", primary=False)], ignore_index=True) for f in fits]
    out = stats.dataset_tables(fits, runs, FAST, "toy", "since_learned")
    assert list(out) == list(paths.STATS_TABLES)
    assert list(out["summary"].columns) == tables.summary_columns()
    rob = out["robustness"]
    variants = set(zip(rob["trace"], rob["score"]))
    assert variants == {("since_learned", s) for s in stats.RANK_SCORES if s != "lambda"} | {
        ("raw", "lambda")
    }
    assert "F2.arch_difference" not in set(rob[rob["score"] != "lambda"]["id"])  # R^2 does not use the score
    assert set(rob["id"]) == {f.id for f in FINDINGS if f.primary and f.estimate is not None}
    bounds = out["bounds"]
    assert bounds["at_zero"].between(0.33, 0.45).all() and bounds["at_max"].between(0.10, 0.14).all()
    agree = out["rank_scores"]
    assert len(agree) == len(runs) * 10 and agree["value"].between(-1, 1).all()
    again = stats.dataset_tables(fits, runs, FAST, "toy", "since_learned")
    pd.testing.assert_frame_equal(out["summary"], again["summary"])  # reproducible


def test_intervals_are_truncated_to_the_range_of_the_quantity():
    fits, runs = unstable(n=200, seeds=(0, 1, 2))
    rows = primary_rows(fits, runs, FAST)
    f3 = rows[rows["id"] == "F3.within"]
    assert (f3["ci_low"] >= -1).all() and (f3["ci_high"] <= 1).all()


def test_spearman_p_is_exact_for_few_classes_and_scipy_for_many():
    x = np.array([1.0, 2, 3, 4, 5, 6, 7])
    y = np.array([2.0, 1, 4, 3, 7, 5, 6])
    rho, p, n = stats.spearman(x, y)
    assert n == 7 and rho == pytest.approx(sps.spearmanr(x, y).statistic)
    perm = sps.permutation_test(
        (x,),
        lambda a: sps.spearmanr(a, y).statistic,
        permutation_type="pairings",
        n_resamples=math.factorial(7),
    )
    assert p == pytest.approx(perm.pvalue)
    big = np.random.default_rng(0).normal(size=(2, 100))
    assert stats.spearman(*big)[1] == pytest.approx(sps.spearmanr(*big).pvalue)


def test_tied_lambda_fixture_is_realistic():
    lam, status = tied_lambda(1000, np.random.default_rng(0))
    eligible = np.isfinite(lam)
    assert 0.4 <= np.mean(lam[eligible] == 0) <= 0.45 and 0.1 < np.mean(lam[eligible] == 5.0) < 0.14


@pytest.mark.integration
def test_compute_stats_script_standalone(tmp_path):
    fits, runs = planted(n=300, seeds=(0, 1))
    paths = []
    for (arch, seed), f in zip(runs, fits):
        p = tmp_path / "fits" / arch / f"seed{seed}.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        f.to_parquet(p)
        paths.append(str(p))
    cmd = [
        sys.executable,
        str(ROOT / "scripts/compute_stats.py"),
        "--dataset",
        "toy",
        "--outdir",
        str(tmp_path / "out"),
        "--primary",
        "since_learned",  # the fixture's fits (the default is the schema's, since_learned_la3)
        "--fits",
        *paths,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert {"F1.difference", "F5.meta"} <= set(summary["id"])
    bad = subprocess.run(cmd[: -len(paths)] + [paths[0], paths[0]], capture_output=True, text=True)
    assert bad.returncode == 1 and "given twice" in bad.stderr and "Traceback" not in bad.stderr


def test_samples_table_joins_each_sample_to_its_file_with_seed_means_and_rank():
    rng = np.random.default_rng(3)
    n = 40
    lam = np.r_[np.full(10, 4.0), np.linspace(0.1, 2, 30)]
    status = np.array(["fitted"] * n)
    a = [
        fits_table(np.arange(n), np.zeros(n, int), lam + 0.1 * s, status, rng, forget_events=np.full(n, s))
        for s in (0, 1)
    ]
    stack = stats.stack_runs(a, [("cnn", 0), ("cnn", 1)], "since_learned")
    manifest = pd.DataFrame(
        {"sample_id": np.arange(n), "class_name": "c", "source": [f"x/{i}.png" for i in range(n)]}
    )
    table = stats.samples.samples_table(stack, manifest)
    assert len(table) == n and table["source"].iloc[3] == "x/3.png"
    assert table["cnn_lambda_mean"].iloc[0] == pytest.approx(4.05)
    assert table["cnn_lambda_sd"].iloc[0] == pytest.approx(np.std([4.0, 4.1], ddof=1))
    assert table["cnn_forget_events_mean"].iloc[5] == pytest.approx(0.5)
    assert table["cnn_status"].iloc[0] == "fitted 2"
    # ten tied at the top take ranks 1..10 in a seeded random order, and say that they tie
    assert sorted(table["cnn_rank"].iloc[:10]) == list(range(1, 11))
    assert table["cnn_rank"].iloc[:10].tolist() != list(range(1, 11))  # drawn, not by sample id
    assert table["cnn_tie_size"].iloc[:10].eq(10).all() and table["cnn_tie_size"].iloc[10:].eq(1).all()
    assert table["cnn_rank_score"].iloc[0] == pytest.approx(4.05)
    again = stats.samples.samples_table(stack, manifest)
    assert again["cnn_rank"].tolist() == table["cnn_rank"].tolist()  # seeded: the same order
    other = stats.samples.samples_table(stack, manifest, seed=1)["cnn_rank"]
    assert other.iloc[10:].tolist() == table["cnn_rank"].iloc[10:].tolist()  # only the tie is redrawn


def test_runs_near_chance_are_flagged_in_the_findings():
    fits, runs = planted(n=300, seeds=(0, 1))
    infos = [
        stats.RunClassInfo(
            tuple("abcdefg"), np.eye(7), np.eye(7), heldout_acc_t0=0.52, heldout_acc_end=0.9, chance=0.5
        )
        for _ in runs
    ]
    out = stats.dataset_tables(fits, runs, FAST, "toy", "since_learned", class_infos=infos)
    acc = out["summary"][out["summary"]["id"] == "Runs.accuracy"].set_index(["arch", "case"])
    assert (
        acc.loc[("resnet18", "t = 0"), "near_chance"] == 2
        and acc.loc[("resnet18", "end"), "near_chance"] == 0
    )
    md = findings.findings_markdown(findings.assemble_findings([out["summary"]], findings.Study()))
    assert "2 run(s) within 5 points of chance (50%)" in md

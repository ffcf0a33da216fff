"""Tests of retention.findings: paper values by id (the paper's datasets and architectures
only), Holm over the primary family of each dataset, the verdict rule, findings.md, and
the fit -> null -> statistics -> findings rules of the real workflow."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention import findings
from retention.errors import DataError
from retention.findings import assemble
from retention.findings.markdown import null_cell
from retention.io import save_npz
from retention.stats.registry import FINDINGS
from retention.stats.tables import summary_columns

ROOT = Path(__file__).resolve().parents[1]
PAPER = findings.Study(
    sources={"octdl": "octdl", "cub200": "cub200"},
    models={"resnet18": "resnet18.a1_in1k", "deit_small": "deit_small_patch16_224.fb_in1k"},
    labels={"resnet18": "ResNet-18", "deit_small": "DeiT-S"},
)


def row(fid, dataset, value=0.1, p=0.01, arch="resnet18", arch_b="", **extra) -> dict:
    f = {x.id: x for x in FINDINGS}[fid]
    out = {c: math.nan for c in summary_columns()}
    out.update(
        id=fid,
        dataset=dataset,
        trace="since_learned",
        score="lambda",
        arch=arch,
        arch_b=arch_b,
        case="",
        value=value,
        ci_low=value - 0.05,
        ci_high=value + 0.05,
        p_value=p,
        primary=f.primary,
        claim=f.claim.kind if f.claim else "",
        q=0.1,
    )
    out.update(extra)
    return out


def test_paper_values_attach_only_to_the_papers_datasets_and_architectures():
    summary = pd.DataFrame(
        [
            row("F1.pooled", "octdl", arch_b="deit_small"),
            row("F1.pooled", "cub200", arch="deit_small", arch_b="resnet18"),
            row("F2.arch_difference", "octdl", arch_b="deit_small"),
            row("F5.meta", "octdl", arch=""),
        ]
    )
    table = findings.assemble_findings([summary], PAPER).set_index(["id", "dataset"])
    assert table.loc[("F1.pooled", "octdl"), "paper_value"] == "0.34"
    assert table.loc[("F1.pooled", "cub200"), "paper_value"] == "0.15"  # either order of the pair
    assert table.loc[("F2.arch_difference", "octdl"), "paper_value"] == ""  # pooled over datasets only
    assert table.loc[("F5.meta", "octdl"), "paper_value"].startswith("0.30 to 0.50")
    assert (
        table.loc[("F1.pooled", "octdl"), "finding"]
        == "F1 top-10% Jaccard, seed-pooled ranking (ResNet-18 vs DeiT-S)"
    )
    # the demo's names, or a user's folder named "octdl" with other models: nothing attaches
    demo = findings.Study(sources={"octdl": "digits"}, models=PAPER.models)
    other = findings.Study(
        sources={"octdl": "octdl"}, models={"resnet18": "convnext_tiny", "deit_small": "vit_small"}
    )
    for study in (demo, other):
        assert (findings.assemble_findings([summary], study)["paper_value"] == "").all()


def test_holm_runs_per_dataset_over_the_primary_family_only():
    rows = [row("F1.difference", d, p=p, arch_b="deit_small") for d, p in (("octdl", 0.01), ("cub200", 0.02))]
    rows += [row("F5.meta", d, p=p, arch="") for d, p in (("octdl", 0.02), ("cub200", 0.5))]
    rows += [row("F1.pooled", "octdl", p=0.001, arch_b="deit_small")]  # exploratory: raw p only
    table = findings.assemble_findings([pd.DataFrame(rows)], PAPER).set_index(["id", "dataset"])
    assert table.loc[("F1.difference", "octdl"), "p_holm"] == pytest.approx(0.02)  # 2 x 0.01
    assert table.loc[("F5.meta", "octdl"), "p_holm"] == pytest.approx(0.02)  # max(0.02, 1 x 0.02)
    assert table.loc[("F1.difference", "cub200"), "p_holm"] == pytest.approx(0.04)
    assert table.loc[("F5.meta", "cub200"), "p_holm"] == pytest.approx(0.5)
    assert (
        np.isnan(table.loc[("F1.pooled", "octdl"), "p_holm"])
        and table.loc[("F1.pooled", "octdl"), "verdict"] == ""
        and table.loc[("F1.pooled", "octdl"), "claim_verdict"] == ""
    )


@pytest.mark.parametrize(
    "fid, extra, expected",
    [
        ("F1.difference", {}, "holds"),
        ("F1.difference", {"p_value": 0.2}, "inconclusive"),
        ("F1.difference", {"value": -0.3, "ci_low": -0.4, "ci_high": -0.2, "p_value": 0.99}, "contradicted"),
        # the null never gates the claim
        ("F1.difference", {"null_iid_p": 0.4, "null_shuffle_p": 0.5, "null_iid": 0.1}, "holds"),
        ("F1.difference", {"value": math.nan}, "not comparable"),
        ("F1.difference", {"p_value": math.nan, "note": "interval needs at least 3 seeds"}, "not comparable"),
        ("F2.arch_difference", {"value": 0.2, "ci_low": 0.1, "ci_high": 0.3}, "contradicted"),  # paper: -0.22
        ("F2.arch_difference", {"value": -0.2, "ci_low": -0.3, "ci_high": -0.1}, "holds"),
        ("F3.within", {"value": 0.01, "bound": 0.1}, "holds"),
        (
            "F3.within",
            {"value": 0.4, "ci_low": 0.3, "ci_high": 0.5, "bound": 0.1, "p_value": 1.0},
            "contradicted",
        ),
        (
            "F6.heldout",
            {"value": 0.05, "ci_low": 0.03, "ci_high": 0.07, "bound": 0.01, "p_value": 1.0},
            "contradicted",
        ),
    ],
)
def test_the_claim_verdict_rule(fid, extra, expected):
    pair = fid in ("F1.difference", "F2.arch_difference")
    summary = pd.DataFrame([row(fid, "octdl", arch_b="deit_small" if pair else "", **extra)])
    table = findings.assemble_findings([summary], PAPER)
    assert table["claim_verdict"].iloc[0] == expected, table["claim_reason"].iloc[0]
    assert table["verdict"].iloc[0].startswith(f"claim {expected} (")


def null_row(value, kinds, direction="greater", **extra) -> dict:
    """A primary F1 row with null columns: kinds maps a kind to (mean, low, high, p)."""
    out = row("F1.difference", "octdl", value=value, arch_b="deit_small", null_direction=direction, **extra)
    for kind, (mean, low, high, p) in kinds.items():
        out |= {f"null_{kind}": mean, f"null_{kind}_low": low, f"null_{kind}_high": high, f"null_{kind}_p": p}
    return out


@pytest.mark.parametrize(
    "value, kinds, expected, words",
    [
        # beyond both nulls, one-sided in the claim's direction
        (0.3, {"iid": (0.1, 0.05, 0.15, 1e-5), "shuffle": (0.1, 0.06, 0.14, 1e-6)}, "beyond null", "above"),
        # inside the deciding null's range: the larger p decides
        (
            0.12,
            {"iid": (0.1, 0.05, 0.15, 0.3), "shuffle": (0.2, 0.1, 0.3, 0.9)},
            "explained by null",
            "contains",
        ),
        # below the range, against the claim's direction: never "explained"
        (
            0.0,
            {"iid": (0.1, 0.05, 0.15, 0.999), "shuffle": (0.1, 0.06, 0.14, 0.999)},
            "undetermined",
            "against the claim's direction",
        ),
        # draws without spread, ours elsewhere: no p
        (
            0.3,
            {"iid": (0.1, 0.1, 0.1, math.nan), "shuffle": (0.1, 0.1, 0.1, math.nan)},
            "undetermined",
            "no spread",
        ),
        (0.3, {}, "undetermined", "undefined on the null runs"),
    ],
)
def test_the_null_verdict_rule(value, kinds, expected, words):
    table = findings.assemble_findings([pd.DataFrame([null_row(value, kinds)])], PAPER)
    r = table.iloc[0]
    assert r["null_verdict"] == expected and words in r["null_reason"], r["null_reason"]
    if expected == "explained by null":  # the range it prints contains the value
        kind = r["null_kind"]
        assert r[f"null_{kind}_low"] <= value <= r[f"null_{kind}_high"]


def test_the_null_p_is_holm_corrected_in_its_own_family():
    kinds = {"iid": (0.1, 0.05, 0.15, 0.02), "shuffle": (0.1, 0.06, 0.14, 0.03)}
    rows = [
        null_row(0.2, kinds),
        row("F5.meta", "octdl", arch="", p=0.001)
        | {
            "null_iid": 0.2,
            "null_iid_low": 0.1,
            "null_iid_high": 0.3,
            "null_iid_p": 0.5,
            "null_shuffle": 0.2,
            "null_shuffle_low": 0.1,
            "null_shuffle_high": 0.3,
            "null_shuffle_p": 0.4,
        },
    ]
    table = findings.assemble_findings([pd.DataFrame(rows)], PAPER).set_index("id")
    assert table.loc["F1.difference", "null_kind"] == "shuffle"  # the larger p
    assert table.loc["F1.difference", "p_null_holm"] == pytest.approx(0.06)  # 2 x 0.03
    assert (
        table.loc["F1.difference", "null_verdict"] == "undetermined"
    )  # above the range, not beyond after Holm
    assert "in the claim's direction" in table.loc["F1.difference", "null_reason"]
    assert table.loc["F5.meta", "p_null_holm"] == pytest.approx(0.5)


def test_f6_says_when_spaced_is_significantly_worse():
    worse = row("F6.heldout", "octdl", value=-0.43, p=0.0001, bound=0.01, p_zero=0.0002) | {
        "ci_low": -0.58,
        "ci_high": -0.29,
    }
    table = findings.assemble_findings([pd.DataFrame([worse])], PAPER)
    assert table["claim_verdict"].iloc[0] == "holds"
    assert "worse, not only no better" in table["claim_reason"].iloc[0]
    assert (
        table["null_verdict"].iloc[0] == "undetermined"
        and "no memoryless null" in table["null_reason"].iloc[0]
    )


def test_every_primary_row_names_its_null_or_why_it_has_none():
    nan = math.nan
    both = {
        "id": "F3.within",
        "value": 0.4,
        "null_iid": 0.3,
        "null_iid_low": 0.25,
        "null_iid_high": 0.35,
        "null_shuffle": 0.41,
        "null_shuffle_low": 0.40,
        "null_shuffle_high": 0.42,
        "null_kind": "shuffle",
    }
    assert null_cell(both) == "iid: 0.300 (0.250 to 0.350); shuffle*: 0.410 (0.400 to 0.420)"
    one = {**both, "null_iid": nan, "null_iid_low": nan, "null_iid_high": nan}
    assert null_cell(one) == "shuffle*: 0.410 (0.400 to 0.420)"
    none = {**one, "null_shuffle": nan}
    assert null_cell(none) == "undefined on the null runs"
    assert null_cell({"id": "F6.heldout", "value": 0.01}).startswith("none: a paired comparison")


def test_f2_paper_values_attach_to_the_rows_pooled_over_the_papers_datasets():
    rows = []
    for dataset, (a, b) in (("octdl", (0.02, 0.05)), ("cub200", (0.04, 0.07))):
        for arch, v in (("resnet18", a), ("deit_small", b)):
            rows.append(row("F2.arch_mean", dataset, value=v, arch=arch, se=0.01, df=4.0, n_runs=5))
        rows.append(
            row("F2.arch_difference", dataset, value=a - b, arch_b="deit_small", se=0.01, df=4.0, n_runs=10)
        )
    table = findings.assemble_findings([pd.DataFrame(rows)], PAPER)
    per_dataset = table[table["dataset"].isin(["octdl", "cub200"]) & table["id"].str.startswith("F2")]
    assert (per_dataset["paper_value"] == "").all()  # the paper does not separate its datasets
    pooled = table[table["dataset"].str.startswith(findings.POOLED)].set_index(["id", "arch"])
    assert pooled.loc[("F2.arch_mean", "resnet18"), "value"] == pytest.approx(0.03)
    assert pooled.loc[("F2.arch_mean", "resnet18"), "paper_value"] == "0.52"
    assert pooled.loc[("F2.arch_mean", "deit_small"), "paper_value"] == "0.74"
    diff = pooled.loc[("F2.arch_difference", "resnet18")]
    assert diff["paper_value"] == "-0.22" and diff["value"] == pytest.approx(-0.03)
    # se sqrt(2 x 0.01^2) / 2, Welch-Satterthwaite df 8
    assert diff["ci_high"] - diff["value"] == pytest.approx(2.306 * 0.01 / math.sqrt(2), rel=1e-3)
    assert not pooled["primary"].any()
    # the per-dataset primary F2 keeps the paper's sign for its claim
    primary = table[(table["id"] == "F2.arch_difference") & table["primary"]]
    assert (primary["claim_sign"] == -1).all()


def test_assembly_refuses_unknown_ids_and_repeated_rows():
    with pytest.raises(DataError, match="'F9.invented'.*not in the registry"):
        findings.assemble_findings([pd.DataFrame([row("F1.pooled", "x") | {"id": "F9.invented"}])], PAPER)
    twice = pd.DataFrame([row("F1.pooled", "x", arch_b="b")] * 2)
    with pytest.raises(DataError, match="appears twice"):
        findings.assemble_findings([twice], PAPER)
    bad = pd.DataFrame(
        {"id": ["F9.x"], "source": ["*"], "model": [""], "model_b": [""], "paper_value": ["1"], "note": [""]}
    )
    with pytest.raises(DataError, match="not in the registry"):
        findings.assemble_findings([pd.DataFrame([row("F1.pooled", "x", arch_b="b")])], PAPER, bad)


def test_markdown_puts_the_verdicts_first_and_warns_about_bounds():
    rows = [
        row("F1.difference", "octdl", arch_b="deit_small"),
        row("F1.pooled", "octdl", arch_b="deit_small"),
        row("Fit.bounds", "octdl", value=0.8, case="lambda = 0", p=math.nan),
    ]
    md = findings.findings_markdown(findings.assemble_findings([pd.DataFrame(rows)], PAPER))
    assert md.index("## Verdicts") < md.index("## Primary findings in detail") < md.index("## Exploratory")
    verdicts = md.split("## Verdicts")[1].split("##")[0]
    assert "**holds**" in verdicts
    assert "0.34 (F1 top-10% Jaccard, seed-pooled ranking (ResNet-18 vs DeiT-S): ours 0.100" in verdicts
    assert "80% of the eligible samples" in md


# ------------------------------------------------------------ the real rules on a tiny grid


CONFIG = """
grid: {datasets: [octdl, cub200], archs: [resnet18, deit_small], seeds: [0, 1, 2]}
datasets:
  octdl: {source: octdl, path: resources/none, storage_size: 16}
  cub200: {source: cub200, path: resources/none, storage_size: 16}
retention: {robustness: [since_learned, raw]}
stats: {bootstrap: 50, null_draws: 5}
sampler: {enabled: false}
"""

SNAKEFILE = """
import sys
sys.path.insert(0, "@ROOT@")


configfile: "@ROOT@/config.yaml"


include: "@ROOT@/workflow/rules/common.smk"
include: "@ROOT@/workflow/rules/fit.smk"
include: "@ROOT@/workflow/rules/stats.smk"


rule all:
    input:
        "results/findings.md",
"""


@pytest.mark.integration
def test_fit_null_stats_and_findings_rules_run_in_snakemake(tmp_path):
    from .stats_fixtures import decay_arrays

    rng = np.random.default_rng(0)
    lam, floor, label = np.exp(rng.uniform(-4, 0.7, 150)), rng.uniform(0, 0.6, 150), np.arange(150) % 4
    for dataset in ("octdl", "cub200"):
        for arch in ("resnet18", "deit_small"):
            for seed in (0, 1, 2):
                save_npz(
                    tmp_path / f"results/runs/{dataset}/{arch}/seed{seed}/traces.npz",
                    decay_arrays(lam, floor, label, 12, rng, 4),
                )
        manifest = pd.DataFrame(
            {
                "sample_id": np.arange(150),
                "label": label,
                "class_name": [f"c{k}" for k in label],
                "split": "train",
                "source": [f"img/{i}.png" for i in range(150)],
                "group": "",
            }
        )
        (tmp_path / f"results/data/{dataset}").mkdir(parents=True)
        manifest.to_csv(tmp_path / f"results/data/{dataset}/manifest.csv", index=False)
    (tmp_path / "resources/none").mkdir(parents=True)  # the datasets' (unused) tree must exist
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace("@ROOT@", str(ROOT)))
    (tmp_path / "test.yaml").write_text(textwrap.dedent(CONFIG))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "all",
            "--cores",
            "2",
            "--configfile",
            str(tmp_path / "test.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for dataset in ("octdl", "cub200"):
        for name in ("summary", "robustness", "f1_jaccard", "bounds", "rank_scores"):
            assert (tmp_path / "results" / "stats" / dataset / f"{name}.csv").stat().st_size > 0
        assert (tmp_path / "results" / "nulls" / dataset / "resnet18" / "seed0.parquet").exists()
        assert (tmp_path / "logs" / "dataset_stats" / f"{dataset}.log").exists()
    table = pd.read_csv(tmp_path / "results" / "findings.csv", keep_default_na=False, na_values=[""])
    assert set(table["dataset"]) == {"octdl", "cub200", "pooled over octdl, cub200"}
    pooled_f2 = table[table["dataset"].str.startswith("pooled") & (table["id"] == "F2.arch_mean")]
    assert sorted(pooled_f2["paper_value"].astype(str)) == ["0.52", "0.74"]
    pooled = table[table["id"] == "F1.pooled"]
    assert sorted(pooled["paper_value"].astype(str)) == ["0.15", "0.34"]
    primary = table[table["primary"]]
    assert primary["p_holm"].notna().all() or primary["note"].astype(str).str.len().gt(0).any()
    assert primary["claim_verdict"].isin(findings.CLAIM_VERDICTS).all()
    assert primary["null_verdict"].isin(findings.NULL_VERDICTS).all()
    assert table[~table["primary"]]["p_holm"].isna().all()
    assert primary["null_iid"].notna().all()
    md = (tmp_path / "results" / "findings.md").read_text()
    assert md.index("## Verdicts") < md.index("## Exploratory")
    # an independent recomputation from the traces.npz files alone agrees
    from .independent_recompute import compare

    check = compare(tmp_path / "results", "octdl", ["resnet18", "deit_small"], [0, 1, 2])
    assert len(check) == 6 and check["agrees"].all(), check.to_string()
    samples = pd.read_csv(tmp_path / "results" / "stats" / "octdl" / "samples.csv")
    assert len(samples) == 150 and samples["source"].str.startswith("img/").all()
    assert {"resnet18_lambda_mean", "resnet18_lambda_sd", "resnet18_rank", "deit_small_status"} <= set(
        samples.columns
    )


def test_a_finding_that_misses_a_calibration_target_says_so_in_its_verdict(monkeypatch):
    calibration = pd.DataFrame(
        {
            "id": ["F1.difference", "F6.heldout"],
            "size": [0.0, 0.0],
            "power": [0.95, 0.45],
            "null_size": [0.02, math.nan],
        }
    ).set_index("id")
    monkeypatch.setattr(assemble, "load_calibration", lambda: calibration)
    rows = [row("F1.difference", "octdl", arch_b="deit_small"), row("F6.heldout", "octdl", bound=0.01)]
    table = findings.assemble_findings([pd.DataFrame(rows)], PAPER).set_index("id")
    assert table.loc["F6.heldout", "calibration_power"] == 0.45
    md = findings.findings_markdown(table.reset_index())
    verdicts = md.split("## Verdicts")[1].split("##")[0]
    assert "a true claim holds in 45%" in verdicts
    f1_line = next(line for line in verdicts.splitlines() if "within minus cross" in line)
    assert "planted truth" not in f1_line  # every target met: nothing to say


def test_the_packaged_calibration_covers_every_primary_finding():
    calibration = findings.load_calibration()
    assert set(calibration.index) == {f.id for f in FINDINGS if f.primary}
    assert calibration["grid"].eq("paper").all()

"""Tests of retention.findings (Holm, paper values, the findings table), the
make_findings script, and the stats rules run by Snakemake on a tiny grid."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention.fit import FIT_COLUMNS
from retention import findings
from retention.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def summary(dataset: str, rows: list[tuple]) -> pd.DataFrame:
    """A summary table: rows of (finding, value, p_value)."""
    return pd.DataFrame(
        {
            "finding": [r[0] for r in rows],
            "dataset": dataset,
            "trace": "since_learned",
            "value": [r[1] for r in rows],
            "ci_low": [r[1] - 0.1 for r in rows],
            "ci_high": [r[1] + 0.1 for r in rows],
            "interval": "bootstrap over samples (B=10)",
            "test": "some test | with a pipe",
            "p_value": [r[2] for r in rows],
            "n_samples": 100,
            "n_runs": 4,
            "detail": "",
        }
    )


def test_holm_matches_hand_computation():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06)
    p = [0.01, 0.04, 0.03, 0.005]
    assert np.allclose(findings.holm(p), [0.03, 0.06, 0.06, 0.02])
    # NaN is not a test: it stays NaN and does not count in m
    out = findings.holm([0.01, np.nan, 0.04, 0.03, 0.005])
    assert np.isnan(out[1]) and np.allclose(out[[0, 2, 3, 4]], [0.03, 0.06, 0.06, 0.02])
    # capped at 1; a single test is unchanged
    assert np.allclose(findings.holm([0.5, 0.6]), [1.0, 1.0])
    assert np.allclose(findings.holm([0.2]), [0.2])
    assert findings.holm([]).size == 0


def test_paper_values_file_and_matching():
    paper = findings.load_paper_values()
    assert list(paper.columns) == ["finding", "dataset", "paper_value", "note"]
    m = findings.match_paper_value
    assert m("F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)", "octdl", paper)[0] == "0.34"
    assert m("F1 Jaccard top-10% resnet18 vs deit_small (seed pairs)", "cub200", paper)[0] == "0.15"
    assert m("F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)", "digits", paper) == ("", "")
    assert m("F1 Jaccard top-20% resnet18 vs deit_small (seed-pooled)", "octdl", paper) == ("", "")
    assert m("F2 mean R2 (deit_small)", "digits", paper)[0] == "0.74"  # datasets not separated
    assert m("F3 Spearman lambda across seeds (resnet18)", "cub200", paper)[0] == "~0.01"
    assert m("F5 Spearman loss_t0 vs lambda (all runs)", "octdl", paper)[0].startswith(
        "0.30 to 0.50"
    )
    assert (
        m("F6 spaced minus random held-out accuracy (resnet18)", "octdl", paper)[0]
        == "no improvement"
    )
    # the first matching row wins
    custom = pd.DataFrame(
        {
            "finding": ["F1*", "F1 x"],
            "dataset": ["*", "*"],
            "paper_value": ["a", "b"],
            "note": ["", ""],
        }
    )
    assert m("F1 x", "d", custom)[0] == "a"


def test_assemble_findings_across_tables():
    a = summary(
        "octdl",
        [
            ("F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)", 0.3, 0.01),
            ("F2 mean R2 (resnet18)", 0.5, np.nan),
        ],
    )
    b = summary("cub200", [("F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)", 0.1, 0.04)])
    f6 = summary(
        "octdl",
        [
            ("F6 spaced minus random held-out accuracy (resnet18)", -0.01, 0.03),
            ("F6 spaced minus random train retention (resnet18)", 0.0, 0.005),
        ],
    )
    table = findings.assemble_findings([a, b, f6])
    assert list(table.columns[:11]) == [
        "finding",
        "dataset",
        "value",
        "ci_low",
        "ci_high",
        "paper_value",
        "test",
        "p_value",
        "p_holm",
        "n_samples",
        "n_runs",
    ]
    assert len(table) == 5
    assert table["paper_value"].tolist() == [
        "0.34",
        "0.52",
        "0.15",
        "no improvement",
        "no improvement",
    ]
    # Holm across the whole table: the same four p-values as the hand computation
    assert np.allclose(table["p_holm"].dropna(), [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(table.loc[1, "p_holm"])
    md = findings.findings_markdown(table)
    assert md.startswith("# Findings")
    for f in table["finding"]:
        assert f in md
    assert "some test \\| with a pipe" in md  # a pipe in a cell does not break the table
    assert md.count("\n| ") == len(table) + 1
    with pytest.raises(DataError, match="appears twice"):
        findings.assemble_findings([a, a])
    with pytest.raises(DataError, match="lacks column"):
        findings.assemble_findings([a.drop(columns="p_value")])


def test_make_findings_script(tmp_path):
    a = summary("octdl", [("F2 mean R2 (deit_small)", 0.7, 0.2)])
    b = summary("cub200", [("F2 mean R2 (deit_small)", 0.6, 0.01)])
    paths = []
    for name, df in (("a", a), ("b", b)):
        paths.append(tmp_path / f"{name}.csv")
        df.to_csv(paths[-1], index=False)
    csv, md = tmp_path / "out" / "findings.csv", tmp_path / "out" / "findings.md"

    def make_findings(*summaries):
        command = [sys.executable, str(ROOT / "scripts" / "make_findings.py"), *map(str, summaries)]
        return subprocess.run(command + ["--csv", str(csv), "--md", str(md)], capture_output=True, text=True)

    res = make_findings(*paths)
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(csv)
    assert (
        out["p_holm"].tolist() == pytest.approx([0.2, 0.02]) and (out["paper_value"] == 0.74).all()
    )
    assert "F2 mean R2 (deit_small)" in md.read_text()
    missing = make_findings(tmp_path / "no.csv")
    assert (
        missing.returncode == 1
        and "does not exist" in missing.stderr
        and "Traceback" not in missing.stderr
    )


# ------------------------------------------------------------ Snakemake, tiny grid

FITS_COLUMNS = list(FIT_COLUMNS)  # the fits-table contract, from the fit stage


def write_run(
    root: Path,
    dataset: str,
    arch: str,
    seed: int,
    rng: np.random.Generator,
    n: int = 300,
    c: int = 4,
):
    """A fits table (two trace definitions) and a traces.npz with the F4 keys."""
    label = np.arange(n) % c
    parts = []
    for trace in ("since_learned", "raw"):
        lam = rng.exponential(1.0, n) + 0.3 * label
        lam[rng.random(n) < 0.1] = 0.0
        status = np.where(lam == 0, "unforgettable", "fitted").astype(object)
        status[:10], lam[:10] = "never_learned", np.nan
        parts.append(
            pd.DataFrame(
                {
                    "trace": trace,
                    "primary": trace == "since_learned",
                    "sample_id": np.arange(n),
                    "label": label,
                    "status": status.astype(str),
                    "lambda": lam,
                    "b": 0.5,
                    "r2": np.where(status == "fitted", rng.uniform(0, 1, n), np.nan),
                    "sse": 1.0,
                    "n_points": 10,
                    "t_learn": 0,
                    "forget_events": rng.integers(0, 4, n),
                    "loss_t0": np.nan_to_num(lam) + rng.normal(0, 1, n),
                    "el2n_t0": rng.uniform(0, 1, n),
                    "confidence": rng.uniform(0, 1, n),
                    "variability": rng.uniform(0, 1, n),
                    "mean_retention": rng.uniform(0, 1, n),
                    "aic_exp": rng.normal(size=n),
                    "aic_power": rng.normal(size=n),
                }
            )
        )
    fits = root / "results" / "fits" / dataset / arch / f"seed{seed}.parquet"
    fits.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(parts, ignore_index=True)[FITS_COLUMNS].to_parquet(fits)
    run = root / "results" / "runs" / dataset / arch / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    hl = np.repeat(np.arange(c), 20)
    pred = np.where(rng.random((hl.size, 3)) < 0.8, hl[:, None], rng.integers(0, c, (hl.size, 3)))
    cos = rng.uniform(0, 1, (c, c))
    np.savez(
        run / "traces.npz",
        t=np.array([-1, 0, 1]),
        class_names=np.array([f"k{i}" for i in range(c)]),
        heldout_label=hl,
        heldout_pred=pred.astype(np.int32),
        class_centroid_cosine=((cos + cos.T) / 2).astype(np.float32),
    )


SNAKEFILE = """
configfile: "config.yaml"


def _runs():
    return [(a, s) for a in config["grid"]["archs"] for s in config["grid"]["seeds"]]


def fits_for_dataset(wildcards):
    return [f"results/fits/{wildcards.dataset}/{a}/seed{s}.parquet" for a, s in _runs()]


def traces_for_dataset(wildcards):
    return [f"results/runs/{wildcards.dataset}/{a}/seed{s}/traces.npz" for a, s in _runs()]


def run_keys_for_dataset(wildcards):
    return [[a, s] for a, s in _runs()]


def primary_trace():
    return "since_learned"


def summary_tables():
    return expand("results/stats/{dataset}/summary.csv", dataset=config["grid"]["datasets"])


PAPER_VALUES = "@PAPER_CSV@"


include: "RULES"


rule all:
    input:
        "results/findings.csv",
"""

CONFIG = """
grid:
  datasets: [octdl, cub200]
  archs: [resnet18, deit_small]
  seeds: [0, 1]
stats:
  top_q: 0.10
  sensitivity_q: [0.05, 0.10, 0.20]
  r2_min: 0.6
  bootstrap: 50
  permutations: 50
  seed: 0
"""


@pytest.mark.integration
def test_stats_rules_run_in_snakemake(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    if not snakemake.exists():
        snakemake = shutil.which("snakemake")
    if not snakemake:
        pytest.skip("snakemake is not installed")
    rng = np.random.default_rng(0)
    for dataset in ("octdl", "cub200"):
        for arch in ("resnet18", "deit_small"):
            for seed in (0, 1):
                write_run(tmp_path, dataset, arch, seed, rng)
    (tmp_path / "Snakefile").write_text(
        SNAKEFILE.replace("RULES", str(ROOT / "workflow" / "rules" / "stats.smk")).replace(
            "@PAPER_CSV@", str(ROOT / "retention" / "paper_values.csv")
        )
    )
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    res = subprocess.run(
        [str(snakemake), "--cores", "2", "--quiet", "all"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for dataset in ("octdl", "cub200"):
        for name in (
            "f1_jaccard",
            "f2_r2",
            "f3_seed_stability",
            "f4_class",
            "f4_class_similarity",
            "f5_early_predictor",
            "scores",
            "robustness",
            "summary",
        ):
            assert (tmp_path / "results" / "stats" / dataset / f"{name}.csv").stat().st_size > 0
        assert (tmp_path / "logs" / "dataset_stats" / f"{dataset}.log").exists()
        assert (tmp_path / "benchmarks" / "dataset_stats" / f"{dataset}.tsv").exists()
    table = pd.read_csv(tmp_path / "results" / "findings.csv")
    assert set(table["dataset"]) == {"octdl", "cub200"}
    pooled = table[table["finding"] == "F1 Jaccard top-10% resnet18 vs deit_small (seed-pooled)"]
    assert sorted(pooled["paper_value"].astype(str)) == ["0.15", "0.34"]
    assert table["p_holm"].notna().sum() == table["p_value"].notna().sum() > 0
    assert (table["p_holm"].dropna() >= table.loc[table["p_holm"].notna(), "p_value"] - 1e-15).all()
    robust = pd.read_csv(tmp_path / "results" / "stats" / "octdl" / "robustness.csv")
    assert set(robust["trace"]) == {"since_learned", "raw"}
    assert "| finding |" in (tmp_path / "results" / "findings.md").read_text()

"""Bring your own training dynamics, through Snakemake: a traces dataset's DAG imports
instead of preparing and training; target export writes our runs in the formats others
read; and the round trip: the demo's runs exported and imported as a new study give the
same fits and byte-identical statistics tables."""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from retention import paths

from .conftest import REPO, make_cartography_runs

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DEMO = [str(REPO / "config.yaml"), str(REPO / "config" / "demo.yaml")]
# the demo, smaller: one dataset, random initial weights (no pretraining), 1 + 4 epochs
SMALL = """\
grid: {datasets: [digits], seeds: [0, 1, 2]}
archs: {cnn: {weights: none}, vit: {weights: none}}
train: {warmup_epochs: 1, epochs: 4}
stats: {bootstrap: 50, permutations: 50, tie_draws: 20, null_draws: 2}
sampler: {enabled: false}
"""


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_a_traces_study_imports_its_runs_and_never_prepares_or_trains(tmp_path):
    folder = tmp_path / "study"
    make_cartography_runs(folder / "dynamics")
    (folder / "config.yaml").write_text(
        "grid: {datasets: [mine]}\ndatasets:\n  mine: {source: traces, path: dynamics}\n"
    )
    counts = job_counts(snakemake(folder, "-n", "--quiet", "rules").stdout)
    assert counts["import_traces_mine"] == 1 and counts["fit_traces"] == counts["fit_nulls"] == 6
    assert counts["sampler_not_comparable_mine"] == 1 and counts["findings"] == 1
    assert not {"prepare_dataset", "finetune", "pretrain", "fetch_weights", "finetune_budget"} & set(counts)
    # one run's traces need only the import
    target = paths.TRACES.format(dataset="mine", arch="vit", seed=2)
    counts = job_counts(snakemake(folder, target, "-n", "--quiet", "rules").stdout)
    assert counts == {"import_traces_mine": 1, "total": 1}


def test_the_export_target_writes_every_trained_run_in_both_formats():
    proc = subprocess.run(
        [*SNAKEMAKE, "export", "-n", "--quiet", "rules", "--configfile", *DEMO],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert (
        counts["export_table"] == 2 and counts["export_cartography"] == 2 * 2 * 3
    )  # datasets x archs x seeds


def test_a_study_of_trained_and_imported_datasets_trains_only_the_first(tmp_path):
    make_cartography_runs(tmp_path / "dynamics", archs=("bert",), seeds=(0, 1))
    (tmp_path / "mixed.yaml").write_text(
        textwrap.dedent(f"""\
        grid: {{datasets: [digits, glue]}}
        datasets: {{glue: {{source: traces, path: {tmp_path / "dynamics"}}}}}
        """)
    )
    proc = subprocess.run(
        [
            *SNAKEMAKE,
            "-n",
            "--quiet",
            "rules",
            "-d",
            str(tmp_path / "work"),
            "--configfile",
            *DEMO,
            str(tmp_path / "mixed.yaml"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    assert counts["import_traces_glue"] == 1 and counts["sampler_not_comparable_glue"] == 1
    assert counts["fit_traces"] == 2 * 3 + 2 + 2  # digits' grid, its two scout runs, glue's two runs
    assert counts["prepare_dataset"] == 2 and counts["compare_samplers"] == 1  # digits and the glyphs source
    assert counts["dataset_stats"] == 2 and counts["finetune"] == 2 + 2  # digits' seed groups, its scouts


@pytest.mark.integration
def test_exporting_the_demo_and_importing_it_as_a_new_study_gives_the_same_fits_and_statistics(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    (ours / "small.yaml").write_text(SMALL)
    snakemake(
        ours,
        "--cores",
        "2",
        "export",
        paths.STATS.format(dataset="digits", table="summary"),
        "--configfile",
        *DEMO,
        str(ours / "small.yaml"),
    )
    export = ours / "results" / "export" / "digits"
    assert sorted(p.name for p in export.iterdir()) == [
        "cartography",
        "class_centroid_cosine.parquet",
        "traces.parquet",
    ]
    dynamics = export / "cartography" / "vit" / "seed2" / "training_dynamics"
    assert sorted(os.listdir(dynamics)) == sorted(f"dynamics_epoch_{t}.jsonl" for t in range(5))
    # the new study: the same dataset name and settings, its runs from the exported files only
    (theirs / "small.yaml").write_text(SMALL)
    (theirs / "import.yaml").write_text(
        textwrap.dedent(f"""\
        grid: {{datasets: [digits]}}
        datasets:
          digits: {{source: traces, path: {export / "traces.parquet"},
                    class_centroid_cosine: {export / "class_centroid_cosine.parquet"}}}
        """)
    )
    snakemake(
        theirs,
        "--cores",
        "2",
        paths.STATS.format(dataset="digits", table="summary"),
        "--configfile",
        *DEMO,
        str(theirs / "small.yaml"),
        str(theirs / "import.yaml"),
    )
    assert (
        not (theirs / "logs" / "finetune").exists()
        and not (theirs / "results" / "data" / "digits" / "images.npy").exists()
    )
    for arch in ("cnn", "vit"):
        for seed in (0, 1, 2):
            for template in (paths.FITS, paths.NULLS):
                rel = template.format(dataset="digits", arch=arch, seed=seed)
                pd.testing.assert_frame_equal(pd.read_parquet(theirs / rel), pd.read_parquet(ours / rel))
    tables = sorted((ours / "results" / "stats" / "digits").glob("*.csv"))
    assert len(tables) == len(paths.STATS_TABLES)
    differ = [
        t.name
        for t in tables
        if not filecmp.cmp(t, theirs / "results" / "stats" / "digits" / t.name, shallow=False)
    ]
    assert not differ, f"statistics tables that differ: {differ}"

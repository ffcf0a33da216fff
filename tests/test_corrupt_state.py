"""Corrupt state is detected, not trusted: every file a rule reads from another rule (fits,
null fits, statistics and sampler tables, traces, the prepared dataset, run.json) that is
truncated or unreadable stops the reading rule with one DataError naming the file and how
to rebuild it (retention.io's readers), as load_traces does for traces.npz."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retention import io, provenance
from retention.acquire import data
from retention.errors import DataError
from retention.figures import inputs as figure_inputs
from retention.fitting import nulls
from retention.fitting.fit import fit_table
from retention.fitting.simulate import simulate_traces
from retention.fitting.traces import load_traces
from retention.training import finetune

from .conftest import REPO


def script(name: str):
    """A script of scripts/ as a module (its functions are what its rule runs)."""
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut ``path`` to ``keep`` of its bytes, as a killed copy or a full disk leaves it."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(int(size * keep))
    return path


def assert_names_the_rebuild(err: pytest.ExceptionInfo, path: Path, rule: str) -> None:
    message = str(err.value)
    assert f"{path} is truncated or unreadable" in message, message
    assert f"snakemake --cores 1 --forcerun {rule} {path}" in message and f"(rule {rule})" in message, message
    assert "\n" not in message


@pytest.fixture
def run(tmp_path):
    """One run's files at their workflow paths under tmp_path: traces, fits, null fits."""
    arrays = simulate_traces(n_samples=40, n_heldout=12, epochs=5, n_classes=3, seed=0)
    traces_path = tmp_path / "results/runs/d/cnn/seed0/traces.npz"
    io.save_npz(traces_path, arrays)
    traces = load_traces(traces_path)
    fits = tmp_path / "results/fits/d/cnn/seed0.parquet"
    io.save_table(fits, fit_table(traces, ["raw"]))
    null_fits = tmp_path / "results/nulls/d/cnn/seed0.parquet"
    io.save_table(null_fits, nulls.null_fit_table(traces, "since_learned", 2, 0, "d/cnn/seed0"))
    return {"traces": traces_path, "fits": fits, "nulls": null_fits, "root": tmp_path}


@pytest.mark.parametrize(
    "kind, what, rule", [("fits", "fits", "fit_traces"), ("nulls", "null fits", "fit_nulls")]
)
def test_a_truncated_fits_table_stops_dataset_stats(run, kind, what, rule):
    compute_stats = script("compute_stats")
    assert len(compute_stats.read_table(run[kind], what)) > 0  # whole, it reads
    truncate(run[kind])
    with pytest.raises(DataError) as err:
        compute_stats.read_table(run[kind], what)
    assert_names_the_rebuild(err, run[kind], rule)


def test_a_fits_table_without_its_columns_is_not_trusted(run):
    compute_stats = script("compute_stats")
    io.save_table(run["fits"], pd.DataFrame({"trace": ["raw"], "sample_id": [0]}))
    with pytest.raises(DataError, match="no column 'label'") as err:
        compute_stats.read_table(run["fits"], "fits")
    assert_names_the_rebuild(err, run["fits"], "fit_traces")


def test_a_truncated_traces_file_stops_dataset_stats(run):
    compute_stats = script("compute_stats")
    compute_stats.read_class_info(run["traces"], "cnn/seed0")
    truncate(run["traces"], 0.9)
    with pytest.raises(DataError) as err:
        compute_stats.read_class_info(run["traces"], "cnn/seed0")
    assert_names_the_rebuild(err, run["traces"], "finetune")


def test_a_truncated_summary_stops_findings(tmp_path):
    make_findings = script("make_findings")
    summary = tmp_path / "results/stats/d/summary.csv"
    io.save_table(
        summary, pd.DataFrame({"id": ["F3.within", "F3.within"], "dataset": ["d", "d"], "value": [0.1, 0.2]})
    )
    text = summary.read_bytes()
    summary.write_bytes(text[: len(text) - 3])  # cut inside the last row
    with pytest.raises(DataError) as err:
        make_findings.make([summary], None, tmp_path / "f.csv", tmp_path / "f.md")
    assert_names_the_rebuild(err, summary, "dataset_stats")
    assert not (tmp_path / "f.csv").exists()
    summary.write_bytes(b"")
    with pytest.raises(DataError, match="the file is empty"):
        make_findings.make([summary], None, tmp_path / "f.csv", tmp_path / "f.md")


@pytest.mark.parametrize(
    "table, rule", [("stats/d/f4_class.csv", "dataset_stats"), ("sampler/d/curves.csv", "compare_samplers")]
)
def test_a_truncated_table_stops_the_figure_that_reads_it(tmp_path, table, rule):
    path = tmp_path / "results" / table
    io.save_table(path, pd.DataFrame({"arch": ["cnn"] * 3, "value": [1.0, 2.0, 3.0]}))
    assert len(figure_inputs.read_csv(path)) == 3
    truncate(path, 0.8)
    with pytest.raises(DataError) as err:
        figure_inputs.read_csv(path)
    assert_names_the_rebuild(err, path, rule)


def test_truncated_sampler_outputs_stop_compare_samplers(tmp_path):
    from retention.stats import f6

    run_dir = tmp_path / "results/sampler/d/cnn/random/seed0"
    io.save_npz(
        run_dir / "traces.npz", simulate_traces(n_samples=20, n_heldout=8, epochs=3, n_classes=2, seed=1)
    )
    metrics = pd.DataFrame(
        {
            "epoch": [1, 2],
            "t": [0, 1],
            "phase": ["warmup", "finetune"],
            "heldout_acc": [0.5, 0.6],
            "n_distinct_trained": [0, 10],
        }
    )
    io.save_table(run_dir / "metrics.csv", metrics)
    outcomes, _ = f6.read_run(run_dir / "traces.npz", run_dir / "metrics.csv")
    assert outcomes["coverage"] == 0.5
    truncate(run_dir / "metrics.csv", 0.7)
    with pytest.raises(DataError) as err:
        f6.read_run(run_dir / "traces.npz", run_dir / "metrics.csv")
    assert_names_the_rebuild(err, run_dir / "metrics.csv", "finetune_budget")
    truncate(run_dir / "traces.npz", 0.5)
    with pytest.raises(DataError) as err:
        f6.read_run(run_dir / "traces.npz", run_dir / "metrics.csv")
    assert_names_the_rebuild(err, run_dir / "traces.npz", "finetune_budget")


def test_a_truncated_scout_fits_table_stops_the_spaced_run(run):
    ids = np.arange(40)
    spec = {"kind": "spaced", "scout_fits": run["fits"]}
    assert finetune.scout_lambda(spec, load_traces(run["traces"]).sample_id).shape == ids.shape
    truncate(run["fits"], 0.3)
    with pytest.raises(DataError) as err:
        finetune.scout_lambda(spec, ids)
    assert_names_the_rebuild(err, run["fits"], "fit_traces")


@pytest.mark.parametrize("name", ["manifest.csv", "images.npy"])
def test_a_truncated_prepared_dataset_stops_training(tmp_path, name):
    folder = tmp_path / "results/data/d"
    prepared = data.prepare_dataset(
        source="digits", path=None, storage_size=8, heldout_fraction=0.2, split_seed=0
    )
    io.save_table(folder / "manifest.csv", prepared.manifest)
    io.save_npy(folder / "images.npy", prepared.images)
    assert len(data.load_prepared(folder / "manifest.csv", folder / "images.npy").manifest) == len(
        prepared.manifest
    )
    truncate(folder / name, 0.6)
    with pytest.raises(DataError) as err:
        data.load_prepared(folder / "manifest.csv", folder / "images.npy")
    assert_names_the_rebuild(err, folder / name, "prepare_dataset")


def test_a_truncated_run_record_stops_provenance(tmp_path):
    path = tmp_path / "results/runs/d/cnn/seed0/run.json"
    record = provenance.run_record(
        "finetune", "d", "cnn", 0, {}, "cpu", provenance.utc_now(), provenance.utc_now(), commit=None
    )
    provenance.write_record(path, record)
    assert provenance.read_record(path)["seed"] == 0
    truncate(path)
    with pytest.raises(DataError) as err:
        provenance.read_record(path)
    assert_names_the_rebuild(err, path, "finetune")


def test_the_dataset_stats_script_says_it_in_one_line(run):
    """The issue's case: a truncated fits table made dataset_stats die with a pyarrow traceback."""
    truncate(run["fits"])
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/compute_stats.py"),
            "--fits",
            "results/fits/d/cnn/seed0.parquet",
            "--dataset",
            "d",
            "--outdir",
            "results/stats/d",
        ],
        capture_output=True,
        text=True,
        cwd=run["root"],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
        check=False,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "DataError: fits table results/fits/d/cnn/seed0.parquet is truncated or unreadable" in lines[0]
    assert "snakemake --cores 1 --forcerun fit_traces results/fits/d/cnn/seed0.parquet" in lines[0]
    assert not (run["root"] / "results/stats").exists()

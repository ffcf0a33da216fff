"""The scripts' command lines: `python scripts/<x>.py --help` works for every script."""

import ast
import os
import subprocess
import sys

import pytest

from .conftest import REPO

# every script a user can run (the Python ones; publish_run.sh only links files)
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def test_every_script_is_checked():
    assert len(SCRIPTS) >= 11 and REPO / "scripts" / "compare_samplers.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_the_usage_and_what_the_script_does(script):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"usage: {script.name}"), proc.stdout[:500]
    assert "-h, --help" in proc.stdout
    # the first line of the script's docstring is its description
    summary = ast.get_docstring(ast.parse(script.read_text())).splitlines()[0]
    assert " ".join(summary.split()) in " ".join(proc.stdout.split()), proc.stdout[:1000]
    assert "Traceback" not in proc.stderr, proc.stderr


# ------------------------------------------------------------------ arguments checked first


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Valid inputs every script can be pointed at (a run's traces, a prepared dataset, a
    config, a run.json, a summary table), and a file where a folder is wanted."""
    import numpy as np
    import yaml

    from retention import io, provenance
    from retention.fitting.simulate import simulate_traces

    root = tmp_path_factory.mktemp("inputs")
    io.save_npz(
        root / "traces.npz", simulate_traces(n_samples=30, n_heldout=10, epochs=4, n_classes=3, seed=0)
    )
    data = root / "data"
    data.mkdir()
    (data / "manifest.csv").write_text("sample_id,label,class_name,split,source,group\n0,0,a,train,x,\n")
    np.save(data / "images.npy", np.zeros((1, 8, 8, 3), np.uint8))
    (root / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "grid": {"datasets": ["digits"], "archs": ["cnn"], "seeds": [0]},
                "datasets": {"digits": {"source": "digits"}},
                "archs": {"cnn": {"model": "test_resnet", "lr": 1e-3, "weights": "none"}},
            }
        )
    )
    (root / "spec.yaml").write_text("- {file: a.csv, url: http://127.0.0.1:9/a.csv}\n")
    (root / "summary.csv").write_text("id,dataset\nF3.within,digits\n")
    record = provenance.run_record(
        "finetune", "digits", "cnn", 0, {}, "cpu", provenance.utc_now(), provenance.utc_now(), commit=None
    )
    provenance.write_record(root / "run.json", record)
    (root / "a_file").write_text("not a folder\n")
    return root


# (script, arguments with a bad output, arguments with a missing input); {r}: the inputs' folder,
# {o}: an empty folder for outputs. A bad output is a suffix the script does not write, or a
# file where it writes a folder; the missing inputs are named "absent".
CASES = {
    "collect_provenance.py": (
        "{r}/run.json --out {o}/provenance.txt",
        "{r}/absent.json --out {o}/provenance.csv",
    ),
    "compare_samplers.py": (
        "--dataset d --runs cnn:random:0 --workdir {r} --outdir {r}/a_file",
        "--dataset d --runs cnn:random:0 --workdir {r}/absent --outdir {o}/out",
    ),
    "compute_stats.py": (
        "--fits {r}/summary.csv --dataset d --outdir {r}/a_file",
        "--fits {r}/absent.parquet --dataset d --outdir {o}/out",
    ),
    "download_dataset.py": (
        "--dest {r}/a_file --spec {r}/spec.yaml",
        "--dest {o}/out --spec {r}/absent.yaml",
    ),
    "export_cartography.py": ("{r}/traces.npz {r}/a_file", "{r}/absent.npz {o}/run"),
    "export_table.py": (
        "{r}/traces.npz --runs cnn/seed0 --table {o}/t.txt --centroids {o}/c.parquet",
        "{r}/absent.npz --runs cnn/seed0 --table {o}/t.parquet --centroids {o}/c.parquet",
    ),
    "import_traces.py": (
        "{r}/summary.csv --out {o}/runs --manifest {o}/manifest.txt",
        "{r}/absent.parquet --out {o}/runs --manifest {o}/manifest.csv",
    ),
    "fetch_weights.py": (
        "--model test_resnet.r160_in1k --out {o}/weights.txt",
        "--model test_resnet.r160_in1k --out {o}/w.safetensors --offline",
    ),
    "finetune.py": (
        "--data {r}/data --config {r}/config.yaml --arch cnn --seed 0 --out {o}/run --checkpoint {o}/c.txt",
        "--data {r}/absent --config {r}/config.yaml --arch cnn --seed 0 --out {o}/run",
    ),
    "fit_nulls.py": ("{r}/traces.npz {o}/nulls.txt", "{r}/absent.npz {o}/nulls.parquet"),
    "fit_traces.py": ("{r}/traces.npz {o}/fits.txt", "{r}/absent.npz {o}/fits.parquet"),
    "make_findings.py": (
        "{r}/summary.csv --config {r}/config.yaml --csv {o}/f.txt --md {o}/f.md",
        "{r}/absent.csv --config {r}/config.yaml --csv {o}/f.csv --md {o}/f.md",
    ),
    "not_comparable.py": (
        "--dataset d --archs cnn --reason r --out {o}/summary.txt",
        "--dataset d --group absent --archs cnn --reason r --out {o}/summary.csv",
    ),
    "render_findings.py": (
        "--csv {r}/summary.csv --md {r}/summary.csv --out {o}/findings.txt",
        "--csv {r}/absent.csv --md {r}/summary.csv --out {o}/findings.html",
    ),
    "plot_figure.py": (
        "jaccard --config {r}/config.yaml --out {r}/a_file",
        "jaccard --config {r}/absent.yaml",
    ),
    "prepare_dataset.py": (
        "--source digits --storage-size 8 --out {r}/a_file",
        "--source imagefolder --path {r}/absent --storage-size 8 --out {o}/out",
    ),
    "pretrain.py": (
        "--data {r}/data --config {r}/config.yaml --arch cnn --out {r}/a_file",
        "--data {r}/absent --config {r}/config.yaml --arch cnn --out {o}/out",
    ),
}


def test_every_script_has_argument_cases():
    assert sorted(CASES) == sorted(p.name for p in SCRIPTS)


@pytest.mark.parametrize("which", ["bad output", "missing input"])
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bad_arguments_stop_the_script_with_one_line_before_any_work(script, which, inputs, tmp_path):
    """A wrong output name or a missing input is one line naming it, exit 1, nothing written,
    and it comes first: (fit_traces once fitted every sample before it said '.txt')."""
    out = tmp_path / "out"
    out.mkdir()
    args = CASES[script.name][which == "missing input"].format(r=inputs, o=out).split()
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_CACHE=str(tmp_path / "hub"))
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    if which == "bad output":
        assert "ArgumentError" in lines[0] and ("a_file" in lines[0] or ".txt" in lines[0]), lines[0]
    else:
        assert "absent" in lines[0] or "WeightsError" in lines[0], lines[0]
    assert not list(out.rglob("*")), "written: " + ", ".join(map(str, out.rglob("*")))

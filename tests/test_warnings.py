"""No unhandled Python warning: the package's own code raises none on degenerate but valid
data (a class no run held out, a class of two training images, runs near chance), and no
rule's log of the paper config on fixture data holds one. Warnings from retention.* are
errors in this module (the filterwarnings mark: its module field is a regex)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from retention import findings, stats
from retention.fitting import nulls
from retention.fitting.fit import fit_table
from retention.fitting.simulate import simulate_traces
from retention.fitting.traces import load_traces

from .conftest import REPO, make_cub_tree, make_octdl_tree, warning_lines
from .stats_fixtures import planted

pytestmark = pytest.mark.filterwarnings(r"error:::retention")
FAST = stats.StatsConfig(bootstrap=50, tie_draws=20, null_draws=2, permutations=50)


def test_the_filter_turns_a_warning_of_the_package_into_an_error():
    """The check itself: a warning attributed to a module of retention is an error here,
    one of another package is not."""
    with pytest.raises(RuntimeWarning, match="Mean of empty slice"):
        warnings.warn_explicit(
            "Mean of empty slice", RuntimeWarning, "retention/stats/f4.py", 190, module="retention.stats.f4"
        )
    with pytest.warns(RuntimeWarning):
        warnings.warn_explicit("elsewhere", RuntimeWarning, "numpy/x.py", 1, module="numpy.x")


def test_a_class_no_run_held_out_gives_no_warning():
    """The issue's f4.py RuntimeWarning: a class without held-out samples in every run of an
    architecture (its confusion row is NaN); its similarity is NaN, without a warning."""
    fits, runs = planted(n=300, seeds=(0, 1))
    confusion = np.eye(7)
    confusion[6] = np.nan
    infos = [stats.RunClassInfo(tuple("abcdefg"), confusion, np.eye(7), 0.8, 0.9, 0.2) for _ in runs]
    out = stats.dataset_tables(fits, runs, FAST, "toy", "since_learned", class_infos=infos)
    table = out["f4_class_similarity"]
    g = table[table["class_name"] == "g"]
    assert len(g) and g["max_confusion"].isna().all()
    assert table[table["class_name"] == "a"]["max_confusion"].notna().all()
    findings.findings_markdown(findings.assemble_findings([out["summary"]], findings.Study()))


def test_fits_nulls_statistics_and_findings_of_a_class_too_few_give_no_warning():
    """Every analysis stage on runs where one class has two training samples and none held
    out, and every run is near chance at t = 0."""
    runs, tables, null_tables, infos = [("cnn", 0), ("cnn", 1), ("vit", 0), ("vit", 1)], [], [], []
    for i, _ in enumerate(runs):
        arrays = simulate_traces(n_samples=40, n_heldout=12, epochs=5, n_classes=3, seed=i)
        arrays["label"][:] = np.where(np.arange(40) < 2, 2, np.arange(40) % 2)  # class 2: two samples
        arrays["heldout_label"][:] = np.arange(12) % 2  # and none held out
        arrays["heldout_pred"][:] = arrays["heldout_label"][:, None]
        traces = load_traces_from(arrays, f"cnn/seed{i}")
        tables.append(fit_table(traces, ["raw", "since_learned_soft"]))
        null_tables.append(nulls.null_fit_table(traces, "since_learned", 2, 0, f"run{i}"))
        infos.append(stats.class_info_from_traces(arrays, run=f"run{i}"))
    out = stats.dataset_tables(
        tables, runs, FAST, "few", "since_learned", class_infos=infos, null_fits=null_tables
    )
    assert len(out["summary"]) and len(out["robustness"])
    md = findings.findings_markdown(findings.assemble_findings([out["summary"]], findings.Study()))
    assert "few" in md


def load_traces_from(arrays: dict, run: str, folder: Path | None = None):
    """A Traces object of ``arrays`` (through the file format, as the workflow reads it)."""
    import tempfile

    from retention.io import save_npz

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(folder or tmp) / "traces.npz"
        save_npz(path, arrays)
        return load_traces(path, run)


@pytest.mark.integration
def test_no_warning_in_any_log_of_the_paper_config_on_fixture_data(tmp_path):
    """The paper's config (its sources, statistics and figures) on fixture trees of OCTDL and
    CUB and an image folder with a class of three images, the paper's two models from random
    weights on 16 px: the whole DAG, every rule's log free of warnings."""
    make_cub_tree(tmp_path / "cub", n_classes=3, per_class=6)
    make_octdl_tree(tmp_path / "octdl")
    rng = np.random.default_rng(0)
    for k, (name, n) in enumerate({"ant": 12, "bee": 12, "cat": 3}.items()):
        (tmp_path / "few" / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 90, (20, 20, 3), dtype=np.uint8)
            pixels[..., k] += 150
            Image.fromarray(pixels).save(tmp_path / "few" / name / f"{i}.png")
    overlay = {
        "grid": {
            "datasets": ["octdl", "cub200", "few"],
            "archs": ["resnet18", "deit_small"],
            "seeds": [0, 1],
        },
        "datasets": {
            "octdl": {"path": str(tmp_path / "octdl"), "storage_size": 16},
            "cub200": {"path": str(tmp_path / "cub/CUB_200_2011"), "storage_size": 16},
            "few": {"source": "imagefolder", "path": str(tmp_path / "few"), "storage_size": 16},
        },
        "archs": {
            "resnet18": {"weights": "none", "input_size": 16},
            "deit_small": {
                "weights": "none",
                "input_size": 16,
                "model_kwargs": {"img_size": 16, "patch_size": 8},
            },
        },
        "train": {"warmup_epochs": 1, "epochs": 3, "seeds_per_job": 2, "batch_size": 16},
        "stats": {"bootstrap": 20, "permutations": 20, "null_draws": 2, "tie_draws": 5},
        "sampler": {"datasets": ["few"]},
    }
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(tmp_path),
            "--cores",
            "2",
            "--configfile",
            str(REPO / "config.yaml"),
            str(tmp_path / "overlay.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1"),
        timeout=3000,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "results/findings.md").exists() and (
        tmp_path / "results/figures/octdl/gallery.pdf"
    ).exists()
    assert not warning_lines(tmp_path, proc.stdout + proc.stderr)
    assert not (tmp_path / "results/checkpoints").exists()

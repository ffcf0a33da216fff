"""A user's own study in its own folder: an image folder, a timm model and a six-line
config, run with the repository's Snakefile (``-s ... --directory``) or as a Snakemake
module (``use rule * from retention``). Settings the config leaves out take the schema's
defaults; every output lands in the study folder; nothing points into the repository."""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retention.figures.specs import FIGURES

from .conftest import REPO, make_cartography_runs, warning_lines

SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# the whole config of the study (the README's example): data, model, and a short protocol
CONFIG = """\
grid: {datasets: [mine], archs: [small], seeds: [0, 1, 2]}
datasets:
  mine: {source: imagefolder, path: images, storage_size: 16}
archs:
  small: {model: test_resnet.r160_in1k, weights: none, lr: 1.0e-3}
train: {warmup_epochs: 1, epochs: 3, threads: 1}
"""

MODULE_SNAKEFILE = """\
configfile: "mine.yaml"


module retention:
    snakefile:
        "@REPO@/Snakefile"
    config:
        config


use rule * from retention
"""


def image_folder(root: Path, classes=("ant", "bee", "cat"), per_class=14) -> None:
    """Class folders of small PNGs, each class its own colour (learnable in a few epochs)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (20, 20, 3), dtype=np.uint8)
            pixels[..., k] += 150
            Image.fromarray(pixels).save(folder / f"{i}.png")


def study(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    image_folder(folder / "images")
    (folder / "mine.yaml").write_text(CONFIG)
    return folder


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: the hub's address in these tests, so
    that no attempt to reach it can leave the machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(folder: Path, *args: str, snakefile: Path | None = None, check=True) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, *args] if snakefile is None else [*SNAKEMAKE, "-s", str(snakefile), *args]
    env = dict(
        os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}"
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, env=env, timeout=1500)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.mark.integration
def test_a_study_folder_with_six_lines_of_config_gets_its_findings_and_figures(tmp_path):
    folder = study(tmp_path)
    run(
        folder,
        "--cores",
        "2",
        "--directory",
        str(folder),
        "--configfile=mine.yaml",
        snakefile=REPO / "Snakefile",
    )
    findings = (folder / "results/findings.md").read_text()
    assert "| F5 Spearman of loss at t = 0 and lambda, all runs | mine |" in findings
    assert (folder / "results/figures/primary_findings.pdf").stat().st_size > 0
    assert (folder / "results/runs/mine/small/seed2/traces.npz").exists()
    assert not (REPO / "results/runs/mine").exists()  # nothing written into the repository
    assert not warning_lines(folder)  # no Python warning in any rule's log
    # a copy of the finished study is complete where it lands: no input or param points
    # into the repository or the old folder
    copy = tmp_path / "copied"
    shutil.copytree(folder, copy, symlinks=True)
    proc = run(copy, "-n", "--directory", str(copy), "--configfile=mine.yaml", snakefile=REPO / "Snakefile")
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


@pytest.mark.integration
def test_the_workflow_as_a_module_of_a_study_snakefile(tmp_path):
    folder = study(tmp_path)
    (folder / "Snakefile").write_text(MODULE_SNAKEFILE.replace("@REPO@", str(REPO)))
    dry = run(folder, "-n", "--quiet", "rules")
    assert "finetune" in dry.stdout and "findings" in dry.stdout, dry.stdout[-3000:]
    # the inputs are the study's, relative to it
    plan = run(folder, "-n", "--forceall", "results/findings.md").stdout
    inputs = [ln for ln in plan.splitlines() if ln.strip().startswith(("input:", "output:"))]
    assert inputs and not [ln for ln in inputs if str(REPO) in ln or str(folder) in ln]
    run(folder, "--cores", "2", "results/data/mine/manifest.csv")
    assert (folder / "results/data/mine/manifest.csv").exists()
    assert (folder / "logs/prepare_dataset/mine.log").exists()


def test_a_dataset_path_that_does_not_exist_stops_at_parse_time(tmp_path):
    folder = study(tmp_path)
    (folder / "mine.yaml").write_text(CONFIG.replace("path: images", "path: imagse"))
    proc = run(
        folder,
        "-n",
        "--directory",
        str(folder),
        "--configfile=mine.yaml",
        snakefile=REPO / "Snakefile",
        check=False,
    )
    assert proc.returncode != 0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "datasets.mine.path" in ln]
    assert lines and "imagse does not exist" in lines[0] and str(folder / "imagse") in lines[0]


def test_yaml_1_2_numbers_parse_and_a_misspelt_key_gets_a_suggestion(tmp_path):
    """Snakemake reads the study's YAML (YAML 1.1: 3e-3 is a string); the config check
    makes it the number the schema wants. A misspelt key is named with the closest one."""
    folder = study(tmp_path)
    (folder / "mine.yaml").write_text(CONFIG.replace("lr: 1.0e-3", "lr: 3e-3"))
    args = ("-n", "--directory", str(folder), "--configfile=mine.yaml")
    proc = run(folder, *args, snakefile=REPO / "Snakefile")
    assert "finetune" in proc.stdout, proc.stdout[-2000:]
    (folder / "mine.yaml").write_text(CONFIG.replace("warmup_epochs", "warmup_epoch"))
    proc = run(folder, *args, snakefile=REPO / "Snakefile", check=False)
    assert proc.returncode != 0
    assert (
        "unknown config key 'warmup_epoch' under 'train'; did you mean 'warmup_epochs'?"
        in proc.stdout + proc.stderr
    )


@pytest.mark.integration
def test_a_changed_dataset_path_reruns_preparation(tmp_path):
    folder = study(tmp_path)
    target = ("--directory", str(folder), "--configfile=mine.yaml", "results/data/mine/manifest.csv")
    run(folder, "--cores", "1", *target, snakefile=REPO / "Snakefile")
    shutil.copytree(folder / "images", folder / "images2")
    (folder / "mine.yaml").write_text(CONFIG.replace("path: images", "path: images2"))
    proc = run(folder, "-n", *target, snakefile=REPO / "Snakefile")
    assert "prepare_dataset" in proc.stdout, proc.stdout[-3000:]
    assert "params" in proc.stdout.split("rule prepare_dataset")[1].split("\n\n")[0], proc.stdout[-3000:]


@pytest.mark.integration
def test_a_study_whose_config_names_only_a_folder_of_cartography_runs_gets_findings_figures_and_report(
    tmp_path,
):
    """Issue 26's "done when": training dynamics recorded elsewhere with dataset
    cartography (two architectures, three seeds), a config that names only their folder,
    `snakemake --cores 2` from the study's own folder: findings.md, every figure, the report."""
    folder = tmp_path / "glue"
    make_cartography_runs(folder / "dynamics")
    (folder / "config.yaml").write_text(
        "grid: {datasets: [sst2]}\ndatasets:\n  sst2: {source: traces, path: dynamics}\n"
    )
    run(folder, "--cores", "2", snakefile=REPO / "Snakefile")
    findings = (folder / "results/findings.md").read_text()
    assert "| F1 top-10% Jaccard, within minus cross architecture (cnn vs vit) | sst2 |" in findings
    assert "| F6 spaced minus random, final held-out accuracy (vit) | sst2 |" in findings
    assert "**not comparable**: the sampler comparison trains new budgeted runs" in findings
    assert "no held-out samples in the runs' traces (not recorded)" in findings
    for name, spec in FIGURES.items():
        if name != "sampler":  # drawn only with a sampler comparison
            where = f"results/figures/sst2/{name}.pdf" if spec.per_dataset else f"results/figures/{name}.pdf"
            assert (folder / where).stat().st_size > 0, name
    assert not list((folder / "results/figures").rglob("sampler.pdf"))
    assert (folder / "results/runs/sst2/vit/seed2/traces.npz").exists()
    assert not (folder / "logs/finetune").exists() and not (folder / "logs/prepare_dataset").exists()
    run(folder, "--report", "report.html", snakefile=REPO / "Snakefile")
    html = (folder / "report.html").read_text(errors="replace")
    assert "findings.html" in html and "primary_findings.png" in html
    assert not (REPO / "results/runs/sst2").exists()


def readme_offline_config() -> str:
    """The README's offline study config, verbatim."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# ~/offline/config\.yaml.*?)```", text, re.DOTALL)
    assert block, "README.md lost its offline study block"
    return block[1]


# the README's offline study, made quick for a test: fewer epochs and draws, no sampler runs;
# its data, models, pretraining source, sizes and seeds stay as the README writes them
QUICK = """\
pretrain: {epochs: 2}
train: {warmup_epochs: 1, epochs: 2}
stats: {bootstrap: 20, permutations: 20, null_draws: 2, tie_draws: 5}
sampler: {enabled: false}
"""


@pytest.mark.integration
def test_the_readme_offline_study_gets_its_findings_without_the_network(tmp_path):
    """As the README says: the config block in ~/offline/config.yaml beside an image folder,
    `HF_HUB_OFFLINE=1 snakemake --cores 2 -s <repo>/Snakefile` in that folder (the hub's
    address is a closed port: any attempt to reach it would fail the run)."""
    folder = tmp_path / "offline"
    image_folder(folder / "images", per_class=10)
    (folder / "config.yaml").write_text(readme_offline_config())
    (folder / "quick.yaml").write_text(QUICK)
    proc = run(
        folder, "--cores", "2", "--configfile=quick.yaml", "results/findings.md", snakefile=REPO / "Snakefile"
    )
    findings = (folder / "results/findings.md").read_text()
    for label in ("small CNN", "small ViT"):
        assert f"| Held-out accuracy at end ({label}) | mine |" in findings, findings[:3000]
        assert f"Held-out accuracy at the end of pretraining ({label})" in findings
    assert "F5 Spearman of loss at t = 0 and lambda" in findings
    for arch in ("cnn", "vit"):
        assert (folder / f"results/pretrain/glyphs/{arch}/weights.safetensors").exists()
        assert (folder / f"results/runs/mine/{arch}/seed2/traces.npz").exists()
    assert not (folder / "resources/weights").exists() and "fetch_weights" not in proc.stdout + proc.stderr
    # two epochs of pretraining on 131 glyph classes cannot have converged: said in the log and the findings
    log = (folder / "logs/pretrain/glyphs/vit.log").read_text()
    assert "pretraining glyphs/vit: held-out accuracy" in log and ("still rising" in log or "chance" in log)
    care = findings.split("Read with care:")[1].split("##")[0]
    assert "end of pretraining" in care, care
    assert not warning_lines(folder, proc.stdout + proc.stderr)

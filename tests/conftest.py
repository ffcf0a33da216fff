"""Shared fixtures: tiny dataset trees in the real CUB-200-2011 and OCTDL layouts."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retention.acquire.model_names import CACHE_ENV

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# the user's cache (timm's model names, retention.acquire.model_names): one per test session,
# shared by every workflow the tests run, never the developer's own
os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="retention-test-cache-")
atexit.register(shutil.rmtree, os.environ[CACHE_ENV], ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]


def write_jpeg(path: Path, seed: int, size=(40, 30)) -> None:
    """A small real JPEG with random content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, "JPEG")


def make_cub_tree(root: Path, n_classes: int = 3, per_class: int = 4) -> Path:
    """CUB_200_2011/ with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt."""
    cub = root / "CUB_200_2011"
    names = [f"{k + 1:03d}.Bird_{k}" for k in range(n_classes)]
    images, labels, split = [], [], []
    image_id = 1
    for k, name in enumerate(names):
        for j in range(per_class):
            rel = f"{name}/{name.split('.')[1]}_{j:04d}.jpg"
            write_jpeg(cub / "images" / rel, seed=image_id)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {k + 1}")
            split.append(f"{image_id} {int(j % 2 == 0)}")
            image_id += 1
    (cub / "images.txt").write_text("\n".join(images) + "\n")
    (cub / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (cub / "classes.txt").write_text("\n".join(f"{k + 1} {n}" for k, n in enumerate(names)) + "\n")
    return cub


OCTDL_COUNTS = {"AMD": 24, "DME": 6, "ERM": 6, "NO": 10, "RAO": 4, "RVO": 5, "VID": 5}


def make_octdl_tree(root: Path, counts: dict[str, int] = OCTDL_COUNTS) -> Path:
    """OCTDL/<class>/<file>.jpg plus OCTDL_labels.csv (file_name, disease, patient_id, ...).

    Patients hold 1 to 3 images each, all of one disease, as in OCTDL.
    """
    rows = ["file_name,disease,subcategory,condition,patient_id,eye,sex,year"]
    patient = 1000
    seed = 0
    for disease, n in counts.items():
        made = 0
        while made < n:
            patient += 1
            for _ in range(min(1 + patient % 3, n - made)):
                name = f"{disease.lower()}_{patient}_{made}"
                write_jpeg(root / "OCTDL" / disease / f"{name}.jpg", seed=seed, size=(48, 32))
                rows.append(f"{name},{disease},x,y,{patient},OD,M,2021")
                made += 1
                seed += 1
    (root / "OCTDL_labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def cub_root(tmp_path):
    return make_cub_tree(tmp_path)


@pytest.fixture
def octdl_root(tmp_path):
    return make_octdl_tree(tmp_path)


def make_cartography_runs(
    folder: Path, archs=("cnn", "vit"), seeds=(0, 1, 2), n_samples=150, epochs=8
) -> Path:
    """Dataset cartography's training dynamics of synthetic runs (retention.fitting.simulate), one
    folder per run: ``folder/<arch>/seed<seed>/training_dynamics/dynamics_epoch_<k>.jsonl``."""
    from retention.dynamics import cartography
    from retention.fitting.simulate import simulate_runs

    runs = simulate_runs(
        [(a, s) for a in archs for s in seeds], n_samples=n_samples, n_heldout=0, epochs=epochs
    )
    for (arch, seed), arrays in runs.items():
        out = folder / arch / f"seed{seed}" / "training_dynamics"
        out.mkdir(parents=True)
        cartography.write_run(arrays, out)
    return folder


#: a Python warning as warnings.formatwarning writes it (to stderr, or to a log through the
#: logger py.warnings, which every script's retention.io.setup_logging turns on)
WARNING_LINE = re.compile(r"\.py:\d+: \w*Warning\b")


def warning_lines(folder: Path, output: str = "") -> list[str]:
    """Every Python warning in a study's rule logs (``folder/logs``) and in ``output``
    (Snakemake's, which holds what jobs print before their log is set up)."""
    lines = [ln for ln in output.splitlines() if WARNING_LINE.search(ln)]
    for log in sorted((folder / "logs").rglob("*.log")):
        text = log.read_text(errors="replace")
        lines += [f"{log.relative_to(folder)}: {ln}" for ln in text.splitlines() if WARNING_LINE.search(ln)]
    return lines

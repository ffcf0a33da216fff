import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retention.acquire import data
from retention.acquire.listing import (
    DIGITS_LT_MAX_RATIO,
    DIGITS_MIN_CLASS,
    list_cub200,
    list_digits,
    list_digits_lt,
    list_octdl,
)
from retention.errors import ConfigError, DataError

from .conftest import REPO, write_jpeg


def test_cub_loader_reads_official_layout(cub_root):
    listing = list_cub200(cub_root)
    assert len(listing) == 12
    assert listing["sample_id"].tolist() == list(range(1, 13))
    assert sorted(listing["class_name"].unique()) == ["Bird_0", "Bird_1", "Bird_2"]
    # the official split: even j (ids 1, 3, ...) are training images
    assert listing.loc[listing["sample_id"] == 1, "split"].item() == "train"
    assert listing.loc[listing["sample_id"] == 2, "split"].item() == "heldout"
    assert listing["label"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert all(p.endswith(".jpg") for p in listing["source"])


def test_cub_loader_names_missing_file(cub_root):
    (cub_root / "train_test_split.txt").unlink()
    with pytest.raises(DataError, match="train_test_split.txt"):
        list_cub200(cub_root)


def test_octdl_split_groups_patients_and_stratifies(octdl_root):
    listing = data.assign_split(list_octdl(octdl_root), 0.2, split_seed=3)
    assert len(listing) == sum([24, 6, 6, 10, 4, 5, 5])
    assert listing["class_name"].unique().tolist() == ["AMD", "DME", "ERM", "NO", "RAO", "RVO", "VID"]
    sides = listing.groupby("group")["split"].nunique()
    assert (sides == 1).all(), "a patient is on both sides"
    for name, part in listing.groupby("class_name"):
        if part["group"].nunique() >= 2:
            assert set(part["split"]) == {"train", "heldout"}, name
    frac = (listing["split"] == "heldout").mean()
    assert 0.1 <= frac <= 0.35


def test_split_depends_only_on_split_seed(octdl_root):
    listing = list_octdl(octdl_root)
    a = data.assign_split(listing, 0.2, split_seed=0)["split"].tolist()
    b = data.assign_split(listing, 0.2, split_seed=0)["split"].tolist()
    c = data.assign_split(listing, 0.2, split_seed=1)["split"].tolist()
    assert a == b
    assert a != c


def test_stratified_split_is_exact_without_groups():
    labels = np.repeat(np.arange(4), [100, 50, 20, 5])
    groups = np.arange(len(labels))
    held = data.split_grouped_stratified(labels, groups, 0.2, seed=0)
    counts = [held[labels == k].sum() for k in range(4)]
    assert counts == [20, 10, 4, 1]


def test_octdl_csv_image_missing_on_disk(octdl_root):
    victim = next((octdl_root / "OCTDL" / "RAO").glob("*.jpg"))
    victim.unlink()
    with pytest.raises(DataError, match=victim.stem):
        list_octdl(octdl_root)


def test_digits_lt_has_the_octdl_imbalance():
    listing = list_digits_lt(56, seed=0)
    counts = listing["label"].value_counts()
    assert counts.max() / counts.min() == 56
    assert counts.idxmax() == 0 and counts.min() == 3
    assert list_digits_lt(56, seed=0)["sample_id"].tolist() == listing["sample_id"].tolist()
    assert list_digits()["label"].value_counts().min() == DIGITS_MIN_CLASS
    top = list_digits_lt(DIGITS_LT_MAX_RATIO, seed=0)["label"].value_counts()
    assert top.max() == DIGITS_MIN_CLASS
    with pytest.raises(ConfigError, match="imbalance_ratio 100 needs 300 images"):
        list_digits_lt(100, seed=0)


def test_prepare_decodes_to_uint8_squares(cub_root):
    prepared = data.prepare_dataset("cub200", cub_root, storage_size=24)
    assert prepared.images.shape == (12, 24, 24, 3)
    assert prepared.images.dtype == np.uint8
    assert list(prepared.manifest.columns) == data.MANIFEST_COLUMNS


def test_imagefolder(tmp_path):
    for cls in ("cat", "dog"):
        for j in range(5):
            write_jpeg(tmp_path / "tree" / cls / f"{j}.jpg", seed=j)
    prepared = data.prepare_dataset("imagefolder", tmp_path / "tree", 16, heldout_fraction=0.2)
    assert sorted(prepared.manifest["class_name"].unique()) == ["cat", "dog"]
    assert (prepared.manifest["split"] == "heldout").sum() == 2


def test_corrupt_image_stops_or_is_skipped(cub_root):
    bad = sorted((cub_root / "images").rglob("*.jpg"))[3]
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=bad.name):
        data.prepare_dataset("cub200", cub_root, 16)
    prepared = data.prepare_dataset("cub200", cub_root, 16, skip_corrupt=True)
    assert len(prepared.manifest) == 11
    assert len(prepared.skipped) == 1 and bad.name in prepared.skipped[0]
    assert not prepared.manifest["source"].str.endswith(bad.name).any()


def test_prepare_script_writes_manifest_and_images(tmp_path):
    out = tmp_path / "digits"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/prepare_dataset.py"),
            "--source",
            "digits",
            "--storage-size",
            "16",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    prepared = data.load_prepared(out / "manifest.csv", out / "images.npy")
    assert prepared.images.shape == (1797, 16, 16, 3)
    assert set(prepared.manifest["split"]) == {"train", "heldout"}
    assert not list(out.glob("*.tmp"))


def test_prepare_script_error_is_one_line(tmp_path):
    (tmp_path / "nowhere").mkdir()  # a folder without CUB's files
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/prepare_dataset.py"),
            "--source",
            "cub200",
            "--path",
            str(tmp_path / "nowhere"),
            "--storage-size",
            "16",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "images.txt" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_class_names_indexed_by_label():
    manifest = pd.DataFrame({"label": [1, 0, 1], "class_name": ["b", "a", "b"]})
    assert data.class_names(manifest) == ["a", "b"]

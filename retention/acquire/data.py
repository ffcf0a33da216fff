"""Datasets: one interface for digits, digits_lt, imagefolder, cub200 and octdl.

A dataset is first *listed* (one row per image: sample_id, label, class_name, split,
source, group; :mod:`retention.acquire.listing`), then *split* (train / heldout, fixed by
``split_seed`` alone), then *decoded* once into a uint8 array at a square storage
resolution, so that no training job ever decodes an image file. ``prepare_dataset`` does
all three; ``load_prepared`` reads its files back.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from retention.acquire.listing import DIGITS_LT_RATIO, list_samples, read_image
from retention.errors import DataError

log = logging.getLogger("retention.acquire.data")
MANIFEST_COLUMNS = ["sample_id", "label", "class_name", "split", "source", "group"]


@dataclass
class PreparedDataset:
    """A decoded dataset: ``images[i]`` is the image of ``manifest.iloc[i]``.

    images: uint8 (N, S, S, 3). skipped: files left out as unreadable (skip_corrupt).
    """

    manifest: pd.DataFrame
    images: np.ndarray
    skipped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- split


def split_grouped_stratified(
    labels: np.ndarray, groups: np.ndarray, heldout_fraction: float, seed: int
) -> np.ndarray:
    """Boolean mask of held-out samples: stratified by label, no group on both sides.

    Each group is assigned to the stratum of its most common label. Within a stratum the
    groups are put in a seeded random order and the held-out side takes the prefix whose
    image count is nearest to round(fraction * stratum size); a stratum of two or more
    groups keeps at least one group on each side, a stratum of one group stays in train.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = inverse.max() + 1
    sizes = np.bincount(inverse, minlength=n_groups)
    counts = np.zeros((n_groups, labels.max() + 1), dtype=np.int64)
    np.add.at(counts, (inverse, labels), 1)
    stratum = counts.argmax(axis=1)  # ties: the smallest label
    heldout_group = np.zeros(n_groups, dtype=bool)
    for s in np.unique(stratum):
        members = rng.permutation(np.flatnonzero(stratum == s))
        if len(members) < 2:
            continue
        cum = np.cumsum(sizes[members])[:-1]  # prefixes of 1 .. len-1 groups
        target = heldout_fraction * sizes[members].sum()
        k = int(np.argmin(np.abs(cum - round(target)))) + 1
        heldout_group[members[:k]] = True
    return heldout_group[inverse]


def assign_split(listing: pd.DataFrame, heldout_fraction: float, split_seed: int) -> pd.DataFrame:
    """Fill ``split`` where the source has no official split (grouped when ``group`` set)."""
    if (listing["split"] != "").all():
        return listing
    groups = listing["group"].where(listing["group"] != "", "sample:" + listing["sample_id"].astype(str))
    held = split_grouped_stratified(
        listing["label"].to_numpy(), groups.to_numpy(), heldout_fraction, split_seed
    )
    out = listing.copy()
    out["split"] = np.where(held, "heldout", "train")
    return out


# ----------------------------------------------------------------------------- decoding


def to_storage(img: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` (bilinear, antialiased) and centre-crop square."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None if scale > 0.5 else 3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _decode(source: str, size: int) -> np.ndarray | str:
    try:
        return to_storage(read_image(source), size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        return f"{source}: {err}"


def decode_images(
    listing: pd.DataFrame, storage_size: int, skip_corrupt: bool = False, workers: int = 1
) -> PreparedDataset:
    """Decode every listed image into uint8 (N, S, S, 3).

    An unreadable image raises DataError naming the file, unless ``skip_corrupt``: then
    it is left out of the manifest and listed in ``skipped``.
    """
    sources = listing["source"].tolist()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = list(pool.map(lambda s: _decode(s, storage_size), sources, chunksize=64))
    bad = [i for i, d in enumerate(decoded) if isinstance(d, str)]
    if bad and not skip_corrupt:
        raise DataError(
            f"unreadable image {decoded[bad[0]]} ({len(bad)} unreadable in all); "
            "set data.skip_corrupt: true to skip such files"
        )
    keep = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
    if not keep:
        raise DataError("no readable image in the dataset")
    images = np.stack([decoded[i] for i in keep])
    manifest = listing.iloc[keep].reset_index(drop=True)[MANIFEST_COLUMNS]
    return PreparedDataset(manifest, images, [decoded[i] for i in bad])


def check_classes(manifest: pd.DataFrame, classes: pd.Series, min_per_class: int, where: str) -> None:
    """DataError unless ``classes`` (label -> class name) are two or more and each has at
    least ``min_per_class`` train images in ``manifest``; ``where`` names the dataset."""
    if len(classes) < 2:
        names = ", ".join(f"'{c}'" for c in classes) or "none"
        raise DataError(f"{where} has {len(classes)} class(es) ({names}); the analysis needs at least 2")
    splits = manifest.groupby(["label", "split"]).size().unstack(fill_value=0)
    train = splits.get("train", pd.Series(dtype=int)).reindex(classes.index, fill_value=0)
    short = train[train < min_per_class]
    if len(short):
        label = short.index[0]
        held = int(splits.get("heldout", pd.Series(dtype=int)).get(label, 0))
        raise DataError(
            f"{where}: class '{classes[label]}' has {short.iloc[0]} training image(s) after "
            f"the split ({held} held out; {len(short)} class(es) below data.min_per_class = "
            f"{min_per_class}); add images, lower heldout_fraction or data.min_per_class, "
            "or remove the class"
        )


def prepare_dataset(
    source: str,
    path: str | os.PathLike | None,
    storage_size: int,
    heldout_fraction: float = 0.2,
    split_seed: int = 0,
    imbalance_ratio: float = DIGITS_LT_RATIO,
    skip_corrupt: bool = False,
    workers: int = 1,
    min_per_class: int = 2,
    skip_empty_classes: bool = False,
) -> PreparedDataset:
    """List, split and decode a dataset (see the module docstring).

    Stops with DataError before decoding, and again after skipping unreadable images,
    unless there are two or more classes with ``min_per_class`` train images each.
    """
    where = f"dataset '{source}'" + (f" at {path}" if path is not None else "")
    listing = list_samples(source, path, imbalance_ratio, split_seed, skip_empty_classes)
    listing = assign_split(listing, heldout_fraction, split_seed)
    classes = listing.drop_duplicates("label").set_index("label")["class_name"].sort_index()
    check_classes(listing, classes, min_per_class, where)
    prepared = decode_images(listing, storage_size, skip_corrupt, workers)
    if prepared.skipped:
        check_classes(prepared.manifest, classes, min_per_class, where)
    for split in ("train", "heldout"):
        if not (prepared.manifest["split"] == split).any():
            raise DataError(f"{where} has no {split} samples after the split")
    return prepared


def load_prepared(manifest_path: str | os.PathLike, images_path: str | os.PathLike) -> PreparedDataset:
    """Read a prepared dataset back (manifest.csv and images.npy), checking they agree
    (a missing, truncated or unreadable file is a DataError naming it: ``retention.io``)."""
    from retention.io import read_npy, read_table

    manifest = read_table(
        manifest_path,
        "manifest",
        columns=MANIFEST_COLUMNS,
        dtype={"class_name": str, "group": str, "split": str},
    )
    manifest["group"] = manifest["group"].fillna("")
    images = read_npy(images_path, "prepared images")
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != len(manifest):
        raise DataError(
            f"{images_path}: expected uint8 (N={len(manifest)}, S, S, 3), got {images.dtype} {images.shape}"
        )
    return PreparedDataset(manifest, np.asarray(images))


def class_names(manifest: pd.DataFrame) -> list[str]:
    """Class names indexed by label."""
    pairs = manifest[["label", "class_name"]].drop_duplicates().sort_values("label")
    names = dict(zip(pairs["label"], pairs["class_name"]))
    return [str(names.get(k, k)) for k in range(int(manifest["label"].max()) + 1)]

"""Dataset listing: one row per image (the manifest's columns: sample_id, label, class_name,
split, source, group) for each source: digits, digits_lt, imagefolder, cub200, octdl and the
synthetic glyphs. ``split`` is filled where the dataset has an official one, else empty.
:func:`list_samples` picks the reader of a source and :func:`read_image` opens one listed
image; :mod:`retention.acquire.data` splits and decodes what is listed.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from retention.acquire import glyphs
from retention.config import DIGITS_LT_MAX_RATIO, DIGITS_LT_SMALLEST, DIGITS_MIN_CLASS, schema_default
from retention.dynamics import sources as imports
from retention.errors import ConfigError, DataError

#: the schema's default of datasets.<name>.imbalance_ratio (digits_lt: OCTDL's 56:1)
DIGITS_LT_RATIO = schema_default("datasets", "*", "imbalance_ratio")

log = logging.getLogger("retention.acquire.listing")

#: every dataset source; ``traces`` (retention.dynamics.sources) holds runs recorded elsewhere, no images
SOURCES = ("digits", "digits_lt", "imagefolder", "cub200", "octdl", glyphs.SOURCE, imports.SOURCE)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return pixels, bunch.target.astype(np.int64)


def list_digits() -> pd.DataFrame:
    """scikit-learn's 1,797 bundled 8x8 digits, 10 classes, no official split."""
    _, target = _digits()
    n = len(target)
    return pd.DataFrame(
        {
            "sample_id": np.arange(n, dtype=np.int64),
            "label": target,
            "class_name": [str(c) for c in target],
            "split": "",
            "source": [f"digits:{i}" for i in range(n)],
            "group": "",
        }
    )


def long_tail_counts(n_classes: int, n_max: int, ratio: float) -> np.ndarray:
    """Exponentially decaying class sizes from ``n_max`` down to ``n_max / ratio``.

    Class 0 is the largest; the last class has round(n_max / ratio) samples (>= 1).
    """
    n_min = max(1, int(round(n_max / ratio)))
    counts = n_max * (n_min / n_max) ** (np.arange(n_classes) / max(n_classes - 1, 1))
    counts = np.rint(counts).astype(int)
    counts[-1] = n_min
    return counts


def list_digits_lt(imbalance_ratio: float, seed: int) -> pd.DataFrame:
    """A long-tailed subsample of digits whose largest / smallest class is ``imbalance_ratio``.

    The smallest class keeps 3 images, the largest round(3 * ratio), so the ratio is
    met to the nearest third. Which images are kept is fixed by ``seed`` (the split
    seed). A ratio that needs more images than digits' smallest class has is an error.
    """
    full = list_digits()
    n_min = DIGITS_LT_SMALLEST
    n_max = int(round(n_min * imbalance_ratio))
    if n_max > DIGITS_MIN_CLASS:
        raise ConfigError(
            f"imbalance_ratio {imbalance_ratio:g} needs {n_max} images in digits_lt's largest "
            f"class, but digits has {DIGITS_MIN_CLASS} in its smallest; digits_lt gives at most "
            f"{DIGITS_LT_MAX_RATIO:g}"
        )
    counts = long_tail_counts(10, n_max, n_max / n_min)
    rng = np.random.default_rng(seed)
    keep = []
    for label, count in enumerate(counts):
        idx = np.flatnonzero(full["label"].to_numpy() == label)
        keep.append(np.sort(rng.choice(idx, size=count, replace=False)))
    return full.iloc[np.concatenate(keep)].reset_index(drop=True)


def _strip_number(name: str) -> str:
    """'001.Black_footed_Albatross' -> 'Black_footed_Albatross'."""
    return re.sub(r"^\d+\.", "", name)


def _read_table(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise DataError(f"missing file {path} (is the dataset extracted there?)")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=columns - 1)
        if len(parts) != columns:
            raise DataError(f"{path}, line {lineno}: expected {columns} fields, got {line!r}")
        rows.append(parts)
    return rows


def list_cub200(root: str | os.PathLike) -> pd.DataFrame:
    """CUB-200-2011 from its extracted directory (the one holding images.txt).

    Reads images.txt, image_class_labels.txt, train_test_split.txt and classes.txt;
    sample_id is CUB's image_id; the split is the official one.
    """
    root = Path(root)
    images = {int(i): p for i, p in _read_table(root / "images.txt", 2)}
    labels = {int(i): int(c) for i, c in _read_table(root / "image_class_labels.txt", 2)}
    is_train = {int(i): int(s) for i, s in _read_table(root / "train_test_split.txt", 2)}
    classes = {int(c): _strip_number(n) for c, n in _read_table(root / "classes.txt", 2)}
    for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train)):
        missing = sorted(set(images) - set(table))
        if missing:
            raise DataError(f"{root / name} has no entry for image_id {missing[0]}")
    ids = sorted(images)
    class_ids = sorted(classes)
    index = {c: k for k, c in enumerate(class_ids)}
    return pd.DataFrame(
        {
            "sample_id": np.array(ids, dtype=np.int64),
            "label": np.array([index[labels[i]] for i in ids], dtype=np.int64),
            "class_name": [classes[labels[i]] for i in ids],
            "split": ["train" if is_train[i] else "heldout" for i in ids],
            "source": [str(root / "images" / images[i]) for i in ids],
            "group": "",
        }
    )


def _index_images(root: Path) -> dict[str, Path]:
    """Every image file below ``root``, keyed by file stem (and by file name)."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
            found.setdefault(path.name, path)
    return found


def list_octdl(root: str | os.PathLike) -> pd.DataFrame:
    """OCTDL from its directory: class folders of images plus OCTDL_labels.csv.

    The CSV (file_name, disease, patient_id, ...) gives label and patient; images are
    found anywhere below ``root`` by file name. sample_id is the row rank by file_name.
    """
    root = Path(root)
    csv_path = root / "OCTDL_labels.csv"
    if not csv_path.is_file():
        candidates = sorted(root.rglob("OCTDL_labels.csv"))
        if not candidates:
            raise DataError(f"missing file {csv_path} (OCTDL's labels with patient ids)")
        csv_path = candidates[0]
    table = pd.read_csv(csv_path, dtype=str)
    for column in ("file_name", "disease", "patient_id"):
        if column not in table.columns:
            raise DataError(f"{csv_path} has no column '{column}'")
    table = table.sort_values("file_name", kind="stable").reset_index(drop=True)
    files = _index_images(root)
    sources = []
    for name in table["file_name"]:
        path = files.get(name) or files.get(Path(name).stem)
        if path is None:
            raise DataError(f"{csv_path}: image '{name}' is not found below {root}")
        sources.append(str(path))
    classes = sorted(table["disease"].unique())
    index = {c: k for k, c in enumerate(classes)}
    return pd.DataFrame(
        {
            "sample_id": np.arange(len(table), dtype=np.int64),
            "label": table["disease"].map(index).to_numpy(dtype=np.int64),
            "class_name": table["disease"].to_numpy(),
            "split": "",
            "source": sources,
            "group": table["patient_id"].to_numpy(),
        }
    )


def _images_below(folder: Path) -> list[Path]:
    """Every image file below ``folder``, sorted; hidden files and folders ('.name') skipped.

    A folder that cannot be read raises DataError naming it (never a silently shorter list).
    """

    def fail(err: OSError) -> None:
        raise DataError(
            f"cannot read the folder {err.filename}: {err.strerror}; fix its permissions "
            "(the images below it would be left out)"
        )

    found = []
    for top, dirs, files in os.walk(folder, onerror=fail):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [
            Path(top, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        ]
    return sorted(found)


def _check_layout(root: Path, images: dict[str, list[Path]]) -> None:
    """DataError when the class folders look like ``<split>/<class>`` or there is one."""
    nested = {}  # class folder without images of its own -> its subfolders with images
    for name, paths in images.items():
        parts = [p.relative_to(root / name).parts for p in paths]
        if paths and all(len(q) > 1 for q in parts):
            nested[name] = sorted({q[0] for q in parts})
    shared = sorted(set.intersection(*map(set, nested.values()))) if len(nested) > 1 else []
    if shared:
        raise DataError(
            f"imagefolder root {root} looks like <split>/<class>: the folders "
            f"{', '.join(map(repr, nested))} hold no images of their own but share the "
            f"subfolders {', '.join(map(repr, shared[:5]))}; point the dataset's path at a "
            "folder whose subfolders are the classes (the workflow makes its own split)"
        )
    if len(images) == 1 and nested:
        [(name, subs)] = nested.items()
        raise DataError(
            f"imagefolder root {root} has one class folder, '{name}', whose images are in "
            f"its subfolders {', '.join(map(repr, subs[:5]))}; point the dataset's path at "
            f"{root / name} if those are the classes"
        )


def list_imagefolder(root: str | os.PathLike, skip_empty_classes: bool = False) -> pd.DataFrame:
    """A ``root/<class>/<image>`` tree; classes sorted by name, sample_id by sorted path.

    Images in subfolders of a class folder belong to the class (as in torchvision's
    ImageFolder); hidden files and folders are ignored. DataError, naming the folder, for
    a folder that cannot be read, a ``<split>/<class>`` layout and a class folder without
    images (left out with a warning when ``skip_empty_classes``). Image files directly in
    ``root`` belong to no class: left out with a warning.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"imagefolder root {root} is not a directory")
    try:
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise DataError(f"cannot read imagefolder root {root}: {err.strerror}") from err
    loose = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if loose:
        log.warning(
            "%d image file(s) directly in %s (e.g. %s) are in no class folder; left out",
            len(loose),
            root,
            loose[0].name,
        )
    images = {p.name: _images_below(p) for p in entries if p.is_dir()}
    _check_layout(root, images)
    empty = [name for name, paths in images.items() if not paths]
    if empty and not skip_empty_classes:
        raise DataError(
            f"class folder(s) {', '.join(str(root / n) for n in empty[:5])} hold no image "
            f"files ({', '.join(sorted(IMAGE_SUFFIXES))}); add images, remove the folder, or "
            "set data.skip_empty_classes: true to leave such folders out"
        )
    for name in empty:
        log.warning("skipped the empty class folder %s (data.skip_empty_classes)", root / name)
    rows = [(name, str(path)) for name, paths in images.items() for path in paths]
    if not rows:
        raise DataError(f"imagefolder root {root} holds no <class>/<image> files")
    classes = sorted({c for c, _ in rows})
    index = {c: k for k, c in enumerate(classes)}
    return pd.DataFrame(
        {
            "sample_id": np.arange(len(rows), dtype=np.int64),
            "label": np.array([index[c] for c, _ in rows], dtype=np.int64),
            "class_name": [c for c, _ in rows],
            "split": "",
            "source": [p for _, p in rows],
            "group": "",
        }
    )


def list_samples(
    source: str,
    path: str | os.PathLike | None = None,
    imbalance_ratio: float = DIGITS_LT_RATIO,
    split_seed: int = 0,
    skip_empty_classes: bool = False,
) -> pd.DataFrame:
    """List a dataset's images (manifest columns; ``split`` empty where not official)."""
    if source == "digits":
        return list_digits()
    if source == "digits_lt":
        return list_digits_lt(imbalance_ratio, split_seed)
    if source == glyphs.SOURCE:
        return glyphs.list_glyphs(split_seed)
    if source not in SOURCES:
        raise DataError(f"unknown dataset source '{source}' (one of {', '.join(SOURCES)})")
    if source == imports.SOURCE:
        raise DataError(
            f"dataset source '{source}' has no images to list: its runs are imported (rule import_traces), "
            "not prepared and trained"
        )
    if path is None:
        raise DataError(f"dataset source '{source}' needs a 'path'")
    if source == "imagefolder":
        return list_imagefolder(path, skip_empty_classes)
    return {"cub200": list_cub200, "octdl": list_octdl}[source](path)


# ----------------------------------------------------------------------------- reading


def read_image(source: str) -> Image.Image:
    """Open one image (a file path, or ``digits:<i>`` for the embedded digits) as RGB."""
    if source.startswith("digits:"):
        pixels, _ = _digits()
        return Image.fromarray(pixels[int(source.split(":", 1)[1])]).convert("RGB")
    if source.startswith(f"{glyphs.SOURCE}:"):
        return glyphs.read_glyph(source)
    with Image.open(source) as img:
        img.load()
        return img.convert("RGB")

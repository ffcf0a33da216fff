"""Our runs in the formats others read (results/export/{dataset}/, docs/contracts.md "Export").

* :func:`export_table`: every run of a dataset as one long table (Parquet; one row per run,
  split, sample and epoch, the columns of :data:`EXPORT_COLUMNS`) and each run's class
  centroid cosine as a second, small table; :mod:`retention.dynamics.longtable` reads both back.
* :func:`export_cartography`: one run's train samples as dataset cartography's
  ``dynamics_epoch_<t>.jsonl`` files (:func:`retention.dynamics.cartography.write_run`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from retention import io
from retention.dynamics import cartography
from retention.dynamics.cells import MEASURES, SPLITS
from retention.dynamics.sources import DYNAMICS_FOLDER
from retention.errors import DataError
from retention.fitting.traces import load_traces

log = logging.getLogger("retention.dynamics.export")

#: the columns of the exported long table, in order
EXPORT_COLUMNS = (
    "arch",
    "seed",
    "split",
    "sample_id",
    "label",
    "class_name",
    "source",
    "epoch",
    "t",
    "correct",
    *MEASURES,
    "pred",
)


def run_table(arrays, arch: str, seed: int, samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """The long table of one run's ``traces.npz`` arrays: train then held-out samples, each
    sample's epochs in order (``epoch`` counts the recorded epochs from 1, as metrics.csv;
    ``t`` as in traces.npz). ``samples``: the manifest, for each sample's ``source``."""
    t = np.asarray(arrays["t"], np.int64)
    names = np.asarray(arrays["class_names"]).astype(str)
    unique_names = len(set(names)) == len(names)
    frames = []
    for split, prefix in (("train", ""), ("heldout", "heldout_")):
        ids = np.asarray(arrays[prefix + "sample_id"], np.int64)
        label = np.asarray(arrays[prefix + "label"], np.int64)
        width = t.size
        rows = ids.size * width
        source = np.full(ids.size, "", dtype=object)
        if samples is not None and len(samples):
            found = samples.drop_duplicates("sample_id").set_index("sample_id")["source"].reindex(ids)
            source = found.fillna("").astype(str).to_numpy(object)
        labels = np.repeat(label, width)
        frames.append(
            pd.DataFrame(
                {
                    "arch": pd.Categorical.from_codes(np.zeros(rows, np.int8), categories=[arch]),
                    "seed": np.full(rows, int(seed), np.int64),
                    "split": pd.Categorical.from_codes(
                        np.full(rows, SPLITS.index(split), np.int8), categories=list(SPLITS)
                    ),
                    "sample_id": np.repeat(ids, width),
                    "label": labels,
                    "class_name": pd.Categorical.from_codes(labels, categories=names)
                    if unique_names
                    else names[labels],
                    "source": pd.Categorical(np.repeat(source, width)),
                    "epoch": np.tile(np.arange(1, width + 1, dtype=np.int64), ids.size),
                    "t": np.tile(t, ids.size),
                    "correct": np.asarray(arrays[prefix + "correct"], bool).ravel(),
                    **{col: np.asarray(arrays[prefix + col], np.float32).ravel() for col in MEASURES},
                    "pred": np.asarray(arrays[prefix + "pred"], np.int32).ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[list(EXPORT_COLUMNS)]


def centroid_table(arrays, arch: str, seed: int) -> pd.DataFrame:
    """One run's class centroid cosine as rows (class_a, class_b, cosine)."""
    cos = np.asarray(arrays["class_centroid_cosine"], np.float32)
    a, b = np.indices(cos.shape)
    return pd.DataFrame(
        {
            "arch": arch,
            "seed": np.int64(seed),
            "class_a": a.ravel().astype(np.int64),
            "class_b": b.ravel().astype(np.int64),
            "cosine": cos.ravel(),
        }
    )


def export_table(
    traces_paths: Sequence, runs: Sequence, table_path, centroids_path, manifest=None
) -> pd.DataFrame:
    """Write the long table of every run (``runs``: (arch, seed) of each traces file, in
    order) and their class centroid cosine, atomically; ``manifest``: the dataset's
    manifest.csv (each sample's ``source``), or None."""
    if len(traces_paths) != len(runs):
        raise DataError(
            f"{len(traces_paths)} traces files for {len(runs)} runs; give one (arch, seed) per file"
        )
    samples = (
        pd.read_csv(manifest, dtype={"class_name": str, "source": str}, keep_default_na=False)
        if manifest
        else None
    )
    tables, centroids = [], []
    for path, (arch, seed) in zip(traces_paths, runs):
        traces = load_traces(path, f"{arch}/seed{seed}")
        arrays = {k: getattr(traces, k) for k in ("t", "class_names", "class_centroid_cosine")}
        for prefix in ("", "heldout_"):
            for k in ("sample_id", "label", "correct", *MEASURES, "pred"):
                arrays[prefix + k] = getattr(traces, prefix + k)
        tables.append(run_table(arrays, str(arch), int(seed), samples))
        centroids.append(centroid_table(arrays, str(arch), int(seed)))
    table = pd.concat(tables, ignore_index=True)
    for col in ("arch", "source", "class_name"):  # one dictionary over the runs
        table[col] = table[col].astype("category")
    with io.all_or_none(table_path, centroids_path):
        io.save_table(table_path, table)
        io.save_table(centroids_path, pd.concat(centroids, ignore_index=True))
    log.info("wrote %s (%d rows: %d runs) and %s", table_path, len(table), len(runs), centroids_path)
    return table


def export_cartography(traces_path, folder, run_name: str | None = None) -> list[Path]:
    """Write one run's train samples as cartography's training dynamics: ``folder`` is the
    run's folder (cartography's ``--model_dir``), its ``training_dynamics/`` sub-folder
    holds ``dynamics_epoch_<t>.jsonl``, t = 0..E, and nothing else (cartography counts
    its files). Atomic: the folder appears complete or not at all."""
    traces = load_traces(traces_path, run_name)
    arrays = {k: getattr(traces, k) for k in ("sample_id", "label", "class_names", "t", "p_true", "pred")}
    with io.atomic_dir(folder) as tmp:
        (tmp / DYNAMICS_FOLDER).mkdir()
        written = cartography.write_run(arrays, tmp / DYNAMICS_FOLDER)
    log.info("wrote %d epoch files of %s to %s", len(written), traces.run_name, folder)
    return [Path(folder) / DYNAMICS_FOLDER / p.name for p in written]

"""Import the runs of a traces dataset (``source: traces``): its long table or cartography
folders -> one ``traces.npz`` per run and the dataset's ``manifest.csv`` (docs/contracts.md
"Imported runs").

Everything is read and checked before anything is written, and the outputs are written
together (:func:`retention.io.all_or_none`): a bad input leaves nothing behind. Each
traces.npz is read back with :func:`retention.fitting.traces.load_traces`, so an imported run is a
valid run for every later stage. What the input does not record is written as the
contract's "not recorded" (no held-out samples, NaN, pred -1) and named in the log, with
the findings it makes not comparable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from retention import io
from retention.dynamics import cartography, cells, longtable
from retention.dynamics.sources import parse_run_key, run_key
from retention.errors import DataError
from retention.fitting.traces import load_traces

log = logging.getLogger("retention.dynamics.importing")

#: what an input may lack -> what can then not be compared
ABSENT = {
    "held-out records": "F4's held-out confusion and the held-out accuracy",
    "class-centroid cosine": "F4's centroid similarity",
    "labels": "the class-level findings (F4)",
    "p_true": "the soft trace definitions and rank scores, cartography's confidence and variability",
    "loss": "F5 (the loss at t = 0)",
    "el2n": "the EL2N score",
    "predictions": "F4's held-out confusion",
}


def read_source(settings: Mapping, centroids: str | None = None) -> longtable.Imported:
    """The runs of one traces dataset (rule import_traces' params: ``format``, ``path``,
    ``run``, ``t0_epoch``, ``class_names``, and for cartography ``folders``: run key ->
    folder), with the class centroid cosine table ``centroids`` where given."""
    if settings["format"] == "cartography":
        folders = {parse_run_key(k): Path(f) for k, f in settings["folders"].items()}
        imported = cartography.imported(folders, settings.get("t0_epoch"), settings.get("class_names"))
    else:
        run = parse_run_key(settings["run"]) if settings.get("run") else None
        table = cells.read_table(settings["path"])
        imported = longtable.table_runs(
            table, settings["path"], run, settings.get("t0_epoch"), settings.get("class_names")
        )
        imported.absent.append("class-centroid cosine")
    if centroids:
        longtable.read_centroids(centroids, imported)
        imported.absent.remove("class-centroid cosine")
    return imported


def write_imported(imported: longtable.Imported, outputs: Mapping[str, str], manifest_path) -> None:
    """Write each run's traces.npz (``outputs``: run key -> path: exactly the import's
    runs) and the manifest, all or none; each traces.npz is read back through the contract."""
    found = [run_key(*k) for k in imported.runs]
    if sorted(found) != sorted(outputs):
        raise DataError(
            f"the input holds the runs {found}, the workflow expected {sorted(outputs)}; the workflow reads "
            "the "
            "runs when it starts: run it again"
        )
    with io.all_or_none(*outputs.values(), manifest_path):
        for key, arrays in imported.runs.items():
            path = outputs[run_key(*key)]
            io.save_npz(path, arrays)
            load_traces(path, run_key(*key))
        io.save_table(manifest_path, imported.samples)


def import_dataset(settings: Mapping, outputs: Mapping[str, str], manifest_path, centroids=None):
    """Read, check and write one traces dataset (see the module docstring); returns the
    :class:`retention.dynamics.longtable.Imported`."""
    imported = read_source(settings, centroids)
    for (arch, seed), arrays in imported.runs.items():
        t = arrays["t"]
        log.info(
            "run %s: %d train and %d held-out samples, %d classes, t = %d..%d",
            run_key(arch, seed),
            arrays["sample_id"].size,
            arrays["heldout_sample_id"].size,
            len(arrays["class_names"]),
            int(t.min()),
            int(t.max()),
        )
    for what in imported.absent:
        log.warning("%s: no %s; not comparable: %s", settings["path"], what, ABSENT.get(what, what))
    write_imported(imported, outputs, manifest_path)
    return imported


def not_comparable_summary(group: str, dataset: str, trace: str, archs: Sequence[str], reason: str):
    """Summary rows (the columns of every summary.csv) of a group of findings (``F6``) that
    cannot be computed on ``dataset``: one per finding and architecture, no value,
    ``reason`` as the note."""
    from retention.stats.estimate import Estimate
    from retention.stats.registry import FINDINGS
    from retention.stats.tables import estimate_row, summary_columns

    findings = [f for f in FINDINGS if f.group == group]
    if not findings:
        raise DataError(f"no finding of group {group!r} in the registry (retention/stats/registry.py)")
    rows = [
        estimate_row(f, Estimate(arch=arch, note=reason), dataset, trace, "lambda", {})
        for f in findings
        for arch in archs
    ]
    return pd.DataFrame(rows, columns=summary_columns())

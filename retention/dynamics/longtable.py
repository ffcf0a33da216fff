"""The long table of training dynamics: one row per (run, sample, epoch), Parquet or CSV
(docs/contracts.md "Long table").

:func:`~retention.dynamics.cells.read_table` reads one (only its known columns; the
columns and their cells: :mod:`retention.dynamics.cells`); :func:`table_runs` checks it
and turns it into one set of ``traces.npz`` arrays per run
(:mod:`retention.fitting.traces`); the other direction is :mod:`retention.dynamics.export`.
Every error names the file, the row (counted from 1, the header not counted; for CSV also
the line) and the column.
Vectorised throughout: a CUB-sized grid (6,000 samples x 33 epochs x 20 runs, 4 million
rows) converts in seconds (benchmarks/bench_import.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retention.dynamics.cells import (
    CENTROID_COLUMNS,
    MEASURES,
    REQUIRED,
    Where,
    booleans,
    column_codes,
    integers,
    measure,
    read_table,
    run_codes,
    show,
)
from retention.dynamics.sources import run_key
from retention.errors import DataError

log = logging.getLogger("retention.dynamics.longtable")

#: fewest fine-tuning epochs (t >= 0) of a run: a decay fit needs three points
MIN_EPOCHS = 3
UNLABELLED = "unlabelled"


@dataclass
class Imported:
    """Runs read from one source: ``runs`` (arch, seed) -> the arrays of its traces.npz,
    in order of first appearance; ``samples``: one row per sample (the manifest's columns);
    ``absent``: what the input does not record (e.g. "held-out records", "loss")."""

    runs: dict
    samples: pd.DataFrame
    absent: list = field(default_factory=list)


# ------------------------------------------------------------------ checking and converting


@dataclass
class _Columns:
    """The table's columns as arrays, checked row by row."""

    run: np.ndarray
    runs: list
    split: np.ndarray  # bool: heldout
    sample_id: np.ndarray
    t: np.ndarray
    correct: np.ndarray
    label: np.ndarray | None
    pred: np.ndarray | None
    measures: dict
    class_name: tuple | None  # (codes, names)
    source: tuple | None


def _columns(table: pd.DataFrame, where: Where, run, t0_epoch) -> _Columns:
    cols = set(table.columns)
    missing = [c for c in REQUIRED if c not in cols] + ([] if cols & {"epoch", "t"} else ["epoch"])
    if missing:
        raise DataError(
            f"{where.path}: missing column {missing[0]!r} (the table has "
            f"{', '.join(table.columns) or 'no columns'}); "
            "the long table's columns are in docs/contracts.md"
        )
    if len(table) == 0:
        raise DataError(f"{where.path}: the table has no rows")
    runs_code, runs = run_codes(table, where, run)
    if "t" in cols:
        if t0_epoch is not None:
            raise DataError(
                f"{where.path}: has column 't', so the setting t0_epoch ({t0_epoch}) must be left unset"
            )
        t = integers(table, "t", where)
    else:
        epoch = integers(table, "epoch", where)
        if t0_epoch is None:  # each run's first epoch is t = 0
            first = np.full(len(runs), np.iinfo(np.int64).max)
            np.minimum.at(first, runs_code, epoch)
            t = epoch - first[runs_code]
        else:
            t = epoch - int(t0_epoch)
    split = np.zeros(len(table), bool)
    if "split" in cols:
        heldout, train = (
            (table["split"] == "heldout").to_numpy(bool),
            (table["split"] == "train").to_numpy(bool),
        )
        bad = ~(heldout | train)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where.row(i)}: column 'split' has {show(table['split'].iloc[i])}, expected train or "
                "heldout"
            )
        split = heldout
    label = integers(table, "label", where) if "label" in cols else None
    pred = integers(table, "pred", where) if "pred" in cols else None
    for name, values in (("label", label), ("pred", pred)):
        if values is not None and (values < 0).any():
            raise DataError(f"{where.row(int(np.argmax(values < 0)))}: column {name!r} is negative")
    if pred is not None and label is None:
        raise DataError(f"{where.path}: has column 'pred' but no column 'label'")
    correct = booleans(table, "correct", where)
    if pred is not None:
        bad = correct != (pred == label)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where.row(i)}: column 'correct' is {int(correct[i])} but pred {pred[i]} and label "
                f"{label[i]} "
                f"{'agree' if pred[i] == label[i] else 'differ'}"
            )
    measures = {c: measure(table, c, where) for c in MEASURES if c in cols}
    text = {c: column_codes(table[c], where, c) for c in ("class_name", "source") if c in cols}
    return _Columns(
        runs_code,
        runs,
        split,
        integers(table, "sample_id", where),
        t,
        correct,
        label,
        pred,
        measures,
        text.get("class_name"),
        text.get("source"),
    )


def _per_sample(
    values: np.ndarray, s: np.ndarray, n: int, rows: np.ndarray, where: Where, col: str, sid
) -> np.ndarray:
    """One value per sample of a per-row column that must not change over a sample's rows."""
    out = np.empty(n, values.dtype)
    out[s] = values
    bad = out[s] != values
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where.row(rows[i])}: column {col!r} has {show(values[i])} for sample_id {sid[s[i]]}, "
            f"which another of its rows gives as {show(out[s[i]])}"
        )
    return out


def _grid(c: _Columns, rows: np.ndarray, where: Where, name: str, what: str):
    """(sample ids, t values, sample codes, flat cell index) of one run's rows of one split;
    DataError for a repeated or missing (sample, epoch) cell."""
    sid, ids = pd.factorize(c.sample_id[rows])
    ids = np.asarray(ids, np.int64)
    tu, tc = np.unique(c.t[rows], return_inverse=True)
    n, width = ids.size, tu.size
    cell = sid.astype(np.int64) * width + tc
    counts = np.bincount(cell, minlength=n * width)
    if (counts > 1).any():
        k = int(np.flatnonzero(counts > 1)[0])
        first, second = rows[np.flatnonzero(cell == k)[:2]]
        raise DataError(
            f"{where.path}, {where.rownum(first)} and {where.rownum(second)}: run {name}, {what} sample_id "
            f"{ids[k // width]} at t = {tu[k % width]} appears twice (one row per run, sample and epoch)"
        )
    if (counts == 0).any():
        k = int(np.flatnonzero(counts == 0)[0])
        has = int((counts.reshape(n, width)[:, k % width] > 0).sum())
        raise DataError(
            f"{where.path}: run {name} has no row for {what} sample_id {ids[k // width]} at t = "
            f"{tu[k % width]}, "
            f"an epoch {has} other {what} sample(s) of the run have (every sample needs a row at every epoch)"
        )
    return ids, tu, sid, cell


def _fill(values: np.ndarray, cell: np.ndarray, shape, dtype, fill) -> np.ndarray:
    out = np.full(shape[0] * shape[1], fill, dtype)
    out[cell] = values
    return out.reshape(shape)


def _split_arrays(c: _Columns, rows: np.ndarray, where: Where, name: str, what: str) -> dict:
    """The arrays of one split of one run (traces.npz keys without the heldout_ prefix)."""
    ids, tu, sid, cell = _grid(c, rows, where, name, what)
    shape = (ids.size, tu.size)
    out = {"sample_id": ids, "t": tu, "correct": _fill(c.correct[rows], cell, shape, bool, False)}
    for col in MEASURES:
        out[col] = (
            _fill(c.measures[col][rows], cell, shape, np.float32, np.nan)
            if col in c.measures
            else np.full(shape, np.nan, np.float32)
        )
    out["pred"] = (
        _fill(c.pred[rows], cell, shape, np.int32, -1) if c.pred is not None else np.full(shape, -1, np.int32)
    )
    out["label"] = (
        _per_sample(c.label[rows], sid, ids.size, rows, where, "label", ids)
        if c.label is not None
        else np.zeros(ids.size, np.int64)
    )
    for col in ("class_name", "source"):
        pair = getattr(c, col)
        if pair is not None:
            out[col] = _per_sample(pair[0][rows], sid, ids.size, rows, where, col, ids)
    return out


def _check_epochs(name: str, t: np.ndarray, where: Where) -> None:
    fine = t[t >= 0]
    if fine.size < MIN_EPOCHS:
        raise DataError(
            f"{where.path}: run {name} has {fine.size} epoch(s) at t >= 0 (t = {fine.tolist()}); the decay "
            "fits need "
            f"at least {MIN_EPOCHS} (set t0_epoch, or give column 't', if t = 0 is another epoch)"
        )
    if not np.array_equal(fine, np.arange(fine.size)):
        gap = int(np.setdiff1d(np.arange(fine.max() + 1), fine)[0])
        raise DataError(
            f"{where.path}: run {name} has no rows at t = {gap}; the epochs t >= 0 must be 0..E without gaps"
        )


def table_runs(table: pd.DataFrame, path, run=None, t0_epoch=None, class_names=None, index=None) -> Imported:
    """Check a long table and turn it into the arrays of one ``traces.npz`` per run.

    run: (arch, seed) of a table without run columns; t0_epoch: the recorded epoch that is
    t = 0 (default: column ``t`` if present, else each run's first epoch); class_names: the
    names of the classes 0..C-1 (default: column ``class_name``, else the label as text).
    Every run must hold the same train samples with the same labels, every sample a row at
    every epoch of its run, and at least 3 epochs at t >= 0.
    """
    where = Where(path, index)
    c = _columns(table, where, run, t0_epoch)
    order = np.argsort(c.run, kind="stable")
    bounds = np.searchsorted(c.run[order], np.arange(len(c.runs) + 1))
    runs = {}
    for k, key in enumerate(c.runs):
        name = run_key(*key)
        rows = order[bounds[k] : bounds[k + 1]]
        held = c.split[rows]
        train = _split_arrays(c, rows[~held], where, name, "train") if (~held).any() else None
        if train is None:
            raise DataError(f"{where.path}: run {name} has no train rows (split = train)")
        heldout = _split_arrays(c, rows[held], where, name, "held-out") if held.any() else None
        if heldout is not None and not np.array_equal(heldout["t"], train["t"]):
            raise DataError(
                f"{where.path}: run {name} has held-out rows at t = {heldout['t'].tolist()} but train rows "
                "at "
                f"t = {train['t'].tolist()}; both need the same epochs"
            )
        _check_epochs(name, train["t"], where)
        runs[key] = (train, heldout)
    _check_aligned(runs, where)
    return _assemble(runs, c, class_names, where)


def _check_aligned(runs: dict, where: Where) -> None:
    """Every run holds the first run's train samples, with the same labels."""
    (first_key, (first, _)), *rest = runs.items()
    order = np.argsort(first["sample_id"])
    ids, labels = first["sample_id"][order], first["label"][order]
    for key, (train, _) in rest:
        other = np.sort(train["sample_id"])
        if not np.array_equal(other, ids):
            gone, new = np.setdiff1d(ids, other), np.setdiff1d(other, ids)
            which = (
                f"lacks sample_id {gone[0]}, which run {run_key(*first_key)} has"
                if gone.size
                else f"has sample_id {new[0]}, which run {run_key(*first_key)} lacks"
            )
            raise DataError(
                f"{where.path}: run {run_key(*key)} {which} ({other.size} and {ids.size} train samples); the "
                "statistics compare runs sample by sample, so every run needs the same train samples"
            )
        lab = train["label"][np.argsort(train["sample_id"])]
        if not np.array_equal(lab, labels):
            i = int(np.flatnonzero(lab != labels)[0])
            raise DataError(
                f"{where.path}: sample_id {ids[i]} has label {lab[i]} in run {run_key(*key)} but "
                f"{labels[i]} in run {run_key(*first_key)}"
            )


def _assemble(runs: dict, c: _Columns, class_names, where: Where) -> Imported:
    n_classes = 1
    if c.label is not None:
        n_classes = int(max(c.label.max(), c.pred.max() if c.pred is not None else 0)) + 1
    names = _class_names(runs, c, class_names, n_classes, where)
    out, samples = {}, []
    for key, (train, heldout) in runs.items():
        arrays = {
            "sample_id": train["sample_id"],
            "label": train["label"],
            "class_names": names,
            "t": train["t"],
        }
        for col in ("correct", "p_true", "loss", "el2n", "pred"):
            arrays[col] = train[col]
        empty = {
            "sample_id": np.zeros(0, np.int64),
            "label": np.zeros(0, np.int64),
            **{
                col: np.zeros((0, train["t"].size), train[col].dtype)
                for col in ("correct", "p_true", "loss", "el2n", "pred")
            },
        }
        for col, values in (heldout or empty).items():
            if col in empty:
                arrays["heldout_" + col] = values
        arrays["class_centroid_cosine"] = np.full((len(names), len(names)), np.nan, np.float32)
        out[key] = arrays
        for split, part in (("train", train), ("heldout", heldout)):
            if part is not None:
                samples.append(_sample_rows(part, split, c))
    table = pd.concat(samples, ignore_index=True).drop_duplicates("sample_id")
    table["class_name"] = names[table["label"].to_numpy()]
    table = table.sort_values("sample_id", kind="stable").reset_index(drop=True)
    absent = [
        what
        for what, gone in (
            ("held-out records", all(h is None for _, h in runs.values())),
            ("labels", c.label is None),
            ("p_true", "p_true" not in c.measures),
            ("loss", "loss" not in c.measures),
            ("el2n", "el2n" not in c.measures),
            ("predictions", c.pred is None),
        )
        if gone
    ]
    return Imported(out, table[["sample_id", "label", "class_name", "split", "source", "group"]], absent)


def _sample_rows(part: dict, split: str, c: _Columns) -> pd.DataFrame:
    source = (
        c.source[1][part["source"]].astype(str) if "source" in part else np.full(part["sample_id"].size, "")
    )
    return pd.DataFrame(
        {
            "sample_id": part["sample_id"],
            "label": part["label"],
            "split": split,
            "source": source,
            "group": "",
        }
    )


def _class_names(runs: dict, c: _Columns, class_names, n_classes: int, where: Where) -> np.ndarray:
    if c.label is None:
        return np.array([UNLABELLED])
    if class_names is not None:
        if len(class_names) < n_classes:
            raise DataError(
                f"{where.path}: labels go up to {n_classes - 1} but the setting class_names has "
                f"{len(class_names)} names"
            )
        return np.array([str(n) for n in class_names])
    names = [str(k) for k in range(n_classes)]
    if c.class_name is not None:
        seen: dict = {}
        for key, parts in runs.items():
            for part in parts:
                if part is None:
                    continue
                for label, code in zip(part["label"], part["class_name"]):
                    name = str(c.class_name[1][code])
                    if seen.setdefault(int(label), name) != name:
                        raise DataError(
                            f"{where.path}: label {label} is named both {seen[int(label)]!r} and "
                            f"{name!r} (column 'class_name', run {run_key(*key)})"
                        )
        names = [seen.get(k, str(k)) for k in range(n_classes)]
    return np.array(names)


def read_centroids(path, imported: Imported) -> None:
    """Set each run's ``class_centroid_cosine`` from a table of rows (run, or arch and seed;
    class_a, class_b, cosine): every run of the import, every pair of its classes."""
    table = read_table(path, CENTROID_COLUMNS)
    where = Where(path)
    missing = [c for c in ("class_a", "class_b", "cosine") if c not in table.columns]
    if missing:
        raise DataError(
            f"{path}: missing column {missing[0]!r}; a class centroid table has run (or arch and seed), "
            "class_a, class_b and cosine"
        )
    codes, keys = run_codes(table, where, None)
    a, b = (integers(table, c, where) for c in ("class_a", "class_b"))
    cos = pd.to_numeric(table["cosine"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(cos) | (np.abs(cos) > 1 + 1e-5)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{where.row(i)}: column 'cosine' has {show(table['cosine'].iloc[i])}, expected a cosine in "
            "[-1, 1]"
        )
    for key, arrays in imported.runs.items():
        if key not in keys:
            raise DataError(f"{path}: no rows for run {run_key(*key)}")
        c = len(arrays["class_names"])
        rows = np.flatnonzero(codes == keys.index(key))
        out = np.full((c, c), np.nan, np.float32)
        outside = (a[rows] < 0) | (a[rows] >= c) | (b[rows] < 0) | (b[rows] >= c)
        if outside.any():
            raise DataError(f"{where.row(rows[int(np.argmax(outside))])}: class index outside 0..{c - 1}")
        out[a[rows], b[rows]] = cos[rows]
        if np.isnan(out).any():
            i, j = np.argwhere(np.isnan(out))[0]
            raise DataError(f"{path}: run {run_key(*key)} has no row for classes {i} and {j}")
        arrays["class_centroid_cosine"] = out

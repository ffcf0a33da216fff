"""The long table's columns: what each holds, reading them, and each cell checked and typed.

:func:`read_table` reads a long table's known columns (Parquet or CSV); the cell readers
(:func:`integers`, :func:`booleans`, :func:`measure`, :func:`column_codes`, :func:`run_codes`)
turn a column into an array, vectorised, and a bad cell into one DataError naming the
file, the row (counted from 1, the header not counted; for CSV also the line) and the
column (:class:`Where`). :mod:`retention.dynamics.longtable` builds runs from them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from retention.dynamics.sources import RUN_KEY_FORM, parse_run_key, run_key
from retention.errors import DataError

#: column -> what it holds (docs/contracts.md "Long table"); the order of the export
COLUMNS = {
    "run": "the run, <arch>/seed<seed> (or columns arch and seed)",
    "arch": "the architecture (letters, digits, _ and -)",
    "seed": "the seed, an integer >= 0",
    "split": "train or heldout (default train)",
    "sample_id": "the sample's id, an integer stable across runs",
    "label": "the true class, an integer 0..C-1",
    "class_name": "the name of the label's class",
    "source": "the sample's file (an image path), if known",
    "epoch": "the epoch as recorded (any origin); t = epoch - t0_epoch",
    "t": "epochs since the end of warmup (0: the end of warmup; negative: warmup epochs)",
    "correct": "0 or 1: the prediction (arg max) is the label, eval mode at the end of the epoch",
    "p_true": "softmax probability of the true class, in [0, 1]",
    "loss": "cross-entropy of the sample, in nats",
    "el2n": "L2 norm of softmax minus the one-hot label",
    "pred": "the predicted class (arg max), an integer 0..C-1",
}
REQUIRED = ("sample_id", "correct")
#: the columns of a table of each run's class centroid cosine (docs/contracts.md)
CENTROID_COLUMNS = ("run", "arch", "seed", "class_a", "class_b", "cosine")
TEXT = ("run", "arch", "split", "class_name", "source")
INTEGER = ("seed", "sample_id", "label", "epoch", "t", "pred")
MEASURES = ("p_true", "loss", "el2n")
SPLITS = ("train", "heldout")


class Where:
    """Names a file and its rows in messages."""

    def __init__(self, path, index: np.ndarray | None = None):
        self.path = str(path)
        self.csv = self.path.endswith(".csv")
        self.index = index  # row positions in the file, where the table is a part of it

    def rownum(self, i: int) -> str:
        """``row 5`` (``row 5 (line 6)`` in a CSV) of the table's ``i``-th row."""
        pos = int(self.index[i]) if self.index is not None else int(i)
        return f"row {pos + 1}" + (f" (line {pos + 2})" if self.csv else "")

    def row(self, i: int) -> str:
        return f"{self.path}, {self.rownum(i)}"


# ------------------------------------------------------------------ reading


def show(value) -> str:
    """A cell's value as a message shows it (1.5, 'abc'; not np.float64(1.5))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def read_table(path, known=COLUMNS) -> pd.DataFrame:
    """The ``known`` columns of a long table (``.parquet`` or ``.csv``); DataError for a
    file that is missing or not a table."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            return pd.read_parquet(path, columns=[c for c in names if c in known])
        if path.suffix == ".csv":
            names = pd.read_csv(path, nrows=0).columns
            dtype = {c: str for c in TEXT if c in names}
            return pd.read_csv(
                path,
                usecols=[c for c in names if c in known],
                dtype=dtype,
                keep_default_na=False,
                na_values={c: [""] for c in names if c not in TEXT},
            )
    except (OSError, ValueError, ImportError) as err:
        raise DataError(f"{path}: not a readable {path.suffix} table ({type(err).__name__}: {err})") from err
    raise DataError(f"{path}: a long table is .parquet or .csv, not {path.suffix!r}")


def integers(table: pd.DataFrame, col: str, where: Where) -> np.ndarray:
    """Column ``col`` as int64; DataError naming the first row that is not an integer."""
    s = table[col]
    if s.dtype.kind in "iu":
        return s.to_numpy(np.int64)
    values = (
        pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
        if s.dtype.kind != "f"
        else s.to_numpy(np.float64)
    )
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where.row(i)}: column {col!r} has {show(s.iloc[i])}, not an integer")
    return values.astype(np.int64)


def booleans(table: pd.DataFrame, col: str, where: Where) -> np.ndarray:
    """Column ``col`` as bool: 0 / 1, or true / false (any case, as a CSV may write them)."""
    s = table[col]
    if s.dtype.kind == "b":
        return s.to_numpy(bool)
    if s.dtype.kind in "iuf":
        values = s.to_numpy(np.float64)
    else:
        words = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
        values = s.astype(str).str.strip().str.lower().map(words).to_numpy(np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where.row(i)}: column {col!r} has {show(s.iloc[i])}, expected 0 or 1 (or true / false)"
        )
    return values == 1.0


def measure(table: pd.DataFrame, col: str, where: Where) -> np.ndarray:
    values = pd.to_numeric(table[col], errors="coerce").to_numpy(np.float64)
    high = 1.0 + 1e-5 if col == "p_true" else math.inf
    bad = ~np.isfinite(values) | (values < 0) | (values > high)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        want = "a probability in [0, 1]" if col == "p_true" else "a finite number >= 0"
        raise DataError(f"{where.row(i)}: column {col!r} has {show(table[col].iloc[i])}, expected {want}")
    return values.astype(np.float32)


def column_codes(values: pd.Series, where: Where, col: str) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) of a column in order of first appearance (categorical columns by
    their codes, without making strings); an empty cell is an error."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        raise DataError(f"{where.row(int(np.flatnonzero(codes < 0)[0]))}: column {col!r} is empty")
    return np.asarray(codes, np.int64), np.asarray(uniques, dtype=object)


def run_codes(table: pd.DataFrame, where: Where, run) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Each row's run (codes into the list of (arch, seed), in order of first appearance)."""
    if "run" in table.columns:
        codes, names = column_codes(table["run"], where, "run")
        keys = []
        for k, name in enumerate(names):
            key = parse_run_key(name)
            if key is None:
                raise DataError(
                    f"{where.row(int(np.argmax(codes == k)))}: column 'run' has {name!r}, not a run key "
                    f"{RUN_KEY_FORM}"
                )
            keys.append(key)
    elif {"arch", "seed"} <= set(table.columns):
        arch, archs = column_codes(table["arch"], where, "arch")
        seed = integers(table, "seed", where)
        if (seed < 0).any():
            raise DataError(f"{where.row(int(np.argmax(seed < 0)))}: column 'seed' is negative")
        codes, pairs = pd.factorize(arch * (int(seed.max()) + 1) + seed)
        width = int(seed.max()) + 1
        keys = [(str(archs[p // width]), int(p % width)) for p in pairs]
        for k, (a, _) in enumerate(keys):
            if parse_run_key(f"{a}/seed0") is None:
                raise DataError(
                    f"{where.row(int(np.argmax(codes == k)))}: column 'arch' has {a!r}, not a name "
                    "(letters, digits, _ and -)"
                )
        codes = codes.astype(np.int64)
    elif run is not None:
        return np.zeros(len(table), np.int64), [tuple(run)]
    else:
        raise DataError(
            f"{where.path}: missing column 'run' (or columns 'arch' and 'seed'), and the dataset's setting "
            "'run' "
            f"is not set; name each row's run ({RUN_KEY_FORM}) or set the table's one run"
        )
    if len(set(keys)) < len(keys):  # e.g. "cnn/seed0" and "cnn_seed0"
        key = next(k for k in keys if keys.count(k) > 1)
        raise DataError(f"{where.path}: column 'run' names run {run_key(*key)} in two spellings; use one")
    return codes, keys

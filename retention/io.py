"""Atomic, deterministic file writing and the error handling every script shares.

Every output is written to a temporary name in the destination directory and renamed
into place, so a killed job never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from .errors import RetentionError

# A fixed timestamp for zip members, so the same arrays give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and nothing appears at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz, atomically and byte-reproducibly.

    Unlike ``np.savez`` the zip members carry a fixed timestamp, so identical arrays
    give an identical file. Readable with ``np.load``.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as .npy, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)


def save_table(path: str | os.PathLike, table) -> None:
    """Write a pandas DataFrame atomically; the suffix picks parquet, csv or md."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            raise ValueError(f"save_table: unsupported suffix {path.suffix!r} in {path}")


def save_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def setup_logging(log_path: str | os.PathLike | None = None) -> logging.Logger:
    """Log to stderr and, when given, to ``log_path`` (the rule's log file)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("retention")


def run_main(main: Callable[[], None]) -> None:
    """Run a script's ``main``; a user error becomes one line on stderr and exit 1."""
    try:
        main()
    except RetentionError as err:
        # one line, to stderr and to the rule's log (logging's last-resort handler
        # prints it to stderr when logging was not set up)
        logging.getLogger("retention").error("%s: %s", type(err).__name__, err)
        sys.exit(1)

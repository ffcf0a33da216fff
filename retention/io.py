"""Atomic, deterministic file writing, checked reading, and the error handling every
script shares.

Every output is written to a temporary name in the destination directory and renamed
into place, so a killed job never leaves a half-written file under its final name. A
write that fails (no space left, permission denied, a read-only folder) raises
StorageError naming the path and the free space there, and leaves nothing behind.

Every file a stage reads from another goes through one reader (:func:`read_table`,
:func:`read_npz`, :func:`read_npy`, :func:`read_json`): a missing file is a DataError
naming it and the rule that writes it; a truncated or unreadable one (a parquet file
without its footer, a csv cut mid-row, a zip without its directory) is a DataError naming
it and how to rebuild it (``snakemake --forcerun <rule> <file>``, the writer's rule), never a
traceback of the parser and never trusted. Scripts check their arguments first
(:func:`check_output`, :func:`require_file`), before any work.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NoReturn

import numpy as np

from retention.errors import ArgumentError, DataError, RetentionError, StorageError

# A fixed timestamp for zip members, so the same arrays give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def human_bytes(n: int) -> str:
    """``n`` bytes as a short string: ``"0 B"``, ``"395.9 KiB"``, ``"1.1 GiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def free_space(path: str | os.PathLike) -> str:
    """``"<free> free of <total> on <folder>"`` for the nearest existing folder of ``path``."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        try:
            if not folder.is_dir():
                continue
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        return f"{human_bytes(usage.free)} free of {human_bytes(usage.total)} on {folder}"
    return "free space unknown"


def _nearly_full(path: str | os.PathLike) -> bool:
    """Whether the filesystem of ``path`` has almost no space left (under 1% or 1 MiB)."""
    for folder in (Path(path).absolute(), *Path(path).absolute().parents):
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        return usage.free < min(1 << 20, usage.total // 100)
    return False


def storage_error(err: BaseException, path: str | os.PathLike | None = None, doing: str = "") -> StorageError:
    """One line for a failed read or write: the path, the reason and the free space there.

    ``path`` defaults to the error's own file name (the free space is then that of the
    working directory when it has none); ``doing`` (e.g. ``"cannot write"``) starts it.
    An error without an errno (numpy's short write, torch.save's RuntimeError) on a
    filesystem with almost no space left is called a full disk.
    """
    if path is None:
        path = getattr(err, "filename", None)
    place = path if path is not None else "."
    errno = getattr(err, "errno", None)
    reason = f"{type(err).__name__}: {err}"
    if errno:
        reason = os.strerror(errno)
    elif _nearly_full(place):
        reason = f"the disk is full ({reason})"
    where = f"{path}: " if path is not None else ""
    prefix = f"{doing} " if doing else ""
    return StorageError(f"{prefix}{where}{reason}; {free_space(place)}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and nothing appears at ``path``. An
    OSError (and any error of a writer that filled the disk, such as torch.save's
    RuntimeError) becomes StorageError naming ``path`` and the free space.
    """
    path = Path(path)
    for attempt in range(3):  # a job that removed its empty checkpoint folder meanwhile: again
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            break
        except FileNotFoundError as err:
            if attempt == 2:
                raise storage_error(err, path, "cannot write") from err
        except OSError as err:
            raise storage_error(err, path, "cannot write") from err
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        other = err.filename is not None and Path(err.filename) != tmp
        raise storage_error(err, err.filename if other else path, "cannot write") from err
    except Exception as err:
        if _nearly_full(path.parent):
            raise storage_error(err, path, "cannot write") from err
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; rename it to ``path`` on success (an
    empty folder already there is replaced). On an exception the temporary folder is
    removed and nothing appears at ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise storage_error(err, path, "cannot write") from err
    try:
        yield tmp
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        os.replace(tmp, path)
    except OSError as err:
        raise storage_error(err, path, "cannot write") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def all_or_none(*paths: str | os.PathLike) -> Iterator[None]:
    """Outputs written together: on an exception inside, every one of ``paths`` is
    removed, so a failed job never leaves a new file beside an old one of the set."""
    try:
        yield
    except BaseException:
        for path in paths:
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)
        raise


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
            raise ArgumentError(
                f"cannot write {path}: unsupported suffix {path.suffix!r} (write .parquet or .csv)"
            )


def save_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


# ------------------------------------------------------------------ checked arguments


def check_output(path: str | os.PathLike, suffixes: tuple[str, ...], what: str = "output") -> Path:
    """``path`` as a Path; ArgumentError unless it ends in one of ``suffixes`` and is not
    a folder (checked before any work, so a wrong name does not waste a run)."""
    path = Path(path)
    if path.suffix not in suffixes:
        raise ArgumentError(
            f"{what} {path}: unsupported suffix {path.suffix or '(none)'!r}; write {' or '.join(suffixes)}"
        )
    if path.is_dir():
        raise ArgumentError(f"{what} {path} is a folder; give a file name ending in {' or '.join(suffixes)}")
    return path


def check_output_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` as a Path; ArgumentError when it exists and is not a folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"{what} {path} is a file, not a folder")
    return path


def _rebuild(path: str | os.PathLike) -> str:
    """How to rebuild ``path``: its rule (retention.paths.WRITERS) and the command."""
    from retention.paths import writer_of

    rule = writer_of(path)
    if rule is None:
        return "write it again"
    return f"rebuild it with `snakemake --cores 1 --forcerun {rule} {path}` (rule {rule}), then rerun"


def require_file(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` as a Path; DataError naming it (and the rule that writes it) when it is
    not an existing file."""
    path = Path(path)
    if not path.is_file():
        from retention.paths import writer_of

        rule = writer_of(path)
        how = f"run rule {rule} first" if rule else "check the path"
        state = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"{what} {path} {state}; {how}")
    return path


def unreadable(path: str | os.PathLike, err: BaseException, what: str = "file") -> DataError:
    """The DataError of a truncated or unreadable ``path``: its name, the reader's
    complaint and how to rebuild it."""
    reason = " ".join(f"{type(err).__name__}: {err}".split())
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return DataError(f"{what} {path} is truncated or unreadable ({reason}); {_rebuild(path)}")


def read_table(path: str | os.PathLike, what: str = "table", columns=(), **csv_options):
    """A parquet or csv table of the workflow (pandas), checked: DataError when it is
    missing, truncated (a csv not ending in a newline, as every table written by
    :func:`save_table` does), unreadable, or lacks one of ``columns``. ``csv_options``
    go to ``pandas.read_csv``."""
    import pandas as pd

    path = require_file(path, what)
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    raise ValueError("the file is empty")
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    raise ValueError("the last line is incomplete")
            table = pd.read_csv(path, **csv_options)
    except Exception as err:  # the OS's, pandas' and pyarrow's errors (ArrowInvalid, ParserError, ...)
        raise unreadable(path, err, what) from err
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise unreadable(path, KeyError(f"no column {missing[0]!r}"), what)
    return table


def read_npz(path: str | os.PathLike, what: str = "file", keys=None, optional=()) -> dict[str, np.ndarray]:
    """Every array of an .npz (or only ``keys``, each required, and those of ``optional``
    it has) as a dict, checked: DataError when it is missing, truncated or unreadable, or
    lacks a key."""
    path = require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files) if keys is None else list(keys)
            missing = [k for k in names if k not in npz.files]
            if missing:
                raise KeyError(f"no key {missing[0]!r}; see docs/contracts.md")
            names += [k for k in optional if k in npz.files and k not in names]
            return {k: npz[k] for k in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise unreadable(path, err, what) from err


def read_npy(path: str | os.PathLike, what: str = "file", mmap: bool = True) -> np.ndarray:
    """One .npy array (memory-mapped by default), checked: DataError when it is missing,
    truncated or unreadable."""
    path = require_file(path, what)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise unreadable(path, err, what) from err


def read_json(path: str | os.PathLike, what: str = "file"):
    """A JSON file's value, checked: DataError when it is missing, truncated or not JSON."""
    import json

    path = require_file(path, what)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise unreadable(path, err, what) from err


def remove_checkpoint(path: str | os.PathLike | None) -> None:
    """Delete a checkpoint file and the folders it leaves empty up to the ``checkpoints``
    folder that holds it (inclusive); a path outside such a folder loses only the file."""
    if path is None:
        return
    path = Path(path)
    path.unlink(missing_ok=True)
    if "checkpoints" not in path.parent.parts:
        return
    for folder in path.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (another run's checkpoint), or gone
            return
        if folder.name == "checkpoints":
            return


class _LogFile(logging.FileHandler):
    """A log file that reports its first failed write in one line, not a traceback per record."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.failed:
            self.failed = True
            err = sys.exc_info()[1] or OSError("write failed")
            sys.stderr.write(f"{storage_error(err, self.baseFilename, 'cannot write the log')}\n")


def setup_logging(log_path: str | os.PathLike | None = None) -> logging.Logger:
    """Log to stderr and, when given, to ``log_path`` (the rule's log file); Python
    warnings are logged there too (logger ``py.warnings``), so none goes unseen."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(_LogFile(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    return logging.getLogger("retention")


def run_main(main: Callable[[], None]) -> None:
    """Run a script's ``main``; a user error or an OSError becomes one line on stderr
    (StorageError for an OSError: the path and the free space there) and exit 1."""
    try:
        main()
    except RetentionError as err:
        _fail(err)
    except OSError as err:
        _fail(storage_error(err))


def _fail(err: RetentionError) -> NoReturn:
    # one line, to stderr and to the rule's log (logging's last-resort handler prints it
    # to stderr when logging was not set up)
    logging.getLogger("retention").error("%s: %s", type(err).__name__, err)
    sys.exit(1)

"""Atomic, deterministic file writing and the error handling every script shares.

Every output is written to a temporary name in the destination directory and renamed
into place, so a killed job never leaves a half-written file under its final name. A
write that fails (no space left, permission denied, a read-only folder) raises
StorageError naming the path and the free space there, and leaves nothing behind.
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
from pathlib import Path
from typing import Callable, Iterator, Mapping, NoReturn

import numpy as np

from .errors import RetentionError, StorageError

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


def storage_error(
    err: BaseException, path: str | os.PathLike | None = None, doing: str = ""
) -> StorageError:
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
            raise ValueError(f"save_table: unsupported suffix {path.suffix!r} in {path}")


def save_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


class _LogFile(logging.FileHandler):
    """A log file that reports its first failed write in one line, not a traceback per record."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not self.failed:
            self.failed = True
            err = sys.exc_info()[1] or OSError("write failed")
            sys.stderr.write(f"{storage_error(err, self.baseFilename, 'cannot write the log')}\n")


def setup_logging(log_path: str | os.PathLike | None = None) -> logging.Logger:
    """Log to stderr and, when given, to ``log_path`` (the rule's log file)."""
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

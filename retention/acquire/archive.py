"""Safe extraction of dataset archives (tar of any compression, zip).

Members are extracted one by one after refusing absolute paths, ``..``, symbolic and
hard links, devices and fifos (tar members also pass tarfile's ``filter="data"``). A
refusal raises DownloadError naming the member; extract into a scratch directory, as
``retention.acquire.download.fetch_dataset`` does, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from retention.errors import DownloadError

log = logging.getLogger("retention.acquire.download")

CHUNK_BYTES = 1 << 20
_TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tbz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")


def _check_name(name: str, archive: str) -> PurePosixPath:
    """Refuse an archive member name that is absolute or climbs out with '..'."""
    if not name or "\x00" in name:
        raise DownloadError(f"archive {archive}: member {name!r} has an empty or invalid name")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise DownloadError(
            f"archive {archive}: member '{name}' has an absolute path; refusing to extract it"
        )
    path = PurePosixPath(posix)
    if ".." in path.parts:
        raise DownloadError(
            f"archive {archive}: member '{name}' contains '..' (path traversal); refusing to extract it"
        )
    return path


def _inside(root: Path, rel: PurePosixPath, archive: str, name: str) -> Path:
    """``root / rel``, after checking it resolves inside ``root``."""
    target = root.joinpath(*rel.parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise DownloadError(f"archive {archive}: member '{name}' would be written outside the destination")
    return target


def _checked_tar_members(tf: tarfile.TarFile, archive: str) -> Iterator[tarfile.TarInfo]:
    for member in tf:
        _check_name(member.name, archive)
        if member.issym() or member.islnk():
            kind = "symbolic" if member.issym() else "hard"
            raise DownloadError(
                f"archive {archive}: member '{member.name}' is a {kind} link "
                f"(to '{member.linkname}'); refusing to extract links"
            )
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise DownloadError(
                f"archive {archive}: member '{member.name}' is a device or fifo; refusing to extract it"
            )
        if not (member.isfile() or member.isdir()):
            raise DownloadError(
                f"archive {archive}: member '{member.name}' is not a regular file or "
                "directory; refusing to extract it"
            )
        yield member


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            tf.extractall(dest, members=_checked_tar_members(tf, archive.name), filter="data")
    except tarfile.FilterError as err:  # belt and braces: the data filter's own refusal
        raise DownloadError(f"archive {archive.name}: unsafe member refused: {err}") from err
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DownloadError(f"archive {archive.name} is corrupt or truncated: {err}") from err


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            checked = []
            for info in infos:
                rel = _check_name(info.filename, archive.name)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise DownloadError(
                        f"archive {archive.name}: member '{info.filename}' is a symbolic "
                        "link; refusing to extract links"
                    )
                if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise DownloadError(
                        f"archive {archive.name}: member '{info.filename}' is a device, "
                        "fifo or socket; refusing to extract it"
                    )
                checked.append((info, _inside(dest, rel, archive.name, info.filename)))
            for info, target in checked:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        raise DownloadError(f"archive {archive.name} is corrupt or truncated: {err}") from err


def archive_kind(name: str) -> str:
    """``"zip"`` or ``"tar"`` from a file name's suffix; raises DownloadError otherwise."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(_TAR_SUFFIXES):
        return "tar"
    raise DownloadError(
        f"cannot extract {name}: not a .zip or .tar(.gz/.bz2/.xz)/.tgz file name "
        "(set extract: false to keep it as it is)"
    )


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, name: str | None = None) -> None:
    """Extract a zip or tar archive into the existing directory ``dest``.

    ``name`` (default: the archive's file name) picks the format by its suffix.
    Refuses, with DownloadError naming the member, absolute paths, '..', symbolic and
    hard links, devices and fifos; tar members also pass tarfile's ``filter="data"``.
    A refusal can leave part of the archive in ``dest``: extract into a scratch
    directory (as ``fetch_dataset`` does).
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(name or archive.name)
    log.info("extracting %s", archive.name)
    if kind == "zip":
        _extract_zip(archive, dest)
    else:
        _extract_tar(archive, dest)

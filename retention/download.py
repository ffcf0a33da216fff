"""Dataset downloads: resumable HTTP(S) with mirrors and retries, checksums, safe extraction.

A dataset is a list of files (``DownloadSpec``), each fetched from the first source that
works: a local ``archive`` the user already has, a local path among its ``urls``, or the
HTTP(S) mirrors in order. A download goes to ``<file>.part`` and resumes with an HTTP
``Range`` request after a dropped connection (from scratch when the server ignores the
range). Every file is checked against its ``md5:`` or ``sha256:`` checksum before it is
used; without a configured checksum its sha256 is logged so a user can pin it.

Archives (tar of any compression, zip) are extracted member by member after refusing
absolute paths, ``..``, links and device files. The whole tree is assembled in a
temporary directory beside the destination and renamed into place, so the destination
either holds the complete dataset or does not exist.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Mapping, Sequence
from urllib.parse import unquote, urlparse

from .errors import ConfigError, DownloadError

log = logging.getLogger("retention.download")

#: Default size sanity limit of one file, in bytes (CUB-200-2011 is about 1.15 GB).
DEFAULT_MAX_BYTES = 16 * 1024**3
CHUNK_BYTES = 1 << 20
_NET_CHUNK_BYTES = 1 << 16
_HEX_LENGTH = {"md5": 32, "sha256": 64}
_SPEC_KEYS = {"file", "url", "checksum", "extract", "max_bytes", "archive"}
_TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tbz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
_USER_AGENT = "retention/0.1 (research dataset download; python-requests)"


@dataclass(frozen=True)
class DownloadSpec:
    """One file of a dataset and where to get it.

    file: the file's name (no directories), under which it is downloaded or, when
    ``extract`` is false, placed in the dataset directory.
    urls: mirrors tried in order; an entry without an http(s) scheme (or ``file://``)
    is a local path. archive: a local copy the user already has; used instead of
    ``urls`` (it must exist). checksum: ``"md5:<hex>"``, ``"sha256:<hex>"`` or None.
    max_bytes: size sanity limit of the file, in bytes.
    """

    file: str
    urls: tuple[str, ...] = ()
    checksum: str | None = None
    extract: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    archive: str | None = None


# --------------------------------------------------------------------------- config


def parse_checksum(checksum: str | None) -> tuple[str, str] | None:
    """Split ``"md5:<hex>"`` / ``"sha256:<hex>"`` into (algorithm, lower-case hex).

    None gives None; anything else raises ConfigError.
    """
    if checksum is None:
        return None
    if not isinstance(checksum, str) or ":" not in checksum:
        raise ConfigError(
            f"checksum {checksum!r} must look like 'md5:<32 hex digits>' or "
            "'sha256:<64 hex digits>' (or be null)"
        )
    algo, digest = checksum.split(":", 1)
    algo, digest = algo.strip().lower(), digest.strip().lower()
    if algo not in _HEX_LENGTH:
        raise ConfigError(f"checksum {checksum!r}: algorithm must be md5 or sha256, not {algo!r}")
    if not re.fullmatch(rf"[0-9a-f]{{{_HEX_LENGTH[algo]}}}", digest):
        raise ConfigError(
            f"checksum {checksum!r}: a {algo} digest is {_HEX_LENGTH[algo]} hex digits"
        )
    return algo, digest


def parse_spec(entry: Mapping) -> DownloadSpec:
    """Validate one config entry ({file, url, checksum, extract, max_bytes, archive}).

    ``url`` may be one string or a list of mirrors. Raises ConfigError naming the key.
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(f"a download entry must be a mapping, not {entry!r}")
    unknown = set(entry) - _SPEC_KEYS
    if unknown:
        raise ConfigError(
            f"download entry {dict(entry)!r}: unknown key(s) {sorted(unknown)}; "
            f"allowed: {sorted(_SPEC_KEYS)}"
        )
    name = entry.get("file")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ConfigError(f"download entry 'file' must be a plain file name, not {name!r}")
    urls = entry.get("url") or []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) and u for u in urls):
        raise ConfigError(f"download entry '{name}': 'url' must be a string or a list of strings")
    for url in urls:
        scheme = urlparse(url).scheme.lower()
        if len(scheme) > 1 and scheme not in ("http", "https", "file"):
            raise ConfigError(
                f"download entry '{name}': URL {url!r} has scheme {scheme!r}; "
                "use http(s), file:// or a local path"
            )
    archive = entry.get("archive")
    if archive is not None and (not isinstance(archive, (str, os.PathLike)) or not str(archive)):
        raise ConfigError(f"download entry '{name}': 'archive' must be a file path")
    if not urls and archive is None:
        raise ConfigError(f"download entry '{name}' needs a 'url' or an 'archive'")
    checksum = entry.get("checksum")
    parse_checksum(checksum)
    extract = entry.get("extract", False)
    if not isinstance(extract, bool):
        raise ConfigError(f"download entry '{name}': 'extract' must be true or false")
    max_bytes = entry.get("max_bytes", DEFAULT_MAX_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"download entry '{name}': 'max_bytes' must be a positive integer")
    return DownloadSpec(
        file=name,
        urls=tuple(urls),
        checksum=checksum,
        extract=extract,
        max_bytes=max_bytes,
        archive=None if archive is None else str(archive),
    )


def parse_specs(entries: Sequence[Mapping]) -> list[DownloadSpec]:
    """Validate a dataset's list of download entries; file names must be distinct."""
    if isinstance(entries, Mapping) or not isinstance(entries, Sequence) or not entries:
        raise ConfigError("a dataset's 'download' must be a non-empty list of entries")
    specs = [parse_spec(e) for e in entries]
    names = [s.file for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"download entries name the same file more than once: {dupes}")
    return specs


def local_path(url: str) -> Path | None:
    """The local file a URL names (``file://`` or no scheme), or None for http(s)."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(unquote(parsed.path)).expanduser()
    return Path(url).expanduser()  # no scheme (or a Windows drive letter)


# ------------------------------------------------------------------------- checksum


def verify_checksum(path: str | os.PathLike, checksum: str | None, source: str = "") -> str:
    """Check ``path`` against ``checksum``; return its sha256 as ``"sha256:<hex>"``.

    Without a checksum the sha256 is logged so the user can pin it in the config.
    A mismatch raises DownloadError naming the file, its source and both digests.
    """
    path = Path(path)
    expected = parse_checksum(checksum)
    hashers = {"sha256": hashlib.sha256()}
    if expected is not None and expected[0] == "md5":
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            for h in hashers.values():
                h.update(block)
    sha256 = hashers["sha256"].hexdigest()
    origin = f" from {source}" if source and source != str(path) else ""
    if expected is None:
        log.warning(
            "no checksum configured for %s%s; its sha256 is %s "
            '(pin it in the config as  checksum: "sha256:%s")',
            path.name,
            origin,
            sha256,
            sha256,
        )
    else:
        algo, want = expected
        got = hashers[algo].hexdigest()
        if got != want:
            raise DownloadError(
                f"checksum mismatch for {path.name}{origin}: expected {algo}:{want}, "
                f"got {algo}:{got}; the file is corrupt or was changed upstream "
                "(check the URL and the checksum in the config)"
            )
        log.info("checksum ok for %s: %s:%s", path.name, algo, want)
    return f"sha256:{sha256}"


# ------------------------------------------------------------------------- download


class _Retry(Exception):
    """A failure worth another attempt (connection dropped, 5xx, truncated body)."""


class _Skip(Exception):
    """A failure of this URL that another attempt will not fix (404, size limit)."""


def _content_range(value: str | None) -> tuple[int, int | None]:
    """Parse ``bytes start-end/total`` into (start, total or None)."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not match:
        raise _Retry(f"unparseable Content-Range {value!r}")
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _fetch_once(
    session, url: str, part: Path, max_bytes: int, timeout: float, progress: bool
) -> None:
    """One HTTP GET of ``url`` into ``part``, resuming from its current size."""
    import requests
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity", "User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    total: int | None = None
    try:
        with session.get(url, headers=headers, stream=True, timeout=(timeout, timeout)) as resp:
            code = resp.status_code
            if code == 416 and have:
                part.unlink()
                raise _Retry("server refused the resume range; restarting from scratch")
            if code in (408, 425, 429) or code >= 500:
                raise _Retry(f"HTTP {code} {resp.reason}")
            if code >= 400:
                raise _Skip(f"HTTP {code} {resp.reason}")
            if code == 206:
                start, total = _content_range(resp.headers.get("Content-Range"))
                if start != have:
                    part.unlink(missing_ok=True)
                    raise _Retry(f"server resumed at byte {start}, not {have}; restarting")
                mode = "ab"
                if have:
                    log.info("resuming %s at byte %d", part.name, have)
            else:
                if have:
                    log.info("server ignored the Range request; restarting %s from scratch", url)
                have, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                part.unlink(missing_ok=True)
                raise _Skip(f"it announces {total} bytes, over the max_bytes limit of {max_bytes}")
            # Our own length check below keeps the bytes of a short body for the resume
            # (urllib3's check would raise and drop the last partial chunk).
            if hasattr(resp.raw, "enforce_content_length"):
                resp.raw.enforce_content_length = False
            with (
                open(part, mode) as fh,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name[: -len(".part")],
                    disable=not progress,
                    mininterval=1.0,
                    leave=False,
                ) as bar,
            ):
                for chunk in resp.iter_content(_NET_CHUNK_BYTES):
                    fh.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
                    if have > max_bytes:
                        raise _Skip(f"it sent more than the max_bytes limit of {max_bytes} bytes")
    except _Skip:
        part.unlink(missing_ok=True)
        raise
    except requests.exceptions.RequestException as err:
        if isinstance(
            err,
            (
                requests.exceptions.InvalidURL,
                requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema,
            ),
        ):
            raise _Skip(f"invalid URL: {err}") from err
        if total is not None:
            raise _Retry(
                f"truncated: received {have} of {total} bytes ({type(err).__name__}: {err})"
            ) from err
        raise _Retry(f"connection failed after {have} bytes: {type(err).__name__}: {err}") from err
    if total is not None and have < total:
        raise _Retry(f"truncated: received {have} of {total} bytes")
    if total is not None and have > total:
        part.unlink(missing_ok=True)
        raise _Retry(f"received {have} bytes, more than the announced {total}")


def download_file(
    urls: Sequence[str],
    dest: str | os.PathLike,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
    keep_partial: bool = False,
) -> str:
    """Download ``dest`` from the first of ``urls`` (mirrors) that delivers it whole.

    Each of ``retries`` rounds tries every mirror still usable; a dropped connection
    resumes from ``<dest>.part`` with an HTTP Range request. Waits ``backoff * round``
    seconds between rounds. Returns the URL that succeeded. Raises DownloadError naming
    the file, the URLs and the last error; the .part file is removed unless
    ``keep_partial`` (a cache that a later run resumes).
    """
    import requests

    if not urls:
        raise DownloadError(f"no URL to download {Path(dest).name} from")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: dict[str, str] = {}
    dead: set[str] = set()
    with requests.Session() as session:
        for attempt in range(1, retries + 1):
            for url in urls:
                if url in dead:
                    continue
                log.info(
                    "downloading %s from %s (attempt %d of %d)", dest.name, url, attempt, retries
                )
                try:
                    _fetch_once(session, url, part, max_bytes, timeout, progress)
                except _Skip as err:
                    dead.add(url)
                    errors[url] = str(err)
                    log.warning("%s from %s: %s; not retrying this URL", dest.name, url, err)
                    continue
                except _Retry as err:
                    errors[url] = str(err)
                    log.warning("%s from %s: %s", dest.name, url, err)
                    continue
                os.replace(part, dest)
                log.info("downloaded %s (%d bytes) from %s", dest.name, dest.stat().st_size, url)
                return url
            if len(dead) == len(urls):
                break
            if attempt < retries and backoff > 0:
                time.sleep(backoff * attempt)
    if not keep_partial:
        part.unlink(missing_ok=True)
    detail = "; ".join(f"{url}: {msg}" for url, msg in errors.items())
    raise DownloadError(f"could not download {dest.name} after {retries} attempt(s): {detail}")


# ----------------------------------------------------------------------- extraction


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
            f"archive {archive}: member '{name}' contains '..' (path traversal); "
            "refusing to extract it"
        )
    return path


def _inside(root: Path, rel: PurePosixPath, archive: str, name: str) -> Path:
    """``root / rel``, after checking it resolves inside ``root``."""
    target = root.joinpath(*rel.parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise DownloadError(
            f"archive {archive}: member '{name}' would be written outside the destination"
        )
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
                f"archive {archive}: member '{member.name}' is a device or fifo; "
                "refusing to extract it"
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


def extract_archive(
    archive: str | os.PathLike, dest: str | os.PathLike, name: str | None = None
) -> None:
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


# -------------------------------------------------------------------------- dataset


def _obtain(
    spec: DownloadSpec, downloads: Path, fetch: Callable[[Sequence[str], Path], str]
) -> tuple[Path, str, bool]:
    """The file of ``spec`` on disk: (path, where it came from, whether we downloaded it)."""
    if spec.archive is not None:
        path = Path(spec.archive).expanduser()
        if not path.is_file():
            raise DownloadError(
                f"archive {path} configured for {spec.file} does not exist; fix its "
                "'archive' key, or remove the key to download the file"
            )
        log.info("using the local file %s for %s (no download)", path, spec.file)
        return path, str(path), False
    remote = []
    for url in spec.urls:
        path = local_path(url)
        if path is None:
            remote.append(url)
        elif path.is_file():
            log.info("using the local file %s for %s (no download)", path, spec.file)
            return path, str(path), False
        else:
            log.warning("local source %s for %s does not exist; trying the next", path, spec.file)
    if not remote:
        raise DownloadError(
            f"no source for {spec.file}: none of the local paths {list(spec.urls)} exists"
        )
    target = downloads / spec.file
    if target.is_file():
        log.info("using the cached download %s", target)
        return target, f"{target} (cached)", True
    return target, fetch(remote, target), True


def _make_parents(path: Path) -> list[Path]:
    """mkdir -p ``path``; return the directories it created, deepest first."""
    created = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        created.append(parent)
    path.mkdir(parents=True, exist_ok=True)
    return created


def fetch_dataset(
    specs: Sequence[DownloadSpec],
    dest: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, str]:
    """Download, verify and extract ``specs`` into the new directory ``dest``.

    Archives with ``extract`` are unpacked into ``dest``; other files are placed in it
    under their name. The tree is built in a temporary directory beside ``dest`` and
    renamed into place: on any failure nothing is left at ``dest`` (nor the
    directories this call created). ``cache_dir``: keep downloads and .part files
    there, so a later call resumes or reuses them; None downloads into the temporary
    directory. Returns each file's ``"sha256:<hex>"``.
    """
    dest = Path(dest)
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())) and not overwrite:
        raise DownloadError(f"{dest} already exists; remove it to download the dataset again")
    created = _make_parents(dest.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    ok = False
    try:
        tree = work / "tree"
        tree.mkdir()
        downloads = Path(cache_dir) if cache_dir is not None else work / "downloads"
        digests: dict[str, str] = {}
        for spec in specs:

            def fetch(urls: Sequence[str], target: Path, spec: DownloadSpec = spec) -> str:
                return download_file(
                    urls,
                    target,
                    max_bytes=spec.max_bytes,
                    retries=retries,
                    timeout=timeout,
                    backoff=backoff,
                    progress=progress,
                    keep_partial=cache_dir is not None,
                )

            path, source, downloaded = _obtain(spec, downloads, fetch)
            if not downloaded and path.stat().st_size > spec.max_bytes:
                raise DownloadError(
                    f"{path} is {path.stat().st_size} bytes, over the max_bytes limit of "
                    f"{spec.max_bytes} for {spec.file}"
                )
            try:
                digests[spec.file] = verify_checksum(path, spec.checksum, source)
            except DownloadError:
                if downloaded:
                    path.unlink(missing_ok=True)  # never reuse a bad download from the cache
                raise
            if spec.extract:
                extract_archive(path, tree, name=spec.file)
            elif downloaded and cache_dir is None:
                os.replace(path, tree / spec.file)
            else:
                shutil.copy2(path, tree / spec.file)
            if downloaded and cache_dir is None:
                path.unlink(missing_ok=True)  # free the space of an extracted archive early
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        elif dest.exists():  # overwrite: move the old tree aside, removed with ``work``
            os.replace(dest, work / "previous")
        os.replace(tree, dest)
        ok = True
        log.info("dataset ready at %s", dest)
        return digests
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not ok:
            for directory in created:
                try:
                    directory.rmdir()
                except OSError:
                    break

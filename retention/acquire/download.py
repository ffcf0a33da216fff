"""Dataset downloads: resumable HTTP(S) with mirrors and retries, checksums, safe extraction.

A dataset is a list of files (``DownloadSpec``), each fetched from the first source that
works: a local ``archive`` the user already has, a local path among its ``urls``, or the
HTTP(S) mirrors in order. A download goes to ``<file>.part`` and resumes with an HTTP
``Range`` request (``If-Range`` with the server's validator, so a file changed upstream
starts over) after a dropped connection, and across processes: ``fetch_dataset`` keeps
a dataset's downloads in progress at a stable path per file and checksum (or URL),
``<datasets>/.partial/<dataset>/``, so a rerun after a crash or kill -9 continues where
the last run stopped. Every file is checked against its ``md5:`` or ``sha256:``
checksum before it is used; without a configured checksum its sha256 is logged so a
user can pin it.

Archives are extracted safely (``retention.acquire.archive``) into a scratch folder beside the
destination that is renamed into place, so the destination either holds the complete
dataset or does not exist. Scratch folders of killed runs are removed by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from retention.acquire.archive import CHUNK_BYTES, extract_archive
from retention.acquire.transfer import BACKOFF_S, DEFAULT_MAX_BYTES, RETRIES, TIMEOUT_S, download_file
from retention.errors import ConfigError, DownloadError

log = logging.getLogger("retention.acquire.download")

#: Folder beside the datasets that holds their downloads in progress, one folder each.
PARTIAL_DIR = ".partial"
_HEX_LENGTH = {"md5": 32, "sha256": 64}
_SPEC_KEYS = {"file", "url", "checksum", "extract", "max_bytes", "archive"}


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
        raise ConfigError(f"checksum {checksum!r}: a {algo} digest is {_HEX_LENGTH[algo]} hex digits")
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
            f"download entry {dict(entry)!r}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}"
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


# -------------------------------------------------------------------------- dataset


def partial_key(spec: DownloadSpec) -> str:
    """The folder name of ``spec``'s download while in progress: a key of what it holds
    (its checksum, or its URLs when it has none). A rerun with the same key resumes the
    bytes; a changed checksum or URL gets a new key and starts afresh."""
    checksum = parse_checksum(spec.checksum)
    urls = [url for url in spec.urls if local_path(url) is None]
    identity = ":".join(checksum) if checksum else "\n".join(urls)
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


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
        raise DownloadError(f"no source for {spec.file}: none of the local paths {list(spec.urls)} exists")
    target = downloads / partial_key(spec) / spec.file
    if target.is_file():
        log.info("using %s, downloaded whole by an earlier run", target)
        return target, f"{target} (downloaded by an earlier run)", True
    target.parent.mkdir(parents=True, exist_ok=True)
    return target, fetch(remote, target), True


@contextlib.contextmanager
def _download_lock(dest: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``dest``: one process at a time fetches a dataset.

    An exclusive flock, which the kernel drops when its process dies (kill -9 too); the
    file says who holds it, and is removed on release.
    """
    lock = dest.with_name(f".{dest.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DownloadError(
                f"{dest} is being downloaded by {owner} (lock file {lock}); wait for it to finish, or stop it"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)  # its last holder removed the file meanwhile: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_leftovers(dest: Path, downloads: Path, keep: set[str]) -> None:
    """Remove what interrupted runs of ``dest`` left: their scratch folders
    (``.<name>.<pid>.<random>.tmp``) and, in ``downloads``, downloads in progress whose
    key is not in ``keep`` (their checksum or URL changed).

    Called under the download lock, so no live run of this dataset owns a scratch
    folder; one whose recorded process is still alive is kept all the same.
    """
    scratch = re.compile(re.escape(f".{dest.name}.") + r"(?:(\d+)\.)?[a-z0-9_]+\.tmp")
    for path in sorted(dest.parent.iterdir()):
        match = scratch.fullmatch(path.name)
        if not match or not path.is_dir():
            continue
        pid = int(match.group(1) or 0)
        if pid and pid != os.getpid() and _pid_alive(pid):
            log.warning("keeping %s: its process %d is still running", path, pid)
            continue
        log.warning("removing %s, the scratch folder of an interrupted run", path)
        shutil.rmtree(path)
    for path in sorted(downloads.iterdir()) if downloads.is_dir() else []:
        if path.name not in keep:
            log.warning("removing %s: the checksum or URL of its file changed", path)
            shutil.rmtree(path)


def _gather(
    specs: Sequence[DownloadSpec], downloads: Path, options: dict
) -> tuple[list[tuple[DownloadSpec, Path, bool]], dict[str, str]]:
    """Every file of ``specs`` on disk and checked: ([(spec, path, downloaded)], digests)."""
    files, digests = [], {}
    for spec in specs:

        def fetch(urls: Sequence[str], target: Path, spec: DownloadSpec = spec) -> str:
            return download_file(urls, target, max_bytes=spec.max_bytes, keep_partial=True, **options)

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
                path.unlink(missing_ok=True)  # never reuse a bad download
            raise
        files.append((spec, path, downloaded))
    return files, digests


def _assemble(files: Sequence[tuple[DownloadSpec, Path, bool]], dest: Path) -> None:
    """Extract or copy ``files`` into a scratch folder beside ``dest``, renamed to ``dest``."""
    prefix = f".{dest.name}.{os.getpid()}."
    work = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=dest.parent))
    try:
        tree = work / "tree"
        tree.mkdir()
        for spec, path, downloaded in files:
            if not spec.extract:
                shutil.copy2(path, tree / spec.file)
                continue
            try:
                extract_archive(path, tree, name=spec.file)
            except DownloadError:
                if downloaded:
                    path.unlink()  # a corrupt or unsafe archive is never reused
                raise
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        elif dest.exists():  # overwrite: move the old tree aside, removed with ``work``
            os.replace(dest, work / "previous")
        os.replace(tree, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _make_parents(path: Path) -> list[Path]:
    """mkdir -p ``path``; return the directories it created, deepest first."""
    created = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        created.append(parent)
    path.mkdir(parents=True, exist_ok=True)
    return created


def _refuse_existing(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())) and not overwrite:
        raise DownloadError(f"{dest} already exists; remove it to download the dataset again")


def warn_unpinned(specs: Sequence[DownloadSpec], digests: dict[str, str], dataset: str) -> list[str]:
    """Log, as one block at the end of the download, the config lines that pin the files
    downloaded without a checksum (nothing would notice a changed file next time); returns
    the lines."""
    lines = [
        f'datasets.{dataset}.download[{i}] ({spec.file}):  checksum: "{digests[spec.file]}"'
        for i, spec in enumerate(specs)
        if spec.checksum is None and spec.file in digests
    ]
    if lines:
        log.warning(
            "PIN THE CHECKSUMS: %d file(s) of %s were downloaded without a checksum, so a changed or "
            "tampered file would go unnoticed next time. Write these into your config (the entries of "
            "datasets.%s.download):\n    %s",
            len(lines),
            dataset,
            dataset,
            "\n    ".join(lines),
        )
    return lines


def fetch_dataset(
    specs: Sequence[DownloadSpec],
    dest: str | os.PathLike,
    *,
    retries: int = RETRIES,
    timeout: float = TIMEOUT_S,
    backoff: float = BACKOFF_S,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, str]:
    """Download, verify and extract ``specs`` into the new directory ``dest``.

    Archives with ``extract`` are unpacked into ``dest``; other files are placed in it
    under their name. Downloads live in ``.partial/<name>/<key>/`` beside ``dest`` (see
    :func:`partial_key`) until the dataset is in place, so a later call resumes them
    after a failed or killed run. The tree is built in a scratch folder beside ``dest``
    and renamed into place: on any failure nothing is left at ``dest``, nor a scratch
    folder, nor the directories this call created (only a resumable download). One
    process at a time fetches ``dest``. Returns each file's ``"sha256:<hex>"``.
    """
    dest = Path(dest)
    _refuse_existing(dest, overwrite)
    created = _make_parents(dest.parent)
    downloads = dest.parent / PARTIAL_DIR / dest.name
    options = dict(retries=retries, timeout=timeout, backoff=backoff, progress=progress)
    try:
        with _download_lock(dest):
            _refuse_existing(dest, overwrite)
            _remove_leftovers(dest, downloads, {partial_key(spec) for spec in specs})
            files, digests = _gather(specs, downloads, options)
            _assemble(files, dest)
            shutil.rmtree(downloads, ignore_errors=True)  # all of it is in place now
        log.info("dataset ready at %s", dest)
        warn_unpinned(specs, digests, dest.name)
        return digests
    finally:
        keys = sorted(downloads.iterdir()) if downloads.is_dir() else []
        for folder in (*keys, downloads, downloads.parent, *created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty

"""Resumable HTTP(S) download of one file, with mirrors and retries.

A download goes to ``<file>.part`` and resumes with an HTTP ``Range`` request after a
dropped connection; ``If-Range`` carries the server's validator (ETag or Last-Modified,
kept in ``<file>.part.validator``), so bytes of a file that changed upstream are never
joined to the new ones: the server then sends the whole file again. A server that
ignores the range also restarts the file from scratch.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from retention.errors import DownloadError

log = logging.getLogger("retention.acquire.download")

#: Default size sanity limit of one file, in bytes (CUB-200-2011 is about 1.15 GB).
DEFAULT_MAX_BYTES = 16 * 1024**3
#: rounds of attempts over the mirrors, seconds per read, seconds x round between rounds
RETRIES, TIMEOUT_S, BACKOFF_S = 5, 60.0, 2.0
_NET_CHUNK_BYTES = 1 << 16
_USER_AGENT = "retention/0.1 (research dataset download; python-requests)"


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


def _validator_file(part: Path) -> Path:
    """Where the server's validator (ETag or Last-Modified) of ``part``'s bytes is kept."""
    return part.with_name(part.name + ".validator")


def _save_validator(part: Path, headers: Mapping[str, str]) -> None:
    """Keep the strong ETag (else Last-Modified) of a response that starts ``part``."""
    etag = headers.get("ETag", "")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if validator:
        _validator_file(part).write_text(validator)
    else:
        _validator_file(part).unlink(missing_ok=True)


def _resume_headers(part: Path) -> tuple[int, dict[str, str]]:
    """(bytes already in ``part``, the request headers that resume after them)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity", "User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
        validator = _validator_file(part)
        if validator.is_file():  # the server sends the whole file if it changed since
            headers["If-Range"] = validator.read_text().strip()
    return have, headers


def _fetch_once(session, url: str, part: Path, max_bytes: int, timeout: float, progress: bool) -> None:
    """One HTTP GET of ``url`` into ``part``, resuming from its current size."""
    import requests
    from tqdm import tqdm

    have, headers = _resume_headers(part)
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
                    log.info(
                        "server ignored the Range request (or the file changed since the "
                        "partial download); restarting %s from scratch",
                        url,
                    )
                have, mode = 0, "wb"
                _save_validator(part, resp.headers)
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
        _validator_file(part).unlink(missing_ok=True)
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
    retries: int = RETRIES,
    timeout: float = TIMEOUT_S,
    backoff: float = BACKOFF_S,
    progress: bool = True,
    keep_partial: bool = False,
) -> str:
    """Download ``dest`` from the first of ``urls`` (mirrors) that delivers it whole.

    Each of ``retries`` rounds tries every mirror still usable; a dropped connection
    resumes from ``<dest>.part`` with an HTTP Range request. Waits ``backoff * round``
    seconds between rounds. Returns the URL that succeeded. Raises DownloadError naming
    the file, the URLs and the last error; the .part file is removed unless
    ``keep_partial`` (the next call resumes it; the message says so).
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
                log.info("downloading %s from %s (attempt %d of %d)", dest.name, url, attempt, retries)
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
                _validator_file(part).unlink(missing_ok=True)
                log.info("downloaded %s (%d bytes) from %s", dest.name, dest.stat().st_size, url)
                return url
            if len(dead) == len(urls):
                break
            if attempt < retries and backoff > 0:
                time.sleep(backoff * attempt)
    kept = ""
    if keep_partial and part.is_file():
        kept = f"; its first {part.stat().st_size} bytes are kept in {part}, a rerun resumes there"
    else:
        part.unlink(missing_ok=True)
        _validator_file(part).unlink(missing_ok=True)
    detail = "; ".join(f"{url}: {msg}" for url, msg in errors.items())
    raise DownloadError(f"could not download {dest.name} after {retries} attempt(s): {detail}{kept}")

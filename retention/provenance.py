"""Provenance: what each training run ran on and with, in ``run.json`` beside its outputs.

``run_record`` builds the record of one run (fine-tuning, budgeted or pretraining; the
contract is docs/contracts.md, "run.json"): the run (stage, dataset, arch, seed,
sampler), its resolved config, the start and end times (ISO 8601, UTC), the host, the
device's name, the software versions, the git commit of the checkout the code came
from and whether that checkout had uncommitted changes (with a hash of them:
:func:`git_state`), and a hash of the prepared data the run trained on
(:func:`data_digest`). ``write_record`` writes it atomically; ``provenance_table`` makes the rows of
``results/provenance.csv`` from records.

Standard library only (pandas for the table): torch is read only where the training job
has loaded it already, so the analysis environment can collect the records. Nothing
here fails a run: an unknown version, device or commit is None.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retention import __version__
from retention.errors import DataError
from retention.io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

#: the folder holding the ``retention`` package: its git commit is the code's
CODE_DIR = Path(__file__).resolve().parents[1]
#: the distributions whose versions a record holds (besides Python and retention)
PACKAGES = ("torch", "torchvision", "timm")
#: the provenance.csv columns read from a record's ``versions`` mapping
VERSION_COLUMNS = ("python", "retention", *PACKAGES, "cuda")
#: the stages that write a run.json
STAGES = ("finetune", "sampler", "pretrain")
#: the columns of provenance.csv, in order (docs/contracts.md)
TABLE_COLUMNS = (
    "stage",
    "dataset",
    "arch",
    "seed",
    "sampler",
    *VERSION_COLUMNS,
    "device",
    "host",
    "git_commit",
    "git_dirty",
    "git_diff_sha256",
    "data_sha256",
    "started",
    "ended",
    "duration_s",
)
#: the keys a run.json must have for its provenance.csv row
REQUIRED_KEYS = ("stage", "dataset", "arch", "seed", "started", "ended", "versions")
GIT_TIMEOUT_S = 5.0


def utc_now(offset_s: float = 0.0) -> datetime:
    """The current time in UTC, plus ``offset_s`` seconds (negative: in the past)."""
    return datetime.now(timezone.utc) + timedelta(seconds=offset_s)


def versions() -> dict[str, str | None]:
    """Python, retention, torch, torchvision and timm versions, and CUDA's as torch was
    built with it (``torch.version.cuda``: None on CPU builds, and when torch is not loaded).

    A package's version is its loaded module's ``__version__`` (with a local tag such as
    ``+cu130``), else its installed distribution's; None for one that is not installed.
    """
    out: dict[str, str | None] = {"python": platform.python_version(), "retention": __version__}
    for name in PACKAGES:
        out[name] = getattr(sys.modules.get(name), "__version__", None)
        if out[name] is None:
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                pass
    torch = sys.modules.get("torch")
    out["cuda"] = getattr(getattr(torch, "version", None), "cuda", None)
    return out


def cpu_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str | None:
    """The CPU's model name (``model name`` of ``cpuinfo``, else ``platform.processor()``);
    None where neither says."""
    try:
        with open(cpuinfo) as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def device_name(device: str) -> str | None:
    """The GPU's name for a CUDA device (``torch.cuda.get_device_name``), else the CPU's."""
    torch = sys.modules.get("torch")
    if str(device).startswith("cuda") and torch is not None:
        try:
            return str(torch.cuda.get_device_name(device))
        except (RuntimeError, AssertionError, ValueError):
            return None
    return cpu_name()


def _git(folder, timeout_s: float, *args: str) -> bytes | None:
    """The output of ``git <args>`` in ``folder``; None when git fails, is missing or is slow."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            timeout=timeout_s,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_commit(folder: str | os.PathLike = CODE_DIR, timeout_s: float = GIT_TIMEOUT_S) -> str | None:
    """``git rev-parse HEAD`` in ``folder``; None when it is not in a git checkout, git is
    missing, or git does not answer within ``timeout_s``."""
    out = _git(folder, timeout_s, "rev-parse", "HEAD")
    commit = out.decode(errors="replace").strip() if out is not None else ""
    if len(commit) < 40 or any(c not in "0123456789abcdef" for c in commit):
        return None
    return commit


@dataclass(frozen=True)
class GitState:
    """The checkout the code came from: its commit; whether it had uncommitted changes
    (to tracked files, or files git does not ignore: ``git status --porcelain``); the
    sha256 of those changes to tracked files (``git diff HEAD --binary``; None when there
    are none). Each None where git cannot tell."""

    commit: str | None
    dirty: bool | None = None
    diff_sha256: str | None = None


def git_state(folder: str | os.PathLike = CODE_DIR, timeout_s: float = GIT_TIMEOUT_S) -> GitState:
    """:class:`GitState` of the checkout holding ``folder`` (see :func:`git_commit`)."""
    commit = git_commit(folder, timeout_s)
    if commit is None:
        return GitState(None)
    status = _git(folder, timeout_s, "status", "--porcelain")
    if status is None:
        return GitState(commit)
    if not status.strip():
        return GitState(commit, False)
    diff = _git(folder, timeout_s, "diff", "HEAD", "--binary")
    return GitState(commit, True, hashlib.sha256(diff).hexdigest() if diff else None)


def file_digest(*paths: str | os.PathLike) -> str:
    """sha256 over the sha256 of each of ``paths``' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _cached_digest(paths: tuple, stamps: tuple) -> str:
    return file_digest(*paths)


def data_digest(manifest: str | os.PathLike, images: str | os.PathLike) -> str:
    """The prepared data's hash: :func:`file_digest` of images.npy and manifest.csv (the
    checkpoints' ``data.sha256`` and run.json's ``data_sha256``); computed once per process
    while the files are unchanged."""
    paths = (str(images), str(manifest))
    stamps = tuple((os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)
    return _cached_digest(paths, stamps)


def run_record(
    stage: str,
    dataset: str,
    arch: str,
    seed: int,
    config: Mapping[str, Any],
    device: str,
    started: datetime,
    ended: datetime,
    sampler: str | None = None,
    *,
    commit: str | GitState | None,
    data_sha256: str | None = None,
) -> dict[str, Any]:
    """The run.json record of one run (docs/contracts.md).

    stage: finetune, sampler (a budgeted run) or pretrain; dataset, arch: the config's
    keys; sampler: a budgeted run's sampler kind; config: the run's resolved config
    (arch entry, train settings, inputs, ...); device: the torch device it trained on;
    started, ended: aware datetimes; commit: :func:`git_state` (or only the commit) when
    the run started (the checkout may move on while it trains); data_sha256:
    :func:`data_digest` of the prepared data it trained on.
    """
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r}: expected one of {STAGES}")
    git = commit if isinstance(commit, GitState) else GitState(commit)
    return {
        "stage": stage,
        "dataset": dataset,
        "arch": arch,
        "seed": int(seed),
        "sampler": sampler,
        "started": started.astimezone(timezone.utc).isoformat(),
        "ended": ended.astimezone(timezone.utc).isoformat(),
        "duration_s": round((ended - started).total_seconds(), 3),
        "host": socket.gethostname(),
        "device": {"type": str(device).split(":")[0], "name": device_name(device)},
        "versions": versions(),
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "git_diff_sha256": git.diff_sha256,
        "data_sha256": data_sha256,
        "config": dict(config),
    }


def write_record(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Write ``record`` as indented JSON, atomically (a temporary name, then a rename);
    paths and other non-JSON values are written as strings."""
    text = json.dumps(record, indent=2, default=str) + "\n"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """A run.json record; DataError naming the file when it is missing, truncated or not
    a record (``retention.io.read_json``)."""
    from retention.io import read_json

    record = read_json(path, "run record")
    if not isinstance(record, dict):
        raise DataError(f"run record {path} is not a JSON object; see docs/contracts.md 'run.json'")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise DataError(f"run record {path} lacks {missing}; see docs/contracts.md 'run.json'")
    return record


def table_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance.csv row of one record (:data:`TABLE_COLUMNS`)."""
    row = {k: record.get(k) for k in TABLE_COLUMNS if k not in VERSION_COLUMNS}
    row["sampler"] = record.get("sampler") or ""  # absent outside the sampler stage
    row.update({k: record["versions"].get(k) for k in VERSION_COLUMNS})
    row["device"] = (record.get("device") or {}).get("name")  # the record holds a mapping
    return {k: row[k] for k in TABLE_COLUMNS}


def provenance_table(records) -> pd.DataFrame:
    """provenance.csv: one row per record (:func:`table_row`), in the given order."""
    import pandas as pd

    return pd.DataFrame([table_row(r) for r in records], columns=list(TABLE_COLUMNS))

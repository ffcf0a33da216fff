"""Checkpoints that belong to their config: plain functions over a trainer's state.

A checkpoint holds the state after an epoch (``Trainer.state``) and a record of what
the run's results depend on (:func:`config_fingerprint`): the checkpoint format, the
package version, the seeds, the result-shaping train settings (every ``train`` key not
marked ``run_only`` in the schema), and what the caller adds (the arch entry, the
prepared data's checksum, ...; ``retention.training.finetune.run_fingerprint``).
:func:`load` gives back the state only when its record equals the run's; a checkpoint
whose record differs, or that cannot be read, is deleted and one log line names the
first differing key. :func:`save` writes atomically; the caller removes the file once
the outputs are written (``retention.io.remove_checkpoint``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("retention.training.checkpoint")

#: the layout of the state a checkpoint holds; another one is discarded, not misread
FORMAT = 2


def _flat(prefix: str, value) -> dict:
    """``value`` as {dotted key: plain value}: dataclasses and mappings flattened, tuples as lists."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            out.update(_flat(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: _plain(value)}


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def config_fingerprint(cfg, seeds: Sequence[int], extra: Mapping) -> dict:
    """What a run's results depend on, as {dotted key: plain value}: the checkpoint
    format, the package version, ``seeds``, ``extra`` (flattened) and the settings of
    ``cfg`` (a TrainConfig) that are not run-only."""
    from retention import __version__
    from retention.config import run_only_train_keys

    run_only = set(run_only_train_keys())
    train = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in run_only}
    return {
        "checkpoint.format": FORMAT,
        "code.version": __version__,
        "seeds": [int(s) for s in seeds],
        **_flat("", dict(extra)),
        **_flat("train", train),
    }


def first_difference(saved: Mapping, current: Mapping) -> str | None:
    """The first key (in ``current``'s order) whose value differs, with both values; None if equal."""
    for key in [*current, *(k for k in saved if k not in current)]:
        if key not in saved:
            return f"{key} (not recorded in the checkpoint)"
        if key not in current:
            return f"{key} (recorded in the checkpoint, not set now)"
        if saved[key] != current[key]:
            return f"{key} was {saved[key]!r}, now {current[key]!r}"
    return None


def rng_state() -> dict:
    """The process's global random streams: torch (CPU and CUDA), NumPy, Python."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng(state: Mapping) -> None:
    """Set the streams :func:`rng_state` recorded."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(path: str | os.PathLike, state: Mapping) -> None:
    """Write ``state`` (with its ``fingerprint``) to ``path`` atomically."""
    from retention.io import atomic_path

    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def load(path: str | os.PathLike | None, fingerprint: Mapping | Callable[[], Mapping]) -> dict | None:
    """The state saved at ``path`` if its record equals ``fingerprint`` (a mapping, or a
    function that returns it, called only when there is a file to compare); else None:
    no file, or one that cannot be read or belongs to another config, which is deleted
    with one log line that says why."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        saved = state.get("fingerprint")
    except Exception as err:  # a truncated or foreign file: not a checkpoint of ours
        why = f"it cannot be read ({type(err).__name__}: {err})"
    else:
        current = fingerprint() if callable(fingerprint) else fingerprint
        diff = "no config record (an older format)" if saved is None else first_difference(saved, current)
        if diff is None:
            return state
        why = f"it was written under another config: {diff}"
    log.warning("discarding checkpoint %s and starting fresh: %s", path, why)
    Path(path).unlink(missing_ok=True)
    return None

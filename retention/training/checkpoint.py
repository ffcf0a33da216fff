"""Checkpoints that belong to their config.

A checkpoint holds the state after an epoch and a record of what the run's results
depend on (``Checkpoints.config_fingerprint``): the package version, the seeds, the
result-shaping train settings (every ``train`` key not marked ``run_only`` in the
schema), and what the caller adds (the arch entry, the prepared data's checksum, ...;
``retention.training.finetune.run_fingerprint``). A checkpoint whose record differs from the
run's, or that cannot be read, is deleted and the run starts fresh; one log line names
the first differing key. It is written atomically and removed once the outputs are.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Mapping

import numpy as np
import torch

log = logging.getLogger("retention.training.trainer")


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


class Checkpoints:
    """The checkpoint part of :class:`retention.training.trainer.Trainer` (a mixin: it uses the
    trainer's ``cfg``, ``runs``, ``phase``, ``step``, ``checkpoint`` and its model state)."""

    def config_fingerprint(self) -> dict:
        """What the run's results depend on, as {key: plain value} (see the class docstring)."""
        if self._fingerprint is None:
            from retention import __version__
            from retention.config import run_only_train_keys

            source = self._fingerprint_source
            extra = source() if callable(source) else (source or {})
            run_only = set(run_only_train_keys())
            train = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k not in run_only}
            self._fingerprint = {
                "code.version": __version__,
                "seeds": [run.seed for run in self.runs],
                **_flat("", dict(extra)),
                **_flat("train", train),
            }
        return self._fingerprint

    def _state(self, done: int) -> dict:
        return {
            "fingerprint": self.config_fingerprint(),
            "done": done,
            "phase": self.phase,
            "step": self.step,
            **self._model_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "runs": [run.state_dict() for run in self.runs],
        }

    def _save_checkpoint(self, done: int) -> None:
        if self.checkpoint is None:
            return
        from retention.io import atomic_path

        with atomic_path(self.checkpoint) as tmp:
            torch.save(self._state(done), tmp)

    def _read_checkpoint(self) -> dict | None:
        """The checkpoint's state if it belongs to this run's config, else None (and it is
        deleted, with one log line that says why)."""
        if self.checkpoint is None or not self.checkpoint.exists():
            return None
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
            saved = state.get("fingerprint")
        except Exception as err:  # a truncated or foreign file: not a checkpoint of ours
            why = f"it cannot be read ({type(err).__name__}: {err})"
        else:
            diff = "no config record (an older format)" if saved is None else first_difference(
                saved, self.config_fingerprint())
            if diff is None:
                return state
            why = f"it was written under another config: {diff}"
        log.warning("discarding checkpoint %s and starting fresh: %s", self.checkpoint, why)
        self.checkpoint.unlink(missing_ok=True)
        return None

    def _load_checkpoint(self) -> int:
        """Restore the state of the last completed epoch; returns how many are done."""
        state = self._read_checkpoint()
        if state is None:
            return 0
        self._load_model_state(state, state["phase"])
        self.phase = state["phase"]
        self.step = state["step"]
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        for run, run_state in zip(self.runs, state["runs"]):
            run.load_state_dict(run_state)
        log.info("resumed from %s after epoch %d", self.checkpoint, state["done"])
        return int(state["done"])

    def remove_checkpoint(self) -> None:
        """Delete the checkpoint and the checkpoint folders it leaves empty (call once the
        outputs are safely written)."""
        from retention.io import remove_checkpoint

        remove_checkpoint(self.checkpoint)

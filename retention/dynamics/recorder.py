"""Record the training dynamics of any PyTorch loop as the long table (docs/contracts.md
"Long table"), which a dataset with ``source: traces`` imports as it is.

Add three lines to your own loop: make a :class:`TraceRecorder`, call :meth:`record` on
each epoch's evaluation pass (sample ids, labels and the logits, or probabilities), and
save it (or use it as a context manager, which saves when the block ends without an
error)::

    with TraceRecorder("dynamics.parquet", arch="resnet18", seed=0) as recorder:
        for epoch in range(epochs):
            train_one_epoch(model, loader)
            model.eval()
            with torch.no_grad():
                for x, y, ids in eval_loader:
                    recorder.record(epoch, ids, y, logits=model(x))

Per sample and epoch it keeps what the workflow's own runs record: ``correct`` (the arg
max is the label), ``p_true`` (softmax at the label), ``loss`` (cross-entropy, nats),
``el2n`` and ``pred``. Tensors may live on any device, in any float precision; numpy
arrays work too (torch itself is not imported here). The table is checked as the import
checks it (every sample at every epoch once, at least 3 epochs at t >= 0) and written
atomically: a loop that fails leaves no table behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from retention import io
from retention.dynamics.cartography import measures
from retention.dynamics.cells import SPLITS
from retention.dynamics.longtable import table_runs
from retention.dynamics.sources import RUN_KEY, run_key
from retention.errors import DataError

log = logging.getLogger("retention.dynamics.recorder")


def _numpy(values) -> np.ndarray:
    """A tensor (any device, any float precision) or array-like as a numpy array."""
    if hasattr(values, "detach"):
        values = values.detach()
        if values.is_floating_point():
            values = values.float()
        values = values.cpu().numpy()
    return np.asarray(values)


class TraceRecorder:
    """Collects per-sample predictions epoch by epoch and writes the long table.

    path: ``.parquet`` or ``.csv``; arch, seed: the run (the import's run key
    ``<arch>/seed<seed>``); t0_epoch: the epoch that ends warmup (t = 0; earlier epochs
    are warmup, t < 0); class_names: the names of classes 0..C-1 (column ``class_name``).
    """

    def __init__(self, path, arch: str = "model", seed: int = 0, t0_epoch: int = 0, class_names=None):
        self.path = Path(path)
        if self.path.suffix not in (".parquet", ".csv"):
            raise DataError(f"TraceRecorder: {self.path} must end in .parquet or .csv")
        if RUN_KEY.match(run_key(arch, 0)) is None or int(seed) < 0:
            raise DataError(
                f"TraceRecorder: arch {arch!r} and seed {seed!r} do not name a run "
                "(arch: letters, digits, _ and -; seed: an integer >= 0)"
            )
        self.arch, self.seed, self.t0_epoch = str(arch), int(seed), int(t0_epoch)
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self._parts: list[dict] = []

    def record(self, epoch: int, sample_ids, labels, logits=None, probs=None, split: str = "train") -> None:
        """Record one batch (or all samples) of one epoch's evaluation: sample ids (B,),
        labels (B,), and either ``logits`` or ``probs`` (B, C); ``split``: train or heldout."""
        if (logits is None) == (probs is None):
            raise DataError("TraceRecorder.record: give either logits or probs")
        if split not in SPLITS:
            raise DataError(f"TraceRecorder.record: split {split!r} is not one of {', '.join(SPLITS)}")
        ids = _numpy(sample_ids).astype(np.int64).ravel()
        label = _numpy(labels).astype(np.int64).ravel()
        scores = _numpy(logits if logits is not None else probs).astype(np.float64)
        if scores.ndim != 2 or scores.shape[0] != ids.size or label.size != ids.size:
            raise DataError(
                f"TraceRecorder.record (epoch {epoch}): {ids.size} sample ids, {label.size} labels and "
                "scores of "
                f"shape {scores.shape}; expected (B,), (B,) and (B, C)"
            )
        if label.size and (label.min() < 0 or label.max() >= scores.shape[1]):
            raise DataError(f"TraceRecorder.record (epoch {epoch}): labels outside 0..{scores.shape[1] - 1}")
        if logits is not None:
            m = measures(scores, label)
        else:
            rows = np.arange(ids.size)
            p = scores[rows, label]
            onehot = np.zeros_like(scores)
            onehot[rows, label] = 1.0
            pred = scores.argmax(axis=1)
            m = {
                "p_true": p,
                "loss": -np.log(np.maximum(p, 1e-45)),
                "el2n": np.linalg.norm(scores - onehot, axis=1),
                "pred": pred,
                "correct": pred == label,
            }
        self._parts.append({"split": split, "sample_id": ids, "label": label, "epoch": int(epoch), **m})

    def table(self) -> pd.DataFrame:
        """The long table of everything recorded so far (columns of docs/contracts.md)."""
        if not self._parts:
            raise DataError(f"TraceRecorder: nothing recorded for {self.path}")
        cols = {
            k: np.concatenate([np.broadcast_to(p[k], p["sample_id"].shape) for p in self._parts])
            for k in ("split", "sample_id", "label", "epoch", "correct", "p_true", "loss", "el2n", "pred")
        }
        table = pd.DataFrame(
            {
                "arch": self.arch,
                "seed": np.int64(self.seed),
                "split": cols["split"].astype(str),
                "sample_id": cols["sample_id"],
                "label": cols["label"],
            }
        )
        if self.class_names is not None:
            if cols["label"].max() >= len(self.class_names):
                raise DataError(
                    f"TraceRecorder: labels go up to {cols['label'].max()} but there are "
                    f"{len(self.class_names)} class names"
                )
            table["class_name"] = np.asarray(self.class_names)[cols["label"]]
        table["epoch"] = cols["epoch"].astype(np.int64)
        table["t"] = table["epoch"] - self.t0_epoch
        table["correct"] = cols["correct"].astype(bool)
        for k in ("p_true", "loss", "el2n"):
            table[k] = cols[k].astype(np.float32)
        table["pred"] = cols["pred"].astype(np.int32)
        return table

    def save(self) -> Path:
        """Check the table as the import will, then write it atomically; returns the path."""
        table = self.table()
        table_runs(table, self.path)  # DataError here: the same message the import would give
        io.save_table(self.path, table)
        log.info(
            "wrote %s: run %s, %d rows, epochs %d..%d",
            self.path,
            run_key(self.arch, self.seed),
            len(table),
            int(table["epoch"].min()),
            int(table["epoch"].max()),
        )
        return self.path

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.save()

"""Fine-tuning that records every train and held-out sample's state after every epoch.

One job (dataset, arch, one or several seeds), docs/method.md section 3: head warmup
with the backbone and its BatchNorm statistics frozen, then full fine-tuning with AdamW
and a per-step cosine schedule. After every epoch an eval-mode pass over the whole train
and held-out sets records ``correct``, ``p_true``, ``loss``, ``el2n`` and ``pred`` per
sample (the ``traces.npz`` contract, docs/contracts.md). The uint8 images live on the
device; crops, flips and normalisation happen there in batches (``augment``). The same
code runs on the CPU and on CUDA.

The :class:`Trainer` holds its runs (``seedrun.SeedRun``: one per seed, its samplers,
random stream and records) and one model object (``modelstate.ModelState``:
``single.SingleModel`` for one seed, ``stacked.StackedModels`` for several seeds
stacked with vmap); everything it does is the same for both. A checkpoint
(``checkpoint``) is written atomically after an epoch once ``checkpoint_interval_s``
seconds have passed since the last one (0: after every epoch); a rerun resumes from it
and ends with the same traces as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from retention.errors import ConfigError, TrainingError
from retention.training import checkpoint as ckpt
from retention.training.augment import DeviceTransform, to_device
from retention.training.models import InputConfig
from retention.training.modelstate import ModelState, set_lr
from retention.training.seedrun import EpochSampler, Recorder, SeedRun, class_centroid_cosine
from retention.training.settings import TrainConfig
from retention.training.splits import RunData, SplitData

log = logging.getLogger("retention.training.trainer")


@dataclass
class RunResult:
    """What a run produces: the traces.npz arrays and the per-epoch metrics table."""

    traces: dict[str, np.ndarray]
    metrics: pd.DataFrame


def time_index(warmup_epochs: int, epochs: int) -> np.ndarray:
    """t for every recorded epoch: warmup epochs end at t = 0, fine-tuning epoch k at t = k.

    Without warmup an eval pass of the initial model is recorded as t = 0.
    """
    first = -(warmup_epochs - 1) if warmup_epochs > 0 else 0
    return np.arange(first, epochs + 1, dtype=np.int64)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and keep cuDNN from choosing kernels by timing.

    CPU runs are then bit-for-bit reproducible (tests/test_train.py). CUDA runs are
    reproducible up to the non-determinism of some CUDA kernels: we do not call
    ``torch.use_deterministic_algorithms``, because under it torchvision's roi_align
    (the device augmentation) falls back to a compiled Python implementation that is
    orders of magnitude slower on the GPU.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False


def cosine(step: int, total: int) -> float:
    """The cosine schedule's factor of the peak learning rate after ``step`` of ``total`` steps."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def sample_stats(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per seed and sample (S, n): p_true, loss, el2n and pred of ``logits`` (S, n, C)
    against the labels ``y`` (n,)."""
    logits = logits.float()
    prob = logits.softmax(dim=-1)
    ys = y.expand(logits.shape[0], -1)
    return {
        "p_true": prob.gather(-1, ys[..., None]).squeeze(-1),
        "loss": F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none").view(ys.shape),
        "el2n": torch.linalg.vector_norm(prob - F.one_hot(ys, prob.shape[-1]).float(), dim=-1),
        "pred": logits.argmax(dim=-1),
    }


@dataclass(eq=False)
class Trainer:
    """Trains a job's seeds (``runs``, one per seed) with ``model`` (their model object)
    on ``data``; see the module docstring. :func:`make_trainer` builds one.

    fingerprint: what identifies the run besides ``cfg`` and the seeds (the arch entry,
    the prepared data's checksum, the sampler, ...: {key: plain value}), or a callable
    that returns it (called at most once, when a checkpoint is first written or read).
    A checkpoint records it (``checkpoint.config_fingerprint``); one whose record
    differs is discarded (one log line names the first differing key) and the run
    starts fresh. progress: a progress bar (None: when stderr is a terminal).
    """

    runs: list[SeedRun]
    model: ModelState
    data: RunData
    transform: DeviceTransform
    cfg: TrainConfig
    checkpoint: Path | None = None
    fingerprint: Mapping | Callable[[], Mapping] | None = None
    device_label: str | None = None
    progress: bool | None = None
    phase: str | None = field(default=None, init=False)
    step: int = field(default=0, init=False)
    last_lr: float = field(default=float("nan"), init=False)  # learning rate of the last step taken
    # seconds of the first optimizer step (of this process) and of every epoch (train + eval)
    times: dict = field(default_factory=lambda: {"first_step_s": 0.0, "epochs_s": 0.0}, init=False)

    def __post_init__(self):
        seeds = [run.seed for run in self.runs]
        if len(seeds) != self.model.n_seeds or len(set(seeds)) != len(seeds):
            raise ConfigError(
                f"a trainer needs one model per seed and distinct seeds, got seeds {seeds} for "
                f"{self.model.n_seeds} model(s)"
            )
        self.checkpoint = Path(self.checkpoint) if self.checkpoint else None
        self.device_label = self.device_label or str(self.model.device)
        self.progress = sys.stderr.isatty() if self.progress is None else self.progress
        self.t = time_index(self.cfg.warmup_epochs, self.cfg.epochs)
        self._fingerprint: dict | None = None
        self._first_step_done = False

    # ------------------------------------------------------------------ schedule
    def _epochs(self) -> list[tuple[str, int]]:
        """(phase, epoch-within-phase) for every training epoch, in order."""
        return [("warmup", k) for k in range(1, self.cfg.warmup_epochs + 1)] + [
            ("finetune", k) for k in range(1, self.cfg.epochs + 1)
        ]

    def _n_batches(self, n: int) -> int:
        full, rest = divmod(n, self.cfg.batch_size)
        return full + (1 if rest > 1 else 0)

    def _lr(self) -> float:
        if self.phase == "warmup":
            return self.cfg.head_lr
        # images trained on per fine-tuning epoch: the sampler's budget (all of them by default)
        total = self.cfg.epochs * self._n_batches(self.runs[0].budget())
        return self.cfg.lr * cosine(self.step, total)

    def start_phase(self, phase: str) -> None:
        """Start ``phase`` (warmup or finetune): the model's trainable part and optimizer."""
        self.model.start_phase(phase)
        self.phase, self.step = phase, 0

    # ------------------------------------------------------------------ training
    def _train_epoch(self, epoch: int, k: int) -> tuple[list[float], int]:
        """Epoch ``epoch`` of the run (``k`` of its phase); returns (mean loss per seed,
        images trained on per seed)."""
        orders = []
        for run in self.runs:
            sampler = run.full if self.phase == "warmup" else run.sampler
            orders.append(torch.as_tensor(np.asarray(sampler.epoch_indices(k), dtype=np.int64)))
        if len({len(o) for o in orders}) > 1:
            raise TrainingError(
                f"the seeds of this job train on different numbers of images in epoch {epoch}"
            )
        bs = self.cfg.batch_size
        starts = [i for i in range(0, len(orders[0]), bs) if len(orders[0][i : i + bs]) > 1]  # BatchNorm: 2+
        loss_sum = torch.zeros(len(self.runs), device=self.model.device)
        seen = 0
        for i in starts:
            idx = [order[i : i + bs] for order in orders]
            loss_sum += self.train_batch(idx) * len(idx[0])
            seen += len(idx[0])
        if self.phase == "finetune":
            for run, order in zip(self.runs, orders):
                run.trained[order[:seen].numpy()] = True
        means = (loss_sum / max(seen, 1)).tolist()  # the epoch's one host synchronisation
        for run, mean in zip(self.runs, means):
            if not math.isfinite(mean):
                raise TrainingError(
                    f"the training loss is {mean} in epoch {epoch} ({self.phase}) of seed {run.seed}; "
                    "lower the learning rate or check the data"
                )
        return means, seen

    def train_batch(self, idx: Sequence[torch.Tensor]) -> torch.Tensor:
        """One optimizer step on the train samples ``idx`` (one CPU int64 tensor per seed,
        of equal lengths); each seed's loss (S,), on the device.

        Gathers the uint8 images (on the device), augments them there, each seed with
        its own random stream, and steps; nothing in it waits for the GPU.
        """
        device, images = self.model.device, self.data.train_images
        self.last_lr = self._lr()
        set_lr(self.model.optimizer, self.last_lr)
        batches = [images[to_device(i, images.device)].to(device, non_blocking=True) for i in idx]
        labels = torch.cat([self.data.train_labels[to_device(i, device)] for i in idx])
        x = self.transform.train_many(batches, [run.generator for run in self.runs])
        start = time.perf_counter()
        loss = self.model.step(x, labels)
        if not self._first_step_done:
            self._sync()
            self.times["first_step_s"] = time.perf_counter() - start
            self._first_step_done = True
        self.step += 1
        return loss

    def _sync(self) -> None:
        if self.model.device.type == "cuda":
            torch.cuda.synchronize(self.model.device)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(
        self, images: torch.Tensor, labels: torch.Tensor, recs: Sequence[Recorder], col: int, features: bool
    ) -> list[np.ndarray] | None:
        """Eval-mode pass over one split; fills column ``col`` of ``recs`` (one per seed).

        Returns each seed's penultimate features (N, D) when ``features`` is set, else None.
        """
        feats_out, out = [], {"p_true": [], "loss": [], "el2n": [], "pred": []}
        with self.model.evaluating():
            for start in range(0, len(labels), self.cfg.eval_batch_size):
                sl = slice(start, start + self.cfg.eval_batch_size)
                x = self.transform.eval(images[sl].to(self.model.device, non_blocking=True))
                feats, logits = self.model.outputs(x, features)
                if features:
                    feats_out.append(feats.float())
                for key, value in sample_stats(logits, labels[sl]).items():
                    out[key].append(value)
        # one copy to the host per split, not one per batch
        host = {k: torch.cat(v, dim=1).cpu().numpy() for k, v in out.items()}
        truth = labels.cpu().numpy()
        for s, r in enumerate(recs):
            r.p_true[:, col] = host["p_true"][s]
            r.loss[:, col] = host["loss"][s]
            r.el2n[:, col] = host["el2n"][s]
            r.pred[:, col] = host["pred"][s].astype(np.int32)
            r.correct[:, col] = host["pred"][s] == truth
        return list(torch.cat(feats_out, dim=1).cpu().numpy()) if features else None

    def _record(self, col: int) -> None:
        at_t0 = self.t[col] == 0
        data = self.data
        feats = self.evaluate(
            data.train_images, data.train_labels, [r.train_rec for r in self.runs], col, at_t0
        )
        if at_t0:
            for run, f in zip(self.runs, feats):
                run.centroid_cosine = class_centroid_cosine(f, data.train.labels, len(data.class_names))
        self.evaluate(
            data.heldout_images, data.heldout_labels, [r.heldout_rec for r in self.runs], col, False
        )

    # ------------------------------------------------------------------ checkpoints
    def config_fingerprint(self) -> dict:
        """What the run's results depend on (``checkpoint.config_fingerprint``), computed once."""
        if self._fingerprint is None:
            source = self.fingerprint
            extra = source() if callable(source) else (source or {})
            self._fingerprint = ckpt.config_fingerprint(self.cfg, [run.seed for run in self.runs], extra)
        return self._fingerprint

    def state(self, done: int) -> dict:
        """What a checkpoint after epoch ``done`` holds: the fingerprint, the schedule's
        position, the model and its optimizer, the random streams and every run's state."""
        optimizer = self.model.optimizer
        return {
            "fingerprint": self.config_fingerprint(),
            "done": done,
            "phase": self.phase,
            "step": self.step,
            "model": self.model.state(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "rng": ckpt.rng_state(),
            "runs": [run.state_dict() for run in self.runs],
        }

    def load_state(self, state: Mapping) -> None:
        """Continue from a :meth:`state`."""
        self.model.load_state(state["model"])
        if state["phase"] is not None:
            self.start_phase(state["phase"])
            if state["optimizer"] is not None:
                self.model.optimizer.load_state_dict(state["optimizer"])
        self.phase, self.step = state["phase"], state["step"]
        ckpt.restore_rng(state["rng"])
        for run, run_state in zip(self.runs, state["runs"]):
            run.load_state_dict(run_state)

    def _resume(self) -> int:
        """Restore the checkpoint's state, if it belongs to this run; returns the epochs done."""
        state = ckpt.load(self.checkpoint, self.config_fingerprint)
        if state is None:
            return 0
        self.load_state(state)
        log.info("resumed from %s after epoch %d", self.checkpoint, state["done"])
        return int(state["done"])

    # ------------------------------------------------------------------ run
    def run_all(self) -> list[RunResult]:
        """Train (or resume) every seed to the end; one result per seed, in order."""
        schedule = self._epochs()
        done = self._resume()
        col_offset = 1 if self.cfg.warmup_epochs == 0 else 0
        if done == 0 and col_offset:
            self._record(0)  # no warmup: t = 0 is the initial model
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(schedule), initial=done, desc="epochs", file=sys.stderr)
        last_save = time.monotonic()
        for number, (phase, k) in enumerate(schedule, 1):
            if number <= done:
                continue
            self._run_epoch(number, len(schedule), phase, k, number - 1 + col_offset)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{self.runs[0].metrics[-1]['train_loss']:.3f}",
                    acc=f"{self.runs[0].metrics[-1]['heldout_acc']:.3f}",
                )
            # (none after the last epoch: the outputs are written next)
            if number < len(schedule) and time.monotonic() - last_save >= self.cfg.checkpoint_interval_s:
                if self.checkpoint is not None:
                    ckpt.save(self.checkpoint, self.state(number))
                last_save = time.monotonic()
        if bar is not None:
            bar.close()
        return [RunResult(self._traces(run), pd.DataFrame(run.metrics)) for run in self.runs]

    def _run_epoch(self, number: int, total: int, phase: str, k: int, col: int) -> None:
        """Train epoch ``number`` (``k`` of ``phase``), record it in column ``col``, log it."""
        if phase != self.phase:
            self.start_phase(phase)
        start = time.perf_counter()
        train_losses, n_trained = self._train_epoch(number, k)
        self._sync()
        train_seconds = time.perf_counter() - start
        self._record(col)
        seconds = time.perf_counter() - start
        self.times["epochs_s"] += seconds
        for run, train_loss in zip(self.runs, train_losses):
            self._log_epoch(
                run,
                number,
                total,
                phase,
                col,
                train_loss,
                seconds,
                n_trained / max(train_seconds, 1e-9),
                n_trained,
            )

    def _log_epoch(
        self,
        run: SeedRun,
        number: int,
        total: int,
        phase: str,
        col: int,
        train_loss: float,
        seconds: float,
        images_per_s: float,
        n_trained: int,
    ) -> None:
        """One seed's metrics row of an epoch, and its log line."""
        row = {
            "epoch": number,
            "t": int(self.t[col]),
            "phase": phase,
            "lr": self.last_lr,
            "train_loss": train_loss,
            "train_acc": float(run.train_rec.correct[:, col].mean()),
            "heldout_acc": float(run.heldout_rec.correct[:, col].mean()),
            "seconds": seconds,
            "images_per_s": images_per_s,
            "n_trained": n_trained,
            "n_distinct_trained": int(run.trained.sum()),
            "device": self.device_label,
        }
        run.metrics.append(row)
        who = f"seed {run.seed} " if len(self.runs) > 1 else ""
        log.info(
            "%sepoch %d/%d %s t=%d loss=%.4f train_acc=%.4f heldout_acc=%.4f %.1fs %.0f img/s",
            who,
            number,
            total,
            phase,
            row["t"],
            train_loss,
            row["train_acc"],
            row["heldout_acc"],
            seconds,
            images_per_s,
        )

    def _traces(self, run: SeedRun) -> dict[str, np.ndarray]:
        """One seed's traces.npz arrays (docs/contracts.md)."""
        train, heldout = self.data.train, self.data.heldout
        out = {
            "sample_id": np.asarray(train.sample_ids, dtype=np.int64),
            "label": np.asarray(train.labels, dtype=np.int64),
            "class_names": np.asarray(self.data.class_names, dtype=str),
            "t": self.t,
        }
        out.update(run.train_rec.arrays())
        out["heldout_sample_id"] = np.asarray(heldout.sample_ids, dtype=np.int64)
        out["heldout_label"] = np.asarray(heldout.labels, dtype=np.int64)
        out.update(run.heldout_rec.arrays("heldout_"))
        out["class_centroid_cosine"] = run.centroid_cosine
        return out


def make_trainer(
    modules: Sequence[nn.Module],
    seeds: Sequence[int],
    input_cfg: InputConfig,
    train: SplitData,
    heldout: SplitData,
    class_names: list[str],
    cfg: TrainConfig,
    *,
    device: torch.device | str = "cpu",
    samplers: Sequence[EpochSampler | None] | None = None,
    checkpoint: str | Path | None = None,
    device_label: str | None = None,
    progress: bool | None = None,
    fingerprint: Mapping | Callable[[], Mapping] | None = None,
) -> Trainer:
    """A Trainer for ``seeds``, ``modules`` their models (one per seed, each created under
    its seed): a ``SingleModel`` for one seed, ``StackedModels`` for several.

    samplers: one fine-tuning epoch sampler per seed (None: every train sample);
    checkpoint: the resume file (None: no checkpoints); the rest are :class:`Trainer`'s.
    """
    from retention.training.single import SingleModel
    from retention.training.stacked import StackedModels

    device = torch.device(device)
    data = RunData.on(device, train, heldout, class_names, images_on_device=cfg.data_on_device)
    n_records = len(time_index(cfg.warmup_epochs, cfg.epochs))
    samplers = list(samplers) if samplers is not None else [None] * len(seeds)
    runs = [
        SeedRun(seed, len(train.labels), len(heldout.labels), n_records, len(class_names), sampler)
        for seed, sampler in zip(seeds, samplers)
    ]
    if len(modules) == 1:
        model = SingleModel(modules[0], cfg, device, input_cfg.size)
    else:
        model = StackedModels(modules, cfg, device)
    transform = DeviceTransform(
        input_cfg.size,
        input_cfg.mean,
        input_cfg.std,
        input_cfg.crop_pct,
        cfg.augment,
        channels_last=cfg.channels_last,
    )
    return Trainer(runs, model, data, transform, cfg, checkpoint, fingerprint, device_label, progress)

"""Fine-tuning that records every train and held-out sample's state after every epoch.

One run (dataset, arch, seed), METHOD.md section 3: head warmup with the backbone and
its BatchNorm statistics frozen, then full fine-tuning with AdamW and a per-step cosine
schedule. After every epoch an eval-mode pass over the whole train and held-out sets
records ``correct``, ``p_true``, ``loss``, ``el2n`` and ``pred`` per sample (the
``traces.npz`` contract, docs/contracts.md). The uint8 images live on the device; crops,
flips and normalisation happen there in batches (``augment``). The same code runs on the
CPU and on CUDA. A checkpoint is written atomically after an epoch once
``checkpoint_interval_s`` seconds have passed since the last one (0: after every epoch);
a rerun resumes from it and ends with the same traces as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .augment import AugmentConfig, DeviceTransform, to_device
from .errors import ConfigError, TrainingError
from .models import InputConfig, classifier, features_and_logits

log = logging.getLogger("retention.train")

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (config section ``train`` plus the arch's learning rate)."""

    lr: float
    warmup_epochs: int = 3
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 512
    head_lr: float = 1e-3
    weight_decay: float = 0.05
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    precision: str = "auto"  # auto | fp32 | bf16
    channels_last: bool = True
    compile: bool = False
    compile_mode: str = "reduce-overhead"  # torch.compile mode (CUDA graphs on CUDA)
    data_on_device: bool = True
    checkpoint_interval_s: float = 60.0  # seconds between checkpoints; 0: after every epoch


@dataclass
class SplitData:
    """One split of a prepared dataset: uint8 images (N, S, S, 3), labels, sample ids."""

    images: np.ndarray
    labels: np.ndarray
    sample_ids: np.ndarray


class EpochSampler(Protocol):
    """Chooses which train samples an epoch trains on, in order (see ``sampler``)."""

    def epoch_indices(self, epoch: int) -> np.ndarray: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class PermutationSampler:
    """Every train sample once per epoch, in a seeded random order."""

    def __init__(self, n: int, seed: int):
        self.n = self.budget = n
        self.generator = torch.Generator().manual_seed(seed)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        return torch.randperm(self.n, generator=self.generator).numpy()

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


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


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision in ("bf16", "auto"):
        return torch.bfloat16
    raise ConfigError(f"train.precision: unknown value '{precision}' (auto, fp32 or bf16)")


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


def _param_groups(model: nn.Module, weight_decay: float, params=None) -> list[dict]:
    """AdamW groups: no weight decay on biases and normalisation weights (1-D tensors)."""
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _set_phase(model: nn.Module, phase: str) -> None:
    """Warmup: only the head trains and the whole model is in eval mode (frozen BN)."""
    head = set(map(id, classifier(model).parameters()))
    for p in model.parameters():
        p.requires_grad_(phase == "finetune" or id(p) in head)
    model.train(phase == "finetune")


def _cosine(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


class Recorder:
    """Per-sample arrays of one split over all recorded epochs."""

    def __init__(self, n: int, n_epochs: int):
        self.correct = np.zeros((n, n_epochs), dtype=bool)
        self.p_true = np.zeros((n, n_epochs), dtype=np.float32)
        self.loss = np.zeros((n, n_epochs), dtype=np.float32)
        self.el2n = np.zeros((n, n_epochs), dtype=np.float32)
        self.pred = np.zeros((n, n_epochs), dtype=np.int32)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            f"{prefix}correct": self.correct,
            f"{prefix}p_true": self.p_true,
            f"{prefix}loss": self.loss,
            f"{prefix}el2n": self.el2n,
            f"{prefix}pred": self.pred,
        }

    def load(self, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
        for key, value in self.arrays(prefix).items():
            value[...] = arrays[key]


def class_centroid_cosine(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Cosine similarity (C, C) of the class means of ``features``; NaN for empty classes."""
    feats = features.astype(np.float64)
    sums = np.zeros((n_classes, feats.shape[1]))
    np.add.at(sums, labels, feats)
    counts = np.bincount(labels, minlength=n_classes)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums / counts
        unit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    return (unit @ unit.T).astype(np.float32)


class Trainer:
    """Runs one fine-tuning run; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        input_cfg: InputConfig,
        train: SplitData,
        heldout: SplitData,
        class_names: list[str],
        cfg: TrainConfig,
        seed: int,
        device: torch.device | str = "cpu",
        sampler: EpochSampler | None = None,
        checkpoint: str | Path | None = None,
        device_label: str | None = None,
        progress: bool | None = None,
    ):
        self.cfg = cfg
        self.seed = seed
        self.device = torch.device(device)
        self.device_label = device_label or str(self.device)
        self.class_names = list(class_names)
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = self._compiled(self.model, cfg) if cfg.compile else self.model
        self.autocast_dtype = resolve_precision(cfg.precision, self.device)
        self.transform = DeviceTransform(
            input_cfg.size, input_cfg.mean, input_cfg.std, input_cfg.crop_pct, cfg.augment,
            channels_last=cfg.channels_last,
        )
        self.train_data, self.heldout_data = train, heldout
        place = self.device if cfg.data_on_device else torch.device("cpu")
        self.train_images = self._to_tensor(train.images, place)
        self.heldout_images = self._to_tensor(heldout.images, place)
        self.train_labels = torch.as_tensor(train.labels, dtype=torch.long).to(self.device)
        self.heldout_labels = torch.as_tensor(heldout.labels, dtype=torch.long).to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        # warmup epochs train on the whole train set; fine-tuning epochs on what the
        # sampler picks (everything, by default; a budget for the sampler runs)
        self.full = PermutationSampler(len(train.labels), seed)
        self.sampler = sampler or self.full
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.t = time_index(cfg.warmup_epochs, cfg.epochs)
        self.train_rec = Recorder(len(train.labels), len(self.t))
        self.heldout_rec = Recorder(len(heldout.labels), len(self.t))
        self.centroid_cosine = np.full((len(class_names),) * 2, np.nan, dtype=np.float32)
        self.metrics: list[dict] = []
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.optimizer: torch.optim.Optimizer | None = None
        self.phase: str | None = None
        self.step = 0
        self.last_lr = float("nan")  # learning rate of the last step taken

    @staticmethod
    def _compiled(model: nn.Module, cfg: TrainConfig):
        """``torch.compile`` of the model for the full train and eval batch sizes.

        Only full batches run compiled, so a run compiles one graph per batch size and
        phase (train and eval, frozen backbone and not), the same shapes for every dataset
        (the compiler's cache serves later runs); the last, smaller batch of an epoch or
        a split runs eagerly through the same model. Each compiled call marks a new step.
        """
        if cfg.compile_mode not in COMPILE_MODES:
            raise ConfigError(
                f"train.compile_mode: unknown value '{cfg.compile_mode}' ({', '.join(COMPILE_MODES)})"
            )
        compiled = torch.compile(model, mode=cfg.compile_mode, dynamic=False)
        full = {cfg.batch_size, cfg.eval_batch_size}

        def forward(x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] not in full:
                return model(x)
            # CUDA graphs (mode reduce-overhead) reuse their output memory: a new step
            # begins with every call, whose outputs are consumed before the next one
            torch.compiler.cudagraph_mark_step_begin()
            return compiled(x)

        return forward

    @staticmethod
    def _to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
        """uint8 (N, S, S, 3) as (N, 3, S, S) on ``device``: copied as stored, permuted there."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        return x.permute(0, 3, 1, 2).contiguous()

    # ------------------------------------------------------------------ schedule
    def _epochs(self) -> list[tuple[str, int]]:
        """(phase, epoch-within-phase) for every training epoch, in order."""
        return [("warmup", k) for k in range(1, self.cfg.warmup_epochs + 1)] + [
            ("finetune", k) for k in range(1, self.cfg.epochs + 1)
        ]

    def _budget(self) -> int:
        """Images trained on per epoch (the sampler's budget; all of them by default)."""
        return int(getattr(self.sampler, "budget", len(self.train_data.labels)))

    def _n_batches(self, n: int) -> int:
        full, rest = divmod(n, self.cfg.batch_size)
        return full + (1 if rest > 1 else 0)

    def start_phase(self, phase: str) -> None:
        _set_phase(self.model, phase)
        if phase == "warmup":
            groups = _param_groups(self.model, self.cfg.weight_decay, classifier(self.model).parameters())
            lr = self.cfg.head_lr
        else:
            groups = _param_groups(self.model, self.cfg.weight_decay)
            lr = self.cfg.lr
        self.optimizer = torch.optim.AdamW(groups, lr=lr, fused=self.device.type == "cuda")
        self.phase, self.step = phase, 0

    def _lr(self) -> float:
        if self.phase == "warmup":
            return self.cfg.head_lr
        total = self.cfg.epochs * self._n_batches(self._budget())
        return self.cfg.lr * _cosine(self.step, total)

    # ------------------------------------------------------------------ passes
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _train_epoch(self, epoch: int, k: int) -> tuple[float, int]:
        """Epoch ``epoch`` of the run (``k`` of its phase); returns (mean loss, images trained on)."""
        sampler = self.full if self.phase == "warmup" else self.sampler
        order = torch.as_tensor(np.asarray(sampler.epoch_indices(k), dtype=np.int64))
        bs = self.cfg.batch_size
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        batches = [b for b in batches if len(b) > 1]  # BatchNorm needs two samples
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        for idx in batches:
            loss_sum += self.train_batch(idx) * len(idx)
            seen += len(idx)
        mean = float(loss_sum) / max(seen, 1)  # the epoch's one host synchronisation
        if not math.isfinite(mean):
            raise TrainingError(
                f"the training loss is {mean} in epoch {epoch} ({self.phase}); lower the "
                "learning rate or check the data"
            )
        return mean, seen

    def train_batch(self, idx: torch.Tensor) -> torch.Tensor:
        """One optimizer step on the train samples ``idx`` (CPU int64); the loss, on the device.

        Gathers the uint8 images (on the device), augments them there and steps; nothing
        in it waits for the GPU.
        """
        self.last_lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = self.last_lr
        images = self.train_images[to_device(idx, self.train_images.device)]
        labels = self.train_labels[to_device(idx, self.device)]
        x = self.transform.train(images.to(self.device, non_blocking=True), self.generator)
        loss = self.optimize(x, labels)
        self.step += 1
        return loss

    def optimize(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Forward, backward and optimizer step on a ready model input; the detached loss."""
        with self._autocast():
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, rec: Recorder, col: int, features: bool):
        """Eval-mode pass over one split; fills column ``col`` of ``rec``.

        Returns the penultimate features (N, D) when ``features`` is set.
        """
        was_training = self.model.training
        self.model.eval()
        feats_out, out = [], {"p_true": [], "loss": [], "el2n": [], "pred": []}
        bs = self.cfg.eval_batch_size
        for start in range(0, len(labels), bs):
            sl = slice(start, start + bs)
            x = self.transform.eval(images[sl].to(self.device, non_blocking=True))
            y = labels[sl]
            with self._autocast():
                if features:
                    feats, logits = features_and_logits(self.model, x)
                    feats_out.append(feats.float())
                else:
                    logits = self.forward(x)
            logits = logits.float()
            prob = logits.softmax(dim=1)
            out["p_true"].append(prob.gather(1, y[:, None]).squeeze(1))
            out["loss"].append(F.cross_entropy(logits, y, reduction="none"))
            out["el2n"].append(torch.linalg.vector_norm(prob - F.one_hot(y, prob.shape[1]).float(), dim=1))
            out["pred"].append(logits.argmax(dim=1))
        # one copy to the host per split, not one per batch
        host = {k: torch.cat(v).cpu().numpy() for k, v in out.items()}
        rec.p_true[:, col] = host["p_true"]
        rec.loss[:, col] = host["loss"]
        rec.el2n[:, col] = host["el2n"]
        rec.pred[:, col] = host["pred"].astype(np.int32)
        rec.correct[:, col] = host["pred"] == labels.cpu().numpy()
        self.model.train(was_training)
        return torch.cat(feats_out).cpu().numpy() if features else None

    def _record(self, col: int) -> None:
        at_t0 = self.t[col] == 0
        feats = self.evaluate(self.train_images, self.train_labels, self.train_rec, col, at_t0)
        if at_t0:
            self.centroid_cosine = class_centroid_cosine(
                feats, self.train_data.labels, len(self.class_names)
            )
        self.evaluate(self.heldout_images, self.heldout_labels, self.heldout_rec, col, False)

    # ------------------------------------------------------------------ checkpoint
    def _state(self, done: int) -> dict:
        return {
            "done": done,
            "phase": self.phase,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "full": self.full.state_dict(),
            "sampler": self.sampler.state_dict(),
            "train": self.train_rec.arrays(),
            "heldout": self.heldout_rec.arrays(),
            "centroid_cosine": self.centroid_cosine,
            "metrics": self.metrics,
        }

    def _save_checkpoint(self, done: int) -> None:
        if self.checkpoint is None:
            return
        from .io import atomic_path

        with atomic_path(self.checkpoint) as tmp:
            torch.save(self._state(done), tmp)

    def _load_checkpoint(self) -> int:
        """Restore the state of the last completed epoch; returns how many are done."""
        if self.checkpoint is None or not self.checkpoint.exists():
            return 0
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        self.model.load_state_dict(state["model"])
        if state["phase"] is not None:
            self.start_phase(state["phase"])
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.full.load_state_dict(state["full"])
        self.sampler.load_state_dict(state["sampler"])
        self.train_rec.load(state["train"])
        self.heldout_rec.load(state["heldout"])
        self.centroid_cosine = state["centroid_cosine"]
        self.metrics = list(state["metrics"])
        log.info("resumed from %s after epoch %d", self.checkpoint, state["done"])
        return int(state["done"])

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        """Train (or resume) to the end; returns traces and metrics. Deletes the checkpoint."""
        schedule = self._epochs()
        done = self._load_checkpoint()
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
            if phase != self.phase:
                self.start_phase(phase)
            start = time.perf_counter()
            train_loss, n_trained = self._train_epoch(number, k)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            train_seconds = time.perf_counter() - start
            col = number - 1 + col_offset
            self._record(col)
            seconds = time.perf_counter() - start
            row = {
                "epoch": number,
                "t": int(self.t[col]),
                "phase": phase,
                "lr": self.last_lr,
                "train_loss": train_loss,
                "train_acc": float(self.train_rec.correct[:, col].mean()),
                "heldout_acc": float(self.heldout_rec.correct[:, col].mean()),
                "seconds": seconds,
                "images_per_s": n_trained / max(train_seconds, 1e-9),
                "n_trained": n_trained,
                "device": self.device_label,
            }
            self.metrics.append(row)
            log.info(
                "epoch %d/%d %s t=%d loss=%.4f train_acc=%.4f heldout_acc=%.4f %.1fs %.0f img/s",
                number, len(schedule), phase, row["t"], train_loss, row["train_acc"],
                row["heldout_acc"], seconds, row["images_per_s"],
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{row['heldout_acc']:.3f}")
            # (none after the last epoch: the outputs are written next)
            if number < len(schedule) and time.monotonic() - last_save >= self.cfg.checkpoint_interval_s:
                self._save_checkpoint(number)
                last_save = time.monotonic()
        if bar is not None:
            bar.close()
        return RunResult(self._traces(), pd.DataFrame(self.metrics))

    def _traces(self) -> dict[str, np.ndarray]:
        out = {
            "sample_id": np.asarray(self.train_data.sample_ids, dtype=np.int64),
            "label": np.asarray(self.train_data.labels, dtype=np.int64),
            "class_names": np.asarray(self.class_names, dtype=str),
            "t": self.t,
        }
        out.update(self.train_rec.arrays())
        out["heldout_sample_id"] = np.asarray(self.heldout_data.sample_ids, dtype=np.int64)
        out["heldout_label"] = np.asarray(self.heldout_data.labels, dtype=np.int64)
        out.update(self.heldout_rec.arrays("heldout_"))
        out["class_centroid_cosine"] = self.centroid_cosine
        return out

    def remove_checkpoint(self) -> None:
        """Delete the checkpoint (call once the outputs are safely written)."""
        if self.checkpoint is not None and self.checkpoint.exists():
            self.checkpoint.unlink()


def train_config(train: dict, arch: dict) -> TrainConfig:
    """TrainConfig from the config's ``train`` section and one ``archs`` entry."""
    aug = train.get("augment", {})
    return TrainConfig(
        lr=float(arch["lr"]),
        warmup_epochs=int(train["warmup_epochs"]),
        epochs=int(train["epochs"]),
        batch_size=int(train["batch_size"]),
        eval_batch_size=int(train["eval_batch_size"]),
        head_lr=float(arch.get("head_lr", train["head_lr"])),
        weight_decay=float(train["weight_decay"]),
        augment=AugmentConfig(
            enabled=bool(aug.get("enabled", True)),
            scale=tuple(aug.get("scale", (0.08, 1.0))),
            ratio=tuple(aug.get("ratio", (3 / 4, 4 / 3))),
            flip=float(aug.get("flip", 0.5)),
        ),
        precision=train.get("precision", "auto"),
        channels_last=bool(train.get("channels_last", True)),
        compile=bool(train.get("compile", False)),
        compile_mode=str(train.get("compile_mode", "reduce-overhead")),
        data_on_device=bool(train.get("data_on_device", True)),
        checkpoint_interval_s=float(train.get("checkpoint_interval_s", 60.0)),
    )


def split_data(manifest: pd.DataFrame, images: np.ndarray, split: str) -> SplitData:
    """The rows of one split (``train`` or ``heldout``) of a prepared dataset."""
    rows = np.flatnonzero(manifest["split"].to_numpy() == split)
    return SplitData(
        images=images[rows],
        labels=manifest["label"].to_numpy(dtype=np.int64)[rows],
        sample_ids=manifest["sample_id"].to_numpy(dtype=np.int64)[rows],
    )

"""Fine-tuning that records every train and held-out sample's state after every epoch.

One run (dataset, arch, seed), docs/method.md section 3: head warmup with the backbone and
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
import dataclasses
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from retention.training.augment import AugmentConfig, DeviceTransform, to_device
from retention.training.checkpoint import Checkpoints
from retention.errors import ConfigError, TrainingError
from retention.training.models import InputConfig, classifier, features_and_logits
from retention.training.seedrun import EpochSampler, PermutationSampler, Recorder, SeedRun, class_centroid_cosine  # noqa: F401

log = logging.getLogger("retention.training.trainer")

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class TrainConfig:
    """The config's ``train`` section plus the arch's learning rates, one field per key.

    Each field but ``lr`` is a key of the schema's ``train`` section with the same
    default (tests/test_config.py checks both ways). A new train setting is one field
    here and one schema entry; :func:`train_config` reads it from the config by name.
    ``lr`` comes from ``archs.<arch>.lr``, and ``archs.<arch>.head_lr`` overrides
    ``head_lr``.
    """

    lr: float
    warmup_epochs: int = 3
    epochs: int = 30
    batch_size: int = 64
    eval_batch_size: int = 512
    head_lr: float = 1e-3
    weight_decay: float = 0.05
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16
    channels_last: bool = True
    compile: bool = False
    compile_mode: str = "reduce-overhead"  # torch.compile mode (CUDA graphs on CUDA)
    cache_dir: str = "resources/cache"  # compile caches per architecture and input shape
    seeds_per_job: int = 1  # seeds trained together in one process (rule finetune)
    data_on_device: bool = True
    threads: int = 2  # CPU threads of a run
    checkpoint: bool = True  # write resumable checkpoints
    checkpoint_interval_s: float = 60.0  # seconds between checkpoints; 0: after every epoch
    gpu_slots_per_device: int = 1  # concurrent runs per local GPU


# keys of an ``archs`` entry that set (lr) or override (head_lr) a TrainConfig field
ARCH_TRAIN_KEYS = ("lr", "head_lr")


@dataclass
class SplitData:
    """One split of a prepared dataset: uint8 images (N, S, S, 3), labels, sample ids."""

    images: np.ndarray
    labels: np.ndarray
    sample_ids: np.ndarray


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


class Trainer(Checkpoints):
    """Runs one fine-tuning run; see the module docstring.

    fingerprint: what identifies the run besides ``cfg`` and ``seed`` (the arch entry,
    the prepared data's checksum, the sampler, ...: {key: plain value}), or a callable
    that returns it (called at most once, when a checkpoint is first written or read).
    A checkpoint records it with the result-shaping train settings and the package
    version; a checkpoint whose record differs is discarded (one log line names the
    first differing key) and the run starts fresh.
    """

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
        fingerprint: Mapping | Callable[[], Mapping] | None = None,
    ):
        self._setup(input_cfg, train, heldout, class_names, cfg, device, checkpoint, device_label, progress,
                    fingerprint)
        self.runs = [self._seed_run(seed, sampler)]
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = self.model
        if cfg.compile:
            from retention.training.compile_cache import use_compile_cache

            use_compile_cache(cfg.cache_dir, model, input_cfg.size, self.device)
            self.forward = self._compiled(self.model, cfg)
        self.optimizer: torch.optim.Optimizer | None = None

    def _setup(self, input_cfg, train, heldout, class_names, cfg, device, checkpoint, device_label, progress,
               fingerprint) -> None:
        """What every seed of a job shares: settings, data on the device, schedule."""
        self.cfg = cfg
        self.device = torch.device(device)
        self.device_label = device_label or str(self.device)
        self.class_names = list(class_names)
        self.autocast_dtype = resolve_precision(cfg.precision, self.device)
        self.transform = DeviceTransform(
            input_cfg.size, input_cfg.mean, input_cfg.std, input_cfg.crop_pct, cfg.augment,
            channels_last=cfg.channels_last,
        )
        self.input_size = input_cfg.size
        self.train_data, self.heldout_data = train, heldout
        place = self.device if cfg.data_on_device else torch.device("cpu")
        self.train_images = self._to_tensor(train.images, place)
        self.heldout_images = self._to_tensor(heldout.images, place)
        self.train_labels = torch.as_tensor(train.labels, dtype=torch.long).to(self.device)
        self.heldout_labels = torch.as_tensor(heldout.labels, dtype=torch.long).to(self.device)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self._fingerprint_source = fingerprint
        self._fingerprint: dict | None = None
        self.t = time_index(cfg.warmup_epochs, cfg.epochs)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.phase: str | None = None
        self.step = 0
        self.last_lr = float("nan")  # learning rate of the last step taken
        # seconds of the first optimizer step (of this process) and of every epoch (train + eval)
        self.times = {"first_step_s": 0.0, "epochs_s": 0.0}
        self._first_step_done = False

    def _seed_run(self, seed: int, sampler: EpochSampler | None) -> SeedRun:
        return SeedRun(seed, len(self.train_data.labels), len(self.heldout_data.labels), len(self.t),
                       len(self.class_names), sampler)

    # one seed's state, under the names a single run has always used
    seed = property(lambda self: self.runs[0].seed)
    generator = property(lambda self: self.runs[0].generator)
    full = property(lambda self: self.runs[0].full)
    sampler = property(lambda self: self.runs[0].sampler)
    train_rec = property(lambda self: self.runs[0].train_rec)
    heldout_rec = property(lambda self: self.runs[0].heldout_rec)
    centroid_cosine = property(lambda self: self.runs[0].centroid_cosine)
    metrics = property(lambda self: self.runs[0].metrics)

    @staticmethod
    def _compiled(model: nn.Module, cfg: TrainConfig):
        """``torch.compile`` of the model for the full train and eval batch sizes.

        Only full batches run compiled, so a run compiles one graph per batch size and
        phase (train and eval, frozen backbone and not), the same shapes for every dataset
        (the compiler's cache, ``train.cache_dir``, serves later runs); the last, smaller
        batch of an epoch or a split runs eagerly through the same model. Each compiled
        call marks a new step.
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
        """Images trained on per fine-tuning epoch (the sampler's budget; all of them by default)."""
        return self.runs[0].budget()

    def _n_batches(self, n: int) -> int:
        full, rest = divmod(n, self.cfg.batch_size)
        return full + (1 if rest > 1 else 0)

    def _lr(self) -> float:
        if self.phase == "warmup":
            return self.cfg.head_lr
        total = self.cfg.epochs * self._n_batches(self._budget())
        return self.cfg.lr * _cosine(self.step, total)

    # ------------------------------------------------------------------ the model (one seed)
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

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def optimize(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Forward, backward and optimizer step on a ready model input; the detached loss."""
        with self._autocast():
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _step(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One optimizer step of every seed; x, labels hold the seeds' batches one after
        another; returns each seed's mean loss (S,), on the device."""
        return self.optimize(x, labels).reshape(1)

    def _outputs(self, x: torch.Tensor, features: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Eval-mode (features (S, N, D) or None, logits (S, N, C)) of every seed on one batch."""
        if features:
            feats, logits = features_and_logits(self.model, x)
            return feats[None], logits[None]
        return None, self.forward(x)[None]

    def _eval_mode(self, training: bool | None = None) -> bool:
        """Put the model(s) in eval mode (or back in ``training``); returns the mode before."""
        was = self.model.training
        self.model.train(False if training is None else training)
        return was

    def _model_state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
        }

    def _load_model_state(self, state: dict, phase: str | None) -> None:
        self.model.load_state_dict(state["model"])
        if phase is not None:
            self.start_phase(phase)
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])

    # ------------------------------------------------------------------ passes
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _train_epoch(self, epoch: int, k: int) -> tuple[list[float], int]:
        """Epoch ``epoch`` of the run (``k`` of its phase); returns (mean loss per seed,
        images trained on per seed)."""
        orders = []
        for run in self.runs:
            sampler = run.full if self.phase == "warmup" else run.sampler
            orders.append(torch.as_tensor(np.asarray(sampler.epoch_indices(k), dtype=np.int64)))
        if len({len(o) for o in orders}) > 1:
            raise TrainingError(f"the seeds of this job train on different numbers of images in epoch {epoch}")
        bs = self.cfg.batch_size
        starts = [i for i in range(0, len(orders[0]), bs) if len(orders[0][i : i + bs]) > 1]  # BatchNorm: 2+
        loss_sum = torch.zeros(len(self.runs), device=self.device)
        seen = 0
        for i in starts:
            idx = [order[i : i + bs] for order in orders]
            loss_sum += self.train_batch(idx if len(self.runs) > 1 else idx[0]) * len(idx[0])
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

    def train_batch(self, idx: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """One optimizer step on the train samples ``idx`` (CPU int64; one tensor per seed
        when a job trains several); the loss (one per seed), on the device.

        Gathers the uint8 images (on the device), augments them there, each seed with
        its own random stream, and steps; nothing in it waits for the GPU.
        """
        many = isinstance(idx, (list, tuple))
        idx = list(idx) if many else [idx]
        self.last_lr = self._lr()
        self._set_lr(self.last_lr)
        images = [self.train_images[to_device(i, self.train_images.device)].to(self.device, non_blocking=True)
                  for i in idx]
        labels = torch.cat([self.train_labels[to_device(i, self.device)] for i in idx])
        x = self.transform.train_many(images, [run.generator for run in self.runs])
        start = time.perf_counter()
        loss = self._step(x, labels)
        if not self._first_step_done:
            self._sync()
            self.times["first_step_s"] = time.perf_counter() - start
            self._first_step_done = True
        self.step += 1
        return loss if many else loss[0]

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, rec: Recorder | list[Recorder], col: int,
                 features: bool):
        """Eval-mode pass over one split; fills column ``col`` of ``rec`` (one per seed).

        Returns the penultimate features (N, D) (one array per seed) when ``features`` is set.
        """
        recs = rec if isinstance(rec, (list, tuple)) else [rec]
        was_training = self._eval_mode()
        feats_out, out = [], {"p_true": [], "loss": [], "el2n": [], "pred": []}
        bs = self.cfg.eval_batch_size
        for start in range(0, len(labels), bs):
            sl = slice(start, start + bs)
            x = self.transform.eval(images[sl].to(self.device, non_blocking=True))
            y = labels[sl]
            with self._autocast():
                feats, logits = self._outputs(x, features)
            if features:
                feats_out.append(feats.float())
            logits = logits.float()  # (S, n, C)
            prob = logits.softmax(dim=-1)
            ys = y.expand(logits.shape[0], -1)
            out["p_true"].append(prob.gather(-1, ys[..., None]).squeeze(-1))
            out["loss"].append(F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none").view(ys.shape))
            out["el2n"].append(torch.linalg.vector_norm(prob - F.one_hot(ys, prob.shape[-1]).float(), dim=-1))
            out["pred"].append(logits.argmax(dim=-1))
        # one copy to the host per split, not one per batch
        host = {k: torch.cat(v, dim=1).cpu().numpy() for k, v in out.items()}
        truth = labels.cpu().numpy()
        for s, r in enumerate(recs):
            r.p_true[:, col] = host["p_true"][s]
            r.loss[:, col] = host["loss"][s]
            r.el2n[:, col] = host["el2n"][s]
            r.pred[:, col] = host["pred"][s].astype(np.int32)
            r.correct[:, col] = host["pred"][s] == truth
        self._eval_mode(was_training)
        if not features:
            return None
        feats = torch.cat(feats_out, dim=1).cpu().numpy()
        return list(feats) if isinstance(rec, (list, tuple)) else feats[0]

    def _record(self, col: int) -> None:
        at_t0 = self.t[col] == 0
        feats = self.evaluate(self.train_images, self.train_labels, [r.train_rec for r in self.runs], col, at_t0)
        if at_t0:
            for run, f in zip(self.runs, feats):
                run.centroid_cosine = class_centroid_cosine(f, self.train_data.labels, len(self.class_names))
        self.evaluate(self.heldout_images, self.heldout_labels, [r.heldout_rec for r in self.runs], col, False)

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        """Train (or resume) to the end; returns traces and metrics."""
        return self.run_all()[0]

    def run_all(self) -> list[RunResult]:
        """Train (or resume) every seed to the end; one result per seed, in order."""
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
            train_losses, n_trained = self._train_epoch(number, k)
            self._sync()
            train_seconds = time.perf_counter() - start
            col = number - 1 + col_offset
            self._record(col)
            seconds = time.perf_counter() - start
            self.times["epochs_s"] += seconds
            for run, train_loss in zip(self.runs, train_losses):
                self._log_epoch(run, number, len(schedule), phase, col, train_loss, seconds,
                                n_trained / max(train_seconds, 1e-9), n_trained)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_losses[0]:.3f}", acc=f"{self.runs[0].metrics[-1]['heldout_acc']:.3f}")
            # (none after the last epoch: the outputs are written next)
            if number < len(schedule) and time.monotonic() - last_save >= self.cfg.checkpoint_interval_s:
                self._save_checkpoint(number)
                last_save = time.monotonic()
        if bar is not None:
            bar.close()
        return [RunResult(self._traces(run), pd.DataFrame(run.metrics)) for run in self.runs]

    def _log_epoch(self, run: SeedRun, number: int, total: int, phase: str, col: int, train_loss: float,
                   seconds: float, images_per_s: float, n_trained: int) -> None:
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
            who, number, total, phase, row["t"], train_loss, row["train_acc"], row["heldout_acc"], seconds,
            images_per_s,
        )

    def _traces(self, run: SeedRun | None = None) -> dict[str, np.ndarray]:
        run = run or self.runs[0]
        out = {
            "sample_id": np.asarray(self.train_data.sample_ids, dtype=np.int64),
            "label": np.asarray(self.train_data.labels, dtype=np.int64),
            "class_names": np.asarray(self.class_names, dtype=str),
            "t": self.t,
        }
        out.update(run.train_rec.arrays())
        out["heldout_sample_id"] = np.asarray(self.heldout_data.sample_ids, dtype=np.int64)
        out["heldout_label"] = np.asarray(self.heldout_data.labels, dtype=np.int64)
        out.update(run.heldout_rec.arrays("heldout_"))
        out["class_centroid_cosine"] = run.centroid_cosine
        return out

def _like(value, default):
    """``value`` (from YAML) as the type of the field default ``default``."""
    if dataclasses.is_dataclass(default):
        return type(default)(**{k: _like(v, getattr(default, k)) for k, v in value.items()})
    if isinstance(default, tuple):
        return tuple(_like(v, d) for v, d in zip(value, default))
    return type(default)(value)


def train_config(train: Mapping, arch: Mapping) -> TrainConfig:
    """TrainConfig from the config's ``train`` section and one ``archs`` entry.

    Every field is read by its name (absent keys keep the field's default); values are
    converted to the field's type (lists to tuples, mappings to the nested dataclass).
    """
    values = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in ARCH_TRAIN_KEYS and f.name in arch:
            values[f.name] = arch[f.name]
        elif f.name in train:
            values[f.name] = train[f.name]
    cfg = TrainConfig(lr=float(values.pop("lr")))
    return dataclasses.replace(cfg, **{k: _like(v, getattr(cfg, k)) for k, v in values.items()})


def split_data(manifest: pd.DataFrame, images: np.ndarray, split: str) -> SplitData:
    """The rows of one split (``train`` or ``heldout``) of a prepared dataset."""
    rows = np.flatnonzero(manifest["split"].to_numpy() == split)
    return SplitData(
        images=images[rows],
        labels=manifest["label"].to_numpy(dtype=np.int64)[rows],
        sample_ids=manifest["sample_id"].to_numpy(dtype=np.int64)[rows],
    )

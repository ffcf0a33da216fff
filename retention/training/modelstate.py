"""What the trainer asks of its model, and the parts both model kinds share.

The trainer (``retention.training.trainer``) holds one model object: a
:class:`~retention.training.single.SingleModel` (one seed, a plain module) or a
:class:`~retention.training.stacked.StackedModels` (several seeds stacked and trained
with ``torch.func.vmap``). Both offer the operations of :class:`ModelState`, with one
entry per seed along the first dimension of what they return. The head-only warmup,
the AdamW parameter groups and mixed precision are the same for both and written once
here: :func:`phase_optimizer`, :func:`autocast_dtype`, :func:`autocast`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

import torch
from torch import nn

from retention.training.models import classifier
from retention.training.settings import TrainConfig


class ModelState(Protocol):
    """The model(s) of a job's seeds, as the trainer uses them.

    ``n_seeds``: S; ``device``; ``optimizer``: the AdamW of the current phase (None
    before the first one starts).
    """

    n_seeds: int
    device: torch.device
    optimizer: torch.optim.Optimizer | None

    def start_phase(self, phase: str) -> None:
        """Warmup (the heads train, BatchNorm frozen) or finetune (everything): set what
        trains and the train/eval mode, and make a new optimizer."""

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One optimizer step; x, labels hold the seeds' batches one after another;
        returns each seed's mean loss (S,), detached, on the device."""

    def outputs(self, x: torch.Tensor, features: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(penultimate features (S, N, D) or None, logits (S, N, C)) of every seed on one
        batch, in the current mode, under the run's precision."""

    def evaluating(self) -> AbstractContextManager[None]:
        """Eval mode for the block, then the mode before."""

    def state(self) -> dict:
        """The weights and buffers (not the optimizer), for a checkpoint."""

    def load_state(self, state: Mapping) -> None:
        """Restore :meth:`state`."""

    def seed_model(self, i: int) -> nn.Module:
        """Seed ``i``'s model as an ordinary module, for inspection."""


def head_names(model: nn.Module) -> set[str]:
    """Names (as ``named_parameters`` gives them) of the classification head's parameters."""
    head = set(map(id, classifier(model).parameters()))
    return {name for name, p in model.named_parameters() if id(p) in head}


def phase_optimizer(
    params: Mapping[str, torch.Tensor],
    head: set[str],
    phase: str,
    cfg: TrainConfig,
    device: torch.device,
    seed_dims: int,
) -> torch.optim.AdamW:
    """Set which of ``params`` (by name, in order) train in ``phase`` (warmup: the head's,
    ``head``; finetune: all) and return their AdamW, at the phase's peak learning rate.

    Two groups: weight decay on weights, none on biases and normalisation weights, which
    are 1-D per seed; ``seed_dims``: leading dimensions that stack seeds (0 for one
    model, 1 for a stack).
    """
    for name, p in params.items():
        p.requires_grad_(phase == "finetune" or name in head)
    train = [p for p in params.values() if p.requires_grad]
    groups = [
        {"params": [p for p in train if p.ndim - seed_dims > 1], "weight_decay": cfg.weight_decay},
        {"params": [p for p in train if p.ndim - seed_dims <= 1], "weight_decay": 0.0},
    ]
    lr = cfg.head_lr if phase == "warmup" else cfg.lr
    return torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of config ``train.precision`` on ``device``, or None for plain
    fp32 (``auto``: bf16 on CUDA, fp32 elsewhere)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Mixed precision in ``dtype`` on ``device``'s type (None: none)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """``module`` in eval mode for the block, then in the mode it had."""
    was = module.training
    module.train(False)
    try:
        yield
    finally:
        module.train(was)

"""Pretraining: train an architecture from random weights on a source dataset, keep its weights.

The demo's stand-in for ImageNet pretraining (and, for a study of your own, any prepared
dataset as the source): all parameters train for ``epochs`` with the fine-tuning
machinery of ``retention.training.trainer`` (no head warmup, AdamW, per-step cosine, augmentation
on the device, resumable checkpoints), and the whole state dict (the source's head
included, as in the ImageNet files) is kept. Fine-tuning loads it like any local
weights file (``retention.training.models.create_model(name, K, weights=path)``), which drops
the head and keeps the backbone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from retention.acquire.data import PreparedDataset, class_names
from retention.training.models import create_model, input_config
from retention.training.settings import TrainConfig, train_config
from retention.training.splits import split_data
from retention.training.trainer import make_trainer, seed_everything

log = logging.getLogger("retention.training.pretrain")

PHASE = "pretrain"  # the phase column of a pretraining run's metrics


@dataclass
class PretrainResult:
    """A pretrained model's state dict (CPU tensors) and its per-epoch metrics table."""

    state_dict: dict[str, torch.Tensor]
    metrics: pd.DataFrame


def pretrain_config(train: dict, epochs: int, lr: float, augment: dict) -> TrainConfig:
    """TrainConfig of a pretraining run: the ``train`` section's settings (batch size,
    weight decay, precision, ...; its epochs, warmup, learning rates and augmentation do
    not apply) with no head warmup, ``epochs``, peak learning rate ``lr`` and ``augment``
    (the config's ``augment`` mapping)."""
    settings = {**train, "warmup_epochs": 0, "epochs": int(epochs), "head_lr": lr, "augment": augment}
    return train_config(settings, {"lr": lr})


def model_fingerprint(
    model_name: str, model_kwargs: dict | None, input_size: int, extra: Mapping | Callable[[], Mapping] | None
) -> Callable[[], dict]:
    """A pretraining run's checkpoint fingerprint: its model (name, keyword arguments,
    input size) and ``extra`` (a mapping, or a function returning one, called late)."""

    def fingerprint() -> dict:
        more = extra() if callable(extra) else (extra or {})
        model_keys = {"model": model_name, "model_kwargs": dict(model_kwargs or {}), "input_size": input_size}
        return {f"pretrain.{k}": v for k, v in model_keys.items()} | dict(more)

    return fingerprint


def pretrain(
    prepared: PreparedDataset,
    model_name: str,
    cfg: TrainConfig,
    seed: int,
    model_kwargs: dict | None = None,
    input_size: int | None = None,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    device_label: str | None = None,
    fingerprint: Mapping | Callable[[], Mapping] | None = None,
) -> PretrainResult:
    """Train timm model ``model_name`` from random weights on ``prepared`` (its train split;
    its held-out split is evaluated after every epoch, as in fine-tuning).

    Returns the trained state dict (a head of the source's classes included) on the
    CPU, and the metrics (``metrics.csv`` columns, phase ``pretrain``, t = k after epoch
    k). A ``checkpoint`` is resumed from and left in place: delete it once the weights
    are saved. It belongs to the model (name, keyword arguments, input size), the
    settings, the seed and ``fingerprint`` (what else the run depends on, as
    :class:`~retention.training.trainer.Trainer` takes it: the data's and the code's
    checksums); one written under anything else is discarded.
    """
    names = class_names(prepared.manifest)
    train_split = split_data(prepared.manifest, prepared.images, "train")
    heldout_split = split_data(prepared.manifest, prepared.images, "heldout")
    seed_everything(seed)
    model = create_model(model_name, len(names), None, model_kwargs)
    input_cfg = input_config(model, input_size)
    log.info(
        "pretraining %s from random weights: %d train / %d held-out images, %d classes, "
        "input %d px, %d epochs, lr %g, seed %d",
        model_name,
        len(train_split.labels),
        len(heldout_split.labels),
        len(names),
        input_cfg.size,
        cfg.epochs,
        cfg.lr,
        seed,
    )
    trainer = make_trainer(
        [model],
        [seed],
        input_cfg,
        train_split,
        heldout_split,
        names,
        cfg,
        device=device,
        checkpoint=checkpoint,
        device_label=device_label,
        fingerprint=model_fingerprint(model_name, model_kwargs, input_cfg.size, fingerprint),
    )
    (result,) = trainer.run_all()
    metrics = result.metrics.assign(phase=PHASE)
    state = {k: v.detach().to("cpu") for k, v in trainer.model.seed_model(0).state_dict().items()}
    return PretrainResult(state, metrics)

"""timm models: creation with local weights, input settings, head and features.

Any timm model name works (``resnet18.a1_in1k``, ``deit_small_patch16_224.fb_in1k``,
``test_resnet``, ...). Pretrained weights come from a local file only, so compute jobs
never touch the network (the weights rule downloads them beforehand).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import timm
import torch
from torch import nn

from retention.errors import WeightsError


@dataclass(frozen=True)
class InputConfig:
    """How images are fed to a model: square size in pixels, normalisation, eval crop."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float


def check_model_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is a timm model (with an existing tag, if any).

    (The config check uses ``retention.acquire.model_names``, which needs no timm import.)
    """
    from retention.acquire.model_names import check_model_name as check

    check(name)


def create_model(
    name: str,
    num_classes: int,
    weights: str | os.PathLike | None = None,
    model_kwargs: dict | None = None,
) -> nn.Module:
    """Create timm model ``name`` with a new ``num_classes`` head.

    weights: a local weights file (safetensors or torch) loaded into the backbone, the
    classifier being replaced; None gives random initialisation.
    """
    kwargs = dict(model_kwargs or {})
    if weights is None:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    path = Path(weights)
    if not path.is_file():
        from retention.acquire.weights import missing_weights_message

        raise WeightsError(missing_weights_message(name, path))
    try:
        return timm.create_model(
            name,
            pretrained=True,
            num_classes=num_classes,
            pretrained_cfg_overlay=dict(file=str(path)),
            **kwargs,
        )
    except (RuntimeError, KeyError, ValueError) as err:
        raise WeightsError(f"weights file {path} does not fit model '{name}': {err}") from err


def input_config(model: nn.Module, size: int | None = None) -> InputConfig:
    """The model's own input settings; ``size`` overrides its pretrained input size."""
    cfg = timm.data.resolve_data_config({}, model=model)
    return InputConfig(
        size=int(size or cfg["input_size"][-1]),
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        crop_pct=float(cfg.get("crop_pct") or 0.875),
    )


def classifier(model: nn.Module) -> nn.Module:
    """The model's classification head (the part trained during warmup)."""
    return model.get_classifier()


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate (pre-logits) features and logits of a batch, in one forward pass."""
    feats = model.forward_head(model.forward_features(x), pre_logits=True)
    return feats, classifier(model)(feats)

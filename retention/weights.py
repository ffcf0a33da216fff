"""Pretrained weights: fetch them once from the Hugging Face hub, save them as safetensors.

``save_pretrained_weights`` is the only function of the package that needs the internet
(run it through the ``fetch_weights`` localrule, on a login node). Fine-tuning loads the
saved file with ``retention.models.create_model(name, K, weights=path)`` offline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

import torch

from .errors import WeightsError
from .io import atomic_path

log = logging.getLogger("retention.weights")


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write a state dict as a safetensors file, atomically; return the path.

    Tensors are copied to contiguous CPU memory (safetensors refuses shared storage).
    """
    from safetensors.torch import save_file

    tensors = {
        key: value.detach().to("cpu").contiguous().clone() for key, value in state_dict.items()
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return path


def _hub_offline() -> bool:
    import huggingface_hub.constants

    return bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def save_pretrained_weights(model_name: str, path: str | os.PathLike) -> Path:
    """Download timm model ``model_name``'s pretrained weights; save them at ``path``.

    The file holds the model's full state dict (its ImageNet head included) as
    safetensors. Needs the internet (or a Hugging Face hub cache that holds them, as
    with HF_HUB_OFFLINE=1); raises WeightsError naming the rule when they cannot be had.
    """
    import timm

    if not timm.is_model(model_name) or not timm.list_pretrained(model_name):
        raise WeightsError(
            f"'{model_name}' is not a timm model with pretrained weights "
            "(see timm.list_pretrained())"
        )
    log.info("fetching pretrained weights of %s from the Hugging Face hub", model_name)
    try:
        model = timm.create_model(model_name, pretrained=True)
    except Exception as err:  # hub, network and file errors all mean: no weights
        hint = (
            "HF_HUB_OFFLINE is set in this process and the hub cache does not hold them; "
            if _hub_offline()
            else ""
        )
        raise WeightsError(
            f"could not fetch the pretrained weights of '{model_name}' "
            f"({type(err).__name__}: {err}); {hint}run rule fetch_weights on a machine "
            f"that reaches the Hugging Face hub (a login node), or place a weights file at "
            f"{path} yourself"
        ) from err
    save_state_dict(model.state_dict(), path)
    log.info("saved %s weights to %s", model_name, path)
    return Path(path)


def check_weights(
    model_name: str, path: str | os.PathLike, num_classes: int = 2, model_kwargs: dict | None = None
) -> int:
    """Check that ``path`` loads into ``model_name`` (built with ``model_kwargs``) with a new
    ``num_classes`` head.

    Loads through ``retention.models.create_model`` (offline) and compares every
    backbone tensor with the file. Returns the number of tensors that matched; raises
    WeightsError when the file does not fit or a backbone tensor was not loaded.
    """
    from safetensors.torch import load_file

    from .models import create_model

    model = create_model(model_name, num_classes=num_classes, weights=path, model_kwargs=model_kwargs)
    try:
        saved = load_file(str(path))
    except Exception as err:
        raise WeightsError(
            f"weights file {path} is not a readable safetensors file: {err}"
        ) from err
    state = model.state_dict()
    head = {
        f"{name}." for name, module in model.named_modules() if module is model.get_classifier()
    }
    matched, wrong = 0, []
    for key, value in state.items():
        if any(key.startswith(prefix) for prefix in head):
            continue
        if key not in saved:
            wrong.append(f"{key} (missing from the file)")
        elif saved[key].shape != value.shape or not torch.equal(saved[key].to(value.dtype), value):
            wrong.append(key)
        else:
            matched += 1
    if wrong:
        raise WeightsError(
            f"weights file {path} did not load into '{model_name}': {len(wrong)} backbone "
            f"tensor(s) differ, e.g. {wrong[:3]}"
        )
    log.info("weights %s load into %s (%d tensors)", path, model_name, matched)
    return matched

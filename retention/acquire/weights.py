"""Pretrained weights: fetch them once from the Hugging Face hub, save them as safetensors.

``save_pretrained_weights`` is the only function of the package that needs the internet
(run it through the ``fetch_weights`` localrule, on a login node). Fine-tuning loads the
saved file with ``retention.training.models.create_model(name, K, weights=path)`` offline.

Without the hub it fails in seconds, not after a minute of retries: the local hub cache
is looked up first (and used, without the network, when it holds the file); otherwise
one connection to the hub (:class:`HubProbe`, started before torch is imported) must
answer within :data:`HUB_TIMEOUT_S`. The error names the files looked for and the three
ways out (:func:`missing_weights_message`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from retention.errors import WeightsError
from retention.io import atomic_path

if TYPE_CHECKING:
    import torch

log = logging.getLogger("retention.acquire.weights")

#: seconds a connection to the hub may take before it counts as unreachable
HUB_TIMEOUT_S = 2.0
#: the weight files timm asks the hub for, in its order (retention.acquire.weights.cached_hub_file)
HUB_FILES = ("model.safetensors", "pytorch_model.bin")


def hub_endpoint() -> str:
    """The Hugging Face hub's address (``HF_ENDPOINT``, as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set to a true value in this process."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


class HubProbe:
    """One TCP connection to the hub's host, in a background thread (name resolution
    included), so that it runs while torch and timm import; :meth:`failure` waits for it."""

    def __init__(self, url: str | None = None, timeout_s: float = HUB_TIMEOUT_S):
        self.url, self.timeout_s = url or hub_endpoint(), timeout_s
        self._error: str | None = "no answer"
        self._thread = threading.Thread(target=self._connect, daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=self.timeout_s):
                self._error = None
        except OSError as err:
            self._error = f"{type(err).__name__}: {err}"

    def failure(self) -> str | None:
        """None when the hub answered; else why not (within ``timeout_s`` of the start)."""
        self._thread.join(self.timeout_s)
        if self._thread.is_alive():
            return f"no answer within {self.timeout_s:g} s"
        return self._error


def hub_repo(model_name: str) -> tuple[str, tuple[str, ...]] | None:
    """(hub repository id, the files timm would fetch from it) of a timm model's
    pretrained weights; None when timm fetches them from elsewhere (a URL)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    if cfg is None or not cfg.hf_hub_id:
        return None
    return cfg.hf_hub_id, ((cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_FILES)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder of this process (``HF_HUB_CACHE``, ``HF_HOME``)."""
    import huggingface_hub.constants

    return Path(huggingface_hub.constants.HF_HUB_CACHE)


def cached_hub_file(model_name: str) -> Path | None:
    """The hub cache's copy of ``model_name``'s pretrained weights file, or None."""
    from huggingface_hub import try_to_load_from_cache

    repo = hub_repo(model_name)
    if repo is None:
        return None
    repo_id, files = repo
    for filename in files:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir())
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def missing_weights_message(
    model_name: str, path: str | os.PathLike, arch: str | None = None, reason: str = ""
) -> str:
    """One line: the weights of ``model_name`` are not here (``path`` and, where timm
    fetches them from the hub, the hub cache were looked at; ``reason``: why the hub
    cannot help), and the three ways out."""
    key = f"archs.{arch}.weights" if arch else "archs.<arch>.weights"
    looked = f"{path} does not exist"
    repo = hub_repo(model_name)
    if repo is not None:
        folder = hub_cache_dir() / ("models--" + repo[0].replace("/", "--"))
        looked += f" and the Hugging Face hub cache holds no {' or '.join(repo[1])} at {folder}"
    why = f"; {reason}" if reason else ""
    return (
        f"no pretrained weights of '{model_name}' on this machine: {looked}{why}. Three ways out: "
        f"(1) run `snakemake --cores 1 {path}` (rule fetch_weights) on a machine with internet and "
        f"copy the file to {path} here; (2) set `{key}: pretrain` to pretrain here on a dataset of "
        f"yours (config section pretrain); (3) set `{key}: none` (random weights) or the path of a "
        "weights file"
    )


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write a state dict as a safetensors file, atomically; return the path.

    Tensors are copied to contiguous CPU memory (safetensors refuses shared storage).
    """
    from safetensors.torch import save_file

    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state_dict.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return path


def save_pretrained_weights(
    model_name: str, path: str | os.PathLike, arch: str | None = None, probe: HubProbe | None = None
) -> Path:
    """Save timm model ``model_name``'s pretrained weights at ``path``: from the local
    Hugging Face hub cache when it holds them (no network), else from the hub.

    The file holds the model's full state dict (its ImageNet head included) as
    safetensors. Without a cached copy the hub must answer (``probe``, started early by
    the caller, or one started here) unless HF_HUB_OFFLINE is set, in which case it
    fails at once; WeightsError then names the files looked for and the ways out
    (:func:`missing_weights_message`; ``arch``: the config's key, for the message).
    """
    import timm

    if not timm.is_model(model_name) or not timm.list_pretrained(model_name):
        raise WeightsError(
            f"'{model_name}' is not a timm model with pretrained weights (see timm.list_pretrained())"
        )
    cached = cached_hub_file(model_name)
    if cached is not None:
        log.info("loading pretrained weights of %s from the hub cache: %s", model_name, cached)
        model = timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
    else:
        if hub_offline():
            reason = "HF_HUB_OFFLINE is set, so the hub is not asked"
        else:
            failure = (probe or HubProbe()).failure()
            reason = f"the hub ({hub_endpoint()}) cannot be reached: {failure}" if failure else ""
        if reason:
            raise WeightsError(missing_weights_message(model_name, path, arch, reason))
        log.info("fetching pretrained weights of %s from the Hugging Face hub", model_name)
        try:
            model = timm.create_model(model_name, pretrained=True)
        except Exception as err:  # hub, network and file errors all mean: no weights
            reason = f"fetching them failed ({type(err).__name__}: {' '.join(str(err).split())})"
            raise WeightsError(missing_weights_message(model_name, path, arch, reason)) from err
    save_state_dict(model.state_dict(), path)
    log.info("saved %s weights to %s", model_name, path)
    return Path(path)


def check_weights(
    model_name: str, path: str | os.PathLike, num_classes: int = 2, model_kwargs: dict | None = None
) -> int:
    """Check that ``path`` loads into ``model_name`` (built with ``model_kwargs``) with a new
    ``num_classes`` head.

    Loads through ``retention.training.models.create_model`` (offline) and compares every
    backbone tensor with the file. Returns the number of tensors that matched; raises
    WeightsError when the file does not fit or a backbone tensor was not loaded.
    """
    import torch
    from safetensors.torch import load_file

    from retention.training.models import create_model

    model = create_model(model_name, num_classes=num_classes, weights=path, model_kwargs=model_kwargs)
    try:
        saved = load_file(str(path))
    except Exception as err:
        raise WeightsError(f"weights file {path} is not a readable safetensors file: {err}") from err
    state = model.state_dict()
    head = {f"{name}." for name, module in model.named_modules() if module is model.get_classifier()}
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

"""torch.compile's caches, kept across runs, one folder per architecture and input shape.

A compiled run spends most of its compile time in Inductor's code generation (C++ on
the CPU, Triton on CUDA) and AOTAutograd's graph work; both cache their results on disk
(Inductor's FX graph cache, the AOTAutograd cache, Triton's kernel cache), keyed by the
graph, the torch version and the compile settings. By default that cache lives in
``/tmp/torchinductor_<user>``, which a cluster node forgets. ``use_compile_cache``
points it at ``<train.cache_dir>/compile/<architecture>-<size>px-<device type>``, so
the second run of an architecture (another seed, another dataset) reuses the first's
kernels and pays a small part of its compile time (benchmarks/bench_compile_cache.py).
Dynamo's tracing is not cached: it is redone, quickly, by every process.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger("retention.training.compile_cache")

ENV = "TORCHINDUCTOR_CACHE_DIR"


def architecture(model) -> str:
    """The model's architecture name (timm's ``pretrained_cfg``), else its class name."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def compile_cache_dir(root: str | os.PathLike, arch: str, input_size: int, device_type: str) -> Path:
    """``<root>/compile/<arch>-<input_size>px-<device_type>`` (an absolute path)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{arch}-{input_size}px-{device_type}")
    return (Path(root) / "compile" / name).resolve()


def use_compile_cache(root: str | os.PathLike, model, input_size: int, device) -> Path:
    """Make torch.compile in this process cache under :func:`compile_cache_dir`; returns it.

    Call before the first compilation of the model (the Trainer does, when
    ``train.compile`` is set).
    """
    import torch

    path = compile_cache_dir(root, architecture(model), input_size, torch.device(device).type)
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get(ENV) != str(path):
        os.environ[ENV] = str(path)
        from torch._inductor.utils import clear_caches

        clear_caches()  # in-memory lookups that remember the previous folder
    log.info("torch.compile caches: %s", path)
    return path

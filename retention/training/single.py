"""One seed's model: a plain module, its forward pass compiled when ``train.compile`` is set.

:class:`SingleModel` offers the operations of
:class:`~retention.training.modelstate.ModelState` for one seed (S = 1): a training step
is the module's forward, a cross-entropy loss, backward and an AdamW step;
evaluation is the module's forward in eval mode. With ``train.compile``,
:func:`compiled_forward` runs the full train and eval batches through
``torch.compile`` (caches under ``train.cache_dir``, ``retention.training.compile_cache``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from retention.training.models import features_and_logits
from retention.training.modelstate import autocast, autocast_dtype, eval_mode, head_names, phase_optimizer
from retention.training.settings import TrainConfig


def compiled_forward(model: nn.Module, cfg: TrainConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile`` of ``model`` for the full train and eval batch sizes.

    Only full batches run compiled, so a run compiles one graph per batch size and
    phase (train and eval, frozen backbone and not), the same shapes for every dataset
    (the compiler's cache, ``train.cache_dir``, serves later runs); the last, smaller
    batch of an epoch or a split runs eagerly through the same model. Each compiled
    call marks a new step.
    """
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


class SingleModel:
    """One seed's ``module`` on ``device`` (channels-last when ``train.channels_last``)."""

    n_seeds = 1

    def __init__(self, module: nn.Module, cfg: TrainConfig, device: torch.device | str, input_size: int):
        self.cfg = cfg
        self.device = torch.device(device)
        self.module = module.to(self.device)
        if cfg.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.module
        if cfg.compile:
            from retention.training.compile_cache import use_compile_cache

            use_compile_cache(cfg.cache_dir, self.module, input_size, self.device)
            self.forward = compiled_forward(self.module, cfg)
        self.dtype = autocast_dtype(cfg.precision, self.device)
        self.head = head_names(self.module)
        self.optimizer: torch.optim.Optimizer | None = None

    def start_phase(self, phase: str) -> None:
        """Warmup: only the head trains and the whole model is in eval mode (frozen
        BatchNorm); finetune: everything, in train mode. A new AdamW."""
        params = dict(self.module.named_parameters())
        self.optimizer = phase_optimizer(params, self.head, phase, self.cfg, self.device, seed_dims=0)
        self.module.train(phase == "finetune")

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Forward, backward and optimizer step on a ready model input; the loss (1,)."""
        with autocast(self.device, self.dtype):
            logits = self.forward(x)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach().reshape(1)

    def outputs(self, x: torch.Tensor, features: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(features (1, N, D) or None, logits (1, N, C)) on one batch."""
        with autocast(self.device, self.dtype):
            if features:
                feats, logits = features_and_logits(self.module, x)
                return feats[None], logits[None]
            return None, self.forward(x)[None]

    def evaluating(self):
        return eval_mode(self.module)

    def state(self) -> dict:
        return {"module": self.module.state_dict()}

    def load_state(self, state: Mapping) -> None:
        self.module.load_state_dict(state["module"])

    def seed_model(self, i: int) -> nn.Module:
        """The module itself (``i`` = 0): the live model, not a copy."""
        if i != 0:
            raise IndexError(f"a single model has seed 0 only, not {i}")
        return self.module

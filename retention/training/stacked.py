"""Several seeds of one (dataset, arch) trained together, in one process.

:class:`StackedModels` is the trainer's model object (``retention.training.modelstate``)
for S seeds at once: their parameters and buffers are stacked along a new first dimension
(``torch.func.stack_module_state``) and every training step is one ``torch.func.vmap``
of ``functional_call`` over the stack, so each operation is dispatched once for all
seeds and works on S times the data. One AdamW steps the stacked parameters; AdamW is
elementwise, so that is each seed's own optimizer. Evaluation runs the seeds one after
another through the same skeleton (its batches are large enough on their own).

What each seed keeps of its own, as in a run of its own: its initial weights (each
model is created under its seed), its data order and augmentation draws (its own
generators, drawn in the same order), its optimizer state and BatchNorm statistics
(stacked, so per seed). The job's start-up (imports, data, the device) is paid once
for all seeds.

Equality with separate runs (tests/test_train.py): a step of the stack computes each
seed's gradients and BatchNorm statistics to rounding error (1e-5 of the largest, for
the demo's ViT and CNN), but not bit for bit: stacked matrix products run as batched
ones (``bmm``, grouped convolutions), whose sums are ordered differently. Training
carries such differences on. AdamW's first steps move each weight by about
lr * sign(gradient), which rounding can flip where a gradient is about 0, so the
trajectories drift apart as they do under any change of summation order (another thread
count): within 1e-4 with identical predictions for a short ViT run (the test), further
on the demo's data (docs/performance.md has the figures, benchmarks/bench_seeds.py
measures them). What cannot be equal: dropout and drop-path draw from one random stream
for the whole stack (``randomness="different"``: independent per seed, reproducible,
but not the draws a separate run makes); the demo's and the paper's models use neither.
Ops without a vmap rule (``scaled_dot_product_attention`` on the CPU) run seed by seed
inside the step.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from retention.errors import ConfigError
from retention.training.models import features_and_logits
from retention.training.modelstate import autocast, autocast_dtype, eval_mode, head_names, phase_optimizer
from retention.training.settings import TrainConfig


class _FeaturesAndLogits(nn.Module):
    """The model's (penultimate features, logits), as a module for functional_call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.m = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return features_and_logits(self.m, x)


@contextlib.contextmanager
def _quiet():
    """Without vmap's warning about ops it runs seed by seed (scaled_dot_product_attention
    on the CPU): each seed then computes exactly what a run of its own does."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")
        yield


class StackedModels:
    """``modules`` (one per seed, each created under its seed) stacked on ``device``.

    ``params`` and ``buffers``: {name: tensor (S, ...)}; the first module is the skeleton
    that ``functional_call`` fills with each seed's tensors.
    """

    def __init__(self, modules: Sequence[nn.Module], cfg: TrainConfig, device: torch.device | str):
        if cfg.compile:
            raise ConfigError(
                "train.compile with train.seeds_per_job > 1 is not supported (torch.compile of the "
                "vmapped models); set one of them back"
            )
        self.cfg = cfg
        self.device = torch.device(device)
        modules = [m.to(self.device) for m in modules]
        self.n_seeds = len(modules)
        self.base = modules[0]
        self.features_module = _FeaturesAndLogits(self.base)
        params, buffers = stack_module_state(list(modules))
        self.params = {k: v.detach().requires_grad_() for k, v in params.items()}
        self.buffers = buffers
        self.head = head_names(self.base)
        self.dtype = autocast_dtype(cfg.precision, self.device)
        self.optimizer: torch.optim.Optimizer | None = None
        self._train_forward = vmap(self._call, in_dims=(0, 0, 0), randomness="different")

    def _call(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def start_phase(self, phase: str) -> None:
        """Warmup: the heads train, the whole stack in eval mode; finetune: everything."""
        self.optimizer = phase_optimizer(self.params, self.head, phase, self.cfg, self.device, seed_dims=1)
        self.base.train(phase == "finetune")

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One vmapped forward of every seed on its own batch, one backward, one AdamW step."""
        xs = x.view(self.n_seeds, -1, *x.shape[1:])
        with autocast(self.device, self.dtype), _quiet():
            logits = self._train_forward(self.params, self.buffers, xs)
        per_sample = F.cross_entropy(logits.float().flatten(0, 1), labels, reduction="none")
        loss = per_sample.view(self.n_seeds, -1).mean(dim=1)
        self.optimizer.zero_grad(set_to_none=True)
        with _quiet():
            loss.sum().backward()  # seeds share no parameter: each gets its own loss's gradient
        self.optimizer.step()
        return loss.detach()

    def outputs(self, x: torch.Tensor, features: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Evaluation runs seed by seed through the shared skeleton: the batch is large
        enough not to need vmap, and each seed computes exactly what a run of its own does."""
        feats, logits = [], []
        with autocast(self.device, self.dtype), torch.no_grad():
            for i in range(self.n_seeds):
                tensors = {k: v[i] for k, v in {**self.params, **self.buffers}.items()}
                if features:
                    f, out = functional_call(
                        self.features_module, {f"m.{k}": v for k, v in tensors.items()}, (x,)
                    )
                    feats.append(f)
                else:
                    out = functional_call(self.base, tensors, (x,))
                logits.append(out)
            return (torch.stack(feats) if features else None), torch.stack(logits)

    def evaluating(self):
        return eval_mode(self.base)

    def state(self) -> dict:
        return {"params": {k: v.detach() for k, v in self.params.items()}, "buffers": dict(self.buffers)}

    def load_state(self, state: Mapping) -> None:
        with torch.no_grad():
            for k, v in state["params"].items():
                self.params[k].copy_(v)
            for k, v in state["buffers"].items():
                self.buffers[k].copy_(v)

    def seed_model(self, i: int) -> nn.Module:
        """A copy of seed ``i``'s model as an ordinary module (for inspection)."""
        model = copy.deepcopy(self.base)
        with torch.no_grad():
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                source = self.params.get(name, self.buffers.get(name))
                tensor.copy_(source[i])
        return model

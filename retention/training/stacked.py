"""Several seeds of one (dataset, arch) trained together, in one process.

``SeedStack`` is a :class:`retention.training.trainer.Trainer` whose model is S models at once:
their parameters and buffers are stacked along a new first dimension
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
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from retention.errors import ConfigError
from retention.training.models import InputConfig, classifier, features_and_logits
from retention.training.trainer import EpochSampler, SplitData, TrainConfig, Trainer


class _FeaturesAndLogits(nn.Module):
    """The model's (penultimate features, logits), as a module for functional_call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.m = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return features_and_logits(self.m, x)


class SeedStack(Trainer):
    """Trains ``models`` (one per seed of ``seeds``, created under that seed) together.

    The other arguments are :class:`~retention.training.trainer.Trainer`'s; ``samplers``: one
    fine-tuning epoch sampler per seed (None: every train sample). ``run_all()``
    returns one RunResult per seed.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        input_cfg: InputConfig,
        train: SplitData,
        heldout: SplitData,
        class_names: list[str],
        cfg: TrainConfig,
        seeds: Sequence[int],
        device: torch.device | str = "cpu",
        samplers: Sequence[EpochSampler | None] | None = None,
        checkpoint: str | Path | None = None,
        device_label: str | None = None,
        progress: bool | None = None,
        fingerprint: Mapping | Callable[[], Mapping] | None = None,
    ):
        if len(models) != len(seeds) or len(set(seeds)) != len(seeds):
            raise ConfigError(f"a seed stack needs one model per seed and distinct seeds, got {list(seeds)}")
        if cfg.compile:
            raise ConfigError(
                "train.compile with train.seeds_per_job > 1 is not supported (torch.compile of the "
                "vmapped models); set one of them back"
            )
        self._setup(input_cfg, train, heldout, class_names, cfg, device, checkpoint, device_label, progress,
                    fingerprint)
        samplers = list(samplers) if samplers is not None else [None] * len(seeds)
        self.runs = [self._seed_run(seed, sampler) for seed, sampler in zip(seeds, samplers)]
        models = [m.to(self.device) for m in models]
        # the first model is the skeleton that functional_call fills with each seed's tensors
        self.base = models[0]
        self.features_module = _FeaturesAndLogits(self.base)
        params, buffers = stack_module_state(list(models))
        self.params = {k: v.detach().requires_grad_() for k, v in params.items()}
        self.buffers = buffers
        head = set(map(id, classifier(self.base).parameters()))
        self.head_names = {name for name, p in self.base.named_parameters() if id(p) in head}
        self.optimizer: torch.optim.Optimizer | None = None
        self._train_forward = vmap(self._call, in_dims=(0, 0, 0), randomness="different")

    @staticmethod
    @contextlib.contextmanager
    def _quiet():
        """Without vmap's warning about ops it runs seed by seed (scaled_dot_product_attention
        on the CPU): each seed then computes exactly what a run of its own does."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")
            yield

    def _call(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    # ------------------------------------------------------------------ the stacked model
    def start_phase(self, phase: str) -> None:
        """Warmup: the heads train, the whole stack in eval mode; fine-tuning: everything."""
        for name, p in self.params.items():
            p.requires_grad_(phase == "finetune" or name in self.head_names)
        self.base.train(phase == "finetune")
        train = [p for p in self.params.values() if p.requires_grad]
        groups = [  # no weight decay on biases and norms: 1-D per seed, 2-D stacked
            {"params": [p for p in train if p.ndim > 2], "weight_decay": self.cfg.weight_decay},
            {"params": [p for p in train if p.ndim <= 2], "weight_decay": 0.0},
        ]
        lr = self.cfg.head_lr if phase == "warmup" else self.cfg.lr
        self.optimizer = torch.optim.AdamW(groups, lr=lr, fused=self.device.type == "cuda")
        self.phase, self.step = phase, 0

    def _step(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        n_seeds = len(self.runs)
        xs = x.view(n_seeds, -1, *x.shape[1:])
        with self._autocast(), self._quiet():
            logits = self._train_forward(self.params, self.buffers, xs)
        per_sample = F.cross_entropy(logits.float().flatten(0, 1), labels, reduction="none")
        loss = per_sample.view(n_seeds, -1).mean(dim=1)
        self.optimizer.zero_grad(set_to_none=True)
        with self._quiet():
            loss.sum().backward()  # seeds share no parameter: each gets its own loss's gradient
        self.optimizer.step()
        return loss.detach()

    def _outputs(self, x: torch.Tensor, features: bool):
        """Evaluation runs seed by seed through the shared skeleton: the batch is large
        enough not to need vmap, and each seed computes exactly what a run of its own does."""
        feats, logits = [], []
        with torch.no_grad():
            for i in range(len(self.runs)):
                tensors = {k: v[i] for k, v in {**self.params, **self.buffers}.items()}
                if features:
                    f, out = functional_call(self.features_module, {f"m.{k}": v for k, v in tensors.items()}, (x,))
                    feats.append(f)
                else:
                    out = functional_call(self.base, tensors, (x,))
                logits.append(out)
        return (torch.stack(feats) if features else None), torch.stack(logits)

    def _eval_mode(self, training: bool | None = None) -> bool:
        was = self.base.training
        self.base.train(False if training is None else training)
        return was

    def _model_state(self) -> dict:
        return {
            "params": {k: v.detach() for k, v in self.params.items()},
            "buffers": dict(self.buffers),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
        }

    def _load_model_state(self, state: dict, phase: str | None) -> None:
        with torch.no_grad():
            for k, v in state["params"].items():
                self.params[k].copy_(v)
            for k, v in state["buffers"].items():
                self.buffers[k].copy_(v)
        if phase is not None:
            self.start_phase(phase)
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])

    def seed_model(self, i: int) -> nn.Module:
        """A copy of seed ``runs[i]``'s model as an ordinary module (for inspection)."""
        import copy

        model = copy.deepcopy(self.base)
        with torch.no_grad():
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                source = self.params.get(name, self.buffers.get(name))
                tensor.copy_(source[i])
        return model

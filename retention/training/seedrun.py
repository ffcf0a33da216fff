"""What one seed's run owns while it trains: its random streams, samplers and records.

``SeedRun`` holds, for one seed, the augmentation generator, the epoch samplers
(``PermutationSampler`` for every train sample, or a budget sampler from
``retention.training.sampler``), the per-sample ``Recorder`` of each split, the per-epoch metrics
rows and the set of samples trained on; ``state_dict`` is what a checkpoint keeps of it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch


class EpochSampler(Protocol):
    """Chooses which train samples an epoch trains on, in order (see ``sampler``)."""

    def epoch_indices(self, epoch: int) -> np.ndarray: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class PermutationSampler:
    """Every train sample once per epoch, in a seeded random order."""

    def __init__(self, n: int, seed: int):
        self.n = self.budget = n
        self.generator = torch.Generator().manual_seed(seed)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        return torch.randperm(self.n, generator=self.generator).numpy()

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class Recorder:
    """Per-sample arrays of one split over all recorded epochs."""

    def __init__(self, n: int, n_epochs: int):
        self.correct = np.zeros((n, n_epochs), dtype=bool)
        self.p_true = np.zeros((n, n_epochs), dtype=np.float32)
        self.loss = np.zeros((n, n_epochs), dtype=np.float32)
        self.el2n = np.zeros((n, n_epochs), dtype=np.float32)
        self.pred = np.zeros((n, n_epochs), dtype=np.int32)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {
            f"{prefix}correct": self.correct,
            f"{prefix}p_true": self.p_true,
            f"{prefix}loss": self.loss,
            f"{prefix}el2n": self.el2n,
            f"{prefix}pred": self.pred,
        }

    def load(self, arrays: dict[str, np.ndarray], prefix: str = "") -> None:
        for key, value in self.arrays(prefix).items():
            value[...] = arrays[key]


def class_centroid_cosine(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Cosine similarity (C, C) of the class means of ``features``; NaN for empty classes."""
    feats = features.astype(np.float64)
    sums = np.zeros((n_classes, feats.shape[1]))
    np.add.at(sums, labels, feats)
    counts = np.bincount(labels, minlength=n_classes)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = sums / counts
        unit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    return (unit @ unit.T).astype(np.float32)


class SeedRun:
    """What one seed's run owns: its random streams, its epoch samplers and its records.

    ``generator`` draws the augmentation, ``full`` orders the warmup epochs (every train
    sample), ``sampler`` the fine-tuning epochs (``full`` unless a budget sampler is
    given); ``trained`` marks the train samples trained on in the fine-tuning phase.
    """

    def __init__(
        self,
        seed: int,
        n_train: int,
        n_heldout: int,
        n_records: int,
        n_classes: int,
        sampler: EpochSampler | None = None,
    ):
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.full = PermutationSampler(n_train, seed)
        self.sampler = sampler or self.full
        self.train_rec = Recorder(n_train, n_records)
        self.heldout_rec = Recorder(n_heldout, n_records)
        self.centroid_cosine = np.full((n_classes, n_classes), np.nan, dtype=np.float32)
        self.metrics: list[dict] = []
        self.trained = np.zeros(n_train, dtype=bool)

    def budget(self) -> int:
        """Images trained on per fine-tuning epoch (the sampler's budget; all by default)."""
        return int(getattr(self.sampler, "budget", len(self.trained)))

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "generator": self.generator.get_state(),
            "full": self.full.state_dict(),
            "sampler": self.sampler.state_dict(),
            "train": self.train_rec.arrays(),
            "heldout": self.heldout_rec.arrays(),
            "centroid_cosine": self.centroid_cosine,
            "metrics": self.metrics,
            "trained": self.trained,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.full.load_state_dict(state["full"])
        self.sampler.load_state_dict(state["sampler"])
        self.train_rec.load(state["train"])
        self.heldout_rec.load(state["heldout"])
        self.centroid_cosine = state["centroid_cosine"]
        self.metrics = list(state["metrics"])
        self.trained[...] = state["trained"]

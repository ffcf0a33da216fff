"""A run's data: the train and held-out splits of a prepared dataset, and their copies on the device.

The uint8 images stay as stored, (N, 3, S, S), on the device for the whole run (or on
the CPU with ``train.data_on_device: false``); the labels on the device. Batches are
gathered there, and cropped, flipped and normalised there (``augment.DeviceTransform``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass
class SplitData:
    """One split of a prepared dataset: uint8 images (N, S, S, 3), labels, sample ids."""

    images: np.ndarray
    labels: np.ndarray
    sample_ids: np.ndarray


def split_data(manifest: pd.DataFrame, images: np.ndarray, split: str) -> SplitData:
    """The rows of one split (``train`` or ``heldout``) of a prepared dataset."""
    rows = np.flatnonzero(manifest["split"].to_numpy() == split)
    return SplitData(
        images=images[rows],
        labels=manifest["label"].to_numpy(dtype=np.int64)[rows],
        sample_ids=manifest["sample_id"].to_numpy(dtype=np.int64)[rows],
    )


def images_to(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, S, S, 3) as (N, 3, S, S) on ``device``: copied as stored, permuted there."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).contiguous()


@dataclass
class RunData:
    """The splits a run trains on and records, with their images and labels as tensors.

    ``train_images``, ``heldout_images``: uint8 (N, 3, S, S) where they are kept;
    ``train_labels``, ``heldout_labels``: int64 on the device.
    """

    train: SplitData
    heldout: SplitData
    class_names: list[str]
    train_images: torch.Tensor
    heldout_images: torch.Tensor
    train_labels: torch.Tensor
    heldout_labels: torch.Tensor

    @classmethod
    def on(
        cls,
        device: torch.device,
        train: SplitData,
        heldout: SplitData,
        class_names: list[str],
        *,
        images_on_device: bool,
    ) -> RunData:
        """The splits with their tensors on ``device`` (the images on the CPU unless
        ``images_on_device``, config ``train.data_on_device``)."""
        place = device if images_on_device else torch.device("cpu")
        return cls(
            train,
            heldout,
            list(class_names),
            train_images=images_to(train.images, place),
            heldout_images=images_to(heldout.images, place),
            train_labels=torch.as_tensor(train.labels, dtype=torch.long).to(device),
            heldout_labels=torch.as_tensor(heldout.labels, dtype=torch.long).to(device),
        )

"""Batched image transforms on the device: random resized crop, flip, centre crop.

Images stay uint8 (N, 3, S, S) on the device for the whole run; each batch is cropped
and resized in one ``torchvision.ops.roi_align`` call (a per-sample box, bilinear with
adaptive sampling, so downscaling averages like an antialiased resize), flipped and
normalised there. The random numbers come from a CPU ``torch.Generator``, so the same
seed gives the same crops on the CPU and on a GPU. The same code runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import roi_align


@dataclass(frozen=True)
class AugmentConfig:
    """Random resized crop (area ``scale``, aspect ``ratio``) and horizontal ``flip`` rate.

    The schema's ``augment`` entry, one field per key; its defaults are the schema's
    (``retention.training.settings.augment_config``).
    """

    enabled: bool
    scale: tuple[float, float]
    ratio: tuple[float, float]
    flip: float


def random_resized_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
    attempts: int = 10,
) -> torch.Tensor:
    """Crop boxes (x1, y1, x2, y2) in pixels, float32 (n, 4), on the CPU.

    torchvision's RandomResizedCrop rule, vectorised: up to ``attempts`` draws of area
    fraction in ``scale`` and log-uniform aspect in ``ratio``; the first draw that fits
    the image is used; where none fits, the centre crop with the aspect clamped to
    ``ratio``. Offsets are uniform over the positions where the box fits.
    """
    area = float(height * width)
    log_r = torch.log(torch.tensor(ratio, dtype=torch.float64))
    u = torch.rand(n, attempts, 4, generator=generator, dtype=torch.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    aspect = torch.exp(log_r[0] + (log_r[1] - log_r[0]) * u[..., 1])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((n,), -1))
    pick = first.clamp(min=0)
    rows = torch.arange(n)
    w, h = w[rows, pick], h[rows, pick]
    x0 = torch.floor(u[rows, pick, 2] * (width - w + 1))
    y0 = torch.floor(u[rows, pick, 3] * (height - h + 1))
    # fallback: centre crop with the aspect clamped into ratio
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fw, fh = round(height * ratio[1]), height
    else:
        fw, fh = width, height
    none = first < 0
    w = torch.where(none, torch.full_like(w, fw), w)
    h = torch.where(none, torch.full_like(h, fh), h)
    x0 = torch.where(none, torch.full_like(x0, (width - fw) // 2), x0)
    y0 = torch.where(none, torch.full_like(y0, (height - fh) // 2), y0)
    return torch.stack([x0, y0, x0 + w, y0 + h], dim=1).float()


def center_boxes(n: int, height: int, width: int, crop_pct: float) -> torch.Tensor:
    """The evaluation crop: a centred square of ``crop_pct`` of the shorter side, (n, 4)."""
    side = crop_pct * min(height, width)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return torch.tensor([[x0, y0, x0 + side, y0 + side]], dtype=torch.float32).expand(n, 4)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small CPU tensor to ``device`` without a host synchronisation on CUDA."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop ``boxes`` out of uint8 ``images`` (B, 3, H, W) and resize to (B, 3, size, size).

    Returns float32 in 0..255 on the images' device.
    """
    x = images.float()
    idx = torch.arange(len(x), dtype=torch.float32).unsqueeze(1)
    rois = to_device(torch.cat([idx, boxes.float()], dim=1), x.device)
    return roi_align(x, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)


class DeviceTransform:
    """Turns a batch of uint8 images on the device into normalised model input.

    ``train`` applies the random resized crop and flip (when enabled), ``eval`` the
    centre crop; both resize to ``size`` and normalise with ``mean``/``std`` (0..1 scale).
    """

    def __init__(
        self,
        size: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        crop_pct: float,
        augment: AugmentConfig,
        channels_last: bool = False,
    ):
        self.size = size
        self.crop_pct = crop_pct
        self.augment = augment
        self.channels_last = channels_last
        # mean and std on the 0..255 scale, per device (copied there once: no host sync per batch)
        cpu = (torch.tensor(mean).view(1, 3, 1, 1) * 255.0, torch.tensor(std).view(1, 3, 1, 1) * 255.0)
        self._stats = {"cpu": cpu}

    def _mean_std(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (0..255 scale) on ``device``, copied there once."""
        if str(device) not in self._stats:
            self._stats[str(device)] = tuple(to_device(t, device) for t in self._stats["cpu"])
        return self._stats[str(device)]

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._mean_std(x.device)
        x = (x - mean) / std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented model input for a training batch (random draws from ``generator``)."""
        return self.train_many([images], [generator])

    def train_many(self, batches: list[torch.Tensor], generators: list[torch.Generator]) -> torch.Tensor:
        """:meth:`train` of several batches (one per seed, each augmented with draws from
        its own generator, in the order :meth:`train` draws them), concatenated; one
        crop-and-resize call for all of them."""
        images = batches[0] if len(batches) == 1 else torch.cat(batches)
        if not self.augment.enabled:
            return self.eval(images)
        boxes, flips = [], []
        for batch, generator in zip(batches, generators):
            n, _, h, w = batch.shape
            boxes.append(random_resized_boxes(n, h, w, self.augment.scale, self.augment.ratio, generator))
            flips.append(torch.rand(n, generator=generator) < self.augment.flip)
        boxes = boxes[0] if len(boxes) == 1 else torch.cat(boxes)
        flip = flips[0] if len(flips) == 1 else torch.cat(flips)
        x = crop_resize(images, boxes, self.size)
        flip = to_device(flip, x.device).view(len(x), 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
        return self._finish(x)

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        """Model input for evaluation: centre crop of ``crop_pct``, resized."""
        n, _, h, w = images.shape
        return self._finish(crop_resize(images, center_boxes(n, h, w, self.crop_pct), self.size))


def scale_of(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Area fraction of each box, for checks."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (height * width)


__all__ = [
    "AugmentConfig",
    "DeviceTransform",
    "center_boxes",
    "crop_resize",
    "to_device",
    "random_resized_boxes",
    "scale_of",
]

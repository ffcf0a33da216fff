"""A run's settings: the config's ``train`` section and the arch's learning rates, typed.

:class:`TrainConfig` has one field per key of the schema's ``train`` section, and
``lr`` (from ``archs.<arch>.lr``; ``archs.<arch>.head_lr`` overrides ``head_lr``). It
has no defaults and knows no allowed values: :func:`train_config` fills the section
with the schema's defaults and checks it against the schema
(``retention.config.fill_section``), so each default and each allowed value is written
once, in workflow/schemas/config.schema.yaml. A new train setting is one schema entry
and one field here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass

from retention.config import fill_section
from retention.errors import ConfigError
from retention.training.augment import AugmentConfig

# keys of an ``archs`` entry that set (lr) or override (head_lr) a TrainConfig field
ARCH_TRAIN_KEYS = ("lr", "head_lr")


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` section (schema: ``train``) plus the arch's ``lr``; see the module docstring."""

    lr: float
    warmup_epochs: int
    epochs: int
    batch_size: int
    eval_batch_size: int
    head_lr: float
    weight_decay: float
    augment: AugmentConfig
    device: str
    precision: str
    channels_last: bool
    compile: bool
    compile_mode: str  # torch.compile mode (CUDA graphs on CUDA)
    cache_dir: str  # compile caches per architecture and input shape
    seeds_per_job: int  # seeds trained together in one process (rule finetune)
    data_on_device: bool
    threads: int  # CPU threads of a run
    checkpoint: bool  # write resumable checkpoints
    checkpoint_interval_s: float  # seconds between checkpoints; 0: after every epoch
    gpu_slots_per_device: int  # concurrent runs per local GPU


def _typed(value, kind):
    """``value`` (from YAML) as type ``kind``: a dataclass from a mapping, a tuple from a list."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _typed(value[f.name], hints[f.name]) for f in dataclasses.fields(kind)})
    if typing.get_origin(kind) is tuple:
        return tuple(_typed(v, t) for v, t in zip(value, typing.get_args(kind)))
    return kind(value)


def train_config(train: Mapping, arch: Mapping) -> TrainConfig:
    """TrainConfig from the config's ``train`` section and one ``archs`` entry.

    Absent train keys take the schema's default; the section is checked against the
    schema (ConfigError naming the key and value at fault); every value is converted to
    its field's type (lists to tuples, ``augment`` to :class:`AugmentConfig`).
    """
    settings = fill_section(train, "train")
    settings.update({k: arch[k] for k in ARCH_TRAIN_KEYS if k in arch})
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unread, unset = sorted(set(settings) - fields), sorted(fields - set(settings))
    if unread:  # a schema key without its field: the code is behind the schema
        raise TypeError(f"TrainConfig has no field for the schema's train.{unread[0]}")
    if unset:
        where = "archs.<arch>.lr" if unset[0] == "lr" else f"the schema's train.{unset[0]}"
        raise ConfigError(f"TrainConfig.{unset[0]} has no value: {where} is missing")
    hints = typing.get_type_hints(TrainConfig)
    return TrainConfig(**{name: _typed(settings[name], hints[name]) for name in fields})


def augment_config(augment: Mapping) -> AugmentConfig:
    """AugmentConfig from an ``augment`` mapping (``train.augment``, ``pretrain.augment``):
    absent keys take the schema's default."""
    return _typed(fill_section(augment, "train", "augment"), AugmentConfig)

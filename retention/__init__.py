"""Retention dynamics of fine-tuned image classifiers (arXiv 2604.11508), reproduced.

One module per stage: ``data`` (datasets and splits), ``models`` (timm models),
``augment`` (device-side augmentation), ``train`` (fine-tuning that records traces),
``traces`` (retention traces), ``fit`` (decay fits), ``stats`` (findings),
``figures``, ``sampler`` (spaced repetition), ``download`` (datasets and weights),
``gpu`` (local GPU allocation). Functions take arrays, DataFrames or dataclasses.
"""

__version__ = "0.1.0"

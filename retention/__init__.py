"""Retention dynamics of fine-tuned image classifiers (arXiv 2604.11508), reproduced.

One module per stage: ``data`` (datasets and splits), ``models`` (timm models),
``augment`` (device-side augmentation), ``train`` (fine-tuning that records traces;
``runs``, one seed's state; ``checkpoint``, checkpoints tied to their config;
``stacked``, several seeds trained together), ``finetune`` (one fine-tuning job, files
to files; ``timing``, where its time goes; ``provenance``, each run's run.json;
``chance``, a run's accuracy against chance), ``traces`` (retention traces), ``fit``
(decay fits), ``stats`` (findings), ``figures``, ``sampler`` (spaced repetition),
``download`` (datasets and weights), ``gpu`` (local GPU allocation), ``config`` and
``model_names`` (the config check, without torch), ``compile_cache`` (torch.compile's
caches across runs), runs recorded elsewhere: ``imports`` (what the workflow reads when it
parses), ``longtable`` and ``cartography`` (the two input shapes), ``importer`` (to
traces.npz), ``export`` (ours in those shapes), ``recorder`` (the long table from any
PyTorch loop). Functions take arrays, DataFrames or dataclasses.

Importing the package imports nothing heavy: the workflow imports ``retention.config``
whenever it parses.
"""

__version__ = "0.1.0"

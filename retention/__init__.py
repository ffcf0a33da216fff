"""Retention dynamics of fine-tuned image classifiers (arXiv 2604.11508), reproduced.

One subpackage per stage (docs/architecture.md): ``acquire`` (datasets, weights,
listings and preparation), ``training`` (fine-tuning that records traces, pretraining,
samplers, checkpoints, GPUs), ``dynamics`` (runs recorded elsewhere: import, export, the
recorder), ``fitting`` (retention traces, decay fits, null runs), ``stats`` (every
finding's estimate and test), ``findings`` (paper values, Holm, the two verdicts,
findings.md), ``figures``; beside them ``config`` (the config and its schema), ``paths``
(every path template), ``io`` (atomic writes, checked reads), ``provenance``, ``chance``
and ``analyse`` (a study held in memory). Functions take arrays, DataFrames or
dataclasses and never read a config or a Snakemake object.

Importing the package imports nothing heavy: the workflow imports ``retention.config``
whenever it parses.
"""

import os
from pathlib import Path

__version__ = "0.1.0"

#: set by the workflow (workflow/rules/common.smk) to the folder of the Snakefile it runs;
#: a job that imports the package from anywhere else (an environment built for another
#: checkout) stops instead of running other code than the workflow's
WORKFLOW_ENV = "RETENTION_WORKFLOW"


def _check_checkout() -> None:
    workflow = os.environ.get(WORKFLOW_ENV)
    here = Path(__file__).resolve().parent.parent
    if workflow and Path(workflow).resolve() != here:
        raise ImportError(
            f"the retention package imported from {here} is not the one of the workflow that runs "
            f"({workflow}): install the workflow's package in this environment (pip install -e {workflow}), "
            "or delete the conda environment built for the other checkout (.snakemake/conda/)"
        )


_check_checkout()

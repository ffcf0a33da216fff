# Retention dynamics of fine-tuned image classifiers: every finding of arXiv 2604.11508.
# Run `snakemake --cores N` for the paper grid, or `snakemake --cores N --configfile=config/demo.yaml`.
# Your own study, in its own folder (outputs go there):
#   snakemake --cores N -s <repo>/Snakefile --directory <study> --configfile=<study>/config.yaml
# Absent settings take the defaults of workflow/schemas/config.schema.yaml.
import os

from snakemake.utils import min_version

min_version("9.0")


# the study folder's config.yaml, when it has one (the repository's: the paper grid)
if os.path.exists("config.yaml"):

    configfile: "config.yaml"


# common.smk validates the config against workflow/schemas/config.schema.yaml first.
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/sampler.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    """Every run's traces and fits, each dataset's statistics, the findings table, the figures and the provenance."""
    default_target: True
    input:
        all_outputs(),

import math
import os
import re
import shlex
from snakemake.exceptions import WorkflowError
from pathlib import Path

# The package that holds the logic (retention/) sits beside the Snakefile, two folders above
# this file (not workflow.basedir: used as a module, that is the study's). It is installed
# where Snakemake runs (README: pip install -e <repo>) and in the rules' conda environments
# (envs/*.yaml install it from this folder: RETENTION_WORKFLOW); a job that finds another
# checkout's package stops (retention/__init__.py).
WORKFLOW_DIR = str(Path(workflow.current_basedir).parents[1])
# set here, not required of the caller
os.environ.update(RETENTION_WORKFLOW=WORKFLOW_DIR)
try:
    import retention
except ImportError as err:
    raise WorkflowError(
        f"the workflow's package cannot be imported ({err}); install it: pip install -e {WORKFLOW_DIR}"
    ) from None

from retention import paths
from retention.dynamics import sources as imports
from retention.config import (
    pretrain_train_params,
    result_arch_params,
    result_train_params,
    study_fields,
    validate_config,
)
from retention.figures import specs as figure_specs
from retention.fitting.labels import trace_label
from retention.figures.specs import FIGURES

# Jobs that re-read the workflow (cluster jobs) skip the timm model-name check: the
# submitting process made it, and it costs a torch import.
validate_config(
    config, check_models=not (workflow.remote_exec or workflow.subprocess_exec)
)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    arch=r"[A-Za-z0-9_\-]+",
    seed=r"\d+",
    group=r"\d+(_\d+)*",
    sampler=r"random|spaced",


GRID = config["grid"]
# (arch, seed) of every run of each grid dataset: the grid's, or a traces dataset's import
RUNS = {d: imports.dataset_runs(config, d) for d in GRID["datasets"]}


# ------------------------------------------------------------------ config lookups


def dataset_spec(wildcards):
    """The config entry of one dataset."""
    return config["datasets"][wildcards.dataset]


def dataset_source(wildcards):
    """Input of prepare_dataset: the extracted tree, downloaded first when absent."""
    spec = dataset_spec(wildcards)
    path = spec.get("path")
    if not path:
        return {}
    if Path(path).exists() or not spec.get("download"):
        return {"tree": path}
    return {"tree": paths.DATASET_DOWNLOAD.format(dataset=wildcards.dataset)}


def dataset_path(wildcards):
    """The dataset's configured tree, resolved (a param of prepare_dataset: a changed
    path reruns preparation): relative to the study folder when inside it (a copied
    study stays complete), else absolute; None for sources made in code."""
    path = dataset_spec(wildcards).get("path")
    if not path:
        return None
    resolved, study = Path(path).resolve(), Path.cwd().resolve()
    return str(
        resolved.relative_to(study) if resolved.is_relative_to(study) else resolved
    )


def dataset_downloads(wildcards):
    """The files to download for one dataset (config datasets.<name>.download)."""
    return dataset_spec(wildcards).get("download", [])


def arch_spec(wildcards):
    """The config entry of one architecture without its display-only keys (a training
    job's param: renaming an arch's label retrains nothing)."""
    return result_arch_params(config, wildcards.arch)


def arch_model(wildcards):
    """The timm model name of one architecture."""
    return arch_spec(wildcards)["model"]


def arch_weights(arch):
    """The weights file of an architecture, or None for random initialisation."""
    weights = config["archs"][arch]["weights"]
    if weights == "none":
        return None
    if weights == "pretrained":
        return paths.WEIGHTS.format(arch=arch)
    if weights == "pretrain":
        return paths.PRETRAIN_WEIGHTS.format(
            dataset=config["pretrain"]["dataset"], arch=arch
        )
    return weights


# the arch keys that shape a pretrained model (not its fine-tuning lr or label):
# changing the others reruns no pretraining
PRETRAIN_ARCH_KEYS = ("model", "model_kwargs", "input_size")


def pretrain_arch(wildcards):
    """The arch settings a pretraining run uses."""
    spec = arch_spec(wildcards)
    return {k: spec[k] for k in PRETRAIN_ARCH_KEYS if k in spec}


def pretrain_spec():
    """The pretrain section without the dataset (which is the {dataset} wildcard)."""
    return {k: v for k, v in config["pretrain"].items() if k != "dataset"}


def finetune_inputs(wildcards):
    """Prepared dataset plus, where configured, the local pretrained weights."""
    inputs = {
        "manifest": paths.MANIFEST.format(dataset=wildcards.dataset),
        "images": paths.IMAGES.format(dataset=wildcards.dataset),
    }
    weights = arch_weights(wildcards.arch)
    if weights:
        inputs["weights"] = weights
    return inputs


def primary_trace():
    """Label of the configured trace definition, e.g. since_learned_la3 (the default),
    raw_soft or since_learned (retention.fitting.labels.trace_label)."""
    r = config["retention"]
    return trace_label(r["trace"], r["soft"], r["learned_after"])


# Wall time of a fine-tuning job on a cluster (resource runtime, SLURM --time): seconds
# per image and epoch (a training pass over the train images plus the eval pass over
# all images). 0.005 s is about 17x DeiT-S on an H200 (README: 2,493 train and 11,137
# eval images/s), enough for T4/V100-class GPUs; plus start-up (imports, model, data).
FINETUNE_SECONDS_PER_IMAGE_EPOCH = 0.005
FINETUNE_STARTUP_MINUTES = 10


def training_minutes(wildcards, input, attempt, epochs):
    """Minutes for a training job: start-up plus every image of the dataset once per
    epoch (of every seed it trains), doubled for safety, times the attempt."""
    size = config["datasets"][wildcards.dataset]["storage_size"]
    n_images = os.path.getsize(input.images) / (3 * size * size)
    minutes = (
        FINETUNE_STARTUP_MINUTES
        + epochs * n_images * FINETUNE_SECONDS_PER_IMAGE_EPOCH / 60
    )
    return math.ceil(2 * minutes) * attempt


def finetune_runtime(wildcards, input, attempt):
    """Minutes for one fine-tuning job: its group's runs (warmup + fine-tuning epochs each)."""
    epochs = config["train"]["warmup_epochs"] + config["train"]["epochs"]
    return training_minutes(
        wildcards, input, attempt, len(group_seeds(wildcards)) * epochs
    )


def pretrain_runtime(wildcards, input, attempt):
    """Minutes for one pretraining run (pretrain.epochs)."""
    return training_minutes(wildcards, input, attempt, config["pretrain"]["epochs"])


# ------------------------------------------------------------------ seed groups


def group_of(seed):
    """The seed group ("0_1_2") whose job trains ``seed``: the grid's seeds in groups of
    train.seeds_per_job, in order; any other seed (a scout run) alone."""
    seed, k, seeds = int(seed), config["train"]["seeds_per_job"], list(GRID["seeds"])
    if seed not in seeds:
        return str(seed)
    first = seeds.index(seed) // k * k
    return "_".join(map(str, seeds[first : first + k]))


def group_seeds(wildcards):
    """The seeds of a job's group (wildcard {group}), in order."""
    return [int(s) for s in wildcards.group.split("_")]


# the shell script of rules publish_run and publish_budget_run, beside the workflow's
# other scripts (a path that stays the same from run to run: it is part of the command)
PUBLISH_RUN = shlex.quote(
    str(Path(workflow.current_basedir).parents[1] / "scripts" / "publish_run.sh")
)


def run_job(template):
    """An input function: the job folder (paths.JOB, BUDGET_JOB) that trains the run of
    the wildcards."""

    def job(wildcards):
        return paths.fill(template, group=group_of(wildcards.seed)).format(**wildcards)

    return job


def job_files(name):
    """A params function: the job's file ``name`` (paths.RUN_FILES) of each seed of its group."""

    def files(wildcards, output):
        return [
            os.path.join(output.job, paths.JOB_RUN.format(seed=seed), name)
            for seed in group_seeds(wildcards)
        ]

    return files


# ------------------------------------------------------------------ the grid


def grid_runs(dataset):
    """(arch, seed) of every run of a dataset: the grid's, arch-major in config order; a
    traces dataset's in the order of its import (retention.dynamics.sources.dataset_runs).
    """
    return RUNS[dataset]


def traces_datasets():
    """The grid's datasets of runs recorded elsewhere (source: traces): imported, not trained."""
    return [d for d in GRID["datasets"] if imports.is_imported(config, d)]


def trained_datasets():
    """The grid's datasets whose runs are trained here."""
    return [d for d in GRID["datasets"] if not imports.is_imported(config, d)]


# the {dataset} of rules that train (finetune and its seed groups): never a traces dataset,
# whose runs rule import_traces_<dataset> makes ("(?!)" matches nothing)
TRAINED_DATASET = "|".join(map(re.escape, trained_datasets())) or "(?!)"


def all_archs():
    """Every architecture of the study: the grid's, then those of imported runs."""
    return list(dict.fromkeys([a for d in GRID["datasets"] for a, _ in RUNS[d]]))


def run_keys_for_dataset(wildcards):
    """[arch, seed] pairs in the order of run_files (the statistics' run keys)."""
    return [[arch, seed] for arch, seed in grid_runs(wildcards.dataset)]


def run_files(template, n_seeds=None):
    """An input function: ``template`` (paths.TRACES, FITS, NULLS, ...) for every run of
    the wildcards' dataset, in grid order; with n_seeds only the first seeds of each arch.
    """

    def files(wildcards):
        return grid_files(template, [wildcards.dataset], n_seeds)

    return files


def grid_files(template, datasets, n_seeds=None):
    """``template`` for every run of ``datasets``, dataset-major, in grid order (with
    n_seeds only the first seeds of each arch)."""
    count, files = {}, []
    for d in datasets:
        for a, s in grid_runs(d):
            count[d, a] = count.get((d, a), 0) + 1
            if not n_seeds or count[d, a] <= n_seeds:
                files.append(template.format(dataset=d, arch=a, seed=s))
    return files


def sampler_datasets():
    """Datasets with spaced-repetition comparisons (sampler.datasets, default all)."""
    return figure_specs.sampler_datasets(config)


def summary_tables():
    """Per-dataset summary tables that the findings table collects."""
    tables = [
        paths.fill(paths.STATS, table="summary").format(dataset=d)
        for d in GRID["datasets"]
    ]
    tables += [
        paths.fill(paths.SAMPLER, table="summary").format(dataset=d)
        for d in sampler_datasets() + sampler_not_comparable()
    ]
    return tables


SAMPLER_NOT_COMPARABLE = (
    "the sampler comparison trains new budgeted runs on the dataset's images; runs recorded "
    "elsewhere (source: traces) come without them"
)


def export_outputs():
    """Every file the target export makes: each trained dataset's long table and centroid cosine,
    each of its runs' cartography folder."""
    outputs = []
    for dataset in trained_datasets():
        outputs += [
            paths.EXPORT_TABLE.format(dataset=dataset),
            paths.EXPORT_CENTROIDS.format(dataset=dataset),
        ]
        outputs += grid_files(paths.EXPORT_CARTOGRAPHY, [dataset])
    return outputs


def sampler_not_comparable():
    """Datasets whose F6 rows are "not comparable" (made by sampler_not_comparable_<dataset>),
    with the sampler enabled, the traces datasets (no images to train on)."""
    return traces_datasets() if config["sampler"]["enabled"] else []


def figure_names():
    """The figures this config draws (the sampler's only with a sampler comparison)."""
    return [n for n, spec in FIGURES.items() if not spec.sampler or sampler_datasets()]


def figure_outputs(name):
    """Every PDF and PNG of one figure (one per dataset for a figure drawn per dataset)."""
    return [
        path
        for ext in ("pdf", "png")
        for path in figure_specs.figure_paths(
            name, GRID["datasets"], sampler_datasets(), ext
        )
    ]


def all_outputs():
    """Every traces file, fits table, statistics table, figure, the findings and the
    provenance table."""
    outputs = []
    for dataset in GRID["datasets"]:
        outputs += grid_files(paths.TRACES, [dataset]) + grid_files(
            paths.FITS, [dataset]
        )
        outputs.append(paths.STATS.format(dataset=dataset, table="summary"))
    outputs += [
        paths.FINDINGS_CSV,
        paths.FINDINGS_MD,
        paths.FINDINGS_HTML,
        paths.PROVENANCE,
    ]
    for name in figure_names():
        outputs += figure_outputs(name)
    return outputs


def pretrain_archs():
    """The grid's archs with weights: pretrain (their pretraining's accuracy goes into
    each dataset's Runs.accuracy rows)."""
    return [a for a in GRID["archs"] if config["archs"][a].get("weights") == "pretrain"]


def pretrain_metrics():
    """An input of dataset_stats: the pretraining metrics of pretrain_archs(), in order."""
    source = config["pretrain"]["dataset"]
    return [
        paths.PRETRAIN_METRICS.format(dataset=source, arch=a) for a in pretrain_archs()
    ]


def pretrain_manifest():
    """An input of dataset_stats: the pretraining source's manifest (its held-out labels
    give the pretraining's chance level); none without pretrain_archs()."""
    if not pretrain_archs():
        return []
    return [paths.MANIFEST.format(dataset=config["pretrain"]["dataset"])]


def study():
    """What the findings need from the config (retention.findings.Study), as a param."""
    return study_fields(config, all_archs())


# ------------------------------------------------------------------ sampler (F6)


def sampler_runs(dataset):
    """(arch, kind, seed) of every budgeted run of a dataset."""
    return [
        (arch, kind, seed)
        for arch in GRID["archs"]
        for kind in config["sampler"]["kinds"]
        for seed in GRID["seeds"]
    ]


def scout_fits(wildcards):
    seed = config["sampler"]["scout_seed"]
    return paths.FITS.format(dataset=wildcards.dataset, arch=wildcards.arch, seed=seed)


def budget_inputs(wildcards):
    """A fine-tuning run's inputs, plus the scout run's fits for the spaced sampler."""
    inputs = finetune_inputs(wildcards)
    if wildcards.sampler == "spaced":
        inputs["scout_fits"] = scout_fits(wildcards)
    return inputs


def sampler_spec(wildcards, input):
    """What the budgeted run's sampler needs (retention.training.finetune.make_sampler)."""
    return {
        "kind": wildcards.sampler,
        "fraction": config["sampler"]["fraction"],
        "min_lambda": config["sampler"]["min_lambda"],
        "scout_fits": input.get("scout_fits"),
    }


def sampler_run_keys(wildcards):
    return [list(run) for run in sampler_runs(wildcards.dataset)]


def sampler_files(template):
    """An input function: ``template`` (paths.BUDGET_TRACES, ...) for every budgeted run."""

    def files(wildcards):
        return [
            template.format(dataset=wildcards.dataset, arch=a, sampler=k, seed=s)
            for a, k, s in sampler_runs(wildcards.dataset)
        ]

    return files


# ------------------------------------------------------------------ provenance


def run_records():
    """Every run.json of the study, once each: the grid's runs, the sampler's scout and
    budgeted runs, and the pretraining of the grid's archs with weights: pretrain."""
    records = grid_files(paths.RUN_RECORD, trained_datasets())
    scout = config["sampler"]["scout_seed"]
    for dataset in sampler_datasets():
        if "spaced" in config["sampler"]["kinds"]:
            records += [
                paths.RUN_RECORD.format(dataset=dataset, arch=arch, seed=scout)
                for arch in GRID["archs"]
            ]
        records += [
            paths.BUDGET_RUN_RECORD.format(dataset=dataset, arch=a, sampler=k, seed=s)
            for a, k, s in sampler_runs(dataset)
        ]
    records += [
        paths.PRETRAIN_RUN_RECORD.format(dataset=config["pretrain"]["dataset"], arch=a)
        for a in GRID["archs"]
        if config["archs"][a].get("weights") == "pretrain"
    ]
    return list(dict.fromkeys(records))


# ------------------------------------------------------------------ figures

FIGURE_CATEGORY = figure_specs.REPORT_CATEGORY


def figure_path(name, ext):
    """The output of one figure's rule (with a {dataset} wildcard for a figure drawn per
    dataset)."""
    if FIGURES[name].per_dataset:
        return paths.fill(paths.FIGURE_OF_DATASET, name=name, ext=ext)
    return paths.FIGURE.format(name=name, ext=ext)


def figure_log(name, kind):
    """The log or benchmark file of one figure's job (``kind``: logs or benchmarks)."""
    suffix = "log" if kind == "logs" else "tsv"
    where = "{dataset}/" if FIGURES[name].per_dataset else ""
    return f"{kind}/figures/{where}{name}.{suffix}"


def figure_inputs(name):
    """The input function of one figure: its per-run files and per-dataset files, named
    as retention.figures.specs.FIGURES declares (of the job's dataset, for a figure drawn
    per dataset)."""

    def inputs(wildcards):
        dataset = wildcards.get("dataset")
        return figure_specs.figure_job(
            name, config, study(), sampler_datasets(), dataset
        )[0]

    return inputs


def figure_params(name):
    """The parameters of one figure's job, as a function of its wildcards: the datasets
    drawn, runs, what the findings table needs, lambda's bound, the sample count below
    which an estimate is drawn hollow, dpi."""

    def params(wildcards):
        dataset = wildcards.get("dataset")
        return figure_specs.figure_job(
            name, config, study(), sampler_datasets(), dataset
        )[1]

    return params


def figure_arch_labels():
    """The name of each architecture in figures: archs.<arch>.label, else the key."""
    return study()["labels"]

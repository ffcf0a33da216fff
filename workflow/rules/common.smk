import math
import os
import sys
from pathlib import Path

# The package that holds the logic sits beside the Snakefile (jobs find it through
# scripts/_retention_path.py, also in conda envs, which do not install it).
sys.path.insert(0, workflow.basedir)

from retention.config import pretrain_train_params, result_train_params, validate_config

# Jobs that re-read the workflow (cluster jobs) skip the timm model-name check: the
# submitting process made it, and it costs a torch import.
validate_config(
    config, check_models=not (workflow.remote_exec or workflow.subprocess_exec)
)


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    arch=r"[A-Za-z0-9_\-]+",
    seed=r"\d+",
    sampler=r"random|spaced",


GRID = config["grid"]
PAPER_VALUES = str(Path(workflow.basedir) / "retention" / "paper_values.csv")
FIGURES = [
    "retention_examples",
    "jaccard",
    "r2",
    "seed_stability",
    "class_forgetting",
    "warmup_loss",
    "training_curves",
    "robustness",
    "alternative_scores",
]


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
    return {"tree": f"resources/datasets/{wildcards.dataset}"}


def dataset_downloads(wildcards):
    """The files to download for one dataset (config datasets.<name>.download)."""
    return dataset_spec(wildcards).get("download", [])


def arch_spec(wildcards):
    """The config entry of one architecture."""
    return config["archs"][wildcards.arch]


def arch_model(wildcards):
    """The timm model name of one architecture."""
    return arch_spec(wildcards)["model"]


def arch_weights(arch):
    """The weights file of an architecture, or None for random initialisation."""
    weights = config["archs"][arch].get("weights", "pretrained")
    if weights == "none":
        return None
    if weights == "pretrained":
        return f"resources/weights/{arch}.safetensors"
    if weights == "pretrain":
        return PRETRAIN_WEIGHTS.format(dataset=config["pretrain"]["dataset"], arch=arch)
    return weights


# outputs of pretraining; {dataset} is its source (config pretrain.dataset)
PRETRAIN_WEIGHTS = "results/pretrain/{dataset}/{arch}/weights.safetensors"
PRETRAIN_METRICS = "results/pretrain/{dataset}/{arch}/metrics.csv"
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
        "manifest": f"results/data/{wildcards.dataset}/manifest.csv",
        "images": f"results/data/{wildcards.dataset}/images.npy",
    }
    weights = arch_weights(wildcards.arch)
    if weights:
        inputs["weights"] = weights
    return inputs


def primary_trace():
    """Label of the configured trace definition, e.g. since_learned or raw_soft."""
    r = config["retention"]
    return r["trace"] + ("_soft" if r["soft"] else "")


# Wall time of a fine-tuning job on a cluster (resource runtime, SLURM --time): seconds
# per image and epoch (a training pass over the train images plus the eval pass over
# all images). 0.005 s is about 17x DeiT-S on an H200 (README: 2,493 train and 11,137
# eval images/s), enough for T4/V100-class GPUs; plus start-up (imports, model, data).
FINETUNE_SECONDS_PER_IMAGE_EPOCH = 0.005
FINETUNE_STARTUP_MINUTES = 10


def training_minutes(wildcards, input, attempt, epochs):
    """Minutes for a training job: start-up plus every image of the dataset once per
    epoch, doubled for safety, times the attempt."""
    size = config["datasets"][wildcards.dataset]["storage_size"]
    n_images = os.path.getsize(input.images) / (3 * size * size)
    minutes = (
        FINETUNE_STARTUP_MINUTES
        + epochs * n_images * FINETUNE_SECONDS_PER_IMAGE_EPOCH / 60
    )
    return math.ceil(2 * minutes) * attempt


def finetune_runtime(wildcards, input, attempt):
    """Minutes for one fine-tuning run (warmup + fine-tuning epochs)."""
    epochs = config["train"]["warmup_epochs"] + config["train"]["epochs"]
    return training_minutes(wildcards, input, attempt, epochs)


def pretrain_runtime(wildcards, input, attempt):
    """Minutes for one pretraining run (pretrain.epochs)."""
    return training_minutes(wildcards, input, attempt, config["pretrain"]["epochs"])


# ------------------------------------------------------------------ the grid


def grid_runs(dataset):
    """(arch, seed) of every run of a dataset, arch-major, in config order."""
    return [(arch, seed) for arch in GRID["archs"] for seed in GRID["seeds"]]


def run_keys_for_dataset(wildcards):
    """[arch, seed] pairs in the order of fits_for_dataset and traces_for_dataset."""
    return [[arch, seed] for arch, seed in grid_runs(wildcards.dataset)]


def traces_for_dataset(wildcards):
    return [
        f"results/runs/{wildcards.dataset}/{arch}/seed{seed}/traces.npz"
        for arch, seed in grid_runs(wildcards.dataset)
    ]


def fits_for_dataset(wildcards):
    return [
        f"results/fits/{wildcards.dataset}/{arch}/seed{seed}.parquet"
        for arch, seed in grid_runs(wildcards.dataset)
    ]


def metrics_for_all_runs():
    return [
        f"results/runs/{dataset}/{arch}/seed{seed}/metrics.csv"
        for dataset in GRID["datasets"]
        for arch, seed in grid_runs(dataset)
    ]


def sampler_datasets():
    """Datasets with spaced-repetition comparisons (sampler.datasets, default all)."""
    if not config["sampler"]["enabled"]:
        return []
    return config["sampler"].get("datasets") or GRID["datasets"]


def summary_tables():
    """Per-dataset summary tables that the findings table collects."""
    tables = [f"results/stats/{dataset}/summary.csv" for dataset in GRID["datasets"]]
    tables += [
        f"results/sampler/{dataset}/summary.csv" for dataset in sampler_datasets()
    ]
    return tables


def figure_files(name):
    return [f"results/figures/{name}.{ext}" for ext in ("pdf", "png")]


def all_outputs():
    """Every traces file, fits table, statistics table, figure and the findings."""
    outputs = []
    for dataset in GRID["datasets"]:
        for arch, seed in grid_runs(dataset):
            outputs.append(f"results/runs/{dataset}/{arch}/seed{seed}/traces.npz")
            outputs.append(f"results/fits/{dataset}/{arch}/seed{seed}.parquet")
        outputs.append(f"results/stats/{dataset}/summary.csv")
    outputs += ["results/findings.csv", "results/findings.md"]
    for name in FIGURES + (["sampler"] if sampler_datasets() else []):
        outputs += figure_files(name)
    return outputs


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
    return f"results/fits/{wildcards.dataset}/{wildcards.arch}/seed{seed}.parquet"


def budget_inputs(wildcards):
    """A fine-tuning run's inputs, plus the scout run's fits for the spaced sampler."""
    inputs = finetune_inputs(wildcards)
    if wildcards.sampler == "spaced":
        inputs["scout_fits"] = scout_fits(wildcards)
    return inputs


def sampler_spec(wildcards, input):
    return {
        "kind": wildcards.sampler,
        "fraction": config["sampler"]["fraction"],
        "scout_fits": input.get("scout_fits"),
    }


def sampler_run_keys(wildcards):
    return [list(run) for run in sampler_runs(wildcards.dataset)]


def sampler_traces_for_dataset(wildcards):
    return [
        f"results/sampler/{wildcards.dataset}/{arch}/{kind}/seed{seed}/traces.npz"
        for arch, kind, seed in sampler_runs(wildcards.dataset)
    ]


def sampler_metrics_for_dataset(wildcards):
    return [
        f"results/sampler/{wildcards.dataset}/{arch}/{kind}/seed{seed}/metrics.csv"
        for arch, kind, seed in sampler_runs(wildcards.dataset)
    ]


# ------------------------------------------------------------------ figures


FITS_PATH = "results/fits/{dataset}/{arch}/seed{seed}.parquet"
TRACES_PATH = "results/runs/{dataset}/{arch}/seed{seed}/traces.npz"


def figure_runs(n_seeds=None):
    """[dataset, arch, seed] of the grid's runs, dataset-major as metrics_for_all_runs;
    with n_seeds only the first n_seeds seeds of the grid."""
    seeds = GRID["seeds"][:n_seeds] if n_seeds else GRID["seeds"]
    return [
        [dataset, arch, seed]
        for dataset in GRID["datasets"]
        for arch, seed in grid_runs(dataset)
        if seed in seeds
    ]


def figure_run_files(path, n_seeds=None):
    """``path`` (a template with {dataset}, {arch}, {seed}) for every run of figure_runs."""
    return [path.format(dataset=d, arch=a, seed=s) for d, a, s in figure_runs(n_seeds)]


def figure_stats_files(table):
    """One statistics table per dataset of the grid, in grid order."""
    return [f"results/stats/{dataset}/{table}.csv" for dataset in GRID["datasets"]]


def figure_sampler_files(table):
    """One sampler table (comparison, curves) per dataset with a sampler comparison."""
    return [f"results/sampler/{dataset}/{table}.csv" for dataset in sampler_datasets()]


def figure_arch_labels():
    """The name of each architecture in figures: archs.<arch>.label, else the key."""
    return {arch: config["archs"][arch].get("label", arch) for arch in GRID["archs"]}

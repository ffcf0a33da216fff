"""Every path template of the workflow's files, declared once (docs/contracts.md).

Relative to the study folder (Snakemake's working directory). The rules, their input
functions and the scripts' standalone modes all format these; nothing else spells a path.
"""

RESULTS = "results"
MANIFEST = "results/data/{dataset}/manifest.csv"
IMAGES = "results/data/{dataset}/images.npy"
RUN = "results/runs/{dataset}/{arch}/seed{seed}"
TRACES = RUN + "/traces.npz"
METRICS = RUN + "/metrics.csv"
#: a run's provenance (retention.provenance): versions, device, commit, config, times
RUN_RECORD = RUN + "/run.json"
CHECKPOINT = "results/checkpoints/{dataset}/{arch}/seed{seed}.pt"
#: the checkpoint of a seed group trained in one job (train.seeds_per_job), group "seeds0_1_2"
GROUP_CHECKPOINT = "results/checkpoints/{dataset}/{arch}/{group}.pt"
FITS = "results/fits/{dataset}/{arch}/seed{seed}.parquet"
NULLS = "results/nulls/{dataset}/{arch}/seed{seed}.parquet"
STATS = "results/stats/{dataset}/{table}.csv"
#: the tables of STATS, in the order they are written (docs/contracts.md)
STATS_TABLES = (
    "f1_jaccard",
    "f2_r2",
    "f3_seed_stability",
    "f4_class",
    "f4_class_similarity",
    "f5_early_predictor",
    "scores",
    "bounds",
    "rank_scores",
    "status_counts",
    "samples",
    "robustness",
    "summary",
)
BUDGET_RUN = "results/sampler/{dataset}/{arch}/{sampler}/seed{seed}"
BUDGET_TRACES = BUDGET_RUN + "/traces.npz"
BUDGET_METRICS = BUDGET_RUN + "/metrics.csv"
BUDGET_RUN_RECORD = BUDGET_RUN + "/run.json"
BUDGET_CHECKPOINT = "results/checkpoints/sampler/{dataset}/{arch}/{sampler}/seed{seed}.pt"
BUDGET_GROUP_CHECKPOINT = "results/checkpoints/sampler/{dataset}/{arch}/{sampler}/{group}.pt"
SAMPLER = "results/sampler/{dataset}/{table}.csv"
#: pretraining (weights: pretrain); {dataset} is the source (config pretrain.dataset)
PRETRAIN_RUN = "results/pretrain/{dataset}/{arch}"
PRETRAIN_WEIGHTS = PRETRAIN_RUN + "/weights.safetensors"
PRETRAIN_METRICS = PRETRAIN_RUN + "/metrics.csv"
PRETRAIN_RUN_RECORD = PRETRAIN_RUN + "/run.json"
PRETRAIN_CHECKPOINT = "results/checkpoints/pretrain/{dataset}/{arch}.pt"
#: every run.json of the study, one row per run
PROVENANCE = "results/provenance.csv"
FINDINGS_CSV = "results/findings.csv"
FINDINGS_MD = "results/findings.md"
#: the findings table rendered for the HTML report (the verdicts first) and the config as YAML
FINDINGS_HTML = "results/findings.html"
#: a figure of every dataset, and a figure drawn per dataset (retention/figure_specs.py)
FIGURE = "results/figures/{name}.{ext}"
FIGURE_OF_DATASET = "results/figures/{dataset}/{name}.{ext}"
DATASET_DOWNLOAD = "resources/datasets/{dataset}"
WEIGHTS = "resources/weights/{arch}.safetensors"


def fill(template: str, **fields) -> str:
    """``template`` with some of its fields filled and the others left as wildcards, so
    that ``fill(STATS, table="summary")`` is ``results/stats/{dataset}/summary.csv``."""

    class Keep(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    return template.format_map(Keep(fields))

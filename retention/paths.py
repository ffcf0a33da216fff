"""Every path template of the workflow's files, declared once (docs/contracts.md).

Relative to the study folder (Snakemake's working directory). The rules, their input
functions and the scripts' standalone modes all format these; nothing else spells a path.
"""

MANIFEST = "results/data/{dataset}/manifest.csv"
IMAGES = "results/data/{dataset}/images.npy"
RUN = "results/runs/{dataset}/{arch}/seed{seed}"
TRACES = RUN + "/traces.npz"
METRICS = RUN + "/metrics.csv"
#: a run's provenance (retention.provenance): versions, device, commit, config, times
RUN_RECORD = RUN + "/run.json"
#: one fine-tuning job: the seeds of group ``{group}`` ("0_1_2": train.seeds_per_job of the
#: grid's seeds; "100": a scout run alone) trained together; it writes JOB_RUN per seed, and
#: rule publish_run links each to its RUN (a hard link: no second copy of the bytes)
JOB = "results/jobs/finetune/{dataset}/{arch}/seeds{group}"
JOB_RUN = "seed{seed}"
CHECKPOINT = "results/checkpoints/{dataset}/{arch}/seeds{group}.pt"
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
BUDGET_JOB = "results/jobs/finetune_budget/{dataset}/{arch}/{sampler}/seeds{group}"
BUDGET_CHECKPOINT = "results/checkpoints/sampler/{dataset}/{arch}/{sampler}/seeds{group}.pt"
#: the files of a run, in the order the training jobs write and publish them
RUN_FILES = ("traces.npz", "metrics.csv", "run.json")
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
#: a figure of every dataset, and a figure drawn per dataset (retention/figures/specs.py)
FIGURE = "results/figures/{name}.{ext}"
FIGURE_OF_DATASET = "results/figures/{dataset}/{name}.{ext}"
#: our runs in the formats others read (rule export): the long table of every run of a
#: dataset, its class centroid cosine, and each run's train samples as dataset cartography
#: writes them (a run's folder, as cartography's --model_dir: its training_dynamics/ holds
#: dynamics_epoch_<t>.jsonl); a dataset with source: traces imports its runs into RUN's
#: traces.npz and MANIFEST (rule import_traces_<dataset>)
EXPORT = "results/export/{dataset}"
EXPORT_TABLE = EXPORT + "/traces.parquet"
EXPORT_CENTROIDS = EXPORT + "/class_centroid_cosine.parquet"
EXPORT_CARTOGRAPHY = EXPORT + "/cartography/{arch}/seed{seed}"
DATASET_DOWNLOAD = "resources/datasets/{dataset}"
WEIGHTS = "resources/weights/{arch}.safetensors"


def fill(template: str, **fields) -> str:
    """``template`` with some of its fields filled and the others left as wildcards, so
    that ``fill(STATS, table="summary")`` is ``results/stats/{dataset}/summary.csv``."""

    class Keep(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    return template.format_map(Keep(fields))


#: the rule that computes each template (what to rerun when a file is truncated or
#: unreadable: retention.io.read_table and its siblings say so); a run's files are
#: computed by its group's training job (rule publish_run then links them to RUN)
WRITERS = {
    MANIFEST: "prepare_dataset",
    IMAGES: "prepare_dataset",
    TRACES: "finetune",
    METRICS: "finetune",
    RUN_RECORD: "finetune",
    FITS: "fit_traces",
    NULLS: "fit_nulls",
    STATS: "dataset_stats",
    BUDGET_TRACES: "finetune_budget",
    BUDGET_METRICS: "finetune_budget",
    BUDGET_RUN_RECORD: "finetune_budget",
    SAMPLER: "compare_samplers",
    PRETRAIN_WEIGHTS: "pretrain",
    PRETRAIN_METRICS: "pretrain",
    PRETRAIN_RUN_RECORD: "pretrain",
    PROVENANCE: "provenance",
    FINDINGS_CSV: "findings",
    FINDINGS_MD: "findings",
    WEIGHTS: "fetch_weights",
}


def _pattern(template: str, named: bool = False) -> str:
    """A regular expression of the paths ``template`` makes (``named``: each field a group)."""
    import re

    parts = re.split(r"(\{\w+\})", template)
    field = (lambda p: rf"(?P<{p[1:-1]}>[^/]+)") if named else (lambda p: r"[^/]+")
    return "".join(field(p) if p.startswith("{") else re.escape(p) for p in parts)


#: the per-run files, whose path names their run (:func:`run_of`)
RUN_TEMPLATES = (TRACES, METRICS, RUN_RECORD, FITS, NULLS, BUDGET_TRACES, BUDGET_METRICS, BUDGET_RUN_RECORD)


def run_of(path) -> dict[str, str] | None:
    """The fields (dataset, arch, seed; sampler for a budgeted run) of a per-run file's path
    (one of :data:`RUN_TEMPLATES`, relative to the study folder or absolute; the stage's
    folder, results/runs/ and so on, may be missing), else None."""
    import re

    text = str(path).replace("\\", "/")
    for with_stage in (True, False):  # the whole template first; then without results/<stage>/
        for template in RUN_TEMPLATES:
            stage, _, rest = template.partition("/{dataset}/")
            prefix = re.escape(stage) + "/" if with_stage else ""
            match = re.search(rf"(^|/){prefix}{_pattern('{dataset}/' + rest, named=True)}$", text)
            if match and match["seed"].isdigit():
                return match.groupdict()
    return None


def writer_of(path) -> str | None:
    """The rule that writes ``path`` (a file of :data:`WRITERS`' templates, relative to
    the study folder or absolute), or None."""
    import re

    text = str(path).replace("\\", "/")
    for template, rule in WRITERS.items():
        if re.search(rf"(^|/){_pattern(template)}$", text):
            return rule
    return None

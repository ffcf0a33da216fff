"""Every figure of results/figures/, declared once: what it reads and where it goes in the report.

Light on purpose (no matplotlib): the workflow reads it at parse time to generate one rule
per figure (workflow/rules/figures.smk), and scripts/plot_figure.py to find its inputs in
standalone mode. ``title``: what the report's table calls it; ``runs``: the per-run files
it draws from (keys of ``RUN_FILES``); ``seeds``: how many seeds of each architecture
(None: all); ``tables``: per-dataset files (keys of ``DATASET_FILES``: statistics and
sampler tables, the prepared dataset; the figure assembles the findings table from the
``summary`` tables it reads); ``sampler``: drawn only when the sampler comparison runs,
for its datasets; ``per_dataset``: one figure per dataset
(``results/figures/{dataset}/{name}.pdf``; every figure is at most 7.2 in wide, and those
whose panels of one dataset fill a page are split so); ``subcategory``: its heading in
the HTML report (sorted by name there, so the F-numbers keep the order of the paper's
findings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retention import paths
from retention.dynamics import sources as imports

#: the figures' category in the HTML report: it sorts right after "Findings" (the verdict
#: table), and the subcategories below sort in the order of the paper's findings
REPORT_CATEGORY = "Findings in figures"
RUN_FILES = {"fits": paths.FITS, "traces": paths.TRACES, "metrics": paths.METRICS}
#: per-dataset files of the sampler stage (they exist for the sampler's datasets only)
SAMPLER_FILES = {
    "comparison": paths.fill(paths.SAMPLER, table="comparison"),
    "curves": paths.fill(paths.SAMPLER, table="curves"),
    "sampler_summary": paths.fill(paths.SAMPLER, table="summary"),
}
DATASET_FILES = {
    **{t: paths.fill(paths.STATS, table=t) for t in paths.STATS_TABLES},
    **SAMPLER_FILES,
    "manifest": paths.MANIFEST,
    "images": paths.IMAGES,
}
#: what runs recorded elsewhere (source: traces) do not have: their figures draw the other
#: datasets, and a note where a panel would need these
TRAINING_ONLY = ("metrics", "images")
#: the report label of a figure drawn over every dataset
ALL_DATASETS = "all"

#: what the report's captions say about every forest panel and every verdict (a param of
#: each figure rule, so that the captions, workflow/report/*.rst, say it in one wording:
#: ``{{ snakemake.params.words["verdict_rule"] }}``)
REPORT_WORDS = {
    "forest_marks": (
        "In every panel of findings, a dot and bar is our estimate and its 95% interval (in the "
        "architecture's "
        "colour for one architecture, black for a pair or all runs; hollow where it rests on too few "
        "samples, has "
        "no interval or comes from partly undefined sets, with the reason in brackets). Grey bars above and "
        "below "
        "it are the two memoryless nulls' 95% ranges, their means as ticks: plain, every post-learning epoch "
        "redrawn independently (iid); hatched, the same epochs shuffled (shuffle). The null the null "
        "verdict rests "
        "on is outlined in black. A black star is the paper's value (a bracket: its range), drawn only for "
        "the "
        "paper's datasets and architectures; dotted: chance; dashed: the bound the claim is tested against; "
        "dash-dot: the paper's settling criterion (top-q Jaccard above 0.6 across architectures, Spearman "
        "above "
        "0.4 across seeds), with whether the value lies above it on the right. Every value axis shows 0."
    ),
    "verdict_rule": (
        "Each primary finding has two verdicts, written on the right of its line with their Holm p. "
        "**Claim**, the paper's claim by its own test (seeds as the unit, Holm over the dataset's primary "
        "findings): *not comparable* without an estimate or a test; *contradicted* where a two-sided claim "
        "is "
        "significant with the opposite sign of the paper's value, or the 95% interval excludes the claim "
        "(below 0 "
        "for a claim that a value is greater than 0, entirely outside plus or minus the bound for "
        "equivalence, "
        "entirely above the margin for non-superiority); *holds* where the claim's test passes at alpha "
        "after "
        "Holm; *inconclusive* otherwise. **Memoryless null**, which never gates the claim: of the two null "
        "kinds, "
        "the one with the larger one-sided p in the claim's direction decides; *beyond null* where that p, "
        "Holm-corrected over the dataset's primary findings with a null, is below alpha; *explained by null* "
        "where our value lies inside that null's 95% range (so a dot outside the outlined bar is never "
        "explained by it); *undetermined* otherwise (no null, or outside the range without being beyond it "
        "after Holm). The rules are in docs/method.md, section Verdicts."
    ),
}


@dataclass(frozen=True)
class FigureSpec:
    """What one figure reads (see the module docstring)."""

    subcategory: str
    title: str
    runs: tuple[str, ...] = ()
    seeds: int | None = None
    tables: tuple[str, ...] = ()
    sampler: bool = False
    per_dataset: bool = False


SAMPLES = "Samples: gallery, retention heatmap and data map"
# fmt: off
FIGURES: dict[str, FigureSpec] = {
    "primary_findings": FigureSpec("All primary findings", "every primary finding and its verdicts",
                                   tables=("summary", "sampler_summary")),
    "jaccard": FigureSpec("F1 architecture dependence", "Jaccard of the most-forgotten sets",
                          tables=("f1_jaccard", "summary"), per_dataset=True),
    "r2": FigureSpec("F2 decay structure", "R² of the decay fit", runs=("fits",), tables=("f2_r2", "summary"),
                     per_dataset=True),
    "seed_stability": FigureSpec("F3 seed stability", "λ across seeds", runs=("fits",), seeds=2,
                                 tables=("f3_seed_stability", "summary"), per_dataset=True),
    "class_forgetting": FigureSpec("F4 class level", "classes forgotten and their similarity",
                                   tables=("f4_class", "f4_class_similarity", "summary"), per_dataset=True),
    "warmup_loss": FigureSpec("F5 early predictor", "loss after warmup against λ", runs=("fits",),
                              tables=("f5_early_predictor", "summary"), per_dataset=True),
    "sampler": FigureSpec("F6 spaced repetition", "spaced against random sampling",
                          tables=("comparison", "curves", "sampler_summary"), sampler=True, per_dataset=True),
    "robustness": FigureSpec("Robustness of the primary findings", "primary findings under other choices",
                             tables=("summary", "robustness"), per_dataset=True),
    "gallery": FigureSpec(SAMPLES, "most and least forgotten images",
                          tables=("samples", "manifest", "images"), per_dataset=True),
    "retention_heatmap": FigureSpec(SAMPLES, "every sample's retention per epoch", runs=("traces",),
                                    tables=("samples",)),
    "data_map": FigureSpec(SAMPLES, "data map coloured by λ", runs=("fits",)),
    "alternative_scores": FigureSpec("Scores beyond the paper", "other per-sample scores",
                                     tables=("scores", "rank_scores", "summary"), per_dataset=True),
    "retention_examples": FigureSpec("Traces and decay fits", "traces and fits of the extremes",
                                     runs=("fits", "traces"), seeds=1, tables=("samples",), per_dataset=True),
    "training_curves": FigureSpec("Training curves", "accuracy and loss per epoch",
                                  runs=("metrics", "traces"), per_dataset=True),
}
# fmt: on


def figure_datasets(name: str, datasets: Sequence[str], sampler_datasets: Sequence[str]) -> list[str]:
    """The datasets of a figure: the grid's, or the sampler's for its figure."""
    return list(sampler_datasets if FIGURES[name].sampler else datasets)


def figure_paths(name: str, datasets: Sequence[str], sampler_datasets: Sequence[str], ext: str) -> list[str]:
    """The files of a figure (one per dataset for a figure drawn per dataset)."""
    if FIGURES[name].per_dataset:
        return [
            paths.FIGURE_OF_DATASET.format(dataset=d, name=name, ext=ext)
            for d in figure_datasets(name, datasets, sampler_datasets)
        ]
    return [paths.FIGURE.format(name=name, ext=ext)]


def figure_runs(name: str, datasets: Sequence[str], runs: Sequence) -> list[list]:
    """[dataset, arch, seed] of the runs a figure reads (``runs``: [dataset, arch, seed]
    of the grid), only the first ``seeds`` seeds of each architecture where it says so."""
    n = FIGURES[name].seeds
    out, count = [], {}
    for dataset, arch, seed in runs:
        if dataset not in datasets:
            continue
        key = (dataset, arch)
        count[key] = count.get(key, 0) + 1
        if n is None or count[key] <= n:
            out.append([dataset, arch, seed])
    return out


def figure_files(
    name: str,
    datasets: Sequence[str],
    sampler_datasets: Sequence[str],
    runs: Sequence,
    imported: Sequence[str] = (),
) -> tuple[dict, dict]:
    """(files, datasets_of) of a figure over ``datasets``: kind -> paths (one per run of
    :func:`figure_runs`, or one per dataset), and for each per-dataset kind the datasets
    its paths belong to (the sampler's files exist for the sampler's datasets only, the
    images and metrics not for the ``imported`` datasets, source: traces)."""
    spec = FIGURES[name]
    rows = figure_datasets(name, datasets, sampler_datasets)
    trained = [d for d in rows if d not in imported]
    files = {
        k: [
            RUN_FILES[k].format(dataset=d, arch=a, seed=s)
            for d, a, s in figure_runs(name, trained if k in TRAINING_ONLY else rows, runs)
        ]
        for k in spec.runs
    }
    datasets_of = {}
    for kind in spec.tables:
        where = [d for d in rows if d in sampler_datasets] if kind in SAMPLER_FILES else rows
        if kind in TRAINING_ONLY or (kind == "manifest" and "images" in spec.tables):
            where = [d for d in where if d not in imported]
        if where:
            files[kind] = [DATASET_FILES[kind].format(dataset=d) for d in where]
            datasets_of[kind] = where
    return files, datasets_of


def _training_only(name: str) -> bool:
    """Whether every per-run file the figure reads exists only for runs trained here."""
    return bool(FIGURES[name].runs) and all(k in TRAINING_ONLY for k in FIGURES[name].runs)


def sampler_datasets(config: dict) -> list[str]:
    """Datasets with a sampler comparison (sampler.enabled; sampler.datasets, default every
    grid dataset that is trained here: not those of runs recorded elsewhere)."""
    if not config["sampler"]["enabled"]:
        return []
    trained = [d for d in config["grid"]["datasets"] if not imports.is_imported(config, d)]
    return list(config["sampler"].get("datasets") or trained)


def figure_job(
    name: str, config: dict, study: dict, sampler: Sequence[str] | None = None, dataset: str | None = None
) -> tuple[dict, dict]:
    """(inputs, params) of the job that draws figure ``name`` under ``config`` (of one
    ``dataset`` for a figure drawn per dataset): the files (:func:`figure_files`) and what
    scripts/plot_figure.py needs besides (the datasets drawn, the datasets of each
    per-dataset kind, the runs, the study for the findings table
    (retention.findings.Study fields), lambda_max, min_samples, dpi)."""
    grid = config["grid"]
    sampler = sampler_datasets(config) if sampler is None else list(sampler)
    runs = [[d, a, s] for d in grid["datasets"] for a, s in imports.dataset_runs(config, d)]
    imported = [d for d in grid["datasets"] if imports.is_imported(config, d)]
    datasets = figure_datasets(name, grid["datasets"], sampler)
    if FIGURES[name].per_dataset:
        if dataset not in datasets:
            raise ValueError(f"figure {name} is drawn per dataset; {dataset!r} is not one of {datasets}")
        datasets = [dataset]
    files, datasets_of = figure_files(name, datasets, [d for d in sampler if d in datasets], runs, imported)
    params = {
        "figure": name,
        "datasets": datasets,
        "datasets_of": datasets_of,
        "runs": figure_runs(
            name, [d for d in datasets if d not in imported] if _training_only(name) else datasets, runs
        ),
        # the runs of each per-run kind that only trained runs have (metrics): not the imported ones
        "runs_of": {
            k: figure_runs(name, [d for d in datasets if d not in imported], runs)
            for k in FIGURES[name].runs
            if k in TRAINING_ONLY
        },
        "study": dict(study),
        "lambda_max": config["retention"]["lambda_max"],
        "min_samples": config["figures"]["min_samples"],
        "dpi": config["figures"]["dpi"],
    }
    return files, params


#: the formats of a figure in the HTML report (the report lists them in this order: the
#: image first, shown in the page; the PDF for print, a download)
FORMATS = {"png": "image (PNG)", "pdf": "print (PDF)"}


def report_labels(name: str, ext: str) -> dict:
    """The labels of a figure's file in the HTML report: what it shows, its dataset
    (``{dataset}``, a wildcard of the rule, or :data:`ALL_DATASETS`) and the format."""
    spec = FIGURES[name]
    return {
        "figure": spec.title,
        "dataset": "{dataset}" if spec.per_dataset else ALL_DATASETS,
        "format": FORMATS[ext],
    }

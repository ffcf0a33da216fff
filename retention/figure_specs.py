"""Every figure of results/figures/, declared once: what it reads and where it goes in the report.

Light on purpose (no matplotlib): the workflow reads it at parse time to generate one rule
per figure (workflow/rules/figures.smk), and scripts/plot_figure.py to find its inputs in
standalone mode. ``runs``: the per-run files it draws from (keys of ``RUN_FILES``);
``seeds``: how many seeds of each architecture (None: all); ``tables``: per-dataset files
(keys of ``DATASET_FILES``: statistics and sampler tables, the prepared dataset; the
figure assembles the findings table from the ``summary`` tables it reads); ``sampler``:
drawn only when the sampler comparison runs, for its datasets; ``subcategory``: its
heading in the HTML report (sorted by name there, so the F-numbers keep the order of the
paper's findings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from . import imports, paths

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


@dataclass(frozen=True)
class FigureSpec:
    """What one figure reads (see the module docstring)."""

    subcategory: str
    runs: tuple[str, ...] = ()
    seeds: int | None = None
    tables: tuple[str, ...] = ()
    sampler: bool = False


# fmt: off
FIGURES: dict[str, FigureSpec] = {
    "primary_findings": FigureSpec("All primary findings", tables=("summary", "sampler_summary")),
    "jaccard": FigureSpec("F1 architecture dependence", tables=("f1_jaccard", "summary")),
    "r2": FigureSpec("F2 decay structure", runs=("fits",), tables=("f2_r2", "summary")),
    "seed_stability": FigureSpec("F3 seed stability", runs=("fits",), seeds=2, tables=("f3_seed_stability", "summary")),
    "class_forgetting": FigureSpec("F4 class level", tables=("f4_class", "f4_class_similarity", "summary")),
    "warmup_loss": FigureSpec("F5 early predictor", runs=("fits",), tables=("f5_early_predictor", "summary")),
    "sampler": FigureSpec("F6 spaced repetition", tables=("comparison", "curves", "sampler_summary"), sampler=True),
    "robustness": FigureSpec("Robustness of the primary findings", tables=("summary", "robustness")),
    "gallery": FigureSpec("Samples: gallery and data map", runs=("fits",), tables=("manifest", "images")),
    "data_map": FigureSpec("Samples: gallery and data map", runs=("fits",)),
    "alternative_scores": FigureSpec("Scores beyond the paper", tables=("scores", "rank_scores", "summary")),
    "retention_examples": FigureSpec("Traces and decay fits", runs=("fits", "traces"), seeds=1),
    "training_curves": FigureSpec("Training curves", runs=("metrics",)),
}
# fmt: on


def figure_datasets(name: str, datasets: Sequence[str], sampler_datasets: Sequence[str]) -> list[str]:
    """The panel rows of a figure: the grid's datasets, or the sampler's for its figure."""
    return list(sampler_datasets if FIGURES[name].sampler else datasets)


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
    name: str, datasets: Sequence[str], sampler_datasets: Sequence[str], runs: Sequence, imported: Sequence[str] = ()
) -> tuple[dict, dict]:
    """(files, datasets_of) of a figure: kind -> paths (one per run of
    :func:`figure_runs`, or one per dataset), and for each per-dataset kind the datasets
    its paths belong to (the sampler's files exist for the sampler's datasets only, the
    images and metrics not for the ``imported`` datasets, source: traces)."""
    spec = FIGURES[name]
    if len({k in TRAINING_ONLY for k in spec.runs}) > 1:
        raise ValueError(f"figure {name}: its per-run files {spec.runs} mix files of trained runs only with others")
    rows = figure_datasets(name, datasets, sampler_datasets)
    trained = [d for d in rows if d not in imported]
    files = {k: [RUN_FILES[k].format(dataset=d, arch=a, seed=s)
                 for d, a, s in figure_runs(name, trained if k in TRAINING_ONLY else rows, runs)]
             for k in spec.runs}
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


def figure_job(name: str, config: dict, study: dict, sampler: Sequence[str] | None = None) -> tuple[dict, dict]:
    """(inputs, params) of the job that draws figure ``name`` under ``config``: the files
    (:func:`figure_files`) and what scripts/plot_figure.py needs besides (panel rows, the
    datasets of each per-dataset kind, the runs, the study for the findings table
    (retention.findings.Study fields), lambda_max, min_samples, dpi)."""
    grid = config["grid"]
    sampler = sampler_datasets(config) if sampler is None else list(sampler)
    runs = [[d, a, s] for d in grid["datasets"] for a, s in imports.dataset_runs(config, d)]
    imported = [d for d in grid["datasets"] if imports.is_imported(config, d)]
    datasets = figure_datasets(name, grid["datasets"], sampler)
    files, datasets_of = figure_files(name, grid["datasets"], sampler, runs, imported)
    params = {
        "figure": name,
        "datasets": datasets,
        "datasets_of": datasets_of,
        "runs": figure_runs(name, [d for d in datasets if d not in imported] if _training_only(name) else datasets,
                            runs),
        "study": dict(study),
        "lam_max": config["retention"]["lambda_max"],
        "min_samples": config["figures"]["min_samples"],
        "dpi": config["figures"]["dpi"],
    }
    return files, params

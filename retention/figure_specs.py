"""Every figure of results/figures/, declared once: what it reads and where its caption is.

Light on purpose (no matplotlib): the workflow reads it at parse time to generate one rule
per figure (workflow/rules/figures.smk), and scripts/plot_figure.py to read its inputs.
``runs``: the per-run files it draws from (keys of ``RUN_FILES``); ``seeds``: how many
seeds of each architecture (None: all); ``tables``: per-dataset tables (keys of
``DATASET_TABLES``); ``sampler``: drawn only when the sampler comparison runs;
``subcategory``: its heading in the HTML report, in the order of the paper's findings.
"""

from dataclasses import dataclass, field

from . import paths

RUN_FILES = {"fits": paths.FITS, "traces": paths.TRACES, "metrics": paths.METRICS}
DATASET_TABLES = {
    **{t: paths.fill(paths.STATS, table=t) for t in paths.STATS_TABLES},
    "comparison": paths.fill(paths.SAMPLER, table="comparison"),
    "curves": paths.fill(paths.SAMPLER, table="curves"),
    "sampler_summary": paths.fill(paths.SAMPLER, table="summary"),
}


@dataclass(frozen=True)
class FigureSpec:
    """What one figure reads (see the module docstring)."""

    subcategory: str
    runs: tuple[str, ...] = ()
    seeds: int | None = None
    tables: tuple[str, ...] = ()
    sampler: bool = False
    extra: dict = field(default_factory=dict)


FIGURES: dict[str, FigureSpec] = {
    "retention_examples": FigureSpec("Retention examples", runs=("fits", "traces"), seeds=1),
    "jaccard": FigureSpec("F1 architecture dependence", tables=("f1_jaccard", "summary")),
    "r2": FigureSpec("F2 decay structure", runs=("fits",), tables=("f2_r2", "summary")),
    "seed_stability": FigureSpec("F3 seed stability", runs=("fits",), seeds=2, tables=("f3_seed_stability", "summary")),
    "class_forgetting": FigureSpec("F4 class level", tables=("f4_class", "f4_class_similarity", "summary")),
    "warmup_loss": FigureSpec("F5 early predictor", runs=("fits",), tables=("f5_early_predictor", "summary")),
    "training_curves": FigureSpec("Training", runs=("metrics",)),
    "robustness": FigureSpec("Robustness", tables=("summary", "robustness")),
    "alternative_scores": FigureSpec("Beyond the paper", runs=("fits",), tables=("scores", "summary")),
    "sampler": FigureSpec("F6 spaced repetition", tables=("comparison", "curves", "sampler_summary"), sampler=True),
}

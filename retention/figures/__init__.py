"""The workflow's figures, one function each, all with one signature:
``(FigureInputs) -> matplotlib Figure`` (:data:`DRAW`; the files each reads, and whether
it is drawn per dataset, are declared in :mod:`retention.figures.specs`).

Every figure is at most 7.2 in wide with no text under 6 pt, speaks one visual language
(:mod:`.style`: a colour per architecture, everything else told apart by line style or
marker, words for people), names architectures by their display label, looks findings up
by registry id in the assembled findings table, and draws an estimate the same way
(:mod:`.marks`): value and 95% interval, solid only where it rests on at least
``min_samples`` samples and has an interval; both memoryless nulls' ranges with the one
the null verdict rests on outlined, chance and the paper's value beside it (the paper's
only where it attaches), and each primary row's two verdicts with their Holm p. Samples
are shown in the one order of samples.csv (:mod:`.order`). :func:`save_figure` writes PDF
and PNG atomically. Modules: ``style`` (look, words, legend, saving), ``inputs``
(FigureInputs, readers), ``marks`` (how an estimate is drawn), ``forest`` (any finding by
id), ``primary`` (every primary finding), ``f1`` .. ``f6`` (the paper's findings),
``variants`` (robustness), ``scores`` (beyond the paper), ``order`` (most and least
forgotten), ``examples`` (traces and fits), ``thumbnails`` (the gallery), ``heatmap``,
``datamap``, ``training``.
"""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.figure import Figure

from retention.figures.datamap import data_map
from retention.figures.examples import retention_examples
from retention.figures.f1 import jaccard
from retention.figures.f2 import r2
from retention.figures.f3 import seed_stability
from retention.figures.f4 import class_forgetting
from retention.figures.f5 import warmup_loss
from retention.figures.f6 import sampler
from retention.figures.forest import finding_figure
from retention.figures.heatmap import retention_heatmap
from retention.figures.inputs import FigureInputs, read_inputs
from retention.figures.primary import primary_findings
from retention.figures.scores import alternative_scores
from retention.figures.specs import FIGURES
from retention.figures.style import save_figure
from retention.figures.thumbnails import gallery
from retention.figures.training import training_curves
from retention.figures.variants import robustness

DRAW: dict[str, Callable[[FigureInputs], Figure]] = {
    "primary_findings": primary_findings,
    "jaccard": jaccard,
    "r2": r2,
    "seed_stability": seed_stability,
    "class_forgetting": class_forgetting,
    "warmup_loss": warmup_loss,
    "sampler": sampler,
    "robustness": robustness,
    "gallery": gallery,
    "retention_heatmap": retention_heatmap,
    "data_map": data_map,
    "alternative_scores": alternative_scores,
    "retention_examples": retention_examples,
    "training_curves": training_curves,
}
FIGURE_NAMES = tuple(FIGURES)


def draw(name: str, inputs: FigureInputs) -> Figure:
    """The figure ``name`` (a key of :data:`DRAW`) drawn from ``inputs``."""
    if name not in DRAW:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(DRAW)}")
    return DRAW[name](inputs)


__all__ = ["DRAW", "FIGURE_NAMES", "FigureInputs", "draw", "finding_figure", "read_inputs", "save_figure"]

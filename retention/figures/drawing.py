"""Every figure by name: :data:`DRAW` (name -> drawing function), :func:`draw`.

Imported on first use of ``retention.figures.DRAW`` or ``draw`` (see the package's
docstring), so that reading ``retention.figures.specs`` imports no matplotlib.
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
from retention.figures.heatmap import retention_heatmap
from retention.figures.inputs import FigureInputs
from retention.figures.primary import primary_findings
from retention.figures.scores import alternative_scores
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


def draw(name: str, inputs: FigureInputs) -> Figure:
    """The figure ``name`` (a key of :data:`DRAW`) drawn from ``inputs``."""
    if name not in DRAW:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(DRAW)}")
    return DRAW[name](inputs)

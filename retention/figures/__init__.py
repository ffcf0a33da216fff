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
``datamap``, ``training``; ``drawing`` (every figure by name).

The package's names (``DRAW``, ``draw``, ``FigureInputs``, ``read_inputs``,
``save_figure``, ``finding_figure``) are imported from their modules on first use: the
workflow reads :mod:`.specs` on every parse and must not import matplotlib for it.
"""

from __future__ import annotations

from retention.lazy import lazy_getattr

#: each public name -> its module
_MODULES = {
    "DRAW": "drawing",
    "draw": "drawing",
    "FigureInputs": "inputs",
    "read_inputs": "inputs",
    "save_figure": "style",
    "finding_figure": "forest",
}


__getattr__ = lazy_getattr(__name__, _MODULES)
__all__ = list(_MODULES)

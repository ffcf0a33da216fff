"""The one visual language of every figure, declared here and nowhere else.

**Size.** Every figure is at most :data:`PRINT_WIDTH` (7.2 in, a two-column page) wide at
100%, and no text is smaller than :data:`MIN_FONT` (6 pt) at that size: a figure too wide
for that is split by dataset or by finding (retention/figures/specs.py).

**Colour** means one thing: the architecture (:func:`arch_colors`, in the grid's order,
the same in every figure). Everything else is told apart without colour: the split by
line style (:data:`SPLIT_STYLES`: train dashed, held-out solid), the sampler by marker
(:data:`SAMPLER_MARKERS`), the most and least forgotten by fill (:data:`EXTREME_HATCH`),
samples within a panel by marker and line style (:data:`SAMPLE_MARKERS`), the paper's value
by a black star (:data:`PAPER_MARKER`), the memoryless nulls by grey bands, chance by a
dotted line, bounds by dashes and criteria by dash-dots. Estimates not tied to one
architecture (pairs, all runs) are :data:`NEUTRAL`.

**Words**: :func:`plain` turns the statistics' names into words for people (λ, R²,
p(true class), the rank scores' names; no ids, no snake_case); :data:`SCORE_NAMES` and
:data:`TRACE_NAMES` name the rank scores and trace definitions.

:func:`new_figure` sets the style and returns a figure of panels at print width;
:func:`save_figure` writes PDF and PNG atomically. Every plotted series is tagged with
:func:`tag` (its legend label as the artist's ``gid``), every guide line with
:func:`guide`, so that the tests can check that each series has a legend entry.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from retention.io import atomic_path

# ------------------------------------------------------------------------ size

#: the widest a figure may be (inches at 100%: a two-column page)
PRINT_WIDTH = 7.2
#: the smallest text at print width (points)
MIN_FONT = 6.0
TITLE_FONT = 7.5
FONT = 7.0
TICK_FONT = 6.5
SMALL_FONT = 6.0

# ---------------------------------------------------------------------- colour

#: architecture colours, in the grid's order (seaborn's colour-blind palette without its grey)
ARCH_PALETTE = ("#0173b2", "#de8f05", "#029e73", "#cc78bc", "#ca9161", "#56b4e9", "#d55e00", "#fbafe4")
#: estimates that belong to no single architecture (pairs of architectures, all runs)
NEUTRAL = "0.15"
NULL_COLOR = "0.62"
CHANCE_COLOR = "0.25"
GUIDE_COLOR = "0.4"
PAPER_COLOR = "black"
PAPER_MARKER = "*"
#: colour maps: counts, correlations (diverging at 0), λ, retention (share correct)
COUNT_CMAP = "viridis"
CORRELATION_CMAP = "vlag"
LAMBDA_CMAP = "plasma"
RETENTION_CMAP = "cividis"

# ------------------------------------------------------- told apart without colour

#: line style of the train set and the held-out set
SPLIT_STYLES = {"train": "--", "heldout": "-"}
#: marker of each sampler (F6)
SAMPLER_MARKERS = {"random": "o", "spaced": "^"}
#: fill of the most and the least forgotten (bars): solid, hatched
EXTREME_HATCH = {"most": "", "least": "//////"}
#: markers and line styles of the samples of one panel (trace examples)
SAMPLE_MARKERS = "osD^v"
SAMPLE_LINES = ("-", "--", ":", "-.", (0, (1, 1)))
#: line style of a bound (λ's, an equivalence bound) and of a criterion (settling)
BOUND_STYLE = "--"
CRITERION_STYLE = (0, (6, 2, 1.5, 2))

# ------------------------------------------------------------------------ words

SCORE_NAMES = {
    "lambda": "λ",
    "forgetting_amount": "forgetting amount (1 − b)",
    "area": "share of epochs wrong since learned",
    "soft_lambda": "λ of p(true class)",
    "mean_p_true_since_learned": "1 − mean p(true class) since learned",
}
TRACE_NAMES = {
    "since_learned": "since learned",
    "since_warmup": "since warmup",
    "raw": "raw",
    "conditional": "conditional",
}
#: the other per-sample scores (Scores.*)
OTHER_SCORE_NAMES = {
    "forget_events": "forgetting events",
    "confidence": "confidence",
    "variability": "variability",
    "el2n_t0": "EL2N at t = 0",
}
_WORDS = [
    (r"\bmean_p_true_since_learned\b", SCORE_NAMES["mean_p_true_since_learned"]),
    (r"\bforgetting_amount\b", SCORE_NAMES["forgetting_amount"]),
    (r"\bsoft_lambda\b", SCORE_NAMES["soft_lambda"]),
    (r"\bforget_events\b", "forgetting events"),
    (r"\bel2n_t0\b", "EL2N at t = 0"),
    (r"\bn_distinct_trained\b", "distinct samples trained"),
    (r"\bp_true\b", "p(true class)"),
    (r"\blambda_max\b", "λ max"),
    (r"\bheldout\b", "held-out"),
    (r"\blambda\b", "λ"),
    (r"\bR\^?2\b", "R²"),
    (r"\brho\b", "ρ"),
]


def plain(text) -> str:
    """``text`` in words for people: λ for lambda, R² for R2, p(true class) for p_true,
    the rank scores by name (see :data:`SCORE_NAMES`), and no snake_case left in the
    names this package writes (a trace label such as since_learned_soft becomes
    'since learned, on p(true class)')."""
    text = re.sub(
        r"\b(since_learned|since_warmup|raw|conditional)(_soft)?(?:_la(\d+))?\b", _trace_words, str(text)
    )
    for pattern, word in _WORDS:
        text = re.sub(pattern, word, text)
    return text


def _trace_words(m) -> str:
    if not (m[2] or m[3]) and m[1] in ("raw", "conditional"):
        return m[0]  # the words themselves
    return (
        TRACE_NAMES[m[1]]
        + (", on p(true class)" if m[2] else "")
        + (f", learned after {m[3]} correct" if m[3] else "")
    )


def score_name(score: str) -> str:
    return SCORE_NAMES.get(str(score), plain(score))


# ------------------------------------------------------------------------ style

#: gid of artists that are not data series (reference lines explained by their axis)
GUIDE = "guide"
#: gid of artists explained by a colour bar (hexbins, heatmaps, coloured scatters)
COLORBAR = "colorbar"
#: gid of images shown as they are (the gallery's thumbnails, labelled underneath)
PICTURE = "picture"


def set_style() -> None:
    """The style of every figure: seaborn whitegrid, the font sizes above, embedded
    TrueType fonts in PDFs, constrained layout."""
    sns.set_theme(
        context="paper",
        style="whitegrid",
        palette=list(ARCH_PALETTE),
        rc={
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "font.size": FONT,
            "axes.titlesize": TITLE_FONT,
            "axes.titleweight": "bold",
            "axes.labelsize": FONT,
            "xtick.labelsize": TICK_FONT,
            "ytick.labelsize": TICK_FONT,
            "legend.fontsize": TICK_FONT,
            "legend.title_fontsize": TICK_FONT,
            "legend.frameon": False,
            "figure.constrained_layout.use": True,
            "axes.linewidth": 0.6,
            "grid.linewidth": 0.5,
            "lines.linewidth": 1.2,
        },
    )


def new_figure(n_rows: int, n_cols: int, row_h: float = 2.4, width: float = PRINT_WIDTH, **kw):
    """The style set, and a Figure ``width`` wide of n_rows x n_cols panels (axes always
    2-D), each row ``row_h`` inches high."""
    set_style()
    n_rows, n_cols = max(n_rows, 1), max(n_cols, 1)
    fig = Figure(figsize=(min(width, PRINT_WIDTH), row_h * n_rows), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.04, hspace=0.04)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kw)
    return fig, axes


def new_mosaic(mosaic, height: float, width: float = PRINT_WIDTH, **kw):
    """The style set, and a Figure of the panels of ``mosaic`` (plt.subplot_mosaic's
    layout), ``width`` x ``height`` inches; returns (fig, name -> axes)."""
    set_style()
    fig = Figure(figsize=(min(width, PRINT_WIDTH), height), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.04, hspace=0.04)
    return fig, fig.subplot_mosaic(mosaic, **kw)


def stacked(rows, width: float = PRINT_WIDTH, legend_in: float = 0.0):
    """The style set, and a Figure ``width`` wide of rows of panels, each row (number of
    panels, height in inches[, width ratios]) its own grid, so that a row of two
    scatters can sit above a full-width forest; ``legend_in``: inches kept for the legend
    under the panels. Returns (fig, [[axes of row 0], [axes of row 1], ...])."""
    set_style()
    rows = [tuple(r) for r in rows]
    fig = Figure(figsize=(min(width, PRINT_WIDTH), sum(r[1] for r in rows) + legend_in), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.05, hspace=0.05)
    grid = fig.add_gridspec(len(rows), 1, height_ratios=[r[1] for r in rows])
    out = []
    for k, row in enumerate(rows):
        ratios = row[2] if len(row) > 2 else None
        sub = grid[k].subgridspec(1, max(row[0], 1), width_ratios=ratios)
        out.append([fig.add_subplot(sub[0, j]) for j in range(max(row[0], 1))])
    return fig, out


def chars_per_inch(size: float = TICK_FONT) -> float:
    """About how many characters of ``size`` points fit in an inch (DejaVu Sans)."""
    return 72.0 / (0.56 * size)


def panel_width(ax) -> float:
    """The width in inches of the slot a panel has in its figure's grid (before the
    layout takes its labels out of it)."""
    spec = ax.get_subplotspec()
    if spec is None:
        return ax.get_position().width * ax.figure.get_figwidth()
    return _slot_fraction(spec) * ax.figure.get_figwidth()


def _slot_fraction(spec) -> float:
    grid = spec.get_gridspec()
    ratios = grid.get_width_ratios() or [1] * grid.ncols
    frac = sum(ratios[c] for c in spec.colspan) / sum(ratios)
    parent = getattr(grid, "_subplot_spec", None)  # a grid inside a grid's cell
    return frac * (_slot_fraction(parent) if parent is not None else 1.0)


def empty(ax, message: str) -> None:
    """A panel that cannot be drawn: one line saying why, where the panel would be (no
    frame, no ticks)."""
    width = max(panel_width(ax), 1.0)
    ax.text(
        0.0,
        0.5,
        shorten(plain(message), int(width * chars_per_inch(SMALL_FONT))),
        ha="left",
        va="center",
        fontsize=SMALL_FONT,
        transform=ax.transAxes,
        color="0.3",
        style="italic",
    )
    ax.set_axis_off()


def wrap_text(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (at spaces)."""
    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=False)) or str(text)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    text = str(text)
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def tag(artist, name: str):
    """Mark ``artist`` (or each of a list/container) as part of the series ``name`` (its
    legend label); returns the artist."""
    if isinstance(artist, (list, tuple)):  # also errorbar and bar containers
        for part in artist:
            tag(part, name)
    elif artist is not None:
        artist.set_gid(name)
    return artist


def guide(artist):
    """Mark a reference line or band (zero, a bound, the diagonal) as not a series."""
    return tag(artist, GUIDE)


def arch_colors(archs: Iterable[str]) -> dict[str, str]:
    """The colour of each architecture: :data:`ARCH_PALETTE` in the order given (the
    grid's order, so that an architecture has one colour in every figure)."""
    return {a: ARCH_PALETTE[i % len(ARCH_PALETTE)] for i, a in enumerate(dict.fromkeys(archs))}


def figure_legend(fig: Figure, handles: dict) -> None:
    """One legend under the panels: ``handles`` maps label -> handle, in order. Columns
    are chosen so that every entry fits the figure's width and rows are even."""
    if not handles:
        return
    labels = [plain(label) for label in handles]
    entry = 0.35 + max(len(label) for label in labels) / chars_per_inch(TICK_FONT)  # inches per entry
    fit = max(1, min(len(labels), int(0.95 * fig.get_figwidth() / entry)))
    rows = math.ceil(len(labels) / fit)
    ncol = math.ceil(len(labels) / rows)
    fig.legend(
        list(handles.values()),
        labels,
        loc="outside lower center",
        ncol=ncol,
        handlelength=1.8,
        columnspacing=1.2,
    )


def save_figure(
    fig: Figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike, dpi: int = 150
) -> None:
    """Write ``fig`` as PDF and PNG (``dpi`` dots per inch; the PNG is figsize * dpi
    pixels), each to a temporary name renamed into place. PDF metadata carry no date, so
    the same figure gives the same bytes."""
    with atomic_path(pdf_path) as tmp:
        fig.savefig(tmp, format="pdf", dpi=dpi, metadata={"CreationDate": None})
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


def subsample(n: int, limit: int = 4000, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` points (a fixed random subsample)."""
    idx = np.arange(n)
    if n <= limit:
        return idx
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def title(ax, text: str, width: float | None = None, full: bool = False) -> None:
    """A left-aligned panel title in words for people, each line wrapped to the panel's
    width (or ``width`` inches), so that neighbouring titles never meet; ``full``: the
    panel has the figure's width to itself, and the title wraps at the figure's edge."""
    text = plain(text)
    if full:
        ax.set_title(text, loc="left", wrap=True)
        return
    width = width or max(panel_width(ax) - 0.55, 1.2)  # the slot, less the axis labels on its left
    chars = max(int(width * chars_per_inch(TITLE_FONT) * 0.85), 16)
    ax.set_title("\n".join(wrap_text(line, chars) for line in text.split("\n")), loc="left")

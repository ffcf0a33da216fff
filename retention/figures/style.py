"""The one look of every figure, and the small pieces every figure uses.

:func:`new_figure` sets the style (seaborn "whitegrid", paper context, colour-blind
palette) and returns a Figure with a grid of panels; :func:`save_figure` writes it as PDF
and PNG atomically. Every plotted series is tagged with :func:`tag` (its legend label as
the artist's ``gid``), every guide line (zero, a bound, a diagonal) with :func:`guide`,
so that the tests can check that each series has a legend entry.
"""

from __future__ import annotations

import math
import os
import textwrap
from typing import Iterable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..io import atomic_path  # noqa: E402

PAPER_COLOR = "#d62728"
NULL_COLOR = "0.55"
CHANCE_COLOR = "0.2"
MOST_COLOR = "#c44e52"
LEAST_COLOR = "#4c72b0"
KIND_COLORS = {"random": "#7f7f7f", "spaced": "#dd8452"}
#: gid of artists that are not data series (reference lines explained by their axis)
GUIDE = "guide"
#: gid of artists explained by a colour bar (hexbins, heatmaps, coloured scatters)
COLORBAR = "colorbar"
#: gid of images shown as they are (the gallery's thumbnails, labelled underneath)
PICTURE = "picture"
#: panel size in inches (width per column, height per row)
COL_W = 3.2
ROW_H = 2.6
FONT = 7


def set_style() -> None:
    """The style of every figure: seaborn whitegrid, paper context, colour-blind
    palette, embedded TrueType fonts in PDFs."""
    sns.set_theme(
        context="paper",
        style="whitegrid",
        palette="colorblind",
        font_scale=0.9,
        rc={
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "axes.titlesize": 7.5,
            "axes.titleweight": "bold",
            "axes.labelsize": FONT,
            "xtick.labelsize": 6.5,
            "ytick.labelsize": 6.5,
            "legend.fontsize": 6.5,
            "legend.frameon": False,
            "figure.constrained_layout.use": True,
        },
    )


def new_figure(n_rows: int, n_cols: int, col_w: float = COL_W, row_h: float = ROW_H, **kw):
    """The style set, and a Figure of n_rows x n_cols panels (axes always 2-D)."""
    set_style()
    n_rows, n_cols = max(n_rows, 1), max(n_cols, 1)
    fig = Figure(figsize=(col_w * n_cols, row_h * n_rows), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.04, h_pad=0.04)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kw)
    return fig, axes


def empty(ax, message: str) -> None:
    """A panel that says why it has nothing to show (no ticks, so no axis labels)."""
    ax.text(0.5, 0.5, wrap_text(message, 44), ha="center", va="center", fontsize=6.5, transform=ax.transAxes, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.grid(False)


def wrap_text(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (at spaces)."""
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with an ellipsis."""
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


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


def arch_colors(archs: Iterable[str]) -> dict[str, tuple]:
    archs = list(archs)
    pal = sns.color_palette("colorblind", max(len(archs), 3))
    return {a: pal[i % len(pal)] for i, a in enumerate(archs)}


def figure_legend(fig: Figure, handles: dict) -> None:
    """One legend under the panels: ``handles`` maps label -> handle, in order. Columns
    are chosen so that the rows are even (no orphan entry on a last line)."""
    if not handles:
        return
    labels = list(handles)
    entry = 0.5 + 0.052 * max(len(label) for label in labels)  # inches per entry at 6.5 pt
    fit = max(1, min(len(labels), int(0.92 * fig.get_figwidth() / entry)))
    rows = math.ceil(len(labels) / fit)
    ncol = math.ceil(len(labels) / rows)
    fig.legend(list(handles.values()), labels, loc="outside lower center", ncol=ncol)


def save_figure(fig: Figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike, dpi: int = 150) -> None:
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


def title(ax, text: str) -> None:
    """A left-aligned panel title, each line wrapped to the panel's width (about 14
    characters of 7.5 pt bold per inch), so that neighbouring titles never meet."""
    width = ax.get_position().width * ax.figure.get_figwidth()
    chars = max(int(width * 14), 16)
    ax.set_title("\n".join(wrap_text(line, chars) for line in str(text).split("\n")), loc="left")

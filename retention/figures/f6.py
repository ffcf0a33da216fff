"""F6, spaced repetition against random sampling (figure ``sampler``).

Per dataset (rows): held-out (solid) and train (dashed) accuracy per epoch of the
budgeted runs with each sampler, mean over seeds, with the range over seeds as a band;
the distinct samples each sampler trained on by each epoch (where recorded); and the
paired difference spaced minus random per architecture (dots: seeds; the findings with
their t intervals; the margin of the non-superiority test; the paper's "no improvement").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .forest import forest, panel_rows, row_label
from .inputs import FigureInputs, text_of
from .style import (
    KIND_COLORS,
    PAPER_COLOR,
    empty,
    figure_legend,
    guide,
    new_figure,
    tag,
    title,
)

SEED = "difference of one seed"
OUTCOMES = {"F6.heldout": "held-out accuracy", "F6.retention": "train retention"}


def _curves_panel(ax, cur: pd.DataFrame, dataset: str, arch: str, inputs: FigureInputs, legend: dict) -> None:
    a = cur[text_of(cur, "arch") == arch]
    title(ax, f"{dataset} · {inputs.label(arch)}\naccuracy per epoch")
    if a.empty:
        empty(ax, "no budgeted runs")
        return
    for kind in dict.fromkeys(text_of(a, "kind")):
        k = a[text_of(a, "kind") == kind]
        color = KIND_COLORS.get(kind, "black")
        n = k["seed"].nunique()
        for col, ls, what in (("heldout_acc", "-", "held-out"), ("train_acc", "--", "train")):
            g = k.groupby("t")[col]
            name = f"{kind} sampler, {what} (mean of {n} seeds)"
            tag(ax.plot(g.mean().index, g.mean().to_numpy(), ls, color=color, lw=1.4), name)
            legend.setdefault(name, Line2D([], [], ls=ls, color=color, lw=1.4))
            if col == "heldout_acc":
                band = f"{kind} sampler, held-out range over seeds"
                tag(ax.fill_between(g.mean().index, g.min().to_numpy(), g.max().to_numpy(), color=color, alpha=0.15,
                                    lw=0), band)
                legend.setdefault(band, Patch(color=color, alpha=0.25))
    guide(ax.axvline(0, color="0.4", lw=0.8, ls=":"))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("epoch t (dotted: end of head warmup)")
    ax.set_ylabel("accuracy")


def _coverage_panel(ax, cur: pd.DataFrame, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"{dataset}: distinct samples trained so far")
    col = pd.to_numeric(cur.get("n_distinct_trained", pd.Series(dtype=float)), errors="coerce")
    if cur.empty or not col.notna().any():
        empty(ax, "the curves table records no distinct-sample counts (n_distinct_trained)")
        return
    cur = cur.assign(n_distinct_trained=col)
    for (arch, kind), k in cur.groupby([text_of(cur, "arch"), text_of(cur, "kind")], sort=False):
        mean = k.groupby("t")["n_distinct_trained"].mean()
        name = f"{kind} sampler · {inputs.label(arch)}"
        style = "-" if arch == inputs.archs(dataset)[0] else "-."
        tag(ax.plot(mean.index, mean.to_numpy(), style, color=KIND_COLORS.get(kind, "black"), lw=1.3), name)
        legend.setdefault(name, Line2D([], [], ls=style, color=KIND_COLORS.get(kind, "black"), lw=1.3))
    ax.set_xlabel("epoch t")
    ax.set_ylabel("distinct samples trained\n(mean over seeds)")


def _differences_panel(ax, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    rows = panel_rows(ax, inputs, dataset, tuple(OUTCOMES), f"{dataset}: spaced minus random, final values")
    if rows.empty:
        return
    records = rows.to_dict("records")
    labels = [f"{OUTCOMES[r['id']]} · {row_label(r, inputs, with_dataset=False)}" for r in records]
    seeds = [_seed_differences(inputs.table("comparison", dataset), r) for r in records]
    forest(ax, rows, inputs, legend, labels, xlabel="spaced − random (95% t interval over seeds)", ylabel="outcome",
           extras=np.concatenate(seeds or [np.zeros(0)]).tolist())
    for i, (r, d) in enumerate(zip(records, seeds)):
        if d.size:
            tag(ax.plot(d, np.full(d.size, i + 0.25), "|", color="0.3", ms=6, mew=1.2), SEED)
            legend.setdefault(SEED, Line2D([], [], marker="|", color="0.3", ls="none", ms=6, mew=1.2))
        if r.get("paper_value", "") and not any(c.isdigit() for c in r["paper_value"]):
            name = f"paper: {r['paper_value']}"
            tag(ax.plot([0, 0], [i - 0.4, i + 0.4], color=PAPER_COLOR, ls="--", lw=1.3), name)
            legend.setdefault(name, Line2D([], [], color=PAPER_COLOR, ls="--", lw=1.3))


def _seed_differences(comparison: pd.DataFrame, row: dict) -> np.ndarray:
    """The per-seed differences of a findings row (comparison.csv, column differences)."""
    if comparison.empty:
        return np.zeros(0)
    outcome = {"F6.heldout": "heldout_acc", "F6.retention": "train_retention"}[row["id"]]
    hit = comparison[(text_of(comparison, "arch") == row["arch"]) & (text_of(comparison, "outcome") == outcome)]
    return np.array([float(x) for x in " ".join(text_of(hit, "differences")).split()], dtype=float)


def sampler(inputs: FigureInputs) -> Figure:
    """F6 (see the module docstring). Rows: datasets; columns: one curve panel per
    architecture, distinct samples trained, the differences."""
    archs = inputs.archs()
    fig, axes = new_figure(len(inputs.datasets), len(archs) + 2, col_w=3.3, row_h=2.8)
    legend: dict = {}
    for r, dataset in enumerate(inputs.datasets):
        cur = inputs.table("curves", dataset)
        for c, arch in enumerate(archs):
            _curves_panel(axes[r, c], cur, dataset, arch, inputs, legend)
        _coverage_panel(axes[r, -2], cur, dataset, inputs, legend)
        _differences_panel(axes[r, -1], dataset, inputs, legend)
    figure_legend(fig, legend)
    return fig

"""F6, spaced repetition against random sampling (figure ``sampler``, one per dataset of
the sampler comparison).

Top: held-out (solid) and train (dashed) accuracy per epoch of the budgeted runs with
each sampler (random: circles, spaced: triangles), mean over seeds, one panel per
architecture in its colour; and the distinct samples each sampler trained on by each
epoch (where recorded). Bottom: the paired difference spaced minus random per
architecture (ticks: seeds; the findings with their t intervals; the margin of the
non-superiority claim; the paper's "no improvement"), with the two verdicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures.forest import forest, forest_height, forest_units, row_label
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import (
    GUIDE_COLOR,
    NEUTRAL,
    SAMPLER_MARKERS,
    SPLIT_STYLES,
    empty,
    figure_legend,
    guide,
    stacked,
    tag,
    title,
)

SEED = "difference of one seed"
OUTCOMES = {"F6.heldout": "held-out accuracy", "F6.retention": "train retention"}
SPLITS = (("heldout_acc", "heldout", "held-out"), ("train_acc", "train", "train"))


def _marker_every(n: int) -> int:
    return max(1, n // 8)


def sampler_name(kind: str) -> str:
    """The legend entry of a sampler: its marker is told in the handle, the split by line style."""
    return f"{kind} sampler, mean over seeds (solid: held-out, dashed: train)"


def _sampler_handle(kind: str):
    return Line2D([], [], ls="-", marker=SAMPLER_MARKERS.get(kind, "s"), ms=3.5, color=NEUTRAL, lw=1.2)


def _curves_panel(ax, cur: pd.DataFrame, arch: str, inputs: FigureInputs, legend: dict) -> None:
    a = cur[text_of(cur, "arch") == arch]
    title(ax, f"{inputs.label(arch)}: accuracy")
    if a.empty:
        empty(ax, "no budgeted runs")
        return
    color = inputs.colors()[arch]
    low = 1.0
    for kind in dict.fromkeys(text_of(a, "kind")):
        k = a[text_of(a, "kind") == kind]
        marker = SAMPLER_MARKERS.get(kind, "s")
        for col, split, _ in SPLITS:
            mean = k.groupby("t")[col].mean()
            low = min(low, float(mean.min()))
            tag(
                ax.plot(
                    mean.index,
                    mean.to_numpy(),
                    ls=SPLIT_STYLES[split],
                    marker=marker,
                    ms=3,
                    color=color,
                    lw=1.1,
                    markevery=_marker_every(len(mean)),
                    mfc="white" if split == "train" else color,
                ),
                sampler_name(kind),
            )
        legend.setdefault(sampler_name(kind), _sampler_handle(kind))
    guide(ax.axvline(0, color=GUIDE_COLOR, lw=0.8, ls=":"))
    ax.set_ylim(
        max(0.0, low - 0.05 * (1.0 - low) - 0.01), 1.0 + 0.03 * (1.0 - low) + 0.002
    )  # zoomed to the curves
    ax.set_xlabel("epoch t (dotted: end of warmup)")
    ax.set_ylabel("accuracy")


def _coverage_panel(ax, cur: pd.DataFrame, inputs: FigureInputs, legend: dict) -> None:
    title(ax, "distinct samples trained so far")
    col = pd.to_numeric(cur.get("n_distinct_trained", pd.Series(dtype=float)), errors="coerce")
    if cur.empty or not col.notna().any():
        empty(ax, "the curves table records no distinct-sample counts")
        return
    cur = cur.assign(n_distinct_trained=col)
    colors = inputs.colors()
    for (arch, kind), k in cur.groupby([text_of(cur, "arch"), text_of(cur, "kind")], sort=False):
        mean = k.groupby("t")["n_distinct_trained"].mean()
        tag(
            ax.plot(
                mean.index,
                mean.to_numpy(),
                "-",
                marker=SAMPLER_MARKERS.get(kind, "s"),
                ms=3,
                color=colors.get(arch, NEUTRAL),
                lw=1.1,
                markevery=_marker_every(len(mean)),
            ),
            sampler_name(kind),
        )
        legend.setdefault(sampler_name(kind), _sampler_handle(kind))
    ax.set_xlabel("epoch t")
    ax.set_ylabel("distinct samples trained\n(mean over seeds)")


def _differences_panel(ax, dataset: str, rows: pd.DataFrame, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"{dataset} · F6: spaced minus random sampler, final values", full=True)
    if rows.empty:
        empty(ax, f"{dataset}: no F6 rows in the findings table")
        return
    records = rows.to_dict("records")
    seeds = [_seed_differences(inputs.table("comparison", dataset), r) for r in records]
    ys = forest(
        ax,
        rows,
        inputs,
        legend,
        f6_labels(rows, inputs),
        xlabel="spaced − random (95% t interval over seeds)",
        extras=np.concatenate(seeds or [np.zeros(0)]).tolist(),
    )
    for y, d in zip(ys, seeds):
        if d.size:
            tag(ax.plot(d, np.full(d.size, y + 0.3), "|", color="0.3", ms=6, mew=1.2), SEED)
            legend.setdefault(SEED, Line2D([], [], marker="|", color="0.3", ls="none", ms=6, mew=1.2))


def f6_labels(rows: pd.DataFrame, inputs: FigureInputs) -> list[str]:
    return [
        f"{OUTCOMES[r['id']]} · {row_label(r, inputs, with_dataset=False)}" for r in rows.to_dict("records")
    ]


def _seed_differences(comparison: pd.DataFrame, row: dict) -> np.ndarray:
    """The per-seed differences of a findings row (comparison.csv, column differences)."""
    if comparison.empty:
        return np.zeros(0)
    outcome = {"F6.heldout": "heldout_acc", "F6.retention": "train_retention"}[row["id"]]
    hit = comparison[
        (text_of(comparison, "arch") == row["arch"]) & (text_of(comparison, "outcome") == outcome)
    ]
    return np.array([float(x) for x in " ".join(text_of(hit, "differences")).split()], dtype=float)


def sampler(inputs: FigureInputs) -> Figure:
    """F6 of one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "sampler")
    archs = inputs.archs()
    cur = inputs.table("curves", dataset)
    rows = pd.concat([inputs.rows(i, dataset) for i in OUTCOMES])
    fig, axes = stacked(
        [(len(archs) + 1, 2.3), (1, forest_height(forest_units(rows, f6_labels(rows, inputs), inputs)))],
        legend_in=0.6,
    )
    legend: dict = {}
    for ax, arch in zip(axes[0], archs):
        _curves_panel(ax, cur, arch, inputs, legend)
    _coverage_panel(axes[0][-1], cur, inputs, legend)
    _differences_panel(axes[1][0], dataset, rows, inputs, legend)
    figure_legend(fig, legend)
    return fig

"""F4, the class level: which classes are forgotten, and is it about visual similarity?
(figure ``class_forgetting``)

Per dataset (rows): the most and least forgotten classes of each architecture by name
(bars: mean lambda of the class's samples, mean over seeds; dots: single runs; hollow
bars: classes with fewer than ``min_samples`` eligible samples), class forgetting
against the largest held-out confusion rate and against the nearest centroid cosine
(one point per class and architecture), and the F4 findings with their intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import marks
from .forest import forest, panel_rows, row_label
from .inputs import FigureInputs, text_of
from .style import (
    LEAST_COLOR,
    MOST_COLOR,
    arch_colors,
    empty,
    figure_legend,
    new_figure,
    shorten,
    tag,
    title,
)

SHOWN = 6  # classes shown at each end of the ranking
MOST = "most forgotten classes (mean λ over seeds)"
LEAST = "least forgotten classes"
RUN = "one run"
MEASURES = (("max_confusion", "held-out confusion", "largest held-out confusion rate with another class"),
            ("nearest_cosine", "centroid cosine", "cosine to the nearest class centroid (t = 0)"))


def ranked_classes(t: pd.DataFrame, arch: str) -> pd.DataFrame:
    """The ``SHOWN`` most and least forgotten classes of an architecture, most first,
    with a column ``end`` ('most' or 'least')."""
    a = t[(text_of(t, "kind") == "arch_class") & (text_of(t, "arch") == arch)]
    a = a.assign(rank=pd.to_numeric(a["rank"], errors="coerce")).dropna(subset=["rank"]).sort_values("rank")
    if len(a) <= 2 * SHOWN:
        half = (len(a) + 1) // 2
        return a.assign(end=["most"] * half + ["least"] * (len(a) - half))
    return pd.concat([a.head(SHOWN).assign(end="most"), a.tail(SHOWN).assign(end="least")])


def _bars_panel(ax, dataset: str, arch: str, inputs: FigureInputs, legend: dict) -> None:
    t = inputs.table("f4_class", dataset)
    title(ax, f"{dataset} · {inputs.label(arch)}")
    ranked = ranked_classes(t, arch) if len(t) else pd.DataFrame()
    if ranked.empty:
        empty(ax, "no ranked classes")
        return
    runs = t[(text_of(t, "kind") == "run_class") & (text_of(t, "arch") == arch)]
    y = np.arange(len(ranked))
    ticks = []
    for yi, row in zip(y, ranked.to_dict("records")):
        small = inputs.small(row["n_samples"])
        color = MOST_COLOR if row["end"] == "most" else LEAST_COLOR
        name = marks.hollow_label(inputs.min_samples) if small else (MOST if row["end"] == "most" else LEAST)
        tag(ax.barh([yi], [float(row["value"])], color="white" if small else color, edgecolor=color, alpha=0.85), name)
        rv = pd.to_numeric(runs[pd.to_numeric(runs["class_index"]) == float(row["class_index"])]["value"], errors="coerce")
        tag(ax.plot(rv.dropna(), np.full(rv.notna().sum(), yi), ".", color="0.2", ms=3), RUN)
        ticks.append(f"{shorten(row['class_name'], 18)} (n = {int(row['n_samples'])})")
    legend.setdefault(MOST, Patch(color=MOST_COLOR, alpha=0.85))
    legend.setdefault(LEAST, Patch(color=LEAST_COLOR, alpha=0.85))
    legend.setdefault(RUN, Line2D([], [], marker=".", color="0.2", ls="none"))
    legend.update({k: h for k, h in marks.solid_handles(inputs.min_samples).items() if k not in legend})
    ax.set_yticks(y, ticks)
    ax.invert_yaxis()
    marks.lambda_bounds(ax, inputs.lambda_max, "x")
    ax.set_xlim(-0.05 * inputs.lambda_max, 1.05 * inputs.lambda_max)
    ax.set_xlabel(marks.lambda_label(inputs.lambda_max, "mean λ of the class's samples"))
    ax.set_ylabel("class (n: eligible samples, all seeds)")
    ax.grid(axis="y", visible=False)


def _similarity_panel(ax, dataset: str, measure: tuple, inputs: FigureInputs, colors, legend: dict) -> None:
    column, case, xlabel = measure
    s = inputs.table("f4_class_similarity", dataset)
    title(ax, f"{dataset}: class forgetting vs {case}")
    if s.empty or column not in s.columns:
        empty(ax, "no class similarity (needs traces with held-out predictions)")
        return
    if not np.isfinite(pd.to_numeric(s[column], errors="coerce")).any():  # imported runs without it
        empty(ax, f"no {case}: not recorded in the runs' traces")
        return
    counts = inputs.table("f4_class", dataset)
    counts = counts[text_of(counts, "kind") == "arch_class"] if len(counts) else counts
    for arch in inputs.archs(dataset):
        p = s[text_of(s, "arch") == arch]
        n = p["class_index"].map(lambda k: _class_n(counts, arch, k))
        small = np.array([inputs.small(v) for v in n], dtype=bool)
        x, y = pd.to_numeric(p[column], errors="coerce"), pd.to_numeric(p["forgetting"], errors="coerce")
        name = f"{inputs.label(arch)}: one class"
        tag(ax.scatter(x[~small], y[~small], s=14, color=colors[arch], lw=0, alpha=0.8), name)
        legend.setdefault(name, Line2D([], [], marker="o", ls="none", color=colors[arch], ms=4))
        if small.any():
            tag(ax.scatter(x[small], y[small], s=14, facecolor="white", edgecolor=colors[arch], lw=0.8),
                marks.hollow_label(inputs.min_samples))
            legend.update({k: h for k, h in marks.solid_handles(inputs.min_samples).items() if k not in legend})
    marks.lambda_bounds(ax, inputs.lambda_max, "y")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(marks.lambda_label(inputs.lambda_max, "mean λ of the class"))


def _class_n(counts: pd.DataFrame, arch: str, k) -> float:
    if counts.empty:
        return float("nan")
    hit = counts[(text_of(counts, "arch") == arch) & (pd.to_numeric(counts["class_index"]) == float(k))]
    return float(hit["n_samples"].iloc[0]) if len(hit) else float("nan")


def _forest_panel(ax, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    rows = panel_rows(ax, inputs, dataset, ("F4.consistency", "F4.cross", "F4.similarity"), f"{dataset}: F4 findings")
    if rows.empty:
        return
    what = {"F4.consistency": "across seeds", "F4.cross": "across architectures", "F4.similarity": "vs"}
    labels = [f"{what[r['id']]} " + row_label(r, inputs, with_dataset=False) for r in rows.to_dict("records")]
    forest(ax, rows, inputs, legend, labels, xlabel="Spearman ρ over classes (95% interval)",
           ylabel="comparison and architecture")


def class_forgetting(inputs: FigureInputs) -> Figure:
    """F4 (see the module docstring). Rows: datasets; columns: one bar panel per
    architecture, the two similarity measures, the findings."""
    archs = inputs.archs()
    colors = arch_colors(archs)
    fig, axes = new_figure(len(inputs.datasets), len(archs) + 3, col_w=3.2, row_h=3.0)
    legend: dict = {}
    for r, dataset in enumerate(inputs.datasets):
        for c, arch in enumerate(archs):
            _bars_panel(axes[r, c], dataset, arch, inputs, legend)
        for c, measure in enumerate(MEASURES, start=len(archs)):
            _similarity_panel(axes[r, c], dataset, measure, inputs, colors, legend)
        _forest_panel(axes[r, -1], dataset, inputs, legend)
    figure_legend(fig, legend)
    return fig

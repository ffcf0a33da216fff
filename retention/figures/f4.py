"""F4, the class level: which classes are forgotten, and is it about visual similarity?
(figure ``class_forgetting``, one per dataset)

Top: the most and least forgotten classes of each architecture by name (bars in the
architecture's colour, solid for the most and hatched for the least forgotten: mean λ of
the class's samples, mean over seeds; dots: single runs; white bars: classes with fewer
than ``min_samples`` eligible samples). Middle: class forgetting against the largest
held-out confusion rate and against the nearest centroid cosine (one point per class and
architecture). Bottom: the F4 findings with their intervals (exploratory: F4 has no
primary hypothesis).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from retention.figures import marks
from retention.figures.forest import forest, forest_height, forest_units
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import EXTREME_HATCH, empty, figure_legend, shorten, stacked, tag, title

SHOWN = 6  # classes shown at each end of the ranking
MOST = "most forgotten classes (solid; mean λ over seeds)"
LEAST = "least forgotten classes (hatched)"
RUN = "one run"
MEASURES = (
    ("max_confusion", "held-out confusion", "largest held-out confusion rate\nwith another class"),
    ("nearest_cosine", "centroid cosine", "cosine to the nearest class\ncentroid at t = 0"),
)


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
    title(ax, f"{inputs.label(arch)}: classes by mean λ")
    ranked = ranked_classes(t, arch) if len(t) else pd.DataFrame()
    if ranked.empty:
        empty(ax, "no ranked classes")
        return
    runs = t[(text_of(t, "kind") == "run_class") & (text_of(t, "arch") == arch)]
    y = np.arange(len(ranked))
    ticks = []
    color = inputs.colors()[arch]
    for yi, row in zip(y, ranked.to_dict("records")):
        small = inputs.small(row["n_samples"])
        end = row["end"]
        name = marks.hollow_label(inputs.min_samples) if small else (MOST if end == "most" else LEAST)
        tag(
            ax.barh(
                [yi],
                [float(row["value"])],
                color="white" if small or end == "least" else color,
                edgecolor=color,
                hatch=EXTREME_HATCH[end],
                lw=0.8,
                alpha=0.9,
            ),
            name,
        )
        rv = pd.to_numeric(
            runs[pd.to_numeric(runs["class_index"]) == float(row["class_index"])]["value"], errors="coerce"
        )
        tag(ax.plot(rv.dropna(), np.full(rv.notna().sum(), yi), ".", color="0.2", ms=3), RUN)
        ticks.append(f"{shorten(row['class_name'], 16)} (n = {int(row['n_samples'])})")
    legend.setdefault(MOST, Patch(facecolor="0.45", edgecolor="0.45"))
    legend.setdefault(LEAST, Patch(facecolor="white", edgecolor="0.45", hatch=EXTREME_HATCH["least"]))
    legend.setdefault(RUN, Line2D([], [], marker=".", color="0.2", ls="none"))
    legend.update({k: h for k, h in marks.solid_handles(inputs.min_samples).items() if k not in legend})
    ax.set_yticks(y, ticks)
    ax.invert_yaxis()
    marks.lambda_bounds(ax, inputs.lambda_max, "x")
    ax.set_xlim(-0.05 * inputs.lambda_max, 1.05 * inputs.lambda_max)
    ax.set_xlabel(marks.lambda_label(inputs.lambda_max, "mean λ of its samples"))
    ax.set_ylabel("class (n: eligible samples)")
    ax.grid(axis="y", visible=False)


def _similarity_panel(ax, dataset: str, measure: tuple, inputs: FigureInputs, colors, legend: dict) -> None:
    column, case, xlabel = measure
    s = inputs.table("f4_class_similarity", dataset)
    title(ax, f"class forgetting vs {case}")
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
        n = [_class_n(counts, arch, k) for k in p["class_index"]]
        small = np.array([inputs.small(v) for v in n], dtype=bool)
        x, y = pd.to_numeric(p[column], errors="coerce"), pd.to_numeric(p["forgetting"], errors="coerce")
        name = f"{inputs.label(arch)}: one class"
        tag(ax.scatter(x[~small], y[~small], s=14, color=colors[arch], lw=0, alpha=0.8), name)
        legend.setdefault(name, Line2D([], [], marker="o", ls="none", color=colors[arch], ms=4))
        if small.any():
            tag(
                ax.scatter(x[small], y[small], s=14, facecolor="white", edgecolor=colors[arch], lw=0.8),
                marks.hollow_label(inputs.min_samples),
            )
            legend.update(
                {k: h for k, h in marks.solid_handles(inputs.min_samples).items() if k not in legend}
            )
    marks.lambda_bounds(ax, inputs.lambda_max, "y")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(marks.lambda_label(inputs.lambda_max, "mean λ of the class"))


def _class_n(counts: pd.DataFrame, arch: str, k) -> float:
    if counts.empty:
        return float("nan")
    hit = counts[(text_of(counts, "arch") == arch) & (pd.to_numeric(counts["class_index"]) == float(k))]
    return float(hit["n_samples"].iloc[0]) if len(hit) else float("nan")


def _forest_panel(ax, dataset: str, rows: pd.DataFrame, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"{dataset} · F4: Spearman ρ of class forgetting (exploratory)", full=True)
    if rows.empty:
        empty(ax, f"{dataset}: no F4 rows in the findings table")
        return
    forest(ax, rows, inputs, legend, f4_labels(rows, inputs), xlabel="Spearman ρ over classes (95% interval)")


def f4_labels(rows: pd.DataFrame, inputs: FigureInputs) -> list[str]:
    what = {"F4.consistency": "across seeds", "F4.cross": "across architectures"}
    labels = []
    for r in rows.to_dict("records"):
        arch = inputs.pair_label(r["arch"], r.get("arch_b", ""))
        labels.append(
            f"against {r['case']} · {arch}" if r["id"] == "F4.similarity" else f"{what[r['id']]} · {arch}"
        )
    return labels


def class_forgetting(inputs: FigureInputs) -> Figure:
    """F4 of one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "class_forgetting")
    archs = inputs.archs()
    colors = inputs.colors()
    rows = pd.concat([inputs.rows(i, dataset) for i in ("F4.consistency", "F4.cross", "F4.similarity")])
    fig, axes = stacked(
        [
            (len(archs), 2.6),
            (len(MEASURES), 2.3),
            (1, forest_height(forest_units(rows, f4_labels(rows, inputs), inputs))),
        ],
        legend_in=0.6,
    )
    legend: dict = {}
    for ax, arch in zip(axes[0], archs):
        _bars_panel(ax, dataset, arch, inputs, legend)
    for ax, measure in zip(axes[1], MEASURES):
        _similarity_panel(ax, dataset, measure, inputs, colors, legend)
    _forest_panel(axes[2][0], dataset, rows, inputs, legend)
    figure_legend(fig, legend)
    return fig

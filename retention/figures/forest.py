"""Any finding, by registry id, as a forest plot (:func:`finding_figure`), and the forest
panel the other figures reuse (:func:`forest`).

One line per row of the findings table (dataset, architecture or pair, case): the value
and its 95% interval (hollow where it rests on too few samples or has no interval), the
memoryless null's mean and 95% range, the chance level (findings with a ``chance``
column) and the paper's value (only where it attaches: the paper's datasets and
architectures). Rows without an estimate are listed with the reason.
"""

from __future__ import annotations

import re
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from ..errors import ConfigError
from ..stats.estimate import Finding
from ..stats.registry import FINDINGS, by_id
from . import marks
from .inputs import FigureInputs, number, text_of
from .style import empty, figure_legend, guide, new_figure, set_style, title, wrap_text

ROW_IN = 0.24  # inches per forest row


def row_label(row, inputs: FigureInputs, with_dataset: bool = True) -> str:
    """'digits · small CNN vs small ViT · case' for a findings row."""
    parts = [str(row["dataset"])] if with_dataset else []
    if row.get("arch", ""):
        parts.append(inputs.pair_label(row["arch"], row.get("arch_b", "")))
    if row.get("case", ""):
        parts.append(str(row["case"]))
    return " · ".join(parts) or "all runs"


def panel_rows(ax, inputs: FigureInputs, dataset: str, ids: Sequence[str], heading: str) -> pd.DataFrame:
    """The findings rows of ``ids`` (in that order) of one dataset for a forest panel
    titled ``heading``; with none, the panel says so."""
    rows = pd.concat([inputs.rows(i, dataset) for i in ids])
    title(ax, heading)
    if rows.empty:
        empty(ax, f"no rows of {', '.join(ids)} for {dataset} in the findings table")
    return rows


def reference_marks(ax, i: int, row: dict, legend: dict) -> list[float]:
    """The null range, chance level, claim bound and paper value of one forest row;
    returns their values (for the axis limits)."""
    out = []
    if marks.null_range(ax, i, row):
        legend.setdefault(marks.NULL, marks.null_handle())
        out += [number(row.get("null_iid_low")), number(row.get("null_iid_high"))]
    if row.get("id") not in marks.NO_CHANCE_LEVEL and marks.chance(ax, i, row.get("chance")):
        legend.setdefault(marks.CHANCE, marks.chance_handle())
        out.append(number(row.get("chance")))
    bound = marks.claim_bound(ax, i, row)
    if bound:
        legend.setdefault(bound, marks.bound_handle(bound))
        out += [number(row.get("bound")), -number(row.get("bound"))]
    if marks.paper(ax, i, row.get("paper_value", "")):
        legend.setdefault(marks.PAPER, marks.paper_handle())
        out += list(marks.paper_number(row["paper_value"]))
    return out


def forest(ax, rows: pd.DataFrame, inputs: FigureInputs, legend: dict, labels: Sequence[str],
           colors: Sequence | None = None, xlabel: str = "value", limits=None, extras: Sequence = (),
           ylabel: str = "architecture") -> None:
    """One line per row of ``rows`` (findings-table rows) from top to bottom, with the
    null, chance, claim-bound and paper marks; y tick labels ``labels`` plus why a row is
    hollow or empty. Adds what it draws to ``legend`` (label -> handle). The value axis
    covers the values and marks (and ``extras``, what the caller adds), and the intervals
    (see :func:`retention.figures.marks.value_limits`)."""
    values, refs, intervals, ticks = [], list(extras), [], []
    for i, (row, label) in enumerate(zip(rows.to_dict("records"), labels)):
        why = marks.caveat(row, inputs.min_samples)
        refs += reference_marks(ax, i, row, legend)
        value, low, high = (number(row.get(k)) for k in ("value", "ci_low", "ci_high"))
        if value == value:
            name = marks.hollow_label(inputs.min_samples) if why else marks.SOLID
            color = colors[i] if colors is not None else "0.15"
            marks.estimate(ax, i, value, low, high, color, name=name, hollow=bool(why))
            values.append(value)
            intervals += [low, high]
        ticks.append(wrap_text(label + (f" [{inputs.name_archs(why)}]" if why else ""), 44))
    legend.update({k: h for k, h in marks.solid_handles(inputs.min_samples).items() if k not in legend})
    guide(ax.axvline(0, color="0.5", lw=0.7, zorder=0))
    ax.set_yticks(range(len(ticks)), ticks)
    ax.set_ylim(len(ticks) - 0.5, -0.5)
    if limits is None and len(rows) and str(rows["id"].iloc[0]) in by_id():
        limits = by_id()[str(rows["id"].iloc[0])].limits
    marks.set_value_axis(ax, values, refs, intervals, limits or (-float("inf"), float("inf")))
    ax.set_xlabel(xlabel, loc="right")  # long row labels make the panel narrow: no overhang on the right
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", visible=False)


def finding_figure(inputs: FigureInputs, ids: Sequence[str] | None = None,
                   findings: Sequence[Finding] = FINDINGS) -> Figure:
    """A forest plot of each finding of ``ids`` (default: the primary findings of the
    registry ``findings``), one panel per id (its own value axis), one line per dataset,
    architecture and case, with the verdict of each primary row on the right."""
    registry = by_id(tuple(findings))
    if ids is None:
        ids = [f.id for f in findings if f.primary]
    unknown = [i for i in ids if i not in registry]
    if unknown:
        raise ConfigError(f"unknown finding id {unknown[0]!r}; known: {', '.join(registry)}")
    table = inputs.findings if inputs.findings is not None else pd.DataFrame(columns=["id"])
    parts = [(i, table[(table["id"] == i) & table["dataset"].isin(inputs.datasets)]) for i in ids]
    heights = [max(len(p), 3) * ROW_IN + 0.9 for _, p in parts]
    set_style()
    fig = Figure(figsize=(7.0, sum(heights)), layout="constrained")
    axes = fig.subplots(len(parts), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    legend: dict = {}
    for ax, (finding_id, rows) in zip(axes, parts):
        finding = registry[finding_id]
        title(ax, f"{finding_id}: {template_text(finding.label)}")
        if rows.empty:
            empty(ax, f"{finding_id}: no rows in the findings table for {', '.join(inputs.datasets)}")
            continue
        forest(ax, rows, inputs, legend, [row_label(r, inputs) for r in rows.to_dict("records")],
               xlabel=f"estimate and 95% interval (unit of replication: {finding.unit})", limits=finding.limits,
               ylabel="dataset, model")
        if finding.primary:
            verdicts(ax, rows)
    figure_legend(fig, legend)
    return fig


def verdicts(ax, rows: pd.DataFrame) -> None:
    """Each row's verdict as a tick label on the right (primary findings)."""
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(range(len(rows)), [str(v) or "no verdict" for v in text_of(rows, "verdict")])
    right.set_ylabel("verdict")
    right.grid(False)


def template_text(label: str) -> str:
    """A label template without its placeholders: 'F1 top-{q:.0%} Jaccard ({arch} vs
    {arch_b})' -> 'F1 top-q Jaccard'."""
    label = re.sub(r"\s*\((?:[^()]*?\{\w+[^}]*\}[^()]*?)\)", "", label)  # '(... {arch} ...)'
    words = {"arch": "A", "arch_b": "B", "score": "the rank score"}
    return re.sub(r"\{(\w+)[^}]*\}", lambda m: words.get(m[1], m[1]), label).strip(" ,")


def new_forest_figure(n_rows: int, n_cols: int, rows_per_panel: int):
    """A Figure of forest panels sized for ``rows_per_panel`` lines each."""
    return new_figure(n_rows, n_cols, col_w=3.6, row_h=rows_per_panel * ROW_IN + 1.1)

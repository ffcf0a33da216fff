"""Any finding, by registry id, as a forest plot (:func:`finding_figure`), and the forest
panel every figure reuses (:func:`forest`).

One line per row of the findings table (dataset, architecture or pair, case): the value
and its 95% interval (hollow where it rests on too few samples or has no interval), both
memoryless nulls' 95% ranges with the one the null verdict rests on outlined, the chance
level (findings with a ``chance`` column), the claim's bound, the paper's settling
criterion where one applies (:data:`SETTLING`) and the paper's value (only where it
attaches). On the right of each primary row: its two verdicts with their Holm p
(:func:`verdict_text`); of a row with a settling criterion, whether it lies above it. Rows
without an estimate are listed with the reason. The value axis always shows 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from retention.errors import ConfigError
from retention.figures import marks
from retention.figures.inputs import FigureInputs, number
from retention.figures.style import (
    NEUTRAL,
    PRINT_WIDTH,
    SMALL_FONT,
    chars_per_inch,
    empty,
    figure_legend,
    guide,
    plain,
    score_name,
    set_style,
    title,
    wrap_text,
)
from retention.findings.numbers import p_value
from retention.stats.estimate import Finding
from retention.stats.registry import FINDINGS, by_id

ROW_IN = 0.3  # inches per forest row
#: the rows a settling criterion of the paper applies to: finding id -> the id of the
#: exploratory row that tests it (column ``criterion``; ``above``: 1 where the 95%
#: interval lies above it)
SETTLING = {"F1.cross": "F1.settling", "F3.within": "F3.settling"}
#: gid of the verdict texts on the right of the primary rows
VERDICT = "verdict"
#: the width of a full-width forest's row labels, inches (the verdicts take about 1.45 on the right)
LABEL_IN = 1.9


def row_label(row, inputs: FigureInputs, with_dataset: bool = True) -> str:
    """'digits · small CNN vs small ViT · case' for a findings row."""
    parts = [str(row["dataset"])] if with_dataset else []
    if row.get("arch", ""):
        parts.append(inputs.pair_label(row["arch"], row.get("arch_b", "")))
    if row.get("case", ""):
        parts.append(plain(row["case"]))
    return " · ".join(parts) or "all runs"


def panel_rows(ax, inputs: FigureInputs, dataset: str, ids: Sequence[str], heading: str) -> pd.DataFrame:
    """The findings rows of ``ids`` (in that order) of one dataset for a forest panel
    titled ``heading``; with none, the panel says so in one line."""
    rows = pd.concat([inputs.rows(i, dataset) for i in ids])
    title(ax, heading)
    if rows.empty:
        empty(ax, f"{dataset}: no rows of this finding in the findings table")
    return rows


def verdict_text(row) -> str:
    """The two verdicts of a primary row with their Holm p, in two lines."""
    claim, null = str(row.get("claim_verdict", "") or ""), str(row.get("null_verdict", "") or "")
    if not claim:
        return ""
    p, p_null = p_value(row.get("p_holm")), p_value(row.get("p_null_holm"))
    kind = str(row.get("null_kind", "") or "")
    return (
        f"claim: {claim}"
        + (f", Holm p {p}" if p else "")
        + "\n"
        + f"null{f' ({kind})' if kind else ''}: {null}"
        + (f", Holm p {p_null}" if p_null else "")
    )


def settling_text(settling) -> str:
    """Whether a row lies above the paper's settling criterion (its settling row), with
    the exploratory p of the one-sided test against it."""
    crit = number(settling.get("criterion"))
    above = number(settling.get("above"))
    p = p_value(settling.get("p_value"))
    what = {1.0: "above", 0.0: "not shown above"}.get(above, "no interval for")
    return f"settling: {what} {crit:g}" + (f", p {p}" if p else "")


def right_text(row: dict, inputs: FigureInputs) -> str:
    """The text on the right of a forest row: the two verdicts of a primary row, and
    whether it lies above the paper's settling criterion where one applies."""
    lines = [verdict_text(row)] if row.get("primary") else []
    settling = _settling_row(row, inputs)
    if settling is not None and np.isfinite(number(settling.get("criterion"))):
        lines.append(settling_text(settling))
    return "\n".join(line for line in lines if line)


def _settling_row(row: dict, inputs: FigureInputs) -> dict | None:
    sid = SETTLING.get(str(row.get("id")))
    if sid is None:
        return None
    hit = inputs.rows(sid, row["dataset"], arch=row.get("arch", ""), arch_b=row.get("arch_b", ""))
    return hit.iloc[0].to_dict() if len(hit) else None


def reference_marks(ax, i: float, row: dict, inputs: FigureInputs, legend: dict) -> list[float]:
    """The nulls, chance level, claim bound, settling criterion and paper value of one
    forest row at y = ``i``; returns their values (for the axis limits)."""
    out = []
    kinds = marks.null_ranges(ax, i, row)
    if kinds:
        legend.update(
            {
                k: h
                for k, h in marks.null_handles(kinds, bool(row.get("null_kind"))).items()
                if k not in legend
            }
        )
        for kind in kinds:
            out += list(marks.null_range(row, kind))
    if row.get("id") not in marks.NO_CHANCE_LEVEL and marks.chance(ax, i, row.get("chance")):
        legend.setdefault(marks.CHANCE, marks.chance_handle())
        out.append(number(row.get("chance")))
    bound = marks.claim_bound(ax, i, row)
    if bound:
        legend.setdefault(bound, marks.bound_handle(bound))
        out += [number(row.get("bound")), -number(row.get("bound"))]
    settling = _settling_row(row, inputs)
    if settling is not None and marks.criterion(ax, i, settling.get("criterion")):
        legend.setdefault(marks.CRITERION, marks.criterion_handle())
        out.append(number(settling.get("criterion")))
    if marks.paper(ax, i, row.get("paper_value", "")):
        legend.setdefault(marks.PAPER, marks.paper_handle())
        out += list(marks.paper_number(row["paper_value"]))
    return out


def _row_color(row: dict, inputs: FigureInputs):
    """An architecture's colour for a row of one architecture, else neutral."""
    arch, arch_b = str(row.get("arch", "") or ""), str(row.get("arch_b", "") or "")
    return inputs.colors().get(arch, NEUTRAL) if arch and not arch_b else NEUTRAL


def tick_text(
    row: dict, label: str, inputs: FigureInputs, label_chars: int | None = None, reasons: bool = True
) -> str:
    """The y tick label of a forest row: ``label`` in words, a paper value that is not a
    number, and why the row is hollow or empty, wrapped to ``label_chars``."""
    why = marks.caveat(row, inputs.min_samples, reasons)
    paper = str(row.get("paper_value", "") or "")
    words = f" (paper: {paper})" if paper and marks.paper_number(paper) is None else ""
    text = plain(label) + words + (f" [{inputs.name_archs(why)}]" if why else "")
    return wrap_text(text, label_chars or int(LABEL_IN * chars_per_inch()))


def _units(*texts: str) -> float:
    """Rows of a forest are one unit (ROW_IN) high for up to two lines of label or of
    text on the right, more for more."""
    return max(1.0, *((t.count("\n") + 1) / 2 for t in texts if t))


def forest_units(
    rows: pd.DataFrame,
    labels: Sequence[str],
    inputs: FigureInputs,
    label_chars: int | None = None,
    reasons: bool = True,
    right: bool = True,
) -> float:
    """The height of a forest of ``rows`` in units of ROW_IN (see :func:`forest_height`)."""
    return sum(
        _units(tick_text(r, lab, inputs, label_chars, reasons), right_text(r, inputs) if right else "")
        for r, lab in zip(rows.to_dict("records"), labels)
    )


def forest(
    ax,
    rows: pd.DataFrame,
    inputs: FigureInputs,
    legend: dict,
    labels: Sequence[str],
    xlabel: str = "value",
    limits=None,
    extras: Sequence = (),
    ylabel: str = "",
    label_chars: int | None = None,
    right: bool = True,
    reasons: bool = True,
) -> list[float]:
    """One line per row of ``rows`` (findings-table rows) from top to bottom, with the
    nulls, chance, claim-bound, criterion and paper marks; y tick labels ``labels`` (with
    why a row is hollow or empty, and a paper value that is not a number, wrapped to
    ``label_chars``); the verdicts on the right (``right``). ``reasons``: a row without an
    estimate gives the gist of its note (else only that it has none). Adds what it draws
    to ``legend`` (label -> handle). The value axis covers the values, the marks, 0 and
    ``extras`` (what the caller adds), and the intervals (see
    :func:`retention.figures.marks.value_limits`). Returns each row's y (rows with long
    labels are higher: :func:`forest_units`)."""
    records = rows.to_dict("records")
    ticks = [tick_text(r, lab, inputs, label_chars, reasons) for r, lab in zip(records, labels)]
    rights = [right_text(r, inputs) if right else "" for r in records]
    heights = np.array([_units(t, r) for t, r in zip(ticks, rights)])
    ys = list(np.cumsum(heights) - heights / 2)
    values, refs, intervals = [], list(extras), []
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for y, row, text in zip(ys, records, rights):
        why = marks.caveat(row, inputs.min_samples)
        refs += reference_marks(ax, y, row, inputs, legend)
        if text:
            ax.text(1.02, y, text, transform=trans, ha="left", va="center", fontsize=SMALL_FONT, gid=VERDICT)
        value, low, high = (number(row.get(k)) for k in ("value", "ci_low", "ci_high"))
        if np.isfinite(value):
            name = marks.hollow_label(inputs.min_samples) if why else marks.SOLID
            marks.estimate(ax, y, value, low, high, _row_color(row, inputs), name=name, hollow=bool(why))
            values.append(value)
            intervals += [low, high]
    legend.update({k: h for k, h in marks.solid_handles(inputs.min_samples).items() if k not in legend})
    guide(ax.axvline(0, color="0.5", lw=0.7, zorder=0))
    ax.set_yticks(ys, ticks)
    ax.set_ylim(float(heights.sum()) if len(heights) else 1.0, 0.0)
    if limits is None and len(rows) and str(rows["id"].iloc[0]) in by_id():
        limits = by_id()[str(rows["id"].iloc[0])].limits
    marks.set_value_axis(ax, values, refs, intervals, limits or (-float("inf"), float("inf")))
    if not values:  # nothing to place on a value axis: no scale that would suggest otherwise
        ax.set_xticks([])
        xlabel = "no row has an estimate (why: beside each row)"
    ax.set_xlabel(plain(xlabel))
    if ylabel:
        ax.set_ylabel(plain(ylabel))
    ax.grid(axis="y", visible=False)
    return ys


def forest_height(units: float) -> float:
    """Inches of a forest panel of ``units`` (:func:`forest_units`; a row of one or two
    lines is one unit), title and axis label included."""
    return max(units, 2) * ROW_IN + 0.85


def finding_title(finding: Finding, score: str = "lambda") -> str:
    """A finding's label for people, without its placeholders (:func:`template_text`)."""
    return template_text(finding.label, score)


def finding_figure(
    inputs: FigureInputs, ids: Sequence[str] | None = None, findings: Sequence[Finding] = FINDINGS
) -> Figure:
    """A forest plot of each finding of ``ids`` (default: the primary findings of the
    registry ``findings``), one panel per id (its own value axis), one line per dataset,
    architecture and case, with the verdicts of each primary row on the right."""
    registry = by_id(tuple(findings))
    if ids is None:
        ids = [f.id for f in findings if f.primary]
    unknown = [i for i in ids if i not in registry]
    if unknown:
        raise ConfigError(f"unknown finding id {unknown[0]!r}; known: {', '.join(registry)}")
    table = inputs.findings if inputs.findings is not None else pd.DataFrame(columns=["id"])
    parts = [(i, table[(table["id"] == i) & table["dataset"].isin(inputs.datasets)]) for i in ids]
    return forest_figure(
        inputs, [(finding_title(registry[i], _score(p)), p, registry[i], None) for i, p in parts]
    )


def _score(rows: pd.DataFrame) -> str:
    return str(rows["score"].iloc[0]) if len(rows) and "score" in rows else "lambda"


def forest_figure(inputs: FigureInputs, panels: Sequence[tuple], notes: Sequence[str] = ()) -> Figure:
    """A full-width figure of forest panels, one per (heading, rows, finding, labels), one
    line per row (labelled ``labels``, default by dataset, architecture and case; the
    finding gives the unit and the value's limits); ``notes``: one-line panels (what
    cannot be drawn, and why)."""
    panels = [
        (h, rows, f, labels or [row_label(r, inputs) for r in rows.to_dict("records")])
        for h, rows, f, labels in panels
    ]
    heights = [forest_height(forest_units(p[1], p[3], inputs)) if len(p[1]) else 0.45 for p in panels]
    heights += [0.3] * len(notes)
    set_style()
    fig = Figure(figsize=(PRINT_WIDTH, sum(heights) + 0.9), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03, hspace=0.03)
    axes = fig.subplots(len(heights), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    legend: dict = {}
    for ax, (heading, rows, finding, labels) in zip(axes, panels):
        title(ax, heading, full=True)
        if rows.empty:
            empty(ax, f"no rows in the findings table for {', '.join(inputs.datasets)}")
            continue
        unit = f" (unit of replication: {finding.unit})" if finding is not None else ""
        forest(
            ax,
            rows,
            inputs,
            legend,
            labels,
            xlabel=f"estimate and 95% interval{unit}",
            limits=finding.limits if finding is not None else None,
        )
    for ax, note in zip(axes[len(panels) :], notes):
        empty(ax, note)
    figure_legend(fig, legend)
    return fig


def template_text(label: str, score: str = "lambda") -> str:
    """A label template in words, without its placeholders: 'F1 top-{q:.0%} Jaccard
    ({arch} vs {arch_b})' -> 'F1 top-q Jaccard'; '{arch} minus {arch_b}' -> 'difference
    between the architectures'; {score} -> the rank score's name."""
    label = re.sub(r"\{arch\} minus \{arch_b\}", "difference between the architectures", label)
    label = re.sub(r"\s*\((?:[^()]*?\{\w+[^}]*\}[^()]*?)\)", "", label)  # '(... {arch} ...)'
    words = {
        "arch": "each architecture",
        "arch_b": "another",
        "score": score_name(score),
        "q": "q",
        "criterion": "the criterion",
        "case": "each case",
    }
    label = re.sub(r"\{(\w+)[^}]*\}", lambda m: words.get(m[1], m[1]), label)
    return plain(label.replace("top-q", "top-q").strip(" ,"))

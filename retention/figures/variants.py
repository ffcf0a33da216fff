"""Robustness: every primary finding under each other rank score and trace definition
(figure ``robustness``, one per dataset).

One panel per primary finding, each with its own value axis (the findings are on
different scales), drawn by the generic forest of :mod:`.forest`: the configured analysis
first (with both nulls and the paper's value where it attaches; its verdicts are in
``primary_findings``), then each other rank score and each other trace definition.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from retention.figures.forest import finding_title, forest, forest_units
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.scores import SHORT
from retention.figures.style import chars_per_inch, empty, figure_legend, panel_width, plain, stacked, title
from retention.stats.registry import FINDINGS

KEY = ["arch", "arch_b", "case"]
ROW_IN = 0.26
LABEL_CHARS = 30


def compact(trace: str) -> str:
    """A trace label in few words: 'since learned (p)' for since_learned_soft, '(after 2)'
    for learned after 2 correct epochs (the caption says so)."""
    return (
        plain(trace)
        .replace(", on p(true class)", " (p)")
        .replace(", learned after ", " (after ")
        .replace(" correct", ")")
    )


def variants(
    configured: pd.DataFrame, others: pd.DataFrame, inputs: FigureInputs
) -> tuple[pd.DataFrame, list[str]]:
    """The rows of one finding and dataset in drawing order, and their labels: per
    architecture (pair), the configured row, then other rank scores, then other traces."""
    rows, labels = [], []
    several = len(configured.drop_duplicates(KEY)) > 1 if len(configured) else False
    groups = configured.drop_duplicates(KEY).to_dict("records") or others.drop_duplicates(KEY).to_dict(
        "records"
    )
    for g in groups:
        prefix = f"{inputs.pair_label(g['arch'], g['arch_b'])} · " if several else ""
        conf = configured[(configured[KEY] == pd.Series(g)[KEY]).all(axis=1)]
        for r in conf.to_dict("records"):
            rows.append(r)
            labels.append(f"{prefix}configured: {SHORT.get(r['score'], r['score'])}, {compact(r['trace'])}")
        alt = others[(others[KEY] == pd.Series(g)[KEY]).all(axis=1)]
        base = conf.iloc[0] if len(conf) else None
        for r in alt.to_dict("records"):
            r = {**r, "paper_value": ""}
            rows.append(r)
            other_score = base is not None and r["score"] != base["score"]
            labels.append(
                prefix
                + (
                    f"score {SHORT.get(r['score'], r['score'])}"
                    if other_score
                    else f"trace {compact(r['trace'])}"
                )
            )
    return pd.DataFrame(rows), labels


def robustness(inputs: FigureInputs) -> Figure:
    """Robustness of one dataset (see the module docstring): the primary findings in two
    columns of forest panels."""
    dataset = one_dataset(inputs, "robustness")
    ids = [f.id for f in FINDINGS if f.primary and f.estimate is not None]
    registry = {f.id: f for f in FINDINGS}
    table = inputs.table("robustness", dataset)
    panels = []
    for finding_id in ids:
        others = table[text_of(table, "id") == finding_id] if len(table) else pd.DataFrame(columns=KEY)
        others = others.assign(**{k: text_of(others, k) for k in (*KEY, "score", "trace", "note")})
        panels.append((finding_id, *variants(inputs.rows(finding_id, dataset), others, inputs)))
    pairs = [panels[k : k + 2] for k in range(0, len(panels), 2)]
    heights = [
        max(
            forest_units(rows, names, inputs, LABEL_CHARS, reasons=False, right=False)
            for _, rows, names in pair
        )
        * ROW_IN
        + 1.0
        for pair in pairs
    ]
    fig, axes = stacked([(2, h) for h in heights], legend_in=0.6)
    legend: dict = {}
    for row, pair in zip(axes, pairs):
        for ax, (finding_id, rows, names) in zip(row, pair):
            finding = registry[finding_id]
            label_in = LABEL_CHARS / chars_per_inch()
            title(
                ax,
                f"{dataset} · "
                + finding_title(finding, str(rows["score"].iloc[0]) if len(rows) else "lambda"),
                width=panel_width(ax) - label_in - 0.2,
            )
            if rows.empty:
                empty(ax, f"{dataset}: no rows of this finding")
                continue
            forest(
                ax,
                rows,
                inputs,
                legend,
                names,
                xlabel="estimate (95% interval)",
                right=False,
                label_chars=LABEL_CHARS,
                reasons=False,
                limits=finding.limits,
            )
        for ax in row[len(pair) :]:
            ax.set_axis_off()
    figure_legend(fig, legend)
    return fig

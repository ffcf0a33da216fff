"""Robustness: every primary finding under each other rank score and trace definition
(figure ``robustness``).

One panel per dataset (rows) and primary finding (columns), each with its own value axis
(the findings are on different scales), drawn by the generic forest of
:mod:`.forest`: the configured analysis first (with its memoryless null and the paper's
value where it attaches), then each other rank score and each other trace definition.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ..stats.registry import FINDINGS
from .forest import forest, new_forest_figure, template_text
from .inputs import FigureInputs, text_of
from .style import empty, figure_legend, title, wrap_text

KEY = ["arch", "arch_b", "case"]


def variants(configured: pd.DataFrame, others: pd.DataFrame, inputs: FigureInputs) -> tuple[pd.DataFrame, list[str]]:
    """The rows of one finding and dataset in drawing order, and their labels: per
    architecture (pair), the configured row, then other rank scores, then other traces."""
    rows, labels = [], []
    several = len(configured.drop_duplicates(KEY)) > 1 if len(configured) else False
    groups = configured.drop_duplicates(KEY).to_dict("records") or others.drop_duplicates(KEY).to_dict("records")
    for g in groups:
        prefix = f"{inputs.pair_label(g['arch'], g['arch_b'])} · " if several else ""
        conf = configured[(configured[KEY] == pd.Series(g)[KEY]).all(axis=1)]
        for r in conf.to_dict("records"):
            rows.append(r)
            labels.append(f"{prefix}configured ({r['score']}, {r['trace']})")
        alt = others[(others[KEY] == pd.Series(g)[KEY]).all(axis=1)]
        base = conf.iloc[0] if len(conf) else None
        for r in alt.to_dict("records"):
            r = {**r, "paper_value": ""}
            rows.append(r)
            other_score = base is not None and r["score"] != base["score"]
            labels.append(prefix + (f"rank score {r['score']}" if other_score else f"trace {r['trace']}"))
    return pd.DataFrame(rows), labels


def robustness(inputs: FigureInputs) -> Figure:
    """Robustness (see the module docstring). Rows: datasets; columns: primary findings."""
    ids = [f.id for f in FINDINGS if f.primary and f.estimate is not None]
    panels = {}
    for dataset in inputs.datasets:
        table = inputs.table("robustness", dataset)
        for finding_id in ids:
            others = table[text_of(table, "id") == finding_id] if len(table) else pd.DataFrame(columns=KEY)
            others = others.assign(**{k: text_of(others, k) for k in (*KEY, "score", "trace", "note")})
            panels[(dataset, finding_id)] = variants(inputs.rows(finding_id, dataset), others, inputs)
    most = max([len(p[1]) for p in panels.values()] + [1])
    fig, axes = new_forest_figure(len(inputs.datasets), len(ids), most)
    legend: dict = {}
    labels = {f.id: template_text(f.label) for f in FINDINGS}
    for r, dataset in enumerate(inputs.datasets):
        for c, finding_id in enumerate(ids):
            ax = axes[r, c]
            rows, names = panels[(dataset, finding_id)]
            title(ax, f"{dataset}: {finding_id}")
            if rows.empty:
                empty(ax, f"no rows of {finding_id} for {dataset}")
                continue
            forest(ax, rows, inputs, legend, names, xlabel=wrap_text(labels[finding_id], 30), ylabel="analysis")
    figure_legend(fig, legend)
    return fig

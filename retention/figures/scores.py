"""Beyond the paper: other per-sample scores and rank scores (figure
``alternative_scores``, one per dataset).

Top left: each other method's score (forgetting events, dataset-cartography confidence
and variability, EL2N at t = 0) against the rank score (random-effects Spearman over
runs, per architecture); top right: each score's own stability across seeds beside the
rank score's (F3); bottom: how far the candidate rank scores agree with each other
(Spearman per run, mean over the runs of each architecture).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from retention.figures import marks
from retention.figures.forest import forest, forest_height, forest_units
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import (
    OTHER_SCORE_NAMES,
    chars_per_inch,
    empty,
    figure_legend,
    panel_width,
    score_name,
    stacked,
    title,
)
from retention.stats.settings import RANK_SCORES

#: short names of the rank scores in the agreement matrix
SHORT = {
    "lambda": "λ",
    "forgetting_amount": "1 − b",
    "area": "share wrong",
    "soft_lambda": "λ of p",
    "mean_p_true_since_learned": "1 − mean p",
}
LABEL_CHARS = 24


def _rows(dataset: str, ids: tuple, inputs: FigureInputs) -> tuple[pd.DataFrame, list[str]]:
    rows = pd.concat([inputs.rows(i, dataset) for i in ids])
    labels = [
        f"{OTHER_SCORE_NAMES.get(r['case'], r['case'] or score_name(r['score']))} · {inputs.label(r['arch'])}"
        for r in rows.to_dict("records")
    ]
    return rows, labels


def _forest(
    ax, dataset: str, part: tuple, heading: str, xlabel: str, inputs: FigureInputs, legend: dict
) -> None:
    rows, labels = part
    title(ax, heading, width=panel_width(ax) - LABEL_CHARS / chars_per_inch() - 0.2)
    if rows.empty:
        empty(ax, f"{dataset}: no rows of these scores")
        return
    forest(ax, rows, inputs, legend, labels, xlabel=xlabel, right=False, label_chars=LABEL_CHARS)


def agreement(table: pd.DataFrame, arch: str) -> np.ndarray:
    """The mean over an architecture's runs of the Spearman between each pair of rank
    scores (``rank_scores.csv``), as a symmetric matrix in ``RANK_SCORES`` order."""
    idx = {s: i for i, s in enumerate(RANK_SCORES)}
    m = np.full((len(RANK_SCORES),) * 2, np.nan)
    np.fill_diagonal(m, 1.0)
    part = table[text_of(table, "arch") == arch]
    means = (
        part.assign(value=pd.to_numeric(part["value"], errors="coerce"))
        .groupby(["score", "score_b"])["value"]
        .mean()
    )
    for (a, b), v in means.items():
        if a in idx and b in idx:
            m[idx[a], idx[b]] = m[idx[b], idx[a]] = v
    return m


def _agreement_panel(ax, dataset: str, arch: str, inputs: FigureInputs) -> None:
    table = inputs.table("rank_scores", dataset)
    n_runs = len(table[text_of(table, "arch") == arch][["seed"]].drop_duplicates()) if len(table) else 0
    heading = f"{inputs.label(arch)}: agreement of the rank scores ({n_runs} runs)"
    title(ax, heading, width=panel_width(ax) - marks.MATRIX_MARGIN_IN)
    if not n_runs:
        empty(ax, "no table of rank-score agreement")
        return
    m = agreement(table, arch)
    names = [SHORT.get(s, score_name(s)) for s in RANK_SCORES]
    marks.correlation_matrix(
        ax,
        m,
        names,
        lambda i, j: f"{m[i, j]:.2f}".replace("0.", "."),
        "rank score",
        "Spearman ρ, mean over runs",
    )


def alternative_scores(inputs: FigureInputs) -> Figure:
    """Beyond the paper, for one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "alternative_scores")
    archs = inputs.archs()
    parts = [
        _rows(dataset, ("Scores.vs_rank_score",), inputs),
        _rows(dataset, ("Scores.stability", "F3.within"), inputs),
    ]
    units = max(forest_units(rows, labels, inputs, LABEL_CHARS, right=False) for rows, labels in parts)
    fig, axes = stacked([(2, forest_height(units) + 0.15), (len(archs), 2.7)], legend_in=0.6)
    legend: dict = {}
    vs = inputs.rows("Scores.vs_rank_score", dataset)
    score = score_name(vs["score"].iloc[0]) if len(vs) else "the rank score"
    _forest(
        axes[0][0],
        dataset,
        parts[0],
        f"{dataset} · each score against {score}",
        f"Spearman ρ with {score} (95% interval)",
        inputs,
        legend,
    )
    _forest(
        axes[0][1],
        dataset,
        parts[1],
        f"{dataset} · stability across seeds",
        "mean ρ over seed pairs (95% interval)",
        inputs,
        legend,
    )
    for ax, arch in zip(axes[1], archs):
        _agreement_panel(ax, dataset, arch, inputs)
    figure_legend(fig, legend)
    return fig

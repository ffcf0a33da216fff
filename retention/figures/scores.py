"""Beyond the paper: other per-sample scores and rank scores (figure ``alternative_scores``).

Per dataset (rows): each other method's score (forgetting events, dataset-cartography
confidence and variability, EL2N at t = 0) against the rank score (random-effects
Spearman over runs, per architecture); each score's own stability across seeds beside
the rank score's (F3); and how far the candidate rank scores agree with each other
(Spearman per run, mean over the runs of each architecture).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats.config import RANK_SCORES
from . import marks
from .forest import forest, panel_rows
from .inputs import FigureInputs, text_of
from .style import empty, figure_legend, new_figure, title

SCORE_NAMES = {"forget_events": "forgetting events", "confidence": "confidence", "variability": "variability",
               "el2n_t0": "EL2N at t = 0"}
SHORT = {"lambda": "λ", "forgetting_amount": "1 − b", "area": "1 − mean ret.", "soft_lambda": "soft λ",
         "mean_p_true_since_learned": "1 − mean p_true"}


def _forest(ax, dataset: str, ids: tuple, heading: str, xlabel: str, inputs: FigureInputs, legend: dict) -> None:
    rows = panel_rows(ax, inputs, dataset, ids, heading)
    if rows.empty:
        return
    labels = [f"{SCORE_NAMES.get(r['case'], r['case'] or 'rank score ' + r['score'])} · {inputs.label(r['arch'])}"
              for r in rows.to_dict("records")]
    forest(ax, rows, inputs, legend, labels, xlabel=xlabel, ylabel="score and architecture")


def agreement(table: pd.DataFrame, arch: str) -> np.ndarray:
    """The mean over an architecture's runs of the Spearman between each pair of rank
    scores (``rank_scores.csv``), as a symmetric matrix in ``RANK_SCORES`` order."""
    idx = {s: i for i, s in enumerate(RANK_SCORES)}
    m = np.full((len(RANK_SCORES),) * 2, np.nan)
    np.fill_diagonal(m, 1.0)
    part = table[text_of(table, "arch") == arch]
    means = part.assign(value=pd.to_numeric(part["value"], errors="coerce")).groupby(["score", "score_b"])["value"].mean()
    for (a, b), v in means.items():
        if a in idx and b in idx:
            m[idx[a], idx[b]] = m[idx[b], idx[a]] = v
    return m


def _agreement_panel(ax, dataset: str, arch: str, inputs: FigureInputs) -> None:
    table = inputs.table("rank_scores", dataset)
    n_runs = len(table[text_of(table, "arch") == arch][["seed"]].drop_duplicates()) if len(table) else 0
    heading = f"{dataset} · {inputs.label(arch)}\nrank-score agreement ({n_runs} runs)"
    title(ax, heading)
    if not n_runs:
        empty(ax, "no rank_scores table")
        return
    m = agreement(table, arch)
    names = [SHORT.get(s, s) for s in RANK_SCORES]
    marks.correlation_matrix(ax, m, names, lambda i, j: f"{m[i, j]:.2f}", "rank score", "Spearman ρ, mean over runs")
    title(ax, heading)  # again: the colour bar narrows the panel


def alternative_scores(inputs: FigureInputs) -> Figure:
    """Beyond the paper (see the module docstring). Rows: datasets; columns: scores vs the
    rank score, stability across seeds, one agreement heatmap per architecture."""
    archs = inputs.archs()
    n_rows = max([len(inputs.rows("Scores.stability", d)) + len(inputs.rows("F3.within", d)) for d in inputs.datasets] + [8])
    fig, axes = new_figure(len(inputs.datasets), 2 + len(archs), col_w=3.5, row_h=max(3.4, 0.26 * n_rows + 1.3))
    legend: dict = {}
    for r, dataset in enumerate(inputs.datasets):
        vs = inputs.rows("Scores.vs_rank_score", dataset)
        score = vs["score"].iloc[0] if len(vs) else "the rank score"
        _forest(axes[r, 0], dataset, ("Scores.vs_rank_score",), f"{dataset}: each score vs {score}",
                f"Spearman ρ with {score} (95% interval)", inputs, legend)
        _forest(axes[r, 1], dataset, ("Scores.stability", "F3.within"), f"{dataset}: stability across seeds",
                "mean Spearman ρ over seed pairs (95% interval)", inputs, legend)
        for c, arch in enumerate(archs, start=2):
            _agreement_panel(axes[r, c], dataset, arch, inputs)
    figure_legend(fig, legend)
    return fig

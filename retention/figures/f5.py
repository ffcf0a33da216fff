"""F5, an early predictor: does the loss after head warmup predict λ? (figure
``warmup_loss``, one per dataset)

Top: a hexbin of the loss at t = 0 against λ over the eligible samples of every seed of
each architecture (λ's bounds dashed). Bottom: the findings: the random-effects Spearman
over all runs (the primary, with both nulls, the paper's range and its two verdicts),
per architecture with each run's ρ (ticks), among samples learned at t = 0 and given
forgetting events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures import marks
from retention.figures.examples import primary_rows
from retention.figures.forest import forest, forest_height, forest_units, row_label
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import COLORBAR, COUNT_CMAP, empty, figure_legend, stacked, tag, title
from retention.stats.stack import ELIGIBLE

RUN = "ρ of one run"
IDS = ("F5.meta", "F5.meta_by_arch", "F5.subsets")


def loss_and_lambda(inputs: FigureInputs, dataset: str, arch: str) -> tuple[np.ndarray, np.ndarray]:
    """Loss at t = 0 and lambda of the eligible samples of every run of one architecture."""
    xs, ys = [], []
    for (a, _), fits in inputs.run("fits", dataset).items():
        if a != arch:
            continue
        p = primary_rows(fits)
        p = p[p["status"].astype(str).isin(ELIGIBLE)]
        loss, lam = pd.to_numeric(p["loss_t0"], errors="coerce").to_numpy(float), p["lambda"].to_numpy(float)
        ok = np.isfinite(loss) & np.isfinite(lam)
        xs.append(loss[ok])
        ys.append(lam[ok])
    return (np.concatenate(xs), np.concatenate(ys)) if xs else (np.zeros(0), np.zeros(0))


def _hexbin_panel(ax, dataset: str, arch: str, inputs: FigureInputs) -> None:
    x, y = loss_and_lambda(inputs, dataset, arch)
    n_runs = sum(1 for a, _ in inputs.run("fits", dataset) if a == arch)
    heading = f"{inputs.label(arch)}\n{x.size:,} samples of {n_runs} runs"
    title(ax, heading)
    if x.size == 0:
        empty(ax, "no eligible samples with a loss at t = 0")
        return
    x = np.maximum(x, 1e-6)
    scale = "log" if x.max() / x.min() > 10 else "linear"
    hb = tag(
        ax.hexbin(x, y, xscale=scale, gridsize=26, bins="log", mincnt=1, cmap=COUNT_CMAP, lw=0.1), COLORBAR
    )
    ax.figure.colorbar(hb, ax=ax, shrink=0.85, fraction=0.08, pad=0.03, label="samples per bin")
    title(ax, heading)  # again: the colour bar narrows the panel
    marks.lambda_bounds(ax, inputs.lambda_max, "y")
    ax.set_xlabel("loss at t = 0" + (" (log scale)" if scale == "log" else ""))
    ax.set_ylabel(marks.lambda_label(inputs.lambda_max))


def _forest_panel(ax, dataset: str, rows: pd.DataFrame, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"{dataset} · F5: Spearman ρ of the loss at t = 0 and λ, random effects over runs", full=True)
    if rows.empty:
        empty(ax, f"{dataset}: no F5 rows in the findings table")
        return
    records = rows.to_dict("records")
    per_run = inputs.table("f5_early_predictor", dataset)
    if len(per_run):
        per_run = per_run[text_of(per_run, "subset") == "all"]
    runs = [_run_rhos(per_run, r) for r in records]
    ys = forest(
        ax,
        rows,
        inputs,
        legend,
        f5_labels(rows, inputs),
        xlabel="Spearman ρ (95% interval)",
        extras=[x for v, _ in runs for x in v],
    )
    for y, (v, n) in zip(ys, runs):
        small = np.array([inputs.small(k) for k in n], dtype=bool)
        if (~small).any():
            tag(ax.plot(v[~small], np.full((~small).sum(), y + 0.3), "|", color="0.3", ms=6, mew=1.2), RUN)
            legend.setdefault(RUN, Line2D([], [], marker="|", color="0.3", ls="none", ms=6, mew=1.2))
        if small.any():  # a run's rho over too few samples
            tag(
                ax.plot(v[small], np.full(small.sum(), y + 0.3), "o", color="0.3", mfc="white", ms=3.5),
                marks.hollow_label(inputs.min_samples),
            )


def f5_labels(rows: pd.DataFrame, inputs: FigureInputs) -> list[str]:
    return [
        ("all runs (primary)" if r["id"] == "F5.meta" else row_label(r, inputs, with_dataset=False))
        for r in rows.to_dict("records")
    ]


def _run_rhos(per_run: pd.DataFrame, row: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each run's rho behind a per-architecture row and its sample count (f5_early_predictor.csv)."""
    if row["id"] != "F5.meta_by_arch" or per_run.empty:
        return np.zeros(0), np.zeros(0)
    part = per_run[text_of(per_run, "arch") == row["arch"]]
    v, n = (
        pd.to_numeric(part["value"], errors="coerce").to_numpy(float),
        pd.to_numeric(part["n_samples"]).to_numpy(float),
    )
    return v[np.isfinite(v)], n[np.isfinite(v)]


def warmup_loss(inputs: FigureInputs) -> Figure:
    """F5 of one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "warmup_loss")
    archs = inputs.archs()
    rows = pd.concat([inputs.rows(i, dataset) for i in IDS])
    fig, axes = stacked(
        [(len(archs), 2.6), (1, forest_height(forest_units(rows, f5_labels(rows, inputs), inputs)))],
        legend_in=0.5,
    )
    legend: dict = {}
    for ax, arch in zip(axes[0], archs):
        _hexbin_panel(ax, dataset, arch, inputs)
    _forest_panel(axes[1][0], dataset, rows, inputs, legend)
    figure_legend(fig, legend)
    return fig

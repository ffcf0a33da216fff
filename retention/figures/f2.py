"""F2, structure: how well the exponential decay describes the traces (figure ``r2``).

Per dataset (rows): the cumulative distribution of the defined R^2 per architecture (thick:
the fitted samples of every seed; thin: each run), which shows a skewed or discrete
distribution as it is; the mean R^2 over seeds with its t interval, each run's mean
(dots) and the paper's mean; the share of eligible samples whose R^2 is defined; and the
difference between architectures (primary: paired by seed, with its null). Each
quantity has its own axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .examples import primary_rows
from .forest import forest, panel_rows, row_label
from .inputs import FigureInputs, text_of
from .style import arch_colors, empty, figure_legend, new_figure, tag, title

ONE_RUN = "one run"
RUN = "mean of one run (hollow: fewer defined R² than the minimum)"
PANELS = (
    ("F2.arch_mean", "mean R²", "mean R² over seeds (95% t interval)", "value"),
    ("F2.fraction_defined", "share with a defined R²", "share of eligible samples (95% t interval over seeds)",
     "frac_defined"),
    (("F2.arch_difference", "F2.paired_by_sample"), "difference in R²",
     "difference of mean R² (95% interval)", None),
)


def defined_r2(fits: pd.DataFrame) -> np.ndarray:
    """The defined R^2 of the fitted samples of one run (configured trace)."""
    p = primary_rows(fits)
    r2 = pd.to_numeric(p["r2"], errors="coerce").to_numpy(float)
    return r2[(p["status"].astype(str) == "fitted").to_numpy() & np.isfinite(r2)]


def _ecdf(ax, v: np.ndarray, **kw):
    v = np.sort(v)
    return ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", **kw)


def _distribution_panel(ax, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    archs = inputs.archs(dataset)
    colors = arch_colors(archs)
    runs = inputs.run("fits", dataset)
    per_run = {k: defined_r2(f) for k, f in runs.items()}
    pooled = np.concatenate(list(per_run.values())) if per_run else np.zeros(0)
    counts = ", ".join(f"{inputs.label(a)} {sum(v.size for k, v in per_run.items() if k[0] == a):,}" for a in archs)
    title(ax, f"{dataset}: distribution of R²\ndefined values: {counts}")
    if pooled.size == 0:
        empty(ax, "no defined R² (no fitted sample with a non-constant trace)")
        return
    for arch in archs:
        mine = [v for k, v in per_run.items() if k[0] == arch and v.size]
        for v in mine:
            tag(_ecdf(ax, v, color=colors[arch], lw=0.6, alpha=0.45), ONE_RUN)
        if mine:
            allv = np.concatenate(mine)
            name = f"{inputs.label(arch)}: all runs pooled"
            tag(_ecdf(ax, allv, color=colors[arch], lw=1.8), name)
            legend.setdefault(name, Line2D([], [], color=colors[arch], lw=1.8))
    legend.setdefault(ONE_RUN, Line2D([], [], color="0.4", lw=0.6))
    low = min(float(np.quantile(pooled, 0.005)), 0.0)
    below = int((pooled < low).sum())
    ax.set_xlim(low - 0.02, 1.02)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("R² of the decay fit" + (f" ({below} values below the axis)" if below else ""))
    ax.set_ylabel("share of fitted samples with R² ≤ x")


def _run_values(table: pd.DataFrame, arch: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Per run of an architecture: the f2_r2 column and whether the run has too few
    defined R^2 (n_defined)."""
    part = table[text_of(table, "arch") == arch] if len(table) else table
    if part.empty:
        return np.zeros(0), np.zeros(0, bool)
    return pd.to_numeric(part[column], errors="coerce").to_numpy(float), pd.to_numeric(part["n_defined"]).to_numpy(float)


def _forest_panel(ax, dataset: str, panel: tuple, inputs: FigureInputs, legend: dict) -> None:
    ids, heading, xlabel, column = panel
    ids = (ids,) if isinstance(ids, str) else ids
    rows = panel_rows(ax, inputs, dataset, ids, f"{dataset}: {heading}")
    if rows.empty:
        return
    how = {"F2.arch_difference": "primary, paired by seed: ", "F2.paired_by_sample": "paired by sample: "}
    records = rows.to_dict("records")
    labels = [how.get(r["id"], "") + row_label(r, inputs, with_dataset=False) for r in records]
    table = inputs.table("f2_r2", dataset)
    dots = [_run_values(table, r["arch"], column) if column else (np.zeros(0), np.zeros(0)) for r in records]
    forest(ax, rows, inputs, legend, labels, xlabel=xlabel, extras=[x for v, _ in dots for x in v])
    for i, (v, n) in enumerate(dots):
        for hollow in (False, True):
            sel = np.isfinite(v) & ((n < inputs.min_samples) == hollow)
            if sel.any():
                tag(ax.plot(v[sel], np.full(sel.sum(), i + 0.28), "o", ms=3, color="0.35",
                            mfc="white" if hollow else "0.35", ls="none"), RUN)
                legend.setdefault(RUN, Line2D([], [], marker="o", ms=3, color="0.35", ls="none"))


def r2(inputs: FigureInputs) -> Figure:
    """F2 (see the module docstring). Rows: datasets; columns: the distribution, the mean
    R^2, the share defined, the difference."""
    fig, axes = new_figure(len(inputs.datasets), 4, col_w=3.4, row_h=2.7)
    legend: dict = {}
    for r, dataset in enumerate(inputs.datasets):
        _distribution_panel(axes[r, 0], dataset, inputs, legend)
        for c, panel in enumerate(PANELS, start=1):
            _forest_panel(axes[r, c], dataset, panel, inputs, legend)
    figure_legend(fig, legend)
    return fig

"""F2, structure: how well the exponential decay describes the traces (figure ``r2``, one
per dataset).

Top left: the cumulative distribution of the defined R² per architecture (thick: the
fitted samples of every seed; thin: each run), zoomed to the data (the values outside
the view are counted in the axis label). Top right: the share of eligible samples whose
R² is defined. Bottom: on one axis, the primary difference between architectures (paired
by seed, with both nulls and its two verdicts), the same paired by sample, each
architecture's mean R² over seeds with each run's mean (dots), and the mean R² on the
paper's scale (the p(true class) trace fitted with a free amplitude) with the paper's
values where they attach.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures.examples import primary_rows
from retention.figures.forest import forest, forest_height, forest_units, row_label
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import empty, figure_legend, stacked, tag, title

ONE_RUN = "one run"
RUN = "mean of one run (hollow: fewer defined R² than the minimum)"
#: the rows of the R² panel: id -> (the words before its label, the f2_r2 column of its runs' dots)
R2_ROWS = {
    "F2.arch_difference": ("difference, paired by seed (primary)", None),
    "F2.paired_by_sample": ("difference, paired by sample", None),
    "F2.arch_mean": ("mean R²", "value"),
    "F2.arch_mean_soft": ("mean R², paper's scale", None),
}


def defined_r2(fits: pd.DataFrame) -> np.ndarray:
    """The defined R^2 of the fitted samples of one run (configured trace)."""
    p = primary_rows(fits)
    r2 = pd.to_numeric(p["r2"], errors="coerce").to_numpy(float)
    return r2[(p["status"].astype(str) == "fitted").to_numpy() & np.isfinite(r2)]


def _ecdf(ax, v: np.ndarray, **kw):
    v = np.sort(v)
    return ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", **kw)


def zoom(values: np.ndarray, lo_q: float = 0.005, hi_q: float = 0.995) -> tuple[float, float, int]:
    """(low, high, values outside) of an axis zoomed to the bulk of ``values``."""
    lo, hi = (float(x) for x in np.quantile(values, [lo_q, hi_q]))
    pad = max(hi - lo, 1e-3) * 0.05
    lo, hi = lo - pad, hi + pad
    return lo, hi, int(((values < lo) | (values > hi)).sum())


def _distribution_panel(ax, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    archs = inputs.archs(dataset)
    colors = inputs.colors()
    per_run = {k: defined_r2(f) for k, f in inputs.run("fits", dataset).items()}
    pooled = np.concatenate(list(per_run.values())) if per_run else np.zeros(0)
    title(ax, f"{dataset} · distribution of R² over fitted samples")
    if pooled.size == 0:
        empty(ax, "no defined R² (no fitted sample with a non-constant trace)")
        return
    for arch in archs:
        mine = [v for k, v in per_run.items() if k[0] == arch and v.size]
        for v in mine:
            tag(_ecdf(ax, v, color=colors[arch], lw=0.6, alpha=0.45), ONE_RUN)
        if mine:
            allv = np.concatenate(mine)
            name = f"{inputs.label(arch)}: all runs pooled ({allv.size:,} values)"
            tag(_ecdf(ax, allv, color=colors[arch], lw=1.8), name)
            legend.setdefault(name, Line2D([], [], color=colors[arch], lw=1.8))
    legend.setdefault(ONE_RUN, Line2D([], [], color="0.4", lw=0.6))
    lo, hi, outside = zoom(pooled)
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("R² of the decay fit" + (f" ({outside:,} values outside the view)" if outside else ""))
    ax.set_ylabel("share of samples with R² ≤ x")


def _run_values(table: pd.DataFrame, arch: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Per run of an architecture: the f2_r2 column and its count of defined R²."""
    part = table[text_of(table, "arch") == arch] if len(table) else table
    if part.empty or column not in part:
        return np.zeros(0), np.zeros(0)
    return pd.to_numeric(part[column], errors="coerce").to_numpy(float), pd.to_numeric(
        part["n_defined"]
    ).to_numpy(float)


def _dots(ax, ys, dots, inputs: FigureInputs, legend: dict) -> None:
    for y, (v, n) in zip(ys, dots):
        for hollow in (False, True):
            sel = np.isfinite(v) & ((n < inputs.min_samples) == hollow)
            if sel.any():
                tag(
                    ax.plot(
                        v[sel],
                        np.full(sel.sum(), y + 0.3),
                        "o",
                        ms=2.8,
                        color="0.35",
                        mfc="white" if hollow else "0.35",
                        ls="none",
                    ),
                    RUN,
                )
                legend.setdefault(RUN, Line2D([], [], marker="o", ms=3, color="0.35", ls="none"))


def pooled_rows(inputs: FigureInputs, dataset: str) -> pd.DataFrame:
    """The F2 rows pooled over the paper's datasets that include ``dataset`` (where the
    paper's values attach: the paper does not separate its datasets)."""
    f = inputs.findings
    if f is None or f.empty:
        return pd.DataFrame(columns=["id", "dataset"])
    pooled = f[f["id"].isin(list(R2_ROWS)) & f["dataset"].astype(str).str.startswith("pooled over")]
    mine = (
        pooled["dataset"]
        .astype(str)
        .str.replace("pooled over", "")
        .str.split(",")
        .map(lambda names: dataset in [n.strip() for n in names])
    )
    return pooled[mine.astype(bool)]


def r2_labels(rows: pd.DataFrame, dataset: str, inputs: FigureInputs) -> list[str]:
    return [
        f"{R2_ROWS[r['id']][0]}: " + row_label(r, inputs, with_dataset=r["dataset"] != dataset)
        for r in rows.to_dict("records")
    ]


def _forest_panel(ax, dataset: str, rows: pd.DataFrame, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"{dataset} · F2: R² of the decay fit, and the difference between architectures", full=True)
    if rows.empty:
        empty(ax, f"{dataset}: no F2 rows in the findings table")
        return
    records = rows.to_dict("records")
    labels = r2_labels(rows, dataset, inputs)
    table = inputs.table("f2_r2", dataset)
    dots = [
        _run_values(table, r["arch"], R2_ROWS[r["id"]][1])
        if R2_ROWS[r["id"]][1] and r["dataset"] == dataset
        else (np.zeros(0), np.zeros(0))
        for r in records
    ]
    ys = forest(
        ax,
        rows,
        inputs,
        legend,
        labels,
        xlabel="R², or difference of mean R² (95% interval)",
        extras=[x for v, _ in dots for x in v],
        limits=(-1.0, 1.0),
    )
    _dots(ax, ys, dots, inputs, legend)


def _fraction_panel(ax, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    rows = inputs.rows("F2.fraction_defined", dataset)
    title(ax, f"{dataset} · share of eligible samples with a defined R²")
    if rows.empty:
        empty(ax, "no rows of the share defined")
        return
    labels = [row_label(r, inputs, with_dataset=False) for r in rows.to_dict("records")]
    table = inputs.table("f2_r2", dataset)
    dots = [_run_values(table, r["arch"], "frac_defined") for r in rows.to_dict("records")]
    ys = forest(
        ax,
        rows,
        inputs,
        legend,
        labels,
        xlabel="share (95% t interval over seeds)",
        limits=(0.0, 1.0),
        extras=[x for v, _ in dots for x in v],
        label_chars=14,
    )
    _dots(ax, ys, dots, inputs, legend)


def r2(inputs: FigureInputs) -> Figure:
    """F2 of one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "r2")
    rows = pd.concat([inputs.rows(i, dataset) for i in R2_ROWS] + [pooled_rows(inputs, dataset)])
    height = forest_height(forest_units(rows, r2_labels(rows, dataset, inputs), inputs))
    fig, axes = stacked([(2, 2.5, [1.4, 1]), (1, height)], legend_in=0.6)
    legend: dict = {}
    _distribution_panel(axes[0][0], dataset, inputs, legend)
    _fraction_panel(axes[0][1], dataset, inputs, legend)
    _forest_panel(axes[1][0], dataset, rows, inputs, legend)
    figure_legend(fig, legend)
    return fig

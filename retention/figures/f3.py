"""F3, seed stability: does a sample's λ repeat across seeds? (figure ``seed_stability``,
one per dataset)

Top: λ of the same samples in two seeds of each architecture (points jittered, since λ
piles up at its bounds; the counts at the four corners of the bounds are written in
them), and the Spearman ρ of λ for every pair of runs (heatmap, within and across
architectures). Bottom: the findings: the mean ρ over seed pairs per architecture with
its interval, both nulls, the equivalence bound of the "not stable" claim, the paper's
settling criterion (ρ above 0.4) and the paper's value, with the two verdicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures import marks
from retention.figures.examples import primary_rows
from retention.figures.forest import forest, forest_height, forest_units, row_label
from retention.figures.inputs import FigureInputs, number, one_dataset, text_of
from retention.figures.style import (
    SMALL_FONT,
    empty,
    figure_legend,
    panel_width,
    shorten,
    stacked,
    tag,
    title,
)
from retention.stats.stack import ELIGIBLE

JITTER = 0.08  # of lambda_max


def lambda_pair(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Lambda of the samples eligible in both runs (configured trace)."""

    def eligible(f):
        p = primary_rows(f)
        lam = pd.to_numeric(p["lambda"], errors="coerce")
        return p[p["status"].astype(str).isin(ELIGIBLE) & np.isfinite(lam)].set_index("sample_id")["lambda"]

    ea, eb = eligible(a), eligible(b)
    common = ea.index.intersection(eb.index)
    return ea.loc[common].to_numpy(float), eb.loc[common].to_numpy(float)


def _corner_counts(ax, x: np.ndarray, y: np.ndarray, lambda_max: float) -> None:
    """The number of samples at each pair of bounds, written in its corner."""
    at = {0.0: lambda v: v <= 0, lambda_max: lambda v: v >= lambda_max * (1 - 1e-9)}
    for (vx, fx), (vy, fy) in [(p, q) for p in at.items() for q in at.items()]:
        n = int((fx(x) & fy(y)).sum())
        ha, va = ("left" if vx == 0 else "right"), ("bottom" if vy == 0 else "top")
        ax.annotate(
            f"n = {n:,}",
            (vx, vy),
            xytext=(4 if vx == 0 else -4, 4 if vy == 0 else -4),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=SMALL_FONT,
            zorder=5,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.6", "lw": 0.5},
        )


def _scatter_panel(ax, dataset: str, arch: str, inputs: FigureInputs, color, legend: dict) -> None:
    runs = inputs.run("fits", dataset)
    seeds = sorted(int(s) for a, s in runs if a == arch)
    if len(seeds) < 2:
        title(ax, f"{inputs.label(arch)}")
        empty(ax, f"needs two seeds of {inputs.label(arch)}; the grid has {len(seeds)}")
        return
    s0, s1 = seeds[:2]
    x, y = lambda_pair(runs[(arch, s0)], runs[(arch, s1)])
    lambda_max = inputs.lambda_max
    rng = np.random.default_rng(0)
    jx, jy = (rng.uniform(-JITTER, JITTER, x.size) * lambda_max for _ in range(2))
    name = f"{inputs.label(arch)}: one sample"
    tag(ax.scatter(x + jx, y + jy, s=3, alpha=0.3, color=color, lw=0), name)
    legend.setdefault(name, Line2D([], [], marker="o", ms=3, color=color, ls="none"))
    marks.lambda_bounds(ax, lambda_max, "y")
    marks.lambda_bounds(ax, lambda_max, "x")
    _corner_counts(ax, x, y, lambda_max)
    rho = _pair_rho(inputs.table("f3_seed_stability", dataset), arch, s0, s1)
    few = f" (< {inputs.min_samples}: too few)" if inputs.small(x.size) else ""
    title(ax, f"{inputs.label(arch)}: ρ = {rho:.3f}\nseeds {s0} and {s1}\n{x.size:,} samples{few}")
    lim = (-2 * JITTER * lambda_max, lambda_max * (1 + 2 * JITTER))
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_xlabel(f"λ in seed {s0} (jittered)")
    ax.set_ylabel(f"λ in seed {s1} (jittered)")


def _pair_rho(f3: pd.DataFrame, arch: str, s0: int, s1: int) -> float:
    if f3.empty:
        return float("nan")
    a, b = text_of(f3, "arch"), text_of(f3, "arch_b")
    seed, seed_b = pd.to_numeric(f3["seed"], errors="coerce"), pd.to_numeric(f3["seed_b"], errors="coerce")
    hit = f3[(a == arch) & (b == arch) & (((seed == s0) & (seed_b == s1)) | ((seed == s1) & (seed_b == s0)))]
    return number(hit["value"].iloc[0]) if len(hit) else float("nan")


def rho_matrix(
    f3: pd.DataFrame, archs: list[str], column: str = "value"
) -> tuple[list[tuple[str, int]], np.ndarray]:
    """The runs (arch-major) and the symmetric matrix of a column of their pairs (rho, or
    n_samples; 1 on the diagonal)."""
    rows = list(
        zip(
            text_of(f3, "arch"),
            pd.to_numeric(f3["seed"]).astype(int),
            text_of(f3, "arch_b"),
            pd.to_numeric(f3["seed_b"]).astype(int),
            pd.to_numeric(f3[column], errors="coerce"),
        )
    )
    runs = sorted(
        {(a, s) for a, s, *_ in rows} | {(b, t) for _, _, b, t, _ in rows},
        key=lambda k: (archs.index(k[0]) if k[0] in archs else len(archs), k[1]),
    )
    idx = {k: i for i, k in enumerate(runs)}
    m = np.full((len(runs), len(runs)), np.nan)
    np.fill_diagonal(m, 1.0)
    for a, s, b, t, v in rows:
        m[idx[(a, s)], idx[(b, t)]] = m[idx[(b, t)], idx[(a, s)]] = v
    return runs, m


def _heatmap_panel(ax, dataset: str, inputs: FigureInputs) -> None:
    f3 = inputs.table("f3_seed_stability", dataset)
    heading = "ρ of λ, every pair of runs"
    if f3.empty:
        title(ax, heading, width=panel_width(ax) - marks.MATRIX_MARGIN_IN)
        empty(ax, "no table of pairs (needs two runs)")
        return
    runs, m = rho_matrix(f3, inputs.archs(dataset))
    n = rho_matrix(f3, inputs.archs(dataset), "n_samples")[1]

    def cell(i: int, j: int) -> str:  # each pair's rho; in parentheses where it rests on too few samples
        text = f"{m[i, j]:.2f}".replace("0.", ".") if len(runs) <= 6 else ""
        return f"({text})" if text and inputs.small(n[i, j]) else text

    names = [f"{shorten(inputs.label(a), 12)} {s}" for a, s in runs]
    marks.correlation_matrix(ax, m, names, cell, "run (architecture, seed)", "ρ of λ")
    title(ax, heading, width=panel_width(ax) - marks.MATRIX_MARGIN_IN)


def _forest_panel(ax, dataset: str, rows: pd.DataFrame, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"{dataset} · F3: mean Spearman ρ of λ over seed pairs", full=True)
    if rows.empty:
        empty(ax, f"{dataset}: no F3 rows in the findings table")
        return
    forest(
        ax, rows, inputs, legend, f3_labels(rows, inputs), xlabel="Spearman ρ of λ (95% interval over seeds)"
    )


def f3_labels(rows: pd.DataFrame, inputs: FigureInputs) -> list[str]:
    return [
        ("within " if r["id"] == "F3.within" else "across ") + row_label(r, inputs, with_dataset=False)
        for r in rows.to_dict("records")
    ]


def seed_stability(inputs: FigureInputs) -> Figure:
    """F3 of one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "seed_stability")
    archs = inputs.archs()
    colors = inputs.colors()
    rows = pd.concat([inputs.rows(i, dataset) for i in ("F3.within", "F3.cross")])
    fig, axes = stacked(
        [
            (len(archs) + 1, 2.9, [1] * len(archs) + [1.6]),
            (1, forest_height(forest_units(rows, f3_labels(rows, inputs), inputs))),
        ],
        legend_in=0.5,
    )
    legend: dict = {}
    for ax, arch in zip(axes[0], archs):
        _scatter_panel(ax, dataset, arch, inputs, colors[arch], legend)
    _heatmap_panel(axes[0][-1], dataset, inputs)
    _forest_panel(axes[1][0], dataset, rows, inputs, legend)
    figure_legend(fig, legend)
    return fig

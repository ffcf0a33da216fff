"""Dataset cartography (Swayamdipta et al. 2020): confidence against variability per
training sample, coloured by lambda (figure ``data_map``).

Per dataset (rows) and architecture (columns): each train sample's confidence (mean
p_true over the fine-tuning epochs) against its variability (their standard deviation),
averaged over seeds, coloured by its mean lambda over the seeds in which it is eligible;
samples never learned (no lambda) are grey crosses. The regions the cartography paper
names are written where no sample can be, pointing to them: easy to learn (confident,
stable; above confidence 1), hard to learn (unconfident, stable; below 0), ambiguous
(variable; beyond the largest variability).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from retention.figures.examples import primary_rows
from retention.figures.inputs import FigureInputs
from retention.figures.style import (
    COLORBAR,
    LAMBDA_CMAP,
    SMALL_FONT,
    empty,
    figure_legend,
    new_figure,
    subsample,
    tag,
    title,
)
from retention.stats.stack import ELIGIBLE

NEVER = "no λ (never learned or too short)"
#: the cartography regions, written where no sample can be (confidence above 1 or below 0,
#: variability beyond the largest): (text, x in axes, y in data, alignment)
REGIONS = (
    ("easy to learn ↑", 0.01, 1.08, "left"),
    ("hard to learn ↓", 0.01, -0.08, "left"),
    ("ambiguous →", 0.99, 0.5, "right"),
)
#: the view's right end, as a multiple of the largest variability (room for "ambiguous")
ROOM = 1.5


def sample_map(runs: dict, arch: str) -> pd.DataFrame:
    """Per sample of an architecture's runs: mean confidence and variability over seeds,
    mean lambda over the seeds where it is eligible (NaN if none), seeds counted."""
    frames = []
    for (a, _), fits in runs.items():
        if a == arch:
            p = primary_rows(fits)
            eligible = p["status"].astype(str).isin(ELIGIBLE)
            frames.append(
                pd.DataFrame(
                    {
                        "sample_id": p["sample_id"].to_numpy(),
                        "confidence": p["confidence"].to_numpy(float),
                        "variability": p["variability"].to_numpy(float),
                        "lambda": np.where(eligible, pd.to_numeric(p["lambda"], errors="coerce"), np.nan),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["sample_id", "confidence", "variability", "lambda", "n_seeds"])
    data = pd.concat(frames, ignore_index=True)
    return (
        data.groupby("sample_id")
        .agg(
            confidence=("confidence", "mean"),
            variability=("variability", "mean"),
            n_seeds=("confidence", "size"),
            **{"lambda": ("lambda", "mean")},
        )
        .reset_index()
    )


def _panel(ax, dataset: str, arch: str, inputs: FigureInputs, legend: dict):
    m = sample_map(inputs.run("fits", dataset), arch)
    if m.empty:
        title(ax, f"{dataset} · {inputs.label(arch)}")
        empty(ax, "no fits of this architecture")
        return None
    if not np.isfinite(m["confidence"].to_numpy(float)).any():  # imported runs without p_true
        title(ax, f"{dataset} · {inputs.label(arch)}")
        empty(ax, "no p_true in the runs' traces (not recorded): no confidence or variability")
        return None
    title(
        ax, f"{dataset} · {inputs.label(arch)}\n{len(m):,} samples, mean over {int(m['n_seeds'].max())} seeds"
    )
    keep = subsample(len(m), 6000)
    m = m.iloc[keep]
    has = np.isfinite(m["lambda"].to_numpy(float))
    sc = tag(
        ax.scatter(
            m["variability"][has],
            m["confidence"][has],
            c=m["lambda"][has],
            s=5,
            lw=0,
            alpha=0.75,
            cmap=LAMBDA_CMAP,
            vmin=0,
            vmax=inputs.lambda_max,
        ),
        COLORBAR,
    )
    if (~has).any():
        tag(
            ax.scatter(m["variability"][~has], m["confidence"][~has], marker="x", s=8, lw=0.6, color="0.5"),
            NEVER,
        )
        legend.setdefault(NEVER, Line2D([], [], marker="x", ls="none", color="0.5", ms=4))
    for text, x, y, ha in REGIONS:
        trans = (
            ax.transAxes
            if text.startswith("ambiguous")
            else blended_transform_factory(ax.transAxes, ax.transData)
        )
        ax.text(
            x, y, text, transform=trans, ha=ha, va="center", fontsize=SMALL_FONT, color="0.2", style="italic"
        )
    ax.set_xlabel("variability (sd of p(true class) over epochs)")
    ax.set_ylabel("confidence (mean p(true class))")
    ax.set_ylim(-0.15, 1.15)
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlim(0, max(float(np.nanmax(m["variability"])), 0.01) * ROOM)
    return sc


def data_map(inputs: FigureInputs) -> Figure:
    """The data map (see the module docstring). Rows: datasets; columns: architectures."""
    archs = inputs.archs()
    fig, axes = new_figure(len(inputs.datasets), len(archs), row_h=2.9)
    legend: dict = {}
    last = None
    for r, dataset in enumerate(inputs.datasets):
        for c, arch in enumerate(archs):
            last = _panel(axes[r, c], dataset, arch, inputs, legend) or last
    if last is not None:
        bar = fig.colorbar(last, ax=axes.ravel().tolist(), shrink=0.6, aspect=30)
        bar.set_label(f"mean λ over seeds (bounds 0 and {inputs.lambda_max:g})")
        bar.set_ticks(np.linspace(0, inputs.lambda_max, 6))
    figure_legend(fig, legend)
    return fig

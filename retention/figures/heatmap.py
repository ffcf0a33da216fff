"""Every training sample's retention, epoch by epoch (figure ``retention_heatmap``).

Per dataset (rows) and architecture (columns, one panel per model): one line per train
sample, one column per epoch; each cell the share of the architecture's seeds in which
the sample is classified correctly at that epoch (traces.npz, eval mode). Samples are
sorted by the one order of "most forgotten" of samples.csv (:mod:`.order`; rank 1 at the
top); samples without a rank (never learned or too short in every seed) are at the
bottom, below a solid line. Dashed lines mark tie groups of more than
:data:`BIG_TIE` of the samples: their order within is a random draw, as the panel's
title says.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from retention.figures import order as rank_order
from retention.figures.inputs import FigureInputs
from retention.figures.style import (
    COLORBAR,
    RETENTION_CMAP,
    empty,
    guide,
    new_figure,
    panel_width,
    tag,
    title,
)

#: tie groups larger than this share of the ranked samples are marked and named
BIG_TIE = 0.05


def seed_share_correct(runs: dict, arch: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample_id, t, share): per train sample and epoch, the share of ``arch``'s runs
    (traces arrays) in which it is correct (samples in the order of the first run)."""
    mine = [arrays for (a, _), arrays in sorted(runs.items(), key=lambda kv: kv[0][1]) if a == arch]
    if not mine:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 0))
    ids = np.asarray(mine[0]["sample_id"], np.int64)
    total = np.zeros((ids.size, np.asarray(mine[0]["t"]).size))
    for arrays in mine:
        pos = pd.Series(np.arange(len(arrays["sample_id"])), index=np.asarray(arrays["sample_id"], np.int64))
        total += np.asarray(arrays["correct"], float)[pos.loc[ids].to_numpy()]
    return ids, np.asarray(mine[0]["t"]), total / len(mine)


def _panel(ax, dataset: str, arch: str, inputs: FigureInputs):
    ids, t, share = seed_share_correct(inputs.run("traces", dataset), arch)
    order = rank_order.ranked(inputs.table("samples", dataset), arch)
    heading = f"{dataset} · {inputs.label(arch)}"
    if not ids.size or order.empty:
        title(ax, heading)
        empty(ax, "no traces or no ranks in samples.csv for this architecture")
        return None
    ranked = order["sample_id"].to_numpy(np.int64)
    row_of = pd.Series(np.arange(ids.size), index=ids)
    ranked = ranked[np.isin(ranked, ids)]
    rest = np.setdiff1d(ids, ranked)
    rows = np.concatenate([row_of.loc[ranked].to_numpy(), row_of.loc[rest].to_numpy()])
    im = tag(
        ax.imshow(
            share[rows],
            aspect="auto",
            cmap=RETENTION_CMAP,
            vmin=0,
            vmax=1,
            interpolation="antialiased",
            extent=(t[0] - 0.5, t[-1] + 0.5, len(rows), 0),
        ),
        COLORBAR,
    )
    guide(ax.axvline(0, color="white", lw=0.8, ls=":"))
    if rest.size:
        guide(ax.axhline(len(ranked), color="white", lw=1.0))
    big = []
    for score, group in order.groupby("score", sort=False):
        if len(group) > BIG_TIE * len(order):
            first, last = int(group["rank"].min()) - 1, int(group["rank"].max())
            for y in (first, last):
                if 0 < y < len(ranked):
                    guide(ax.axhline(y, color="white", lw=0.8, ls="--"))
            big.append(f"{len(group):,} ({len(group) / len(order):.0%}) at {score:.2g}")
    note = f"\nties, in random order: {', '.join(big)}" if big else ""
    never = f" (below: {rest.size:,} without a rank)" if rest.size else ""
    title(ax, f"{heading}\n{len(ranked):,} ranked samples{never}{note}", width=panel_width(ax) - 1.3)
    ax.set_xlabel("epoch t (dotted: end of head warmup)")
    ax.set_ylabel(f"sample, by rank ({rank_order.score_symbol(inputs.table('samples', dataset))}; 1 at top)")
    ax.grid(False)
    return im


def retention_heatmap(inputs: FigureInputs) -> Figure:
    """The retention heatmap (see the module docstring). Rows: datasets; columns:
    architectures."""
    archs = inputs.archs()
    fig, axes = new_figure(len(inputs.datasets), len(archs), row_h=3.0)
    last = None
    for r, dataset in enumerate(inputs.datasets):
        for c, arch in enumerate(archs):
            last = _panel(axes[r, c], dataset, arch, inputs) or last
    if last is not None:
        bar = fig.colorbar(last, ax=axes.ravel().tolist(), shrink=0.6, aspect=30)
        bar.set_label("share of seeds in which the sample is correct")
    return fig

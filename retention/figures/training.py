"""Training curves of every fine-tuning run (figure ``training_curves``)."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .inputs import FigureInputs
from .style import empty, figure_legend, guide, new_figure, tag, title

NAMES = {"train_acc": "train accuracy (eval mode), mean over seeds", "heldout_acc": "held-out accuracy, mean over seeds"}
STYLES = {"train_acc": "-", "heldout_acc": "--"}
ONE_SEED = "one seed (thin)"


def _panel(ax, runs: dict, legend: dict) -> None:
    colors = dict(zip(NAMES, sns.color_palette("colorblind")))
    for col in NAMES:
        frames = []
        for _, df in sorted(runs.items(), key=lambda kv: int(kv[0][1])):
            tag(ax.plot(df["t"], df[col], STYLES[col], color=colors[col], lw=0.6, alpha=0.35), ONE_SEED)
            frames.append(df[["t", col]])
        mean = pd.concat(frames).groupby("t")[col].mean()
        tag(ax.plot(mean.index, mean.to_numpy(), STYLES[col], color=colors[col], lw=1.8), NAMES[col])
        legend.setdefault(NAMES[col], Line2D([], [], ls=STYLES[col], color=colors[col], lw=1.8))
    legend.setdefault(ONE_SEED, Line2D([], [], color="0.4", lw=0.6, alpha=0.6))
    guide(ax.axvline(0, color="0.4", lw=0.8, ls=":"))


def training_curves(inputs: FigureInputs) -> Figure:
    """Accuracy on the whole train set (eval mode) and on the held-out set per epoch, for
    every run (thin: one seed; thick: mean over seeds). Rows: datasets; columns:
    architectures."""
    archs = inputs.archs()
    if not archs:  # every dataset's runs were imported (source: traces): no metrics.csv
        fig, axes = new_figure(1, 1, col_w=4.5, row_h=1.2)
        empty(axes[0, 0], "no training curves: the runs were recorded elsewhere (source: traces)")
        return fig
    fig, axes = new_figure(len(inputs.datasets), len(archs), col_w=3.2, row_h=2.5, sharey=True)
    legend: dict = {}
    for r, dataset in enumerate(inputs.datasets):
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            runs = {k: v for k, v in inputs.run("metrics", dataset).items() if k[0] == arch}
            title(ax, f"{dataset} · {inputs.label(arch)} ({len(runs)} seeds)")
            if not runs:
                empty(ax, "no metrics.csv: runs recorded elsewhere (source: traces) have no training curves")
                continue
            _panel(ax, runs, legend)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("epoch t (t ≤ 0: head warmup; dotted: t = 0)")
            ax.set_ylabel("accuracy")
    figure_legend(fig, legend)
    return fig

"""Training curves of every fine-tuning run (figure ``training_curves``, one per dataset).

Per architecture (columns, in its colour): accuracy (top) and cross-entropy loss
(bottom) per epoch on the whole train set in eval mode (dashed) and on the held-out set
(solid), thin for each seed and thick for the mean over seeds. Accuracies come from
metrics.csv, losses from traces.npz (the mean of each sample's loss); without them, the
training loss of metrics.csv (train mode, augmented) is drawn instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures.inputs import FigureInputs, one_dataset
from retention.figures.style import (
    GUIDE,
    GUIDE_COLOR,
    NEUTRAL,
    SPLIT_STYLES,
    empty,
    figure_legend,
    guide,
    stacked,
    tag,
    title,
)

ONE_SEED = "one seed (thin)"
ACCURACY = {"train": "train set, eval mode: mean over seeds", "heldout": "held-out set: mean over seeds"}
TRAIN_MODE = "training loss (train mode, augmented): mean over seeds"


def loss_curves(metrics: pd.DataFrame, arrays: dict | None) -> dict[str, pd.Series]:
    """split -> mean loss per epoch t of one run (traces' per-sample losses; else the
    training loss of metrics.csv under the key 'train_mode')."""
    if arrays is not None and "loss" in arrays and "heldout_loss" in arrays:
        t = np.asarray(arrays["t"])
        return {
            "train": pd.Series(np.asarray(arrays["loss"], float).mean(0), index=t),
            "heldout": pd.Series(np.asarray(arrays["heldout_loss"], float).mean(0), index=t),
        }
    return {"train_mode": pd.Series(metrics["train_loss"].to_numpy(float), index=metrics["t"].to_numpy())}


def _lines(ax, curves: list[pd.Series], ls: str, color, name: str, legend: dict) -> None:
    for c in curves:
        tag(ax.plot(c.index, c.to_numpy(), ls=ls, color=color, lw=0.6, alpha=0.35), ONE_SEED)
    mean = pd.concat(curves, axis=1).mean(axis=1)
    tag(ax.plot(mean.index, mean.to_numpy(), ls=ls, color=color, lw=1.6), name)
    legend.setdefault(name, Line2D([], [], ls=ls, color=NEUTRAL, lw=1.6))
    legend.setdefault(ONE_SEED, Line2D([], [], color="0.4", lw=0.6, alpha=0.6))


def _panels(ax_acc, ax_loss, inputs: FigureInputs, dataset: str, arch: str, legend: dict) -> None:
    runs = {k: v for k, v in inputs.run("metrics", dataset).items() if k[0] == arch}
    traces = inputs.run("traces", dataset)
    title(ax_acc, f"{dataset} · {inputs.label(arch)} ({len(runs)} seeds): accuracy")
    title(ax_loss, f"{dataset} · {inputs.label(arch)}: loss")
    if not runs:
        why = "no metrics.csv of this architecture (runs recorded elsewhere, source: traces, have none)"
        empty(ax_acc, why)
        empty(ax_loss, why)
        return
    color = inputs.colors()[arch]
    ordered = sorted(runs.items(), key=lambda kv: int(kv[0][1]))
    for split, col in (("train", "train_acc"), ("heldout", "heldout_acc")):
        _lines(
            ax_acc,
            [pd.Series(df[col].to_numpy(float), index=df["t"].to_numpy()) for _, df in ordered],
            SPLIT_STYLES[split],
            color,
            ACCURACY[split],
            legend,
        )
    losses = [loss_curves(df, traces.get(key)) for key, df in ordered]
    for split in ("train", "heldout", "train_mode"):
        curves = [c[split] for c in losses if split in c]
        if curves:
            name = TRAIN_MODE if split == "train_mode" else ACCURACY[split]
            _lines(
                ax_loss, curves, ":" if split == "train_mode" else SPLIT_STYLES[split], color, name, legend
            )
    for ax in (ax_acc, ax_loss):
        guide(ax.axvline(0, color=GUIDE_COLOR, lw=0.8, ls=":"))
        ax.set_xlabel("epoch t (t ≤ 0: head warmup)")
    ax_acc.set_ylabel("accuracy")
    ax_loss.set_ylabel("cross-entropy loss")


def _shared_scales(acc_axes, loss_axes) -> None:
    """One accuracy range for every panel, zoomed to the curves (up to 1), and one loss
    scale (logarithmic where the losses span more than a factor 20)."""
    acc = np.concatenate(
        [ln.get_ydata() for ax in acc_axes for ln in ax.lines if ln.get_gid() != GUIDE] or [[1.0]]
    )
    low = float(np.nanmin(acc))
    for ax in acc_axes:
        ax.set_ylim(max(0.0, low - 0.05 * (1 - low) - 0.01), 1.0 + 0.03 * (1 - low) + 0.002)
    loss = np.concatenate(
        [ln.get_ydata() for ax in loss_axes for ln in ax.lines if ln.get_gid() != GUIDE] or [[1.0]]
    )
    loss = loss[np.isfinite(loss) & (loss > 0)]
    if loss.size and loss.max() / loss.min() > 20:
        for ax in loss_axes:
            ax.set_yscale("log")


def training_curves(inputs: FigureInputs) -> Figure:
    """Accuracy and loss per epoch of every run of one dataset (see the module
    docstring). Columns: architectures; rows: accuracy, loss."""
    dataset = one_dataset(inputs, "training_curves")
    archs = inputs.archs(dataset) or inputs.archs()
    fig, axes = stacked([(len(archs), 2.3), (len(archs), 2.3)], legend_in=0.5)
    legend: dict = {}
    for c, arch in enumerate(archs):
        _panels(axes[0][c], axes[1][c], inputs, dataset, arch, legend)
    _shared_scales(axes[0], axes[1])
    figure_legend(fig, legend)
    return fig

"""The most and least forgotten training images (figure ``gallery``).

Per dataset and architecture: the ``N_THUMBS`` training images with the highest and the
lowest lambda averaged over the seeds in which the sample is eligible (the seed-pooled
ranking of F1), from the prepared images (results/data/{dataset}/images.npy), with the
class and the mean lambda under each. Ties (lambda piles up at its bounds) are broken by
more forgetting events and lower mean retention for the most forgotten, by fewer events
and higher confidence for the least; the row label says how many samples share the
shown value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..stats.runs import ELIGIBLE
from .examples import primary_rows
from .inputs import FigureInputs, text_of
from .style import PICTURE, empty, new_figure, shorten, tag

N_THUMBS = 8
COLUMNS = ("lambda", "forget_events", "mean_retention", "confidence")


def pooled_scores(runs: dict, arch: str) -> pd.DataFrame:
    """Per sample: the mean over an architecture's runs (where eligible) of lambda,
    forgetting events, mean retention and confidence, the label and the seeds counted."""
    frames = []
    for (a, _), fits in runs.items():
        if a == arch:
            p = primary_rows(fits)
            p = p[p["status"].astype(str).isin(ELIGIBLE) & np.isfinite(pd.to_numeric(p["lambda"], errors="coerce"))]
            frames.append(p[["sample_id", "label", *COLUMNS]])
    if not frames:
        return pd.DataFrame(columns=["sample_id", "label", *COLUMNS, "n_seeds"])
    data = pd.concat(frames, ignore_index=True)
    out = data.groupby("sample_id").agg(label=("label", "first"), **{c: (c, "mean") for c in COLUMNS},
                                        n_seeds=("lambda", "size"))
    return out.reset_index()


def extremes(pooled: pd.DataFrame, n: int = N_THUMBS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` most and ``n`` least forgotten samples of :func:`pooled_scores`."""
    most = pooled.sort_values(["lambda", "forget_events", "mean_retention"], ascending=[False, False, True], kind="stable")
    least = pooled.sort_values(["lambda", "forget_events", "confidence"], ascending=[True, True, False], kind="stable")
    return most.head(n), least.head(n)


def _row(axes, shown: pd.DataFrame, pooled: pd.DataFrame, what: str, images, rows: dict, names: dict) -> None:
    """One row: a label panel (what, and how many samples share the shown lambda), then
    the thumbnails with the class and mean lambda under each."""
    tied = int(np.isclose(pooled["lambda"], shown["lambda"].iloc[0]).sum()) if len(shown) else 0
    note = f"\n({tied:,} samples tied\nat λ̄ = {shown['lambda'].iloc[0]:.2g})" if tied > len(shown) else ""
    axes[0].set_axis_off()
    axes[0].text(1.0, 0.5, what + note, ha="right", va="center", fontsize=6.5, transform=axes[0].transAxes)
    for k, ax in enumerate(axes[1:]):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if k >= len(shown):
            ax.set_axis_off()
            continue
        s = shown.iloc[k]
        tag(ax.imshow(images[rows[int(s["sample_id"])]], interpolation="nearest"), PICTURE)
        name = names.get(int(s["label"]), str(int(s["label"])))
        ax.set_xlabel(f"{shorten(name, 14)}\nλ̄ = {s['lambda']:.2g}", fontsize=6, labelpad=2)


def gallery(inputs: FigureInputs) -> Figure:
    """The gallery (see the module docstring). Rows: dataset x architecture x (most,
    least); columns: a label, then ``N_THUMBS`` images."""
    pictured = [d for d in inputs.datasets if inputs.tables.get("images", {}).get(d) is not None]
    without = [d for d in inputs.datasets if d not in pictured]
    if without and not pictured:  # every dataset's runs were recorded elsewhere (source: traces)
        fig, axes = new_figure(1, 1, col_w=4.5, row_h=1.2)
        empty(axes[0, 0], f"no images: {', '.join(without)} holds runs recorded elsewhere (source: traces)")
        return fig
    pairs = [(d, a) for d in pictured for a in inputs.archs(d)]
    n_rows = 2 * max(len(pairs), 1)
    size = min(1.0, 14.0 / n_rows)
    fig, axes = new_figure(n_rows, N_THUMBS + 1, col_w=size * 0.95, row_h=size + 0.32,
                           gridspec_kw={"width_ratios": [1.4] + [1] * N_THUMBS})
    if not pairs:
        empty(axes[0, 0], "no fits")
    if without:
        fig.suptitle(f"not shown: {', '.join(without)} (runs recorded elsewhere, no images)", fontsize=6.5)
    for i, (dataset, arch) in enumerate(pairs):
        manifest, images = inputs.table("manifest", dataset), inputs.tables.get("images", {}).get(dataset)
        pooled = pooled_scores(inputs.run("fits", dataset), arch)
        if images is None or manifest.empty or pooled.empty:
            empty(axes[2 * i, 1], f"{dataset}: no prepared images or no eligible samples")
            continue
        rows = {int(s): r for r, s in enumerate(pd.to_numeric(manifest["sample_id"]))}
        names = dict(zip(pd.to_numeric(manifest["label"]).astype(int), text_of(manifest, "class_name")))
        most, least = extremes(pooled)
        head = f"{dataset} · {inputs.label(arch)}"
        seeds = f"λ̄: mean over ≤ {int(pooled['n_seeds'].max())} seeds"
        _row(axes[2 * i], most, pooled, f"{head}\nmost forgotten\n{seeds}", images, rows, names)
        _row(axes[2 * i + 1], least, pooled, f"{head}\nleast forgotten\n{seeds}", images, rows, names)
    return fig

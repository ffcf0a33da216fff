"""The most and least forgotten training images (figure ``gallery``, one per dataset).

Per architecture: the ``N_THUMBS`` training images ranked first and last in the order of
samples.csv (:mod:`.order`: the seed-pooled rank score, ties broken by a seeded random
draw), from the prepared images (results/data/{dataset}/images.npy), with the class and
the seed-pooled score under each. Where the shown images come from a larger tie group
(λ piles up at its bounds), the row says how many samples tie and that the shown ones are
a random draw of them; the rows of the gallery are the rows of samples.csv with ranks
1..N_THUMBS and the largest N_THUMBS ranks.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from retention.figures import order as rank_order
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import PICTURE, PRINT_WIDTH, SMALL_FONT, empty, shorten, stacked, tag, wrap_text

N_THUMBS = 8
LABEL_W = 1.5  # inches of the label column


def _row(axes, shown: pd.DataFrame, head: str, symbol: str, images, rows: dict, names: dict) -> None:
    """One row: a label panel (what, and the tie group the shown ones are drawn from),
    then the thumbnails with the class and the seed-pooled score under each."""
    note = rank_order.tie_note(shown, symbol)
    axes[0].set_axis_off()
    text = head + ("\n" + wrap_text(note, 27) if note else "")
    axes[0].text(0.0, 0.5, text, ha="left", va="center", fontsize=SMALL_FONT, transform=axes[0].transAxes)
    for k, ax in enumerate(axes[1:]):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if k >= len(shown):
            ax.set_axis_off()
            continue
        s = shown.iloc[k]
        tag(ax.imshow(images[rows[int(s["sample_id"])]], interpolation="nearest"), PICTURE)
        name = names.get(int(s["label"]), str(s["class_name"]))
        ax.set_xlabel(f"{shorten(name, 10)}\n{s['score']:.2g}", fontsize=SMALL_FONT, labelpad=1.5)


def gallery(inputs: FigureInputs) -> Figure:
    """The gallery of one dataset (see the module docstring). Rows: architecture x (most,
    least); columns: a label, then ``N_THUMBS`` images."""
    dataset = one_dataset(inputs, "gallery")
    archs = inputs.archs(dataset) or list(inputs.arch_labels)
    samples = inputs.table("samples", dataset)
    thumb = (PRINT_WIDTH - LABEL_W - 0.2) / N_THUMBS
    fig, axes = stacked(
        [(N_THUMBS + 1, thumb + 0.36, [LABEL_W / thumb] + [1] * N_THUMBS)] * (2 * max(len(archs), 1))
    )
    manifest, images = inputs.table("manifest", dataset), inputs.tables.get("images", {}).get(dataset)
    symbol = rank_order.score_symbol(samples)
    if images is None or manifest.empty or samples.empty:
        empty(
            axes[0][1], f"{dataset}: no prepared images (runs recorded elsewhere have none) or no samples.csv"
        )
        for row in axes:
            for ax in row:
                ax.set_axis_off()
        return fig
    rows = {int(s): r for r, s in enumerate(pd.to_numeric(manifest["sample_id"]))}
    names = dict(zip(pd.to_numeric(manifest["label"]).astype(int), text_of(manifest, "class_name")))
    for i, arch in enumerate(archs):
        order = rank_order.ranked(samples, arch)
        most, least = rank_order.ends(order, N_THUMBS)
        head = f"{dataset} · {inputs.label(arch)}"
        _row(
            axes[2 * i], most, f"{head}\nmost forgotten\n(under each: {symbol})", symbol, images, rows, names
        )
        _row(axes[2 * i + 1], least, f"{head}\nleast forgotten", symbol, images, rows, names)
    return fig

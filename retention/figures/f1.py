"""F1, architecture dependence: do two architectures forget the same samples? (figure ``jaccard``)

Per dataset (rows): the Jaccard of the exactly-k top-q sets of every pair of runs, per q
and sample subset (dots: seed pairs within each architecture and across; diamond: the
seed-pooled ranking; dotted: chance at the pairs' n and k); pairs whose set is undefined
(the cut-off falls inside the lambda = 0 group, or too few samples) are left out and
counted under each q. Right: the findings at the configured q with their intervals, the
memoryless null, chance and the paper's value; and the primary difference within minus
cross on its own axis.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import marks
from .forest import forest, panel_rows, row_label
from .inputs import FigureInputs, text_of
from .style import arch_colors, empty, figure_legend, new_figure, tag, title

JACCARD_IDS = ("F1.within", "F1.cross", "F1.pooled")


def _series(pairs: pd.DataFrame, inputs: FigureInputs) -> list[tuple]:
    """(kind, arch, arch_b, legend label, colour, marker) of every series of a panel."""
    archs = list(dict.fromkeys(text_of(pairs, "arch")))
    colors = arch_colors(inputs.archs() or archs)
    out = [("within_pair", a, a, f"within {inputs.label(a)} (seed pairs)", colors.get(a, "0.3"), "o")
           for a in archs if ((pairs["kind"] == "within_pair") & (pairs["arch"] == a)).any()]
    cross = pairs[pairs["kind"] == "cross_pair"].drop_duplicates(["arch", "arch_b"])
    out += [("cross_pair", r.arch, r.arch_b, f"{inputs.pair_label(r.arch, r.arch_b)} (seed pairs)", "0.35", "s")
            for r in cross.itertuples(index=False)]
    pooled = pairs[pairs["kind"] == "pooled"].drop_duplicates(["arch", "arch_b"])
    out += [("pooled", r.arch, r.arch_b, f"{inputs.pair_label(r.arch, r.arch_b)} (seed-pooled)", "black", "D")
            for r in pooled.itertuples(index=False) if r.arch_b]
    return out


def _draw_q(ax, sq: pd.DataFrame, qi: int, series, inputs: FigureInputs, legend: dict) -> tuple[int, int]:
    """The pairs and pooled values of one q at x = qi; returns (undefined, total) pairs."""
    width = 0.8
    step = width / max(len(series), 1)
    chance = pd.to_numeric(sq["chance"], errors="coerce").mean()
    if marks.chance(ax, qi, chance, orient="v", width=width):
        legend.setdefault(marks.CHANCE, marks.chance_handle())
    undefined = total = 0
    for si, (kind, a, b, name, color, marker) in enumerate(series):
        rows = sq[(sq["kind"] == kind) & (sq["arch"] == a) & (sq["arch_b"] == b)]
        x0 = qi - width / 2 + step * (si + 0.5)
        values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(float)
        n = pd.to_numeric(rows["n_samples"], errors="coerce").to_numpy(float)
        ok = np.isfinite(values)
        total, undefined = total + (kind != "pooled") * len(rows), undefined + (kind != "pooled") * int((~ok).sum())
        if not ok.any():
            continue
        x = x0 + (np.linspace(-0.3, 0.3, ok.sum()) * step if ok.sum() > 1 else np.zeros(1))
        small = np.array([inputs.small(k) for k in n[ok]])
        for hollow in (False, True):
            sel = small == hollow
            if sel.any():
                h = ax.plot(x[sel], values[ok][sel], marker, ls="none", ms=5 if kind == "pooled" else 3.5,
                            color=color, mfc="white" if hollow else color, alpha=0.9)
                tag(h, marks.hollow_label(inputs.min_samples) if hollow else name)
        legend.setdefault(name, Line2D([], [], marker=marker, ls="none", color=color, ms=4))
    return undefined, total


def _subset_panel(ax, t: pd.DataFrame, subset: str, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    what = "all eligible samples" if subset == "all" else subset.replace("r2>=", "samples with R² ≥ ") + " in both runs"
    title(ax, f"{dataset} · {what}")
    s = t[text_of(t, "subset") == subset]
    values = pd.to_numeric(s["value"], errors="coerce")
    if s.empty or not np.isfinite(values).any():
        n = pd.to_numeric(s.get("n_samples", pd.Series(dtype=float)), errors="coerce")
        why = f"at most {int(n.max())} samples per pair" if n.notna().any() else "no pairs"
        notes = [marks.short_note(x) for x in dict.fromkeys(text_of(s, "note")) if x]
        empty(ax, f"no Jaccard defined ({why}; {notes[0] if notes else 'sets undefined'})")
        return
    qs = sorted(pd.to_numeric(s["q"]).unique())
    series = _series(s, inputs)
    ticks = []
    for qi, q in enumerate(qs):
        undefined, total = _draw_q(ax, s[np.isclose(pd.to_numeric(s["q"]), q)], qi, series, inputs, legend)
        ticks.append(f"top-{q:.0%}" + (f"\n{undefined} of {total} pairs\nundefined" if undefined else ""))
    ax.set_xticks(range(len(qs)), ticks)
    ax.set_xlim(-0.6, len(qs) - 0.4)
    ax.set_ylim(0, min(1.02, max(float(np.nanmax(values)) * 1.2, 0.1)))
    ax.set_xlabel("most-forgotten set (share q of the eligible samples)")
    ax.set_ylabel("Jaccard of the two runs' sets")


def _forest_panels(ax_j, ax_d, dataset: str, inputs: FigureInputs, legend: dict) -> None:
    names = {"F1.within": "within", "F1.cross": "across, seed pairs", "F1.pooled": "across, seed-pooled"}
    q = pd.to_numeric(inputs.rows("F1.within", dataset).get("q", pd.Series(dtype=float)), errors="coerce").dropna()
    top = f"top-{q.iloc[0]:.0%}" if len(q) else "the configured q"
    for ax, ids, heading, xlabel in (
        (ax_j, JACCARD_IDS, f"{dataset}: Jaccard of the {top} sets", "Jaccard (95% interval)"),
        (ax_d, ("F1.difference",), f"{dataset}: primary, within minus across", "difference of mean Jaccards (95% interval)"),
    ):
        part = panel_rows(ax, inputs, dataset, ids, heading)
        if part.empty:
            continue
        labels = [(f"{names[r['id']]}: " if r["id"] in names else "") + row_label(r, inputs, with_dataset=False)
                  for r in part.to_dict("records")]
        forest(ax, part, inputs, legend, labels, xlabel=xlabel, ylabel="set and architectures")


def jaccard(inputs: FigureInputs) -> Figure:
    """F1 (see the module docstring). Rows: datasets; columns: sample subsets, then the
    findings at the configured q and the primary difference."""
    subsets = list(dict.fromkeys(s for d in inputs.datasets for s in text_of(inputs.table("f1_jaccard", d), "subset")))
    subsets = subsets or ["all"]
    fig, axes = new_figure(len(inputs.datasets), len(subsets) + 2, col_w=3.5, row_h=3.0)
    legend: dict = {}
    for r, dataset in enumerate(inputs.datasets):
        t = inputs.table("f1_jaccard", dataset)
        for c, subset in enumerate(subsets):
            if t.empty:
                empty(axes[r, c], f"{dataset}: no f1_jaccard table")
                continue
            _subset_panel(axes[r, c], t.assign(**{k: text_of(t, k) for k in ("kind", "arch", "arch_b")}), subset,
                          dataset, inputs, legend)
        _forest_panels(axes[r, -2], axes[r, -1], dataset, inputs, legend)
    figure_legend(fig, legend)
    return fig

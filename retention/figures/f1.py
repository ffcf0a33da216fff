"""F1, architecture dependence: do two architectures forget the same samples? (figure
``jaccard``, one per dataset)

Top: the Jaccard of the exactly-k top-q sets of every pair of runs, per q, one panel per
sample subset (dots: seed pairs within each architecture, in its colour, and across,
grey squares; black diamond: the seed-pooled ranking; dotted: chance at the pairs' n and
k; dash-dot: the paper's settling criterion); pairs whose set is undefined (the cut-off
falls inside the λ = 0 group, or too few samples) are left out and counted under each q,
and a subset with no defined pair is one line saying so. Bottom: the findings at the
configured q on one axis, with both nulls, chance, the settling criterion, the paper's
value, and the primary difference within minus across with its two verdicts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures import marks
from retention.figures.forest import forest, forest_height, forest_units, row_label
from retention.figures.inputs import FigureInputs, one_dataset, text_of
from retention.figures.style import NEUTRAL, empty, figure_legend, plain, stacked, tag, title

IDS = ("F1.within", "F1.cross", "F1.pooled", "F1.difference")
NAMES = {
    "F1.within": "within",
    "F1.cross": "across, seed pairs",
    "F1.pooled": "across, seed-pooled",
    "F1.difference": "within minus across (primary)",
}


def _series(pairs: pd.DataFrame, inputs: FigureInputs) -> list[tuple]:
    """(kind, arch, arch_b, legend label, colour, marker) of every series of a panel."""
    archs = list(dict.fromkeys(text_of(pairs, "arch")))
    colors = inputs.colors()
    out = [
        ("within_pair", a, a, f"within {inputs.label(a)} (seed pairs)", colors.get(a, NEUTRAL), "o")
        for a in archs
        if ((pairs["kind"] == "within_pair") & (pairs["arch"] == a)).any()
    ]
    cross = pairs[pairs["kind"] == "cross_pair"].drop_duplicates(["arch", "arch_b"])
    out += [
        ("cross_pair", r.arch, r.arch_b, f"{inputs.pair_label(r.arch, r.arch_b)} (seed pairs)", "0.45", "s")
        for r in cross.itertuples(index=False)
    ]
    pooled = pairs[pairs["kind"] == "pooled"].drop_duplicates(["arch", "arch_b"])
    out += [
        ("pooled", r.arch, r.arch_b, f"{inputs.pair_label(r.arch, r.arch_b)} (seed-pooled)", "black", "D")
        for r in pooled.itertuples(index=False)
        if r.arch_b
    ]
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
        total, undefined = (
            total + (kind != "pooled") * len(rows),
            undefined + (kind != "pooled") * int((~ok).sum()),
        )
        if not ok.any():
            continue
        x = x0 + (np.linspace(-0.3, 0.3, ok.sum()) * step if ok.sum() > 1 else np.zeros(1))
        small = np.array([inputs.small(k) for k in n[ok]])
        for hollow in (False, True):
            sel = small == hollow
            if sel.any():
                h = ax.plot(
                    x[sel],
                    values[ok][sel],
                    marker,
                    ls="none",
                    ms=4.5 if kind == "pooled" else 3.5,
                    color=color,
                    mfc="white" if hollow else color,
                    alpha=0.9,
                )
                tag(h, marks.hollow_label(inputs.min_samples) if hollow else name)
        legend.setdefault(name, Line2D([], [], marker=marker, ls="none", color=color, ms=4))
    return undefined, total


def subset_words(subset: str) -> str:
    return (
        "all eligible samples"
        if subset == "all"
        else plain(subset.replace("r2>=", "R² ≥ ")) + " in both runs"
    )


def _defined(t: pd.DataFrame, subset: str) -> bool:
    s = t[text_of(t, "subset") == subset]
    return bool(np.isfinite(pd.to_numeric(s["value"], errors="coerce")).any()) if len(s) else False


def _why_undefined(t: pd.DataFrame, subset: str) -> str:
    s = t[text_of(t, "subset") == subset]
    n = pd.to_numeric(s.get("n_samples", pd.Series(dtype=float)), errors="coerce")
    why = f"at most {int(n.max())} samples per pair" if n.notna().any() else "no pairs"
    notes = [marks.short_note(x) for x in dict.fromkeys(text_of(s, "note")) if x]
    first = notes[0] if notes else "sets undefined"
    return f"{subset_words(subset)}: no Jaccard defined at any q ({why}; {first})"


def _subset_panel(ax, t: pd.DataFrame, subset: str, inputs: FigureInputs, legend: dict) -> None:
    title(ax, f"Jaccard per q · {subset_words(subset)}")
    s = t[text_of(t, "subset") == subset]
    values = pd.to_numeric(s["value"], errors="coerce")
    qs = sorted(pd.to_numeric(s["q"]).unique())
    series = _series(s, inputs)
    ticks = []
    for qi, q in enumerate(qs):
        undefined, total = _draw_q(ax, s[np.isclose(pd.to_numeric(s["q"]), q)], qi, series, inputs, legend)
        ticks.append(f"{q:.0%}" + (f"\n{undefined}/{total}\nundefined" if undefined else ""))
    crit = _criterion(inputs, str(s["dataset"].iloc[0]) if "dataset" in s and len(s) else inputs.datasets[0])
    if np.isfinite(crit):
        tag(ax.axhline(crit, color="black", lw=1.0, ls=marks.CRITERION_STYLE, zorder=1), marks.CRITERION)
        legend.setdefault(marks.CRITERION, marks.criterion_handle())
    ax.set_xticks(range(len(qs)), ticks)
    ax.set_xlim(-0.6, len(qs) - 0.4)
    top = max(float(np.nanmax(values)), crit if np.isfinite(crit) else 0.0)
    ax.set_ylim(0, min(1.02, top * 1.12 + 0.02))
    ax.set_xlabel("q: share of eligible samples in the most-forgotten set")
    ax.set_ylabel("Jaccard of two runs' sets")


def _criterion(inputs: FigureInputs, dataset: str) -> float:
    rows = inputs.rows("F1.settling", dataset)
    crit = pd.to_numeric(rows.get("criterion", pd.Series(dtype=float)), errors="coerce").dropna()
    return float(crit.iloc[0]) if len(crit) else float("nan")


def jaccard(inputs: FigureInputs) -> Figure:
    """F1 of one dataset (see the module docstring)."""
    dataset = one_dataset(inputs, "jaccard")
    t = inputs.table("f1_jaccard", dataset)
    if len(t):
        t = t.assign(**{k: text_of(t, k) for k in ("kind", "arch", "arch_b")})
    subsets = list(dict.fromkeys(text_of(t, "subset"))) if len(t) else []
    drawn = [s for s in subsets if _defined(t, s)]
    notes = [_why_undefined(t, s) for s in subsets if s not in drawn] or (
        [] if len(t) else ["no f1_jaccard table"]
    )
    rows = pd.concat([inputs.rows(i, dataset) for i in IDS])
    labels = [
        f"{NAMES[r['id']]}: " + row_label(r, inputs, with_dataset=False) for r in rows.to_dict("records")
    ]
    height = forest_height(forest_units(rows, labels, inputs))
    layout = ([(len(drawn), 2.5)] if drawn else []) + [(1, 0.28)] * len(notes) + [(1, height)]
    fig, axes = stacked(layout, legend_in=0.6)
    legend: dict = {}
    for ax, subset in zip(axes[0] if drawn else [], drawn):
        _subset_panel(ax, t, subset, inputs, legend)
    for row, note in zip(axes[1 if drawn else 0 :], notes):
        empty(row[0], note)
    ax = axes[-1][0]
    q = pd.to_numeric(
        inputs.rows("F1.within", dataset).get("q", pd.Series(dtype=float)), errors="coerce"
    ).dropna()
    top = f"top-{q.iloc[0]:.0%}" if len(q) else "top-q"
    title(ax, f"{dataset} · F1: Jaccard of the {top} most-forgotten sets at the configured q", full=True)
    if rows.empty:
        empty(ax, f"{dataset}: no F1 rows in the findings table")
    else:
        forest(
            ax,
            rows,
            inputs,
            legend,
            labels,
            xlabel="Jaccard, or difference of mean Jaccards (95% interval)",
            limits=(-1.0, 1.0),
        )
    figure_legend(fig, legend)
    return fig

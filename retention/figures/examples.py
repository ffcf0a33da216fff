"""Retention traces and their fitted decay curves: the most and the least forgotten
samples, in the order of samples.csv, of one run per architecture (figure
``retention_examples``, one per dataset).

The samples shown are the first and the last ``N_EXAMPLES`` of the seed-pooled order of
:mod:`.order` among the samples fitted in the shown run (an unforgettable or never-learned
sample has no curve to draw); each panel says when they are a random draw from a tie
group, and the legend gives each sample's λ and floor b in the run and its rank.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.fitting import fit as fitmod
from retention.fitting import traces as tr
from retention.figures import order as rank_order
from retention.figures.inputs import FigureInputs, one_dataset
from retention.figures.style import SAMPLE_LINES, SAMPLE_MARKERS, SMALL_FONT, empty, stacked, tag, title

N_EXAMPLES = 3
#: the axis label of tau per trace definition
TAU_LABELS = {
    "since_learned": "epochs since the sample was first correct (τ)",
    "since_warmup": "epochs since the end of head warmup (t)",
    "raw": "epochs since the end of head warmup (t)",
    "conditional": "lag between two epochs (d)",
}


def primary_rows(fits: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured trace definition (column ``primary``)."""
    if "primary" in fits.columns:
        sub = fits[fits["primary"].astype(str).str.lower().isin(["true", "1"])]
        if len(sub):
            return sub
    first = fits["trace"].astype(str).iloc[0] if len(fits) else ""
    return fits[fits["trace"].astype(str) == first]


def select_examples(fits: pd.DataFrame, samples: pd.DataFrame, arch: str,
                    n: int = N_EXAMPLES) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(most, least, order): the ``n`` most and ``n`` least forgotten samples of
    samples.csv's order for ``arch`` (:func:`retention.figures.order.ranked`) among the
    samples ``fitted`` in this run (configured trace), and that order over them."""
    sub = primary_rows(fits)
    fitted = sub[(sub["status"].astype(str) == "fitted") & np.isfinite(pd.to_numeric(sub["lambda"], errors="coerce"))]
    order = rank_order.ranked(samples, arch)
    order = order[order["sample_id"].isin(set(fitted["sample_id"].astype(int)))]
    most, least = rank_order.ends(order, n)
    return most, least, order


def example_models(fits: pd.DataFrame, arrays: Mapping[str, np.ndarray], ids: np.ndarray, lam_max: float = 5.0):
    """The configured traces of the samples ``ids`` and their fitted models.

    Returns the :class:`retention.fitting.traces.TraceSet` of those samples (rows in the order of
    ``ids``) and one function per sample mapping tau to the model's retention:
    b + (1 - b) exp(-lambda tau) with lambda and b from the fits table; for the ``raw``
    definition c + a exp(-lambda t), refitted on the sample's trace (the table keeps only
    the score, not a) with the run's ``lam_max``.
    """
    sub = primary_rows(fits).set_index("sample_id")
    pos = {int(s): i for i, s in enumerate(np.asarray(arrays["sample_id"]))}
    rows = np.array([pos[int(i)] for i in ids], dtype=np.int64)
    ts = tr.build_traces(np.asarray(arrays["correct"])[rows], np.asarray(arrays["p_true"])[rows],
                         np.asarray(arrays["t"]), str(sub["trace"].iloc[0]), min_points=1)
    if ts.model == "raw":
        raw = fitmod.fit_raw(ts.y, ts.mask, lam_max, tau=ts.tau)
        return ts, [lambda x, lam=lam, a=a, c=c: c + a * np.exp(-lam * np.asarray(x, float))
                    for lam, a, c in zip(raw.lam, raw.a, raw.c)]
    lam, b = sub.loc[ids, "lambda"].to_numpy(float), sub.loc[ids, "b"].to_numpy(float)
    return ts, [lambda x, lk=lk, bk=bk: bk + (1.0 - bk) * np.exp(-lk * np.asarray(x, float)) for lk, bk in zip(lam, b)]


def _lambda_text(lam: float, lam_max: float) -> str:
    return f"λ = {lam:.2g}" + (" (max)" if lam >= lam_max * (1 - 1e-9) else "")


def _draw_group(ax, ts, models, shown: pd.DataFrame, lam, b, color, lam_max: float) -> None:
    """The samples of ``shown`` (rows of ``ts``) as points (jittered along time) and fitted
    curves, in the architecture's colour, each sample its own marker and line style, with
    a legend naming each."""
    grid = np.linspace(0.0, float(ts.tau.max()), 200)
    handles = []
    for k, (sid, rank) in enumerate(zip(shown["sample_id"], shown["rank"])):
        m, marker, ls = ts.mask[k], SAMPLE_MARKERS[k % len(SAMPLE_MARKERS)], SAMPLE_LINES[k % len(SAMPLE_LINES)]
        name = f"#{int(sid)}, rank {int(rank):,}\n{_lambda_text(lam[k], lam_max)}, b = {b[k]:.2f}"
        jitter = (k - (len(shown) - 1) / 2) * 0.12
        tag(ax.plot(ts.tau[m] + jitter, ts.y[k][m], marker, ms=3.2, color=color, mfc="white", mew=0.9, alpha=0.9,
                    ls="none"), name)
        tag(ax.plot(grid, models[k](grid), ls=ls, lw=1.2, color=color), name)
        handles.append(Line2D([], [], color=color, marker=marker, mfc="white", ms=3.2, ls=ls, lw=1.2, label=name))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=SMALL_FONT, handlelength=2.2,
              borderaxespad=0.0)


def _run_panels(axes, inputs: FigureInputs, dataset: str, arch: str, key) -> None:
    fits = inputs.run("fits", dataset)[key]
    arrays = inputs.run("traces", dataset)[key]
    most, least, _ = select_examples(fits, inputs.table("samples", dataset), arch)
    rows = primary_rows(fits)
    trace = str(rows["trace"].iloc[0]) if len(rows) else ""
    spec = tr.parse_label(trace) if trace else None
    by_id = rows.set_index("sample_id")
    for ax, what, shown in ((axes[0], "most", most), (axes[1], "least", least)):
        heading = f"{dataset} · {inputs.label(arch)}, seed {key[1]}: {what} forgotten"
        if shown.empty:
            title(ax, heading)
            empty(ax, f"no sample of samples.csv's order is fitted in this run ({len(rows)} samples)")
            continue
        ids = shown["sample_id"].to_numpy(np.int64)
        ts, models = example_models(fits, arrays, ids, inputs.lambda_max)
        lam, b = by_id.loc[ids, "lambda"].to_numpy(float), by_id.loc[ids, "b"].to_numpy(float)
        _draw_group(ax, ts, models, shown, lam, b, inputs.colors()[arch], inputs.lambda_max)
        note = rank_order.tie_note(shown, rank_order.score_symbol(inputs.table("samples", dataset)))
        title(ax, heading + ("\n" + note if note else ""), width=2.6)
        ax.set_ylim(-0.06, 1.06)
        ax.set_xlabel(TAU_LABELS.get(spec.definition if spec else "", "epochs"))
        ax.set_ylabel("p(true class)" if spec and spec.soft else "correct (1) or not (0)")


def retention_examples(inputs: FigureInputs) -> Figure:
    """The ``N_EXAMPLES`` most and least forgotten fitted samples of one run per
    architecture of one dataset (rows: architectures): each sample's trace (points,
    jittered along time) and its fitted decay curve; the legend gives each sample's λ
    (marked where it sits at a bound), floor b and rank in samples.csv."""
    dataset = one_dataset(inputs, "retention_examples")
    archs = inputs.archs(dataset) or inputs.archs()
    fig, axes = stacked([(2, 2.35)] * max(len(archs), 1))
    for row, arch in zip(axes, archs):
        keys = sorted(k for k in inputs.run("fits", dataset) if k[0] == arch and k in inputs.run("traces", dataset))
        if not keys:
            for ax in row:
                empty(ax, f"{dataset}: no run of {inputs.label(arch)}")
            continue
        _run_panels(row, inputs, dataset, arch, keys[0])
    return fig

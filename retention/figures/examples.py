"""Retention traces and their fitted decay curves: the most and the least forgotten
samples of one run per architecture (figure ``retention_examples``)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import fit as fitmod
from .. import traces as tr
from .inputs import FigureInputs
from .style import empty, new_figure, tag, title

N_EXAMPLES = 3
MARKERS = "os^"
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


def select_examples(fits: pd.DataFrame, n: int = N_EXAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """sample_ids of the ``n`` most and ``n`` least forgotten ``fitted`` samples of one
    run's configured trace: ranked by lambda, ties broken by more forgetting events, then
    by lower mean retention (and the reverse for the least forgotten)."""
    sub = primary_rows(fits)
    sub = sub[(sub["status"].astype(str) == "fitted") & np.isfinite(pd.to_numeric(sub["lambda"], errors="coerce"))]
    if sub.empty:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((sub["mean_retention"].to_numpy(float), -sub["forget_events"].to_numpy(float),
                        -sub["lambda"].to_numpy(float)))
    ids = sub["sample_id"].to_numpy(np.int64)[order]
    n = min(n, ids.size // 2) if ids.size > 1 else ids.size
    return ids[:n], (ids[::-1][:n] if ids.size > 1 else np.zeros(0, np.int64))


def example_models(fits: pd.DataFrame, arrays: Mapping[str, np.ndarray], ids: np.ndarray, lam_max: float = 5.0):
    """The configured traces of the samples ``ids`` and their fitted models.

    Returns the :class:`retention.traces.TraceSet` of those samples (rows in the order of
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
    return f"λ = {lam:.2g}" + (" (at λ max)" if lam >= lam_max * (1 - 1e-9) else " (at 0)" if lam <= 0 else "")


def _group_note(fitted: pd.DataFrame, most_lam: np.ndarray, lam: np.ndarray, what: str) -> str:
    """What the reader must know about a panel's lambdas: how many fitted samples share
    the most forgotten value (a tie group at a bound), and, for the least forgotten,
    when they do not differ from the most forgotten."""
    all_lam = fitted["lambda"].to_numpy(float)
    top = float(most_lam[0]) if most_lam.size else float("nan")
    tied = int(np.isclose(all_lam, top).sum())
    if what == "most":
        return f"{tied} of {len(fitted)} fitted samples have λ = {top:.2g}" if tied > most_lam.size else ""
    if lam.size and np.isclose(lam, top).any():
        return f"no contrast: only {len(fitted) - tied} of {len(fitted)} fitted samples have λ ≠ {top:.2g}"
    return ""


def _draw_group(ax, ts, models, ids, lam, b, shades, lam_max: float) -> None:
    """The samples ``ids`` (rows of ``ts``) as points (jittered along time) and fitted
    curves, each in its own colour and marker, with a legend naming each."""
    grid = np.linspace(0.0, float(ts.tau.max()), 200)
    handles = []
    for k, sid in enumerate(ids):
        m, color, marker = ts.mask[k], shades[k % len(shades)], MARKERS[k % len(MARKERS)]
        name = f"#{int(sid)}: {_lambda_text(lam[k], lam_max)}, b = {b[k]:.2f}"
        jitter = (k - (len(ids) - 1) / 2) * 0.12
        tag(ax.plot(ts.tau[m] + jitter, ts.y[k][m], marker, ms=3.5, color=color, alpha=0.85), name)
        tag(ax.plot(grid, models[k](grid), "-", lw=1.2, color=color), name)
        handles.append(Line2D([], [], color=color, marker=marker, ms=3.5, lw=1.2, label=name))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6, handlelength=1.6)


#: the colours of the samples of each group (distinct hues within a red or a blue family)
SHADES = {"most": ("#c44e52", "#dd8452", "#8c1c13"), "least": ("#4c72b0", "#64b5cd", "#1b2f5e")}


def _run_panels(axes, inputs: FigureInputs, dataset: str, arch: str, key) -> None:
    fits = inputs.run("fits", dataset)[key]
    arrays = inputs.run("traces", dataset)[key]
    most, least = select_examples(fits)
    rows = primary_rows(fits)
    fitted = rows[rows["status"].astype(str) == "fitted"]
    trace = str(rows["trace"].iloc[0]) if len(rows) else ""
    spec = tr.parse_label(trace) if trace else None
    most_lam = rows.set_index("sample_id").loc[most, "lambda"].to_numpy(float) if most.size else np.zeros(0)
    for ax, what, ids in ((axes[0], "most", most), (axes[1], "least", least)):
        heading = f"{dataset} · {inputs.label(arch)}, seed {key[1]}\n{what} forgotten"
        title(ax, heading)
        if ids.size == 0:
            empty(ax, f"no fitted samples in this run ({len(rows)} samples, trace {trace})")
            continue
        ts, models = example_models(fits, arrays, ids, inputs.lambda_max)
        lam = rows.set_index("sample_id").loc[ids, "lambda"].to_numpy(float)
        b = rows.set_index("sample_id").loc[ids, "b"].to_numpy(float)
        _draw_group(ax, ts, models, ids, lam, b, SHADES[what], inputs.lambda_max)
        note = _group_note(fitted, most_lam, lam, what)
        if note:
            title(ax, heading + "\n" + note)
        ax.set_ylim(-0.06, 1.06)
        ax.set_xlabel(TAU_LABELS.get(spec.definition if spec else "", "epochs"))
        ax.set_ylabel("p(true class)" if spec and spec.soft else "correct (1) or not (0)")


def retention_examples(inputs: FigureInputs) -> Figure:
    """The ``N_EXAMPLES`` most and least forgotten fitted samples of one run per
    architecture and dataset (rows): each sample's trace (points, jittered along time)
    and its fitted decay curve, in its own colour and marker; the legend gives each
    sample's lambda (marked where it sits at a bound) and floor b."""
    pairs = [(d, a) for d in inputs.datasets for a in inputs.archs(d)]
    fig, axes = new_figure(len(pairs), 2, col_w=4.3, row_h=2.3)
    for r, (dataset, arch) in enumerate(pairs):
        keys = sorted(k for k in inputs.run("fits", dataset) if k[0] == arch and k in inputs.run("traces", dataset))
        if not keys:
            for ax in axes[r]:
                empty(ax, f"{dataset}: no run of {inputs.label(arch)}")
            continue
        _run_panels(axes[r], inputs, dataset, arch, keys[0])
    return fig

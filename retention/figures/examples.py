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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from retention.figures import order as rank_order
from retention.figures.inputs import FigureInputs, one_dataset
from retention.figures.style import SAMPLE_LINES, SAMPLE_MARKERS, SMALL_FONT, empty, stacked, tag, title
from retention.fitting.labels import parse_label

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


def select_examples(
    fits: pd.DataFrame, samples: pd.DataFrame, arch: str, n: int = N_EXAMPLES
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(most, least, order): the ``n`` most and ``n`` least forgotten samples of
    samples.csv's order for ``arch`` (:func:`retention.figures.order.ranked`) among the
    samples ``fitted`` in this run (configured trace), and that order over them."""
    sub = primary_rows(fits)
    fitted = sub[
        (sub["status"].astype(str) == "fitted") & np.isfinite(pd.to_numeric(sub["lambda"], errors="coerce"))
    ]
    order = rank_order.ranked(samples, arch)
    order = order[order["sample_id"].isin(set(fitted["sample_id"].astype(int)))]
    most, least = rank_order.ends(order, n)
    return most, least, order


@dataclass(frozen=True)
class Shown:
    """The traces of the shown samples as the fit saw them (rows in the order of their ids):
    ``tau`` (L,), ``y`` and ``mask`` (n, L), and each sample's fitted model from the fits
    table, b + amplitude exp(-rate tau) (no point of a ``conditional`` trace: its lags
    are computed from the whole record, so only the curve is drawn)."""

    tau: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    models: list


def shown_traces(fits: pd.DataFrame, arrays: Mapping[str, np.ndarray], ids: np.ndarray) -> Shown:
    """The shown samples' trace points and fitted models, read from what the pipeline wrote:
    the fits table (the definition's t_learn, its number of points, the model's b, rate
    and amplitude) and the run's traces.npz (correct, or p_true for a soft definition);
    nothing is rebuilt or refitted."""
    sub = primary_rows(fits).set_index("sample_id").loc[ids]
    spec = parse_label(str(sub["trace"].iloc[0]))
    t = np.asarray(arrays["t"])
    source = np.asarray(arrays["p_true" if spec.soft else "correct"], dtype=float)[:, t >= 0]
    pos = {int(s): i for i, s in enumerate(np.asarray(arrays["sample_id"]))}
    n_points = sub["n_points"].to_numpy(float).astype(np.int64)
    tau = np.arange(source.shape[1], dtype=float)
    y, mask = np.zeros((len(ids), tau.size)), np.zeros((len(ids), tau.size), dtype=bool)
    if spec.definition != "conditional":
        starts = sub["t_learn"].to_numpy(float) if spec.definition == "since_learned" else np.zeros(len(ids))
        for k, sid in enumerate(ids):
            start = int(np.nan_to_num(starts[k]))
            points = source[pos[int(sid)], start : start + n_points[k]]
            y[k, : points.size], mask[k, : points.size] = points, True
    models = [
        lambda x, b=b, amp=amp, rate=rate: b + amp * np.exp(-rate * np.asarray(x, float))
        for b, amp, rate in sub[["b", "amplitude", "rate"]].to_numpy(float)
    ]
    return Shown(
        tau[: max(int(n_points.max()), 1)],
        y[:, : max(int(n_points.max()), 1)],
        mask[:, : max(int(n_points.max()), 1)],
        models,
    )


def _lambda_text(lam: float, lambda_max: float) -> str:
    return f"λ = {lam:.2g}" + (" (max)" if lam >= lambda_max * (1 - 1e-9) else "")


def _draw_group(ax, ts: Shown, shown: pd.DataFrame, lam, b, color, lambda_max: float) -> None:
    """The samples of ``shown`` (rows of ``ts``) as points (jittered along time) and fitted
    curves, in the architecture's colour, each sample its own marker and line style, with
    a legend naming each."""
    grid = np.linspace(0.0, float(ts.tau.max()), 200)
    handles = []
    for k, (sid, rank) in enumerate(zip(shown["sample_id"], shown["rank"])):
        m, marker, ls = (
            ts.mask[k],
            SAMPLE_MARKERS[k % len(SAMPLE_MARKERS)],
            SAMPLE_LINES[k % len(SAMPLE_LINES)],
        )
        name = f"#{int(sid)}, rank {int(rank):,}\n{_lambda_text(lam[k], lambda_max)}, b = {b[k]:.2f}"
        jitter = (k - (len(shown) - 1) / 2) * 0.12
        tag(
            ax.plot(
                ts.tau[m] + jitter,
                ts.y[k][m],
                marker,
                ms=3.2,
                color=color,
                mfc="white",
                mew=0.9,
                alpha=0.9,
                ls="none",
            ),
            name,
        )
        tag(ax.plot(grid, ts.models[k](grid), ls=ls, lw=1.2, color=color), name)
        handles.append(
            Line2D([], [], color=color, marker=marker, mfc="white", ms=3.2, ls=ls, lw=1.2, label=name)
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=SMALL_FONT,
        handlelength=2.2,
        borderaxespad=0.0,
    )


def _run_panels(axes, inputs: FigureInputs, dataset: str, arch: str, key) -> None:
    fits = inputs.run("fits", dataset)[key]
    arrays = inputs.run("traces", dataset)[key]
    most, least, _ = select_examples(fits, inputs.table("samples", dataset), arch)
    rows = primary_rows(fits)
    trace = str(rows["trace"].iloc[0]) if len(rows) else ""
    spec = parse_label(trace) if trace else None
    by_id = rows.set_index("sample_id")
    for ax, what, shown in ((axes[0], "most", most), (axes[1], "least", least)):
        heading = f"{dataset} · {inputs.label(arch)}, seed {key[1]}: {what} forgotten"
        if shown.empty:
            title(ax, heading)
            empty(ax, f"no sample of samples.csv's order is fitted in this run ({len(rows)} samples)")
            continue
        ids = shown["sample_id"].to_numpy(np.int64)
        ts = shown_traces(fits, arrays, ids)
        lam, b = by_id.loc[ids, "lambda"].to_numpy(float), by_id.loc[ids, "b"].to_numpy(float)
        _draw_group(ax, ts, shown, lam, b, inputs.colors()[arch], inputs.lambda_max)
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
        keys = sorted(
            k for k in inputs.run("fits", dataset) if k[0] == arch and k in inputs.run("traces", dataset)
        )
        if not keys:
            for ax in row:
                empty(ax, f"{dataset}: no run of {inputs.label(arch)}")
            continue
        _run_panels(row, inputs, dataset, arch, keys[0])
    return fig

"""The paper's figures, one function each, from the workflow's tables.

Every function takes DataFrames (and, for ``retention_examples``, the arrays of
``traces.npz``) keyed by dataset in the order of the figure's panel rows, and returns a
matplotlib :class:`~matplotlib.figure.Figure`; :func:`save_figure` writes it as PDF and
PNG atomically. One panel row per dataset; architectures are named through
``arch_labels`` (the config's ``archs.<arch>.label``, else the key). The paper's values
come from :func:`retention.findings.load_paper_values` and are matched to the finding
names that :func:`retention.stats.summary_table` writes.

Inputs (docs/contracts.md): ``fits`` maps dataset -> {(arch, seed): fits table}; the
figures use the rows flagged ``primary`` (the configured trace definition). Statistics
tables are those of ``results/stats/{dataset}/`` (columns in :mod:`retention.stats`),
read back from csv or straight from :func:`retention.stats.dataset_tables`.

The style is set by :func:`set_style` (seaborn "whitegrid", paper context, colour-blind
palette), which every figure function calls first, so all figures look alike.
"""

from __future__ import annotations

import math
import os
import re
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from . import fit as fitmod  # noqa: E402
from . import stats  # noqa: E402
from . import traces as tr  # noqa: E402
from .findings import match_paper_value  # noqa: E402
from .io import atomic_path  # noqa: E402

#: every figure of results/figures/, in the order of the paper's findings
FIGURE_NAMES = (
    "retention_examples",
    "jaccard",
    "r2",
    "seed_stability",
    "class_forgetting",
    "warmup_loss",
    "training_curves",
    "robustness",
    "alternative_scores",
    "sampler",
)
PAPER_COLOR = "#d62728"
MOST_COLOR = "#c44e52"
LEAST_COLOR = "#4c72b0"
KIND_COLORS = {"random": "#7f7f7f", "spaced": "#dd8452"}
SCORE_LABELS = {
    "forget_events": "forgetting events",
    "confidence": "confidence (mean p_true)",
    "variability": "variability (sd of p_true)",
    "el2n_t0": "EL2N at t = 0",
    "lambda": "lambda",
}
#: panel size in inches (width per column, height per dataset row)
COL_W = 3.0
ROW_H = 2.5
#: half-width of the value axis of the robustness figure (correlations, Jaccard, R^2)
XLIM_ROBUST = 1.1
#: most points drawn per architecture in a scatter (a fixed random subsample)
MAX_POINTS = 4000

FitsByRun = Mapping[str, Mapping[tuple, pd.DataFrame]]


# ------------------------------------------------------------------------ style, io


def set_style() -> None:
    """The one style of every figure: seaborn whitegrid, paper context, colour-blind
    palette, embedded TrueType fonts in PDFs."""
    sns.set_theme(
        context="paper",
        style="whitegrid",
        palette="colorblind",
        font_scale=0.9,
        rc={
            "pdf.fonttype": 42,
            "ps.fonttype": 42,
            "axes.titlesize": 8,
            "axes.titleweight": "bold",
            "legend.fontsize": 7,
            "legend.frameon": False,
            "figure.constrained_layout.use": True,
        },
    )


def save_figure(
    fig: Figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike, dpi: int = 150
) -> None:
    """Write ``fig`` as PDF and PNG (``dpi`` dots per inch; the PNG is figsize * dpi
    pixels), each to a temporary name renamed into place. PDF metadata carry no date,
    so the same figure gives the same bytes."""
    with atomic_path(pdf_path) as tmp:
        fig.savefig(tmp, format="pdf", dpi=dpi, metadata={"CreationDate": None})
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


# -------------------------------------------------------------------------- helpers


def _label(arch: str, arch_labels: Mapping[str, str] | None) -> str:
    return str((arch_labels or {}).get(arch, arch))


def _arch_colors(archs: Sequence[str]) -> dict[str, tuple]:
    pal = sns.color_palette("colorblind", max(len(archs), 3))
    return {a: pal[i % len(pal)] for i, a in enumerate(archs)}


def _figure(n_rows: int, n_cols: int, col_w: float = COL_W, row_h: float = ROW_H, **kw):
    """A Figure of n_rows x n_cols panels (axes always 2-D)."""
    n_rows, n_cols = max(n_rows, 1), max(n_cols, 1)
    fig = Figure(figsize=(col_w * n_cols, row_h * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kw)
    return fig, axes


def _empty(ax, message: str) -> None:
    """A panel that says why it has nothing to show."""
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        wrap=True,
        fontsize=7,
        transform=ax.transAxes,
        color="0.3",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns with "" for missing values (csv round trips turn "" into NaN)."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object or pd.api.types.is_string_dtype(df[c]):
            df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    return df


def _num(v) -> float:
    try:
        return math.nan if v is None or pd.isna(v) else float(v)
    except (TypeError, ValueError):
        return math.nan


def _primary(fits: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured trace definition (flag ``primary``)."""
    if "primary" in fits.columns:
        sub = fits[fits["primary"].astype(bool)]
        if len(sub):
            return sub
    first = fits["trace"].astype(str).iloc[0] if len(fits) else ""
    return fits[fits["trace"].astype(str) == first]


def _eligible(fits: pd.DataFrame) -> pd.DataFrame:
    lam = pd.to_numeric(fits["lambda"], errors="coerce")
    return fits[fits["status"].astype(str).isin(stats.ELIGIBLE) & np.isfinite(lam)]


def _trace_name(fits_by_run: Mapping[tuple, pd.DataFrame]) -> str:
    for df in fits_by_run.values():
        p = _primary(df)
        if len(p):
            return str(p["trace"].iloc[0])
    return ""


def _archs_in(keys) -> list[str]:
    return list(dict.fromkeys(str(k[0]) for k in keys))


def _qlabel(q: float) -> str:
    """As in retention.stats.summary_table: 0.1 -> 'top-10%'."""
    return f"top-{float(q) * 100:g}%"


_NUMBER = re.compile(r"^\s*[~≈]?\s*(-?\d*\.?\d+(?:e-?\d+)?)(?:\s*to\s*(-?\d*\.?\d+))?", re.I)


def paper_number(text) -> tuple[float, float] | None:
    """(low, high) of a paper value such as '0.34', '~0.01' or '0.30 to 0.50, p < 1e-45'
    (low == high for a single number); None where it is not a number."""
    m = _NUMBER.match(str(text or ""))
    if not m:
        return None
    lo = float(m.group(1))
    hi = float(m.group(2)) if m.group(2) else lo
    return lo, hi


def paper_value(
    finding: str, dataset: str, paper_values: pd.DataFrame | None
) -> tuple[float, float] | None:
    """The paper's value of a finding as (low, high), or None (no value or not a number)."""
    if paper_values is None:
        return None
    value, _ = match_paper_value(finding, dataset, paper_values)
    return paper_number(value) if value else None


def _mark_paper_h(ax, pv, x0: float, x1: float, label: bool) -> None:
    """A paper value as a red line (or band, for a range) from x0 to x1."""
    lo, hi = pv
    if hi > lo:
        ax.fill_between(
            [x0, x1], lo, hi, color=PAPER_COLOR, alpha=0.15, lw=0, label="paper" if label else None
        )
    else:
        ax.plot(
            [x0, x1], [lo, lo], color=PAPER_COLOR, lw=1.5, ls="--", label="paper" if label else None
        )


def _err(v: float, lo: float, hi: float):
    """Error-bar extents of an interval [lo, hi] around v (None without an interval;
    a percentile interval need not contain v: the bar then ends at v)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    return [[max(v - lo, 0.0)], [max(hi - v, 0.0)]]


def _paper_handle() -> Line2D:
    return Line2D([], [], color=PAPER_COLOR, marker="*", ls="none", ms=9, label="paper")


def _subsample(n: int, seed: int = 0) -> np.ndarray:
    idx = np.arange(n)
    if n <= MAX_POINTS:
        return idx
    return np.sort(np.random.default_rng(seed).choice(n, MAX_POINTS, replace=False))


def _legend(fig: Figure, handles, labels=None) -> None:
    handles = list(handles)
    if not handles:
        return
    if labels is None:
        labels = [h.get_label() for h in handles]
    seen, hs, ls = set(), [], []
    for h, lab in zip(handles, labels):
        if lab and not lab.startswith("_") and lab not in seen:
            seen.add(lab)
            hs.append(h)
            ls.append(lab)
    if hs:
        # as many columns as fit the figure's width (7 pt text: about 0.055 in a character)
        entry = 0.45 + 0.055 * max(len(label) for label in ls)
        ncol = max(1, min(len(hs), int(0.95 * fig.get_figwidth() / entry)))
        fig.legend(hs, ls, loc="outside lower center", ncol=ncol)


def _datasets(*mappings) -> list[str]:
    out: list[str] = []
    for m in mappings:
        for d in m:
            if d not in out:
                out.append(d)
    return out


# ---------------------------------------------------------------- retention examples


def select_examples(fits: pd.DataFrame, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """sample_ids of the ``n`` most and ``n`` least forgotten ``fitted`` samples of one
    run's primary trace (ranked as in METHOD section 6: lambda, then forgetting events,
    then lower mean retention)."""
    sub = _primary(fits)
    sub = sub[sub["status"].astype(str) == "fitted"]
    sub = sub[np.isfinite(pd.to_numeric(sub["lambda"], errors="coerce"))]
    if sub.empty:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rank = stats.forgetting_rank(
        sub["lambda"].to_numpy(float),
        sub["forget_events"].to_numpy(float),
        sub["mean_retention"].to_numpy(float),
    )
    order = np.argsort(rank, kind="stable")
    ids = sub["sample_id"].to_numpy(np.int64)[order]
    n = min(n, ids.size // 2) if ids.size > 1 else ids.size
    most = ids[:n]
    least = ids[::-1][:n] if ids.size > 1 else np.zeros(0, np.int64)
    return most, least


def example_models(
    fits: pd.DataFrame, arrays: Mapping[str, np.ndarray], ids: np.ndarray, lam_max: float = 5.0
):
    """The primary traces of the samples ``ids`` and their fitted models.

    Returns the :class:`retention.traces.TraceSet` of those samples (rows in the order
    of ``ids``) and one function per sample mapping tau to the model's retention:
    b + (1 - b) exp(-lambda tau) with lambda and b from the fits table; for the ``raw``
    definition c + a exp(-lambda t), refitted on the sample's trace (the table keeps
    only the score, not a), with the run's ``lam_max``.
    """
    sub = _primary(fits).set_index("sample_id")
    label = str(sub["trace"].iloc[0])
    pos = {int(s): i for i, s in enumerate(np.asarray(arrays["sample_id"]))}
    rows = np.array([pos[int(i)] for i in ids], dtype=np.int64)
    ts = tr.build_traces(
        np.asarray(arrays["correct"])[rows],
        np.asarray(arrays["p_true"])[rows],
        np.asarray(arrays["t"]),
        label,
        min_points=1,
    )
    models = []
    if ts.model == "raw":
        raw = fitmod.fit_raw(ts.y, ts.mask, lam_max, tau=ts.tau)
        for lam, a, c in zip(raw.lam, raw.a, raw.c):
            models.append(lambda x, lam=lam, a=a, c=c: c + a * np.exp(-lam * np.asarray(x, float)))
    else:
        lam = sub.loc[ids, "lambda"].to_numpy(float)
        b = sub.loc[ids, "b"].to_numpy(float)
        for lk, bk in zip(lam, b):
            models.append(
                lambda x, lk=lk, bk=bk: bk + (1.0 - bk) * np.exp(-lk * np.asarray(x, float))
            )
    return ts, models


def retention_examples(
    fits: FitsByRun,
    traces: Mapping[str, Mapping[tuple, Mapping[str, np.ndarray]]],
    n_examples: int = 3,
    arch_labels: Mapping[str, str] | None = None,
    lam_max: float = 5.0,
) -> Figure:
    """Retention traces (points) and fitted decay curves (lines) of the ``n_examples``
    most (red) and least (blue) forgotten fitted samples of one run per architecture.

    fits / traces: dataset -> {(arch, seed): fits table / traces.npz arrays (at least
    sample_id, correct, p_true, t)}; one run per architecture is drawn (the first key of
    each arch). lam_max: the fits' bound on lambda (config retention.lambda_max; used to
    refit the ``raw`` model). Rows: datasets; columns: architectures.
    """
    set_style()
    datasets = _datasets(fits)
    archs = _datasets(*[_archs_in(fits[d].keys()) for d in datasets])
    fig, axes = _figure(len(datasets), len(archs))
    for r, dataset in enumerate(datasets):
        runs = fits[dataset]
        trace = _trace_name(runs)
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            keys = [k for k in runs if str(k[0]) == arch]
            if not keys or keys[0] not in traces.get(dataset, {}):
                _empty(ax, f"{dataset}: no run of {_label(arch, arch_labels)}")
                continue
            key = keys[0]
            most, least = select_examples(runs[key], n_examples)
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)} (seed {key[1]})")
            if most.size + least.size == 0:
                _empty(ax, "no fitted samples")
                continue
            ids = np.concatenate([most, least])
            ts, models = example_models(runs[key], traces[dataset][key], ids, lam_max)
            lam = _primary(runs[key]).set_index("sample_id").loc[ids, "lambda"].to_numpy(float)
            grid = np.linspace(0.0, float(ts.tau.max()), 200)
            n_most = most.size
            for k in range(ids.size):
                color = MOST_COLOR if k < n_most else LEAST_COLOR
                j = k if k < n_most else k - n_most
                offset = (j - (n_examples - 1) / 2) * 0.035  # separate overlapping points
                m = ts.mask[k]
                ax.plot(ts.tau[m], ts.y[k][m] + offset, "o", ms=3, color=color, alpha=0.8)
                ax.plot(grid, models[k](grid), "-", lw=1.2, color=color, alpha=0.9)
            for name, sel, color in (
                ("most", slice(0, n_most), MOST_COLOR),
                ("least", slice(n_most, None), LEAST_COLOR),
            ):
                if lam[sel].size:
                    vals = ", ".join(f"{v:.2g}" for v in lam[sel])
                    ax.plot([], [], "-o", ms=3, color=color, label=f"{name} forgotten, λ = {vals}")
            ax.legend(loc="lower left", fontsize=6)
            ax.set_ylim(-0.62, 1.12)  # room for the legend below the points
            ax.set_yticks([0, 0.25, 0.5, 0.75, 1])
            xlab = "lag d (epochs)" if ts.definition == "conditional" else "τ (epochs since origin)"
            ax.set_xlabel(xlab)
            ax.set_ylabel(f"retention ({trace})" if c == 0 else "")
    return fig


# ---------------------------------------------------------------------------- F1


def jaccard(
    f1: Mapping[str, pd.DataFrame],
    paper_values: pd.DataFrame | None = None,
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """F1: Jaccard of the top-q most-forgotten sets per q, cross-architecture
    (seed-pooled, with its permutation band; mean of seed pairs) beside
    within-architecture seed pairs and the chance level q / (2 - q); 95% intervals,
    single seed pairs as dots, the paper's value as a red star.

    f1: dataset -> ``f1_jaccard`` table. Rows: datasets; columns: subsets (all samples,
    R^2 >= r2_min).
    """
    set_style()
    datasets = list(f1)
    tables = {d: _clean(f1[d]) for d in datasets}
    subsets = _datasets(*[list(dict.fromkeys(t["subset"])) for t in tables.values()]) or ["all"]
    fig, axes = _figure(len(datasets), len(subsets), col_w=4.2, row_h=2.8)
    handles: dict[str, object] = {}
    for r, dataset in enumerate(datasets):
        t = tables[dataset]
        for c, subset in enumerate(subsets):
            ax = axes[r, c]
            s = t[t["subset"] == subset]
            what = "all samples" if subset == "all" else subset.replace("r2>=", "R² ≥ ")
            ax.set_title(f"{dataset} · {what}")
            if s.empty or not np.isfinite(pd.to_numeric(s["value"], errors="coerce")).any():
                notes = "; ".join(dict.fromkeys(n for n in s.get("note", []) if n))
                _empty(ax, notes or "no Jaccard values")
                continue
            qs = sorted(pd.to_numeric(s["q"]).unique())
            series = []  # (kind, arch, arch_b, label, color, marker)
            archs = list(dict.fromkeys(a for a in s["arch"] if a))
            colors = _arch_colors(archs)
            for _, row in s[s["kind"] == "pooled"].drop_duplicates(["arch", "arch_b"]).iterrows():
                if row["arch_b"]:
                    lab = f"cross {_label(row['arch'], arch_labels)} vs {_label(row['arch_b'], arch_labels)}"
                    series.append(
                        ("pooled", row["arch"], row["arch_b"], f"{lab}, seed-pooled", "black", "D")
                    )
            for _, row in (
                s[s["kind"] == "cross_mean"].drop_duplicates(["arch", "arch_b"]).iterrows()
            ):
                if row["arch_b"]:
                    lab = f"cross {_label(row['arch'], arch_labels)} vs {_label(row['arch_b'], arch_labels)}"
                    series.append(
                        (
                            "cross_mean",
                            row["arch"],
                            row["arch_b"],
                            f"{lab}, seed pairs",
                            "0.45",
                            "s",
                        )
                    )
            for arch in archs:
                if ((s["kind"] == "within_mean") & (s["arch"] == arch)).any():
                    series.append(
                        (
                            "within_mean",
                            arch,
                            "",
                            f"within {_label(arch, arch_labels)}, seed pairs",
                            colors[arch],
                            "o",
                        )
                    )
            n = max(len(series), 1)
            width = 0.8
            step = width / n
            ymax = 0.0
            for qi, q in enumerate(qs):
                sq = s[np.isclose(pd.to_numeric(s["q"]), q)]
                chance = _num(sq["chance"].iloc[0]) if len(sq) else math.nan
                if np.isfinite(chance):
                    h = ax.plot(
                        [qi - width / 2, qi + width / 2],
                        [chance] * 2,
                        color="0.2",
                        lw=1,
                        ls=":",
                        label="chance q/(2-q)",
                    )[0]
                    handles.setdefault("chance q/(2-q)", h)
                for si, (kind, a, b, lab, color, marker) in enumerate(series):
                    x = qi - width / 2 + step * (si + 0.5)
                    sel = (sq["kind"] == kind) & (sq["arch"] == a)
                    if b:
                        sel &= sq["arch_b"] == b
                    rows = sq[sel]
                    if rows.empty:
                        continue
                    row = rows.iloc[0]
                    v, lo, hi = _num(row["value"]), _num(row["ci_low"]), _num(row["ci_high"])
                    if kind == "pooled":
                        bl, bh = _num(row["band_low"]), _num(row["band_high"])
                        if np.isfinite(bl):
                            ax.add_patch(
                                Rectangle(
                                    (x - step / 2, bl), step, bh - bl, color="0.8", lw=0, zorder=0
                                )
                            )
                            handles.setdefault(
                                "permutation band (95%)",
                                Patch(color="0.8", label="permutation band (95%)"),
                            )
                    pair_kind = {"cross_mean": "cross_pair", "within_mean": "within_pair"}.get(kind)
                    if pair_kind:
                        pairs = sq[(sq["kind"] == pair_kind) & (sq["arch"] == a)]
                        if b:
                            pairs = pairs[pairs["arch_b"] == b]
                        pv_ = pd.to_numeric(pairs["value"], errors="coerce").dropna()
                        if len(pv_):
                            ax.plot(np.full(len(pv_), x), pv_, ".", color=color, alpha=0.35, ms=4)
                            ymax = max(ymax, float(pv_.max()))
                    if np.isfinite(v):
                        yerr = _err(v, lo, hi)
                        if yerr is not None:
                            ymax = max(ymax, hi)
                        h = ax.errorbar(
                            [x],
                            [v],
                            yerr=yerr,
                            fmt=marker,
                            color=color,
                            ms=4.5,
                            capsize=2,
                            lw=1,
                            label=lab,
                        )
                        handles.setdefault(lab, h)
                        ymax = max(ymax, v)
                    if kind in ("pooled", "cross_mean") and subset == "all":
                        how = "seed-pooled" if kind == "pooled" else "seed pairs"
                        pv = paper_value(
                            f"F1 Jaccard {_qlabel(q)} {a} vs {b} ({how})", dataset, paper_values
                        )
                        if pv is not None:
                            ax.plot([x], [pv[0]], "*", color=PAPER_COLOR, ms=9, zorder=5)
                            handles.setdefault("paper", _paper_handle())
                            ymax = max(ymax, pv[1])
            ax.set_xticks(range(len(qs)), [_qlabel(q) for q in qs])
            ax.set_xlim(-0.6, len(qs) - 0.4)
            ax.set_ylim(0, min(1.02, max(ymax * 1.15, 0.1)))
            ax.set_xlabel("most-forgotten set")
            ax.set_ylabel("Jaccard" if c == 0 else "")
    _legend(fig, handles.values(), list(handles))
    return fig


# ---------------------------------------------------------------------------- F2


def r2(
    fits: FitsByRun,
    f2: Mapping[str, pd.DataFrame],
    paper_values: pd.DataFrame | None = None,
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """F2: distribution of the defined R^2 of the decay fits per architecture (violins
    over the samples of all seeds), with the pooled mean and its 95% interval (black),
    every run's mean (dots), the share of eligible samples with a defined R^2, the
    Mann-Whitney p between architectures, and the paper's mean (red star). The axis
    stops at -1 (R^2 has no lower bound); values below are counted in the panel.

    fits: dataset -> {(arch, seed): fits table}; f2: dataset -> ``f2_r2`` table.
    One panel per dataset.
    """
    set_style()
    datasets = _datasets(fits, f2)
    fig, axes = _figure(len(datasets), 1, col_w=4.6, row_h=2.8)
    all_handles: dict = {}
    for r, dataset in enumerate(datasets):
        ax = axes[r, 0]
        runs = fits.get(dataset, {})
        table = _clean(f2[dataset]) if dataset in f2 else pd.DataFrame(columns=["kind", "arch"])
        archs = _datasets(_archs_in(runs.keys()), [a for a in table.get("arch", []) if a])
        frames = []
        for (arch, seed), df in runs.items():
            p = _primary(df)
            p = p[
                (p["status"].astype(str) == "fitted")
                & np.isfinite(pd.to_numeric(p["r2"], errors="coerce"))
            ]
            frames.append(pd.DataFrame({"arch": str(arch), "r2": p["r2"].to_numpy(float)}))
        data = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"arch": [], "r2": []})
        )
        trace = _trace_name(runs)
        ax.set_title(f"{dataset}" + (f" · trace {trace}" if trace else ""))
        if data.empty:
            _empty(ax, "no defined R² (no fitted samples)")
            continue
        labels = [_label(a, arch_labels) for a in archs]
        colors = _arch_colors(archs)
        data["arch_label"] = [_label(a, arch_labels) for a in data["arch"]]
        shown = data[data["r2"] >= -1.05]  # the densities of what the axis shows
        if len(shown):
            sns.violinplot(
                data=shown,
                x="arch_label",
                y="r2",
                hue="arch_label",
                order=labels,
                hue_order=labels,
                palette={_label(a, arch_labels): colors[a] for a in archs},
                cut=0,
                inner="quartile",
                density_norm="width",
                linewidth=0.8,
                legend=False,
                ax=ax,
            )
        handles = {}
        ticks = list(labels)
        for i, arch in enumerate(archs):
            row = table[(table["kind"] == "arch") & (table["arch"] == arch)]
            if len(row):
                row = row.iloc[0]
                v, lo, hi = _num(row["value"]), _num(row["ci_low"]), _num(row["ci_high"])
                if np.isfinite(v):
                    yerr = _err(v, lo, hi)
                    h = ax.errorbar(
                        [i + 0.3], [v], yerr=yerr, fmt="D", color="black", ms=4, capsize=2, lw=1
                    )
                    handles.setdefault("pooled mean, 95% interval", h)
                frac = _num(row["frac_defined"])
                if np.isfinite(frac):
                    ticks[i] += f"\n{frac:.0%} of eligible defined"
            runs_ = table[(table["kind"] == "run") & (table["arch"] == arch)]
            rv = pd.to_numeric(runs_["value"], errors="coerce").dropna()
            if len(rv):
                h = ax.plot(np.full(len(rv), i + 0.3), rv, ".", color="0.45", ms=4)[0]
                handles.setdefault("mean of one run", h)
            pv = paper_value(f"F2 mean R2 ({arch})", dataset, paper_values)
            if pv is not None:
                ax.plot([i + 0.42], [pv[0]], "*", color=PAPER_COLOR, ms=9)
                handles.setdefault("paper mean", _paper_handle())
        ax.set_xticks(range(len(archs)), ticks)
        diff = table[table["kind"] == "arch_difference"]
        if len(diff) and np.isfinite(_num(diff["p_value"].iloc[0])):
            d = diff.iloc[0]
            ax.set_title(
                f"{dataset}"
                + (f" · trace {trace}" if trace else "")
                + f"\nMann-Whitney {_label(d['arch'], arch_labels)} vs {_label(d['arch_b'], arch_labels)}:"
                f" p = {_num(d['p_value']):.2g}"
            )
        ax.set_xlabel("")
        ax.set_ylabel("R² of the decay fit")
        # R^2 has no lower bound (soft traces can be far below 0): show down to -1
        low = float(np.nanmin(data["r2"]))
        ax.set_ylim(max(min(-0.05, low - 0.05), -1.05), 1.05)
        below = int((data["r2"] < -1.05).sum())
        if below:
            ax.text(
                0.99,
                0.02,
                f"{below} values below -1 not shown",
                ha="right",
                va="bottom",
                fontsize=6,
                transform=ax.transAxes,
            )
        ax.set_xlim(-0.5, len(archs) - 0.5)
        all_handles.update(handles)
    _legend(fig, all_handles.values(), list(all_handles))
    return fig


# ---------------------------------------------------------------------------- F3


def _lambda_pair(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ea = _eligible(_primary(a)).set_index("sample_id")["lambda"]
    eb = _eligible(_primary(b)).set_index("sample_id")["lambda"]
    common = ea.index.intersection(eb.index)
    return ea.loc[common].to_numpy(float), eb.loc[common].to_numpy(float)


def _rho_matrix(f3: pd.DataFrame) -> tuple[list[tuple[str, int]], np.ndarray]:
    pairs = f3[f3["kind"].isin(["within_pair", "cross_pair"])]
    runs: list[tuple[str, int]] = []
    for _, row in pairs.iterrows():
        for key in ((row["arch"], int(row["seed"])), (row["arch_b"], int(row["seed_b"]))):
            if key not in runs:
                runs.append(key)
    archs = list(dict.fromkeys(a for a, _ in runs))
    runs.sort(key=lambda k: (archs.index(k[0]), k[1]))
    idx = {k: i for i, k in enumerate(runs)}
    m = np.full((len(runs), len(runs)), np.nan)
    np.fill_diagonal(m, 1.0)
    for _, row in pairs.iterrows():
        i, j = idx[(row["arch"], int(row["seed"]))], idx[(row["arch_b"], int(row["seed_b"]))]
        m[i, j] = m[j, i] = _num(row["value"])
    return runs, m


def seed_stability(
    fits: FitsByRun,
    f3: Mapping[str, pd.DataFrame],
    paper_values: pd.DataFrame | None = None,
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """F3: lambda of the same samples in two seeds of each architecture (scatter, with
    the pair's Spearman rho), and the Spearman rho of lambda for every pair of runs
    (heatmap; within- and cross-architecture), with the mean rho per architecture and
    the paper's value in the heatmap's title.

    fits: dataset -> {(arch, seed): fits table} holding at least the two seeds drawn
    (the two smallest of each arch); f3: dataset -> ``f3_seed_stability`` table.
    """
    set_style()
    datasets = _datasets(fits, f3)
    archs = _datasets(*[_archs_in(fits.get(d, {}).keys()) for d in datasets])
    n_cols = len(archs) + 1
    fig, axes = _figure(len(datasets), n_cols, col_w=3.0, row_h=2.9)
    for r, dataset in enumerate(datasets):
        runs = fits.get(dataset, {})
        table = _clean(f3[dataset]) if dataset in f3 else pd.DataFrame(columns=["kind"])
        colors = _arch_colors(archs)
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            seeds = sorted(int(k[1]) for k in runs if str(k[0]) == arch)
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)}")
            if len(seeds) < 2:
                _empty(
                    ax, f"needs two seeds of {_label(arch, arch_labels)}; the grid has {len(seeds)}"
                )
                continue
            s0, s1 = seeds[:2]
            x, y = _lambda_pair(runs[(arch, s0)], runs[(arch, s1)])
            if x.size == 0:
                _empty(ax, "no sample eligible in both seeds")
                continue
            keep = _subsample(x.size)
            ax.scatter(x[keep], y[keep], s=4, alpha=0.35, color=colors[arch], lw=0)
            rho = table[(table["kind"] == "within_pair") & (table["arch"] == arch)]
            rho = rho[
                ((rho["seed"].astype(int) == s0) & (rho["seed_b"].astype(int) == s1))
                | ((rho["seed"].astype(int) == s1) & (rho["seed_b"].astype(int) == s0))
            ]
            value = _num(rho["value"].iloc[0]) if len(rho) else stats.spearman(x, y)[0]
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)}: ρ = {value:.3f} (n = {x.size})")
            ax.set_xlabel(f"λ, seed {s0}")
            ax.set_ylabel(f"λ, seed {s1}")
            lim = max(float(np.nanmax(x)), float(np.nanmax(y)), 1e-3) * 1.05
            ax.plot([0, lim], [0, lim], color="0.6", lw=0.8, ls=":")
            ax.set_xlim(-0.02 * lim, lim)
            ax.set_ylim(-0.02 * lim, lim)
        ax = axes[r, -1]
        run_keys, m = _rho_matrix(table) if len(table) else ([], np.zeros((0, 0)))
        if len(run_keys) < 2:
            notes = "; ".join(dict.fromkeys(n for n in table.get("note", []) if n))
            _empty(ax, notes or "needs two runs")
            continue
        ticks = [f"{_label(a, arch_labels)} s{s}" for a, s in run_keys]
        sns.heatmap(
            m,
            ax=ax,
            vmin=-1,
            vmax=1,
            center=0,
            cmap="vlag",
            square=True,
            annot=len(run_keys) <= 8,
            fmt=".2f",
            annot_kws={"fontsize": 5},
            xticklabels=ticks,
            yticklabels=ticks,
            cbar_kws={"label": "Spearman ρ of λ", "shrink": 0.8},
        )
        ax.tick_params(labelsize=5)
        means = []
        pv = None
        for arch in archs:
            row = table[(table["kind"] == "within_mean") & (table["arch"] == arch)]
            if len(row) and np.isfinite(_num(row["value"].iloc[0])):
                means.append(f"{_label(arch, arch_labels)} {_num(row['value'].iloc[0]):.3f}")
            pv = pv or paper_value(
                f"F3 Spearman lambda across seeds ({arch})", dataset, paper_values
            )
        title = f"{dataset}: ρ over run pairs"
        if means:
            title += "\nmean within: " + ", ".join(means)
        if pv is not None:
            title += f"\npaper ≈ {pv[0]:g}"
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------- F4


def class_forgetting(
    f4: Mapping[str, pd.DataFrame],
    f4_similarity: Mapping[str, pd.DataFrame],
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """F4: the most (red) and least (blue) forgotten classes of each architecture by
    name (mean lambda over seeds; dots: single runs; title: mean Spearman of class
    vectors across seeds), and class forgetting against visual similarity: the largest
    held-out confusion rate with another class and the cosine of the nearest class
    centroid (one point per class and architecture; Spearman rho in the legend).

    f4 / f4_similarity: dataset -> ``f4_class`` / ``f4_class_similarity`` table.
    """
    set_style()
    datasets = _datasets(f4, f4_similarity)
    tables = {d: _clean(f4[d]) for d in f4}
    sims = {d: _clean(f4_similarity[d]) for d in f4_similarity}
    archs = _datasets(*[[a for a in t["arch"] if a] for t in tables.values()])
    colors = _arch_colors(archs)
    n_cols = len(archs) + 2
    fig, axes = _figure(len(datasets), n_cols, col_w=3.0, row_h=3.0)
    for r, dataset in enumerate(datasets):
        t = tables.get(dataset, pd.DataFrame(columns=["kind", "arch"]))
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)}")
            sub = t[
                (t["kind"] == "arch_class")
                & (t["arch"] == arch)
                & t["position"].isin(["top", "bottom"])
            ]
            if sub.empty:
                _empty(ax, "no ranked classes")
                continue
            sub = sub.assign(rank=pd.to_numeric(sub["rank"])).sort_values("rank")
            y = np.arange(len(sub))
            vals = sub["value"].to_numpy(float)
            ax.barh(
                y,
                vals,
                color=[MOST_COLOR if p == "top" else LEAST_COLOR for p in sub["position"]],
                alpha=0.8,
            )
            runs = t[(t["kind"] == "run_class") & (t["arch"] == arch)]
            for yi, k in zip(y, sub["class_index"].astype(int)):
                rv = pd.to_numeric(
                    runs[runs["class_index"].astype(int) == k]["value"], errors="coerce"
                ).dropna()
                ax.plot(rv, np.full(len(rv), yi), ".", color="0.2", ms=3)
            ax.set_yticks(y, [f"{n} (#{int(k)})" for n, k in zip(sub["class_name"], sub["rank"])])
            ax.tick_params(axis="y", labelsize=6)
            ax.invert_yaxis()
            ax.set_xlabel("mean λ of the class")
            wm = t[(t["kind"] == "within_mean") & (t["arch"] == arch)]
            if len(wm) and np.isfinite(_num(wm["value"].iloc[0])):
                ax.set_title(
                    f"{dataset} · {_label(arch, arch_labels)}\nclass ρ across seeds "
                    f"{_num(wm['value'].iloc[0]):.2f}"
                )
        s = sims.get(dataset, pd.DataFrame(columns=["kind", "arch", "measure"]))
        for c, (measure, xlabel) in enumerate(
            (
                ("max_confusion", "largest held-out confusion rate"),
                ("nearest_cosine", "cosine to the nearest class centroid"),
            ),
            start=len(archs),
        ):
            ax = axes[r, c]
            ax.set_title(
                f"{dataset}\nforgetting vs {'confusion' if measure == 'max_confusion' else 'centroid similarity'}"
            )
            pts = s[s["kind"] == "arch_class"] if "forgetting" in s.columns else s.iloc[0:0]
            if pts.empty:
                notes = "; ".join(dict.fromkeys(n for n in s.get("note", []) if n))
                _empty(ax, notes or "no class similarity")
                continue
            for arch in archs:
                p = pts[pts["arch"] == arch]
                x = pd.to_numeric(p[measure], errors="coerce").to_numpy()
                yv = pd.to_numeric(p["forgetting"], errors="coerce").to_numpy()
                rho = s[
                    (s["kind"] == "arch_spearman") & (s["arch"] == arch) & (s["measure"] == measure)
                ]
                lab = _label(arch, arch_labels)
                if len(rho) and np.isfinite(_num(rho["value"].iloc[0])):
                    lab += f": ρ = {_num(rho['value'].iloc[0]):.2f}, p = {_num(rho['p_value'].iloc[0]):.2g}"
                ax.scatter(x, yv, s=10, alpha=0.7, color=colors[arch], label=lab, lw=0)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("mean λ of the class")
            ax.legend(loc="best", fontsize=6)
    return fig


# ---------------------------------------------------------------------------- F5


def warmup_loss(
    fits: FitsByRun,
    paper_values: pd.DataFrame | None = None,
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """F5: loss at t = 0 (end of head warmup; log scale when it spans a decade) against
    lambda, a hexbin over the eligible samples of all seeds of each architecture, and
    the Spearman rho of the two per run (dots; bar: mean per architecture) beside the
    paper's range (red band).

    fits: dataset -> {(arch, seed): fits table}.
    """
    set_style()
    datasets = list(fits)
    archs = _datasets(*[_archs_in(fits[d].keys()) for d in datasets])
    colors = _arch_colors(archs)
    fig, axes = _figure(len(datasets), len(archs) + 1, col_w=3.0, row_h=2.7)
    for r, dataset in enumerate(datasets):
        runs = fits[dataset]
        rhos: dict[str, list[tuple[int, float]]] = {a: [] for a in archs}
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            xs, ys = [], []
            for key, df in runs.items():
                if str(key[0]) != arch:
                    continue
                e = _eligible(_primary(df))
                loss = pd.to_numeric(e["loss_t0"], errors="coerce").to_numpy(float)
                lam = e["lambda"].to_numpy(float)
                ok = np.isfinite(loss)
                rho, _, _ = stats.spearman(loss[ok], lam[ok])
                rhos[arch].append((int(key[1]), rho))
                xs.append(loss[ok])
                ys.append(lam[ok])
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)}")
            x = np.concatenate(xs) if xs else np.zeros(0)
            y = np.concatenate(ys) if ys else np.zeros(0)
            if x.size == 0:
                _empty(ax, "no eligible samples")
                continue
            x = np.maximum(x, 1e-6)
            # log scale where the losses span more than a decade
            scale = "log" if x.max() / x.min() > 10 else "linear"
            hb = ax.hexbin(
                x, y, xscale=scale, gridsize=28, bins="log", mincnt=1, cmap="viridis", lw=0.1
            )
            fig.colorbar(hb, ax=ax, label="samples", shrink=0.8)
            ax.set_xlabel(f"loss at t = 0{' (log scale)' if scale == 'log' else ''}")
            ax.set_ylabel("λ" if c == 0 else "")
        ax = axes[r, -1]
        ax.set_title(f"{dataset}\nρ(loss at t = 0, λ) per run")
        pv = paper_value("F5 Spearman loss_t0 vs lambda (all runs)", dataset, paper_values)
        if pv is not None:
            _mark_paper_h(ax, pv, -0.5, len(archs) - 0.5, label=True)
        any_rho = False
        for i, arch in enumerate(archs):
            vals = np.array([v for _, v in rhos[arch]], dtype=float)
            vals = vals[np.isfinite(vals)]
            if vals.size:
                any_rho = True
                jitter = np.linspace(-0.12, 0.12, vals.size) if vals.size > 1 else np.zeros(1)
                ax.plot(i + jitter, vals, "o", color=colors[arch], ms=4, alpha=0.8)
                ax.plot([i - 0.25, i + 0.25], [vals.mean()] * 2, color="black", lw=1.5)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(range(len(archs)), [_label(a, arch_labels) for a in archs])
        ax.set_xlim(-0.5, len(archs) - 0.5)
        ax.set_ylim(-1, 1)
        ax.set_ylabel("Spearman ρ")
        if pv is not None:
            ax.legend(loc="lower right", fontsize=6)
        if not any_rho:
            ax.text(0.5, 0.5, "no defined ρ", transform=ax.transAxes, ha="center")
    return fig


# ------------------------------------------------------------------ training curves


def training_curves(
    metrics: Mapping[str, Mapping[tuple, pd.DataFrame]],
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """Train (solid) and held-out (dashed) accuracy per epoch for every run (thin: one
    seed; thick: mean over seeds), against t (t <= 0: head warmup; dotted line: t = 0).

    metrics: dataset -> {(arch, seed): metrics.csv table}.
    """
    set_style()
    datasets = list(metrics)
    archs = _datasets(*[_archs_in(metrics[d].keys()) for d in datasets])
    colors = {
        "train_acc": sns.color_palette("colorblind")[0],
        "heldout_acc": sns.color_palette("colorblind")[1],
    }
    styles = {"train_acc": "-", "heldout_acc": "--"}
    names = {"train_acc": "train (eval mode)", "heldout_acc": "held-out"}
    fig, axes = _figure(len(datasets), len(archs), col_w=3.0, row_h=2.4, sharey=True)
    for r, dataset in enumerate(datasets):
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            runs = {k: v for k, v in metrics[dataset].items() if str(k[0]) == arch}
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)} ({len(runs)} seeds)")
            if not runs:
                _empty(ax, "no runs")
                continue
            for col in ("train_acc", "heldout_acc"):
                frames = []
                for (_, seed), df in sorted(runs.items(), key=lambda kv: int(kv[0][1])):
                    ax.plot(df["t"], df[col], styles[col], color=colors[col], lw=0.6, alpha=0.35)
                    frames.append(df[["t", col]])
                mean = pd.concat(frames).groupby("t")[col].mean()
                ax.plot(
                    mean.index,
                    mean.to_numpy(),
                    styles[col],
                    color=colors[col],
                    lw=1.8,
                    label=names[col],
                )
            ax.axvline(0, color="0.4", lw=0.8, ls=":")
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("t (epochs; ≤ 0: head warmup)")
            ax.set_ylabel("accuracy" if c == 0 else "")
            if r == 0 and c == 0:
                ax.legend(loc="lower right")
    return fig


# ---------------------------------------------------------------------- robustness


def robustness(
    tables: Mapping[str, pd.DataFrame],
    paper_values: pd.DataFrame | None = None,
) -> Figure:
    """Every finding F1-F5 (summary rows) under each trace definition: value and 95%
    interval per definition (filled: the configured one), the paper's value as a red
    star. The value axis spans [-1.1, 1.1] (every finding is a correlation, Jaccard,
    share or R^2); a value beyond it (a mean R^2 far below 0) is an arrow at the edge
    labelled with the value. tables: dataset -> ``robustness`` table."""
    set_style()
    datasets = list(tables)
    prepared = {}
    for d in datasets:
        t = _clean(tables[d])
        t = t[t["finding"].str.match(r"F\d")]
        t = t.assign(value=pd.to_numeric(t["value"], errors="coerce"))
        keep = t.groupby("finding")["value"].transform(lambda v: np.isfinite(v).any())
        prepared[d] = t[keep.astype(bool)]
    n_find = [max(prepared[d]["finding"].nunique(), 1) for d in datasets]
    heights = [0.22 * n + 1.0 for n in n_find]
    fig = Figure(figsize=(8.0, float(sum(heights)) if heights else 3.0), layout="constrained")
    axes = fig.subplots(
        max(len(datasets), 1), 1, squeeze=False, gridspec_kw={"height_ratios": heights or [1]}
    )
    traces_all = _datasets(*[list(dict.fromkeys(prepared[d]["trace"])) for d in datasets])
    pal = sns.color_palette("colorblind", max(len(traces_all), 3))
    markers = "osD^vP"
    handles = {}
    for r, dataset in enumerate(datasets):
        ax = axes[r, 0]
        t = prepared[dataset]
        ax.set_title(f"{dataset}: findings under each trace definition")
        if t.empty:
            _empty(ax, "no finding has a value")
            continue
        finds = list(dict.fromkeys(t["finding"]))
        traces_ = list(dict.fromkeys(t["trace"]))
        step = 0.8 / max(len(traces_), 1)
        for ti, trace in enumerate(traces_):
            sub = t[t["trace"] == trace].set_index("finding")
            primary = (
                bool(sub["primary"].astype(str).str.lower().eq("true").any())
                if "primary" in sub
                else False
            )
            k = traces_all.index(trace)
            for fi, f in enumerate(finds):
                if f not in sub.index:
                    continue
                row = sub.loc[f]
                row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
                v, lo, hi = _num(row["value"]), _num(row["ci_low"]), _num(row["ci_high"])
                if not np.isfinite(v):
                    continue
                y = fi - 0.4 + step * (ti + 0.5)
                lab = trace + (" (configured)" if primary else "")
                if abs(v) > XLIM_ROBUST:
                    # off the common scale (e.g. a very negative mean R^2 of soft traces):
                    # an arrow at the edge with the value
                    edge = math.copysign(XLIM_ROBUST, v)
                    ax.plot([edge], [y], ">" if v > 0 else "<", color=pal[k], ms=4)
                    ax.annotate(
                        f"{v:.3g}",
                        (edge, y),
                        xytext=(-4 if v > 0 else 4, 0),
                        textcoords="offset points",
                        ha="right" if v > 0 else "left",
                        va="center",
                        fontsize=5,
                        color=pal[k],
                    )
                    continue
                h = ax.errorbar(
                    [v],
                    [y],
                    xerr=_err(v, lo, hi),
                    fmt=markers[k % len(markers)],
                    color=pal[k],
                    ms=3.5,
                    mfc=pal[k] if primary else "white",
                    capsize=1.5,
                    lw=0.8,
                    label=lab,
                )
                handles.setdefault(lab, h)
        for fi, f in enumerate(finds):
            pv = paper_value(f, dataset, paper_values)
            if pv is not None:
                if pv[1] > pv[0]:
                    ax.plot([pv[0], pv[1]], [fi, fi], color=PAPER_COLOR, lw=3, alpha=0.4)
                ax.plot([pv[0]], [fi], "*", color=PAPER_COLOR, ms=8, zorder=5)
                handles.setdefault("paper", _paper_handle())
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(range(len(finds)), finds)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_ylim(len(finds) - 0.5, -0.5)
        ax.set_xlim(-XLIM_ROBUST * 1.04, XLIM_ROBUST * 1.04)
        ax.set_xlabel("value (95% interval; arrows: off the scale, with the value)")
    _legend(fig, handles.values(), list(handles))
    return fig


# --------------------------------------------------------------- alternative scores


def alternative_scores(
    fits: FitsByRun,
    scores: Mapping[str, pd.DataFrame],
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """Beyond the paper: forgetting events, dataset-cartography confidence and
    variability and EL2N at t = 0 against lambda (one point per sample and run, a
    fixed subsample of at most 4000 per architecture), and each score's Spearman rho
    with lambda (filled, mean over runs with 95% interval) and its own seed stability
    (open, mean over seed pairs).

    fits: dataset -> {(arch, seed): fits table}; scores: dataset -> ``scores`` table.
    """
    set_style()
    datasets = _datasets(fits, scores)
    archs = _datasets(*[_archs_in(fits.get(d, {}).keys()) for d in datasets])
    colors = _arch_colors(archs)
    score_names = list(stats.SCORES)
    fig, axes = _figure(len(datasets), len(score_names) + 1, col_w=2.7, row_h=2.5)
    for r, dataset in enumerate(datasets):
        runs = fits.get(dataset, {})
        table = (
            _clean(scores[dataset])
            if dataset in scores
            else pd.DataFrame(columns=["kind", "score", "arch"])
        )
        for c, score in enumerate(score_names):
            ax = axes[r, c]
            ax.set_title(f"{dataset}: {SCORE_LABELS[score]}")
            drawn = False
            for arch in archs:
                frames = [_eligible(_primary(df)) for k, df in runs.items() if str(k[0]) == arch]
                if not frames:
                    continue
                e = pd.concat(frames, ignore_index=True)
                x = pd.to_numeric(e[score], errors="coerce").to_numpy(float)
                y = e["lambda"].to_numpy(float)
                ok = np.isfinite(x) & np.isfinite(y)
                x, y = x[ok], y[ok]
                if x.size == 0:
                    continue
                if score == "forget_events":
                    x = x + np.random.default_rng(1).uniform(-0.2, 0.2, x.size)
                keep = _subsample(x.size)
                row = table[
                    (table["kind"] == "vs_lambda_mean")
                    & (table["score"] == score)
                    & (table["arch"] == arch)
                ]
                lab = _label(arch, arch_labels)
                if len(row) and np.isfinite(_num(row["value"].iloc[0])):
                    lab += f" (ρ {_num(row['value'].iloc[0]):.2f})"
                ax.scatter(x[keep], y[keep], s=3, alpha=0.3, color=colors[arch], lw=0, label=lab)
                drawn = True
            if not drawn:
                _empty(ax, "no eligible samples")
                continue
            ax.set_xlabel(SCORE_LABELS[score])
            ax.set_ylabel("λ" if c == 0 else "")
            leg = ax.legend(loc="upper right", fontsize=6, markerscale=3)
            for h in leg.legend_handles:
                h.set_alpha(1)
        ax = axes[r, -1]
        ax.set_title(f"{dataset}: ρ with λ and across seeds")
        if table.empty:
            _empty(ax, "no scores table")
            continue
        n = len(archs)
        rows_ = score_names + ["lambda"]  # lambda: its own seed stability, for reference
        for i, arch in enumerate(archs):
            off = (i - (n - 1) / 2) * 0.25
            for j, score in enumerate(rows_):
                for kind, filled, dy in (
                    ("vs_lambda_mean", True, -0.08),
                    ("within_mean", False, 0.08),
                ):
                    row = table[
                        (table["kind"] == kind)
                        & (table["score"] == score)
                        & (table["arch"] == arch)
                    ]
                    if row.empty:
                        continue
                    row = row.iloc[0]
                    v, lo, hi = _num(row["value"]), _num(row["ci_low"]), _num(row["ci_high"])
                    if not np.isfinite(v):
                        continue
                    xerr = _err(v, lo, hi)
                    ax.errorbar(
                        [v],
                        [j + off + dy],
                        xerr=xerr,
                        fmt="o",
                        ms=3.5,
                        color=colors[arch],
                        mfc=colors[arch] if filled else "white",
                        capsize=1.5,
                        lw=0.8,
                    )
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(range(len(rows_)), [SCORE_LABELS[s].split(" (")[0] for s in rows_])
        ax.tick_params(axis="y", labelsize=6)
        ax.set_ylim(len(rows_) - 0.5, -0.5)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel("Spearman ρ")
    handles = [
        Line2D([], [], marker="o", ls="none", color=colors[a], label=_label(a, arch_labels))
        for a in archs
    ]
    handles += [
        Line2D([], [], marker="o", ls="none", color="0.3", label="ρ with λ (mean over runs)"),
        Line2D(
            [],
            [],
            marker="o",
            ls="none",
            color="0.3",
            mfc="white",
            label="ρ across seeds (mean over pairs)",
        ),
    ]
    _legend(fig, handles)
    return fig


# ---------------------------------------------------------------------------- F6


def _differences(text) -> np.ndarray:
    parts = str(text or "").split()
    out = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            continue
    return np.array(out, dtype=float)


def sampler(
    curves: Mapping[str, pd.DataFrame],
    comparison: Mapping[str, pd.DataFrame],
    paper_values: pd.DataFrame | None = None,
    arch_labels: Mapping[str, str] | None = None,
) -> Figure:
    """F6: held-out (solid) and train (dashed) accuracy per epoch of the budgeted runs
    with the random and the spaced-repetition sampler (mean over seeds, band: range),
    and the paired differences spaced minus random per seed (dots) with their mean and
    95% interval, per architecture and pooled, for final held-out accuracy and final
    train retention. The paper reports no improvement (red: zero).

    curves / comparison: dataset -> ``curves.csv`` / ``comparison.csv`` of
    results/sampler/{dataset}/.
    """
    set_style()
    datasets = _datasets(curves, comparison)
    archs = _datasets(*[list(dict.fromkeys(curves[d]["arch"].astype(str))) for d in curves])
    fig, axes = _figure(len(datasets), len(archs) + 1, col_w=3.0, row_h=2.6)
    handles = {}
    for r, dataset in enumerate(datasets):
        cur = curves.get(dataset, pd.DataFrame(columns=["arch", "kind", "seed", "t"]))
        for c, arch in enumerate(archs):
            ax = axes[r, c]
            a = cur[cur["arch"].astype(str) == arch]
            ax.set_title(f"{dataset} · {_label(arch, arch_labels)}")
            if a.empty:
                _empty(ax, "no budgeted runs")
                continue
            for kind in list(dict.fromkeys(a["kind"].astype(str))):
                k = a[a["kind"].astype(str) == kind]
                color = KIND_COLORS.get(kind, "black")
                for col, ls in (("heldout_acc", "-"), ("train_acc", "--")):
                    g = k.groupby("t")[col]
                    mean, lo, hi = g.mean(), g.min(), g.max()
                    lab = f"{kind}, {'held-out' if col == 'heldout_acc' else 'train'}"
                    h = ax.plot(mean.index, mean.to_numpy(), ls, color=color, lw=1.4, label=lab)[0]
                    handles.setdefault(lab, h)
                    if col == "heldout_acc":
                        ax.fill_between(
                            mean.index, lo.to_numpy(), hi.to_numpy(), color=color, alpha=0.15, lw=0
                        )
            ax.axvline(0, color="0.4", lw=0.8, ls=":")
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("t (epochs)")
            ax.set_ylabel("accuracy" if c == 0 else "")
        ax = axes[r, -1]
        comp = _clean(comparison[dataset]) if dataset in comparison else pd.DataFrame()
        ax.set_title(f"{dataset}: spaced minus random")
        if comp.empty:
            _empty(ax, "no comparison")
            continue
        cats = [row for _, row in comp.iterrows()]
        outcome_names = {"heldout_acc": "held-out acc.", "train_retention": "train retention"}
        pv_text = (
            match_paper_value(
                f"F6 spaced minus random, {str(comp['outcome'].iloc[0]).replace('_', ' ')}",
                dataset,
                paper_values,
            )[0]
            if paper_values is not None
            else ""
        )
        ax.axvline(
            0,
            color=PAPER_COLOR if pv_text else "0.5",
            lw=1.2 if pv_text else 0.8,
            ls="--" if pv_text else "-",
        )
        if pv_text:
            handles.setdefault(
                f"paper: {pv_text}",
                Line2D([], [], color=PAPER_COLOR, ls="--", label=f"paper: {pv_text}"),
            )
        labels = []
        for i, row in enumerate(cats):
            arch = row["arch"]
            name = "all" if arch == "all" else _label(arch, arch_labels)
            labels.append(f"{outcome_names.get(row['outcome'], row['outcome'])}\n{name}")
            d = _differences(row.get("differences", ""))
            if d.size:
                ax.plot(
                    d, np.full(d.size, i) + np.linspace(-0.15, 0.15, d.size), ".", color="0.4", ms=4
                )
            v, lo, hi = _num(row["mean_diff"]), _num(row["ci_low"]), _num(row["ci_high"])
            if np.isfinite(v):
                xerr = _err(v, lo, hi)
                h = ax.errorbar(
                    [v],
                    [i],
                    xerr=xerr,
                    fmt="D",
                    color="black",
                    ms=4,
                    capsize=2,
                    lw=1,
                    label="mean, 95% interval",
                )
                handles.setdefault("mean, 95% interval", h)
        ax.set_yticks(range(len(labels)), labels)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlabel("difference (spaced − random)")
    _legend(fig, handles.values(), list(handles))
    return fig

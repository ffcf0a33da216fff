"""Tests of retention.figures, retention.figure_specs, scripts/plot_figure.py and the figure rules.

The figures are drawn from a small study folder written by the real pipeline (simulated
traces -> retention.fit.fit_table -> retention.nulls.null_fit_table ->
retention.stats.dataset_tables; the sampler's tables from retention.stats.f6) at the
contract paths, and read back the way the figure rules read them
(retention.figure_specs.figure_job -> retention.figures.read_inputs: csv round trips
included). Every figure passes the layout checks of issue 18: no two texts overlap, no
text leaves the canvas, every axis with tick labels has a label, at most 3,000 x 2,400 px
at the configured dpi, and a legend entry for every plotted series.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from PIL import Image

from retention import figure_specs, figures, findings, nulls, paths, stats
from retention import fit as fitmod
from retention import traces as tr
from retention.figures import examples, marks, style, thumbnails
from retention.simulate import simulate_traces
from retention.stats import f6

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("octdl", "cub200")  # the paper's names, so that paper values attach
ARCHS = ("resnet18", "deit_small")
SEEDS = (0, 1, 2)
LABELS = {"resnet18": "ResNet-18 (test label)", "deit_small": "DeiT-S (test label)"}
MODELS = {"resnet18": "resnet18.a1_in1k", "deit_small": "deit_small_patch16_224.fb_in1k"}
STUDY = {"sources": {d: d for d in DATASETS}, "models": MODELS, "labels": LABELS, "alpha": 0.05}
DEFINITIONS = ("since_learned", "raw", "since_learned_soft")
CONFIG = {
    "grid": {"datasets": list(DATASETS), "archs": list(ARCHS), "seeds": list(SEEDS)},
    "sampler": {"enabled": True, "datasets": ["octdl"]},  # the sampler on one dataset only
    "retention": {"lambda_max": 5.0},
    "figures": {"min_samples": 30, "dpi": 150},
}
CFG = stats.StatsConfig(bootstrap=20, permutations=20, tie_draws=10, null_draws=3)
N_TRAIN, N_HELDOUT, SIZE = 240, 60, 8
MAX_PX = (3000, 2400)
DRAW_DPI = 72  # the layout is in points: the checks hold at any dpi, and 72 draws fast


# ------------------------------------------------------------------------ the study


def _run(dataset: int, arch: int, seed: int, base):
    arrays = simulate_traces(n_samples=N_TRAIN, n_heldout=N_HELDOUT, epochs=10, warmup_epochs=1, n_classes=6,
                                seed=100 * dataset + 10 * arch + seed)
    if base is not None:  # every run of a dataset shares one split
        arrays["label"], arrays["heldout_label"] = base
    if DATASETS[dataset] == "cub200":  # class names a csv reader would take for numbers
        arrays["class_names"] = np.array([str(k) for k in range(6)])
    return arrays


def _metrics(arrays: dict) -> pd.DataFrame:
    t = arrays["t"]
    return pd.DataFrame({
        "epoch": np.arange(1, t.size + 1), "t": t, "phase": np.where(t <= 0, "warmup", "finetune"), "lr": 1e-3,
        "train_loss": np.linspace(2, 0.5, t.size), "train_acc": arrays["correct"].mean(0),
        "heldout_acc": arrays["heldout_correct"].mean(0), "seconds": 1.0, "images_per_s": 100.0,
        "n_trained": N_TRAIN, "n_distinct_trained": np.minimum(N_TRAIN, (np.arange(t.size) + 1) * N_TRAIN // 3),
        "device": "cpu",
    })


def _write_dataset(root: Path, di: int, dataset: str) -> dict:
    """Every per-run file and every statistics table of one dataset; returns its traces."""
    fits, nfits, runs, infos, arrays_of, base = [], [], [], [], {}, None
    for ai, arch in enumerate(ARCHS):
        for seed in SEEDS:
            arrays = _run(di, ai, seed, base)
            base = base or (arrays["label"].copy(), arrays["heldout_label"].copy())
            traces = tr.Traces(path="", run_name=f"{arch}/seed{seed}", **arrays)
            fits.append(fitmod.fit_table(traces, DEFINITIONS, primary="since_learned"))
            nfits.append(nulls.null_fit_table(traces, "since_learned", CFG.null_draws, 0, f"{arch}/seed{seed}"))
            runs.append((arch, seed))
            infos.append(stats.class_info_from_traces(arrays))
            arrays_of[(arch, seed)] = arrays
            where = dict(dataset=dataset, arch=arch, seed=seed)
            for template, write in ((paths.FITS, lambda p: fits[-1].to_parquet(p, index=False)),
                                    (paths.TRACES, lambda p: np.savez(p, **arrays)),
                                    (paths.METRICS, lambda p: _metrics(arrays).to_csv(p, index=False))):
                path = root / template.format(**where)
                path.parent.mkdir(parents=True, exist_ok=True)
                write(path)
    tables = stats.dataset_tables(fits, runs, CFG, dataset, "since_learned", infos, nfits)
    for name, table in tables.items():
        path = root / paths.STATS.format(dataset=dataset, table=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    return arrays_of


def _write_prepared(root: Path, dataset: str, arrays: dict) -> None:
    """manifest.csv and images.npy: train and held-out samples, each image a flat grey
    level that encodes its row (so that a test can tell which image a thumbnail shows)."""
    ids = np.concatenate([arrays["sample_id"], arrays["heldout_sample_id"]])
    labels = np.concatenate([arrays["label"], arrays["heldout_label"]])
    order = np.argsort(ids)
    manifest = pd.DataFrame({"sample_id": ids[order], "label": labels[order],
                             "class_name": arrays["class_names"][labels[order]],
                             "split": np.where(order < len(arrays["sample_id"]), "train", "heldout"),
                             "source": [f"{dataset}:{i}" for i in ids[order]], "group": ""})
    images = np.broadcast_to((np.arange(len(ids)) % 251).astype(np.uint8)[:, None, None, None],
                             (len(ids), SIZE, SIZE, 3)).copy()
    (root / paths.MANIFEST.format(dataset=dataset)).parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(root / paths.MANIFEST.format(dataset=dataset), index=False)
    np.save(root / paths.IMAGES.format(dataset=dataset), images)


def _write_sampler(root: Path, dataset: str) -> None:
    """comparison.csv, curves.csv and summary.csv of budgeted runs (simulated traces)."""
    rows, curves = [], []
    for ai, arch in enumerate(ARCHS):
        for ki, kind in enumerate(("random", "spaced")):
            for seed in SEEDS:
                arrays = simulate_traces(n_samples=120, n_heldout=40, epochs=6, warmup_epochs=1, n_classes=6,
                                            seed=1000 + 100 * ai + 10 * ki + seed)
                rows.append({"arch": arch, "kind": kind, "seed": seed, **f6.final_outcomes(arrays),
                             "coverage": 0.8 + 0.1 * ki})
                curves.append(_metrics(arrays).assign(arch=arch, kind=kind, seed=seed))
    comparison = f6.compare_samplers(pd.DataFrame(rows), margin=0.01)
    for name, table in (("comparison", comparison), ("curves", pd.concat(curves, ignore_index=True)),
                        ("summary", f6.sampler_summary(comparison, dataset, "since_learned"))):
        path = root / paths.SAMPLER.format(dataset=dataset, table=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study folder holding every input of every figure; returns (root, traces)."""
    root = tmp_path_factory.mktemp("study")
    traces = {}
    for di, dataset in enumerate(DATASETS):
        traces[dataset] = _write_dataset(root, di, dataset)
        _write_prepared(root, dataset, traces[dataset][(ARCHS[0], SEEDS[0])])
    _write_sampler(root, "octdl")
    return root, traces


def load(root: Path, name: str, study_fields=STUDY, **config) -> figures.FigureInputs:
    """The inputs of figure ``name`` as its rule reads them (``config``: overrides of
    the figures section)."""
    cfg = {**CONFIG, "figures": {**CONFIG["figures"], **config}}
    files, params = figure_specs.figure_job(name, cfg, study_fields)
    files = {k: [root / p for p in v] for k, v in files.items()}
    return figures.read_inputs(files, params["runs"], params["datasets"], list(figure_specs.RUN_FILES),
                               params["datasets_of"], params["study"], params["lam_max"], params["min_samples"])


@pytest.fixture(scope="module")
def built(study):
    """Each figure drawn once (and drawn on a canvas) for the tests that look at it."""
    cache = {}

    def get(name):
        if name not in cache:
            fig = figures.draw(name, load(study[0], name))
            FigureCanvasAgg(fig)
            fig.set_dpi(DRAW_DPI)
            cache[name] = (fig, drawn_texts(fig))
        return cache[name]

    return get


# ------------------------------------------------------------------ layout helpers


def drawn_texts(fig) -> list:
    """Every Text artist the figure actually draws (visible, non-empty, tick labels only
    for ticks in view), recorded while drawing."""
    seen = []
    draw = matplotlib.text.Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            seen.append(self)
        return draw(self, renderer)

    matplotlib.text.Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = draw
    return list(dict.fromkeys(seen))


def overlaps(texts, renderer, tolerance: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts whose window extents overlap by more than ``tolerance`` pixels."""
    boxes = [t.get_window_extent(renderer) for t in texts]
    out = []
    for (a, ba), (b, bb) in itertools.combinations(zip(texts, boxes), 2):
        w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
        h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
        if w > tolerance and h > tolerance:
            out.append((a.get_text(), b.get_text()))
    return out


def legend_texts(fig) -> set[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return {t.get_text() for leg in legends for t in leg.get_texts()}


def series_artists(ax) -> list:
    """The data artists of an axes (lines, collections, patches, images)."""
    return [*ax.lines, *ax.collections, *ax.patches, *ax.images]


# ------------------------------------------------------------------ the figures


def test_every_declared_figure_has_a_function_and_a_caption():
    assert set(figures.DRAW) == set(figure_specs.FIGURES)
    for name in figure_specs.FIGURES:
        caption = ROOT / "workflow" / "report" / f"{name}.rst"
        assert caption.exists(), caption
        text = caption.read_text()
        # what was measured, on how many samples, against chance/null, what to look for
        assert re.search(r"[Ll]ook for|[Rr]ead", text), f"{name}: the caption says nothing about what to look for"


@pytest.mark.parametrize("name", list(figure_specs.FIGURES))
def test_layout(name, built):
    """The layout checks of issue 18 on every figure."""
    fig, texts = built(name)
    renderer = fig.canvas.get_renderer()
    w, h = fig.get_size_inches() * CONFIG["figures"]["dpi"]
    assert w <= MAX_PX[0] and h <= MAX_PX[1], f"{name}: {w:.0f} x {h:.0f} px at the configured dpi"
    clash = overlaps(texts, renderer)
    assert not clash, f"{name}: overlapping texts {clash[:5]}"
    w, h = fig.get_size_inches() * fig.dpi
    for t in texts:
        box = t.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= w + 1 and box.y1 <= h + 1, f"{name}: {t.get_text()!r} is cut off"
    drawn = {id(t) for t in texts}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            if any(id(t.label1) in drawn or id(t.label2) in drawn for t in ticks):
                assert axis.get_label_text().strip(), f"{name}: an axis of {_title(ax)!r} has ticks but no label"
    legend = legend_texts(fig)
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":  # explained by its own label
            continue
        for artist in series_artists(ax):
            gid = artist.get_gid()
            assert gid is not None, f"{name}: an untagged {type(artist).__name__} in {_title(ax)!r}"
            if gid not in (style.GUIDE, style.COLORBAR, style.PICTURE):
                assert gid in legend, f"{name}: series {gid!r} has no legend entry"


@pytest.mark.parametrize("name", list(figure_specs.FIGURES))
def test_each_figure_names_datasets_and_models_by_label(name, built):
    text = "\n".join(t.get_text() for t in built(name)[1])
    datasets = figure_specs.figure_datasets(name, DATASETS, CONFIG["sampler"]["datasets"])
    for dataset in datasets:
        assert dataset in text, f"{name}: no panel names {dataset}"
    assert any(label in text for label in LABELS.values()), name
    assert not re.search(r"\b(resnet18|deit_small)\b", text), f"{name}: an architecture named by its key"


def test_save_figure_writes_pdf_and_png_of_the_figures_size(built, tmp_path):
    fig = built("gallery")[0]
    pdf, png = tmp_path / "gallery.pdf", tmp_path / "gallery.png"
    figures.save_figure(fig, pdf, png, 40)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert abs(im.size[0] - fig.get_figwidth() * 40) < 1 and abs(im.size[1] - fig.get_figheight() * 40) < 1
        assert len(set(np.asarray(im.convert("L")).ravel().tolist())) > 10  # not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([pdf.name, png.name])  # nothing half-written


def _title(ax) -> str:
    return ax.get_title(loc="left") or ax.get_title()


def _marks(fig, gid: str) -> list:
    return [a for ax in fig.axes for a in series_artists(ax) if a.get_gid() == gid]


def _star_values(fig) -> list[float]:
    """The values of the paper's stars (x in forests, y in vertical panels)."""
    out = []
    for line in _marks(fig, marks.PAPER):
        if isinstance(line, Line2D) and line.get_marker() == "*":
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            out += list(x if line.axes.get_yticklabels() and line.axes.get_xlim()[0] < x[0] else y)
    return out


def test_paper_values_are_drawn_only_for_the_papers_datasets_and_models(study):
    root = study[0]
    fig = figures.draw("jaccard", load(root, "jaccard"))
    stars = sorted(round(v, 2) for v in _star_values(fig))
    # F1 cross (seed pairs) and pooled, OCTDL 0.34 and CUB-200 0.15
    assert stars == [0.15, 0.15, 0.34, 0.34]
    other = {**STUDY, "sources": {d: "imagefolder" for d in DATASETS}}
    for name in ("jaccard", "r2", "seed_stability", "warmup_loss", "primary_findings"):
        fig = figures.draw(name, load(root, name, other))
        assert not _marks(fig, marks.PAPER), f"{name}: a paper value on a dataset that is not the paper's"


def test_observed_null_and_chance_are_drawn_beside_each_other(built):
    fig = built("primary_findings")[0]
    assert _marks(fig, marks.NULL), "no memoryless null drawn"
    ax = next(a for a in fig.axes if _title(a).startswith("F1.difference"))
    band = next(p for p in ax.patches if p.get_gid() == marks.NULL)
    assert band.get_width() > 0  # a range, not a point
    assert _marks(built("jaccard")[0], marks.CHANCE), "no chance level drawn"


def test_estimates_from_too_few_samples_are_hollow_and_labelled(study):
    """With min_samples above every count, no estimate of any figure is drawn solid."""
    root = study[0]
    for name in ("jaccard", "r2", "seed_stability", "class_forgetting", "primary_findings"):
        fig = figures.draw(name, load(root, name, min_samples=10**6))
        # (F6 rows carry no sample count: its unit is the seed and its outcome the whole held-out set)
        solid = [a for a in _marks(fig, marks.SOLID) if not _title(a.axes).startswith("F6")]
        assert not solid, f"{name}: a solid estimate from fewer than min_samples samples"
        assert _marks(fig, marks.hollow_label(10**6)), name
        ticks = " ".join(t.get_text() for ax in fig.axes for t in ax.get_yticklabels())
        assert f"< {10**6}" in ticks.replace("\n", " "), f"{name}: a hollow estimate without its reason"
    # with a low threshold, the same figures draw solid estimates
    assert _marks(figures.draw("primary_findings", load(root, "primary_findings", min_samples=1)), marks.SOLID)


def test_a_forest_row_is_solid_hollow_or_left_out_with_its_reason():
    table = pd.DataFrame({
        "id": ["F3.within"] * 3, "dataset": ["toy"] * 3, "arch": ["a", "b", "c"], "arch_b": "", "case": "",
        "value": [0.2, 0.3, np.nan], "ci_low": [0.1, 0.2, np.nan], "ci_high": [0.3, 0.4, np.nan],
        "n_samples": [100, 12, 0], "note": ["", "", "cut-off inside the lowest-score group: 0 of 9 samples"],
        "claim": "equivalent", "bound": 0.1, "paper_value": "", "verdict": "inconclusive",
    })
    inputs = figures.FigureInputs(datasets=["toy"], findings=table, arch_labels={"c": "model C"}, min_samples=30)
    fig = figures.finding_figure(inputs, ["F3.within"])
    ax = fig.axes[0]
    lines = {tuple(np.round(np.asarray(line.get_xdata(), float), 3)): line for line in ax.lines if line.get_marker() == "o"}
    assert lines[(0.2,)].get_markerfacecolor() != "white" and lines[(0.3,)].get_markerfacecolor() == "white"
    assert len(lines) == 2  # the undefined row has no marker
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "[n = 12 < 30]" in ticks[1].replace("\n", " ")
    assert "no estimate: cut-off inside the lowest-score group" in ticks[2].replace("\n", " ")
    assert "model C" in ticks[2]
    assert _marks(fig, marks.EQUIVALENCE)  # the claim's bound beside the values


def test_lambda_bounds_are_drawn_where_lambda_is_plotted(built):
    for name in ("seed_stability", "warmup_loss", "class_forgetting"):
        levels = set()  # the level of every horizontal or vertical guide line
        for line in (a for a in _marks(built(name)[0], style.GUIDE) if isinstance(a, Line2D)):
            for data in (line.get_xdata(), line.get_ydata()):
                values = set(np.asarray(data, float).round(6))
                levels |= values if len(values) == 1 else set()
        assert {0.0, CONFIG["retention"]["lambda_max"]} <= levels, name


def test_robustness_gives_each_finding_its_own_axis(built):
    fig = built("robustness")[0]
    panels = [ax for ax in fig.axes if re.match(r"\w+: F\d\.", _title(ax))]
    ids = {_title(ax).split(": ")[1] for ax in panels}
    assert ids == {f.id for f in stats.FINDINGS if f.primary and f.estimate is not None}
    limits = {_title(ax): ax.get_xlim() for ax in panels}
    assert len(set(limits.values())) > 1  # not one shared scale
    for ax in panels:  # the configured analysis first, then each variant, by name
        ticks = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
        assert "configured" in ticks[0] and any("rank score" in t for t in ticks) | any("trace" in t for t in ticks)


def test_gallery_shows_the_images_of_the_extremes(study, built):
    root, _ = study
    inputs = load(root, "gallery")
    pooled = thumbnails.pooled_scores(inputs.run("fits", "octdl"), ARCHS[0])
    most, least = thumbnails.extremes(pooled)
    assert most["lambda"].min() >= pooled.drop(most.index)["lambda"].max() - 1e-12
    assert least["lambda"].max() <= pooled.drop(least.index)["lambda"].min() + 1e-12
    fig = built("gallery")[0]
    shown = [ax for ax in fig.axes if ax.images]
    first = shown[0]
    grey = int(first.images[0].get_array()[0, 0, 0])
    manifest = pd.read_csv(root / paths.MANIFEST.format(dataset="octdl"))
    row = int(np.flatnonzero(manifest["sample_id"] == most["sample_id"].iloc[0])[0])
    assert grey == row % 251  # the image of the most forgotten sample, by its row in images.npy
    assert f"λ̄ = {most['lambda'].iloc[0]:.2g}" in first.get_xlabel()


def test_data_map_plots_every_sample_once_per_architecture(built):
    fig = built("data_map")[0]
    counts = [sum(len(c.get_offsets()) for c in ax.collections) for ax in fig.axes if ax.collections and ax.get_xlabel()]
    assert counts and all(n == N_TRAIN for n in counts)


def test_select_examples_picks_the_extremes_of_lambda(study):
    fits = pd.read_parquet(study[0] / paths.FITS.format(dataset="octdl", arch=ARCHS[0], seed=0))
    most, least = examples.select_examples(fits, 3)
    prim = fits[fits["primary"] & (fits["status"] == "fitted")].set_index("sample_id")["lambda"]
    assert len(most) == len(least) == 3 and set(most).isdisjoint(least)
    assert prim.loc[most].min() >= prim.drop(index=most).max() - 1e-12
    assert prim.loc[least].max() <= prim.drop(index=least).min() + 1e-12


@pytest.mark.parametrize("definition", ["since_learned", "raw"])
def test_retention_examples_draw_the_fitted_model(study, definition):
    root, traces = study
    fits = pd.read_parquet(root / paths.FITS.format(dataset="octdl", arch=ARCHS[0], seed=0))
    sub = fits[fits["trace"] == definition].assign(primary=True)
    ex = examples
    most, least = ex.select_examples(sub, 2)
    ids = np.concatenate([most, least])
    ts, models = ex.example_models(sub, traces["octdl"][(ARCHS[0], 0)], ids, lam_max=5.0)
    rows = sub.set_index("sample_id").loc[ids]
    for k, sid in enumerate(ids):
        m = ts.mask[k]
        # the drawn model reproduces the fits table's SSE on the trace's points
        assert np.sum((ts.y[k][m] - models[k](ts.tau[m])) ** 2) == pytest.approx(rows.loc[sid, "sse"], rel=1e-6, abs=1e-9)


def test_save_figure_is_deterministic(study, tmp_path):
    for stem in ("a", "b"):
        fig = figures.draw("training_curves", load(study[0], "training_curves"))
        figures.save_figure(fig, tmp_path / f"{stem}.pdf", tmp_path / f"{stem}.png", 40)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_sampler_tables_exist_only_for_the_sampler_datasets():
    files, params = figure_specs.figure_job("primary_findings", CONFIG, STUDY)
    assert params["datasets_of"]["summary"] == list(DATASETS)
    assert params["datasets_of"]["sampler_summary"] == ["octdl"]
    files, params = figure_specs.figure_job("sampler", CONFIG, STUDY)
    assert params["datasets"] == ["octdl"] and all("octdl" in p for v in files.values() for p in v)
    files, params = figure_specs.figure_job("seed_stability", CONFIG, STUDY)
    assert sorted({r[2] for r in params["runs"]}) == list(SEEDS[:2])  # two seeds of each arch, not all


# ------------------------------------------------------------------ a made-up finding


def made_up_estimate(data: stats.StatsInput, cfg: stats.StatsConfig) -> list[stats.Estimate]:
    """A trivial estimator: the share of eligible samples of each architecture's runs."""
    out = []
    for arch in data.stack.archs:
        idx = data.stack.run_index(arch)
        share = float(data.stack.eligible[idx].mean())
        out.append(stats.Estimate(arch=arch, value=share, ci_low=share - 0.05, ci_high=share + 0.05,
                                  n_samples=int(data.stack.eligible[idx].any(0).sum()), n_runs=len(idx),
                                  extra={"n_eligible_runs": len(idx)}))
    return out


def test_a_made_up_finding_reaches_the_findings_table_and_its_figure(study):
    finding = stats.Finding(id="X.eligible_share", group="X", label="X share of eligible samples ({arch})",
                            estimate=made_up_estimate, unit="seed", test="none", columns=("n_eligible_runs",),
                            limits=(0.0, 1.0))
    registry = (*stats.FINDINGS, finding)
    root = study[0]
    summaries = []
    for dataset in DATASETS:
        fits = [pd.read_parquet(root / paths.FITS.format(dataset=dataset, arch=a, seed=s)) for a in ARCHS for s in SEEDS]
        runs = [(a, s) for a in ARCHS for s in SEEDS]
        tables = stats.dataset_tables(fits, runs, CFG, dataset, "since_learned", findings=registry)
        summaries.append(tables["summary"])
    table = findings.assemble_findings(summaries, findings.Study(**STUDY), findings=registry)
    rows = table[table["id"] == "X.eligible_share"]
    assert len(rows) == len(DATASETS) * len(ARCHS)
    assert set(rows["finding"]) == {f"X share of eligible samples ({label})" for label in LABELS.values()}
    inputs = figures.FigureInputs(datasets=list(DATASETS), findings=table, arch_labels=LABELS)
    fig = figures.finding_figure(inputs, ["X.eligible_share"], findings=registry)
    FigureCanvasAgg(fig)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [f"{d} · {LABELS[a]}" for d in DATASETS for a in ARCHS]
    xs = sorted(float(line.get_xdata()[0]) for line in ax.lines
                if line.get_gid() == marks.SOLID and line.get_marker() == "o")
    assert xs == pytest.approx(sorted(rows["value"]))
    assert not overlaps(drawn_texts(fig), fig.canvas.get_renderer())
    with pytest.raises(Exception, match="unknown finding id 'X.nothing'"):
        figures.finding_figure(inputs, ["X.nothing"], findings=registry)


# ----------------------------------------------------------------- plot_figure script


def _script(*args, cwd=None, timeout=180):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "plot_figure.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def _config_file(tmp_path: Path) -> Path:
    """config.yaml laid over with the test study's grid and labels."""
    override = tmp_path / "study.yaml"
    archs = {a: {"model": MODELS[a], "weights": "none", "lr": 1e-3, "label": LABELS[a]} for a in ARCHS}
    datasets = {d: {"source": "digits", "storage_size": 8, "heldout_fraction": 0.2} for d in DATASETS}
    override.write_text(textwrap.dedent(f"""\
        grid: {{datasets: {list(DATASETS)}, archs: {list(ARCHS)}, seeds: {list(SEEDS)}}}
        datasets: {datasets}
        archs: {archs}
        sampler: {{datasets: [octdl]}}
        """).replace("'", '"'))
    return override


def test_plot_figure_help_and_standalone_mode(study, tmp_path):
    res = _script("--help")
    assert res.returncode == 0 and "finding" in res.stdout and "--config" in res.stdout
    root = study[0]
    config = _config_file(tmp_path)
    res = _script("sampler", "--config", str(ROOT / "config.yaml"), str(config), "--workdir", str(root),
                  "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    with Image.open(tmp_path / "out" / "sampler.png") as im:
        assert im.size[0] <= MAX_PX[0] and im.size[1] <= MAX_PX[1]
    res = _script("finding", "--ids", "F3.within", "F2.arch_mean", "--config", str(ROOT / "config.yaml"), str(config),
                  "--workdir", str(root), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "finding_F3.within_F2.arch_mean.pdf").stat().st_size > 2000


def test_plot_figure_reports_a_missing_input_in_one_line(study, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(study[0], root)
    (root / paths.STATS.format(dataset="octdl", table="f1_jaccard")).unlink()
    res = _script("jaccard", "--config", str(ROOT / "config.yaml"), str(_config_file(tmp_path)), "--workdir", str(root))
    assert res.returncode == 1
    assert "f1_jaccard.csv does not exist" in res.stderr and "Traceback" not in res.stderr
    assert not (root / "results" / "figures" / "jaccard.png").exists()
    res = _script("finding", "--ids", "F9.none", "--config", str(ROOT / "config.yaml"), str(_config_file(tmp_path)),
                  "--workdir", str(study[0]), "--out", str(tmp_path))
    assert res.returncode == 1 and "unknown finding id 'F9.none'" in res.stderr and "Traceback" not in res.stderr


# ------------------------------------------------------------------ Snakemake rules


def _snakemake() -> str:
    exe = Path(sys.executable).parent / "snakemake"
    found = str(exe) if exe.exists() else shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed")
    return found


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    counts = {}
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^job\s+count\s*$", line))
    for line in lines[start + 2:]:
        m = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def test_targeting_one_figure_schedules_only_its_upstream_jobs(tmp_path):
    import yaml

    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    n_data, n_arch, n_seed = (len(demo["grid"][k]) for k in ("datasets", "archs", "seeds"))
    runs = n_data * n_arch * n_seed
    # every run starts from its arch's weights, pretrained on one more dataset (glyphs)
    pre = {"prepare_dataset": n_data + 1, "pretrain": n_arch}
    # the fine-tuning jobs that make the first n seeds of every (dataset, arch): one per seed
    # group of train.seeds_per_job (rule finetune_seeds<...>; a group of one: rule finetune)
    seeds, k = demo["grid"]["seeds"], demo["train"].get("seeds_per_job", 1)
    groups = [seeds[i:i + k] for i in range(0, len(seeds), k)]

    def finetune(n):
        jobs = {}
        for group in (g for g in groups if set(g) & set(seeds[:n])):
            name = "finetune" if len(group) == 1 else "finetune_seeds" + "_".join(map(str, group))
            jobs[name] = jobs.get(name, 0) + n_data * n_arch
        return jobs

    targets = {
        # the first seed of each arch only
        "retention_examples": {**pre, **finetune(1), "fit_traces": n_data * n_arch,
                               "figure_retention_examples": 1},
        "gallery": {**pre, **finetune(n_seed), "fit_traces": runs, "figure_gallery": 1},
        "jaccard": {**pre, **finetune(n_seed), "fit_traces": runs, "fit_nulls": runs,
                    "dataset_stats": n_data, "figure_jaccard": 1},
    }
    base = [_snakemake(), "-n", "--quiet", "rules", "-s", str(ROOT / "Snakefile"), "--configfile",
            str(ROOT / "config.yaml"), str(ROOT / "config" / "demo.yaml")]
    procs = {name: subprocess.Popen([*base, "-d", str(tmp_path / name), "--", paths.FIGURE.format(name=name, ext="pdf")],
                                    env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in targets}
    for name, expected in targets.items():
        out, _ = procs[name].communicate(timeout=180)
        assert procs[name].returncode == 0, out[-3000:]
        assert _job_counts(out) == expected, out[-3000:]


@pytest.mark.integration
def test_demo_builds_every_figure_and_the_report_with_the_findings_first(tmp_path):
    """The demo DAG on a reduced grid (2 seeds, 3 epochs), then `snakemake --report`."""
    override = tmp_path / "small.yaml"
    override.write_text(textwrap.dedent("""\
            grid: {seeds: [0, 1]}
            train: {warmup_epochs: 1, epochs: 3}
            pretrain: {epochs: 1}
            stats: {bootstrap: 50, permutations: 50, tie_draws: 20, null_draws: 2}
            sampler: {datasets: [digits]}
            """))
    base = [_snakemake(), "-s", str(ROOT / "Snakefile"), "--configfile", str(ROOT / "config.yaml"),
            str(ROOT / "config" / "demo.yaml"), str(override), "-d", str(tmp_path / "work")]
    res = subprocess.run(base + ["--cores", "2", "--quiet"], env=_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    work = tmp_path / "work"
    for name in figure_specs.FIGURES:
        with Image.open(work / paths.FIGURE.format(name=name, ext="png")) as im:
            assert 200 < im.size[0] <= MAX_PX[0] and 200 < im.size[1] <= MAX_PX[1]
    res = subprocess.run(base + ["--report", "report.html"], env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    for name in figure_specs.FIGURES:
        assert f"{name}.pdf" in html
    assert "findings.md" in html and "{{" not in html  # captions rendered, no template syntax left
    categories = sorted(set(re.findall(r'"category": "([^"]+)"', html)) | {"Findings", figure_specs.REPORT_CATEGORY})
    assert categories.index("Findings") < categories.index(figure_specs.REPORT_CATEGORY)
    subcategories = [figure_specs.FIGURES[n].subcategory for n in ("jaccard", "r2", "seed_stability",
                                                                     "class_forgetting", "warmup_loss", "sampler")]
    assert subcategories == sorted(subcategories)  # the report sorts them by name: F1 .. F6 in order


def test_the_report_sorts_the_findings_first_and_the_figures_in_the_papers_order():
    """The HTML report lists categories and subcategories by name (localeCompare)."""
    assert sorted(["Findings", figure_specs.REPORT_CATEGORY, "Runs"]) == ["Findings", figure_specs.REPORT_CATEGORY,
                                                                          "Runs"]
    order = [figure_specs.FIGURES[n].subcategory for n in
             ("primary_findings", "jaccard", "r2", "seed_stability", "class_forgetting", "warmup_loss", "sampler")]
    assert order == sorted(order, key=str.lower)


def test_min_samples_is_a_config_value_with_its_default_in_the_schema():
    import yaml

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    spec = schema["properties"]["figures"]["properties"]["min_samples"]
    assert spec["default"] == config["figures"]["min_samples"] == 30
    inputs = figures.FigureInputs(datasets=[], min_samples=config["figures"]["min_samples"])
    assert inputs.small(29) and not inputs.small(30) and not inputs.small(math.nan)


def test_figure_inputs_read_text_columns_as_text(study):
    inputs = load(study[0], "class_forgetting")
    names = set(inputs.table("f4_class", "cub200")["class_name"]) - {""}
    assert names == {str(k) for k in range(6)}  # "3", not 3 or "3.0"
    assert dataclasses.is_dataclass(inputs)

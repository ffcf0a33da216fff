"""A small study folder for the figure tests, written by the real pipeline, and the
helpers that read a figure back the way its rule does and look at what it drew.

The study (:func:`make_study`): simulated traces -> retention.fitting.fit.fit_table ->
retention.fitting.nulls.null_fit_table -> retention.stats.dataset_tables (samples.csv included);
the sampler's tables from retention.stats.f6; at the contract paths, for two datasets
named as the paper's (so that paper values attach) and two architectures with display
labels. :func:`load` reads a figure's inputs as its rule does
(retention.figures.specs.figure_job -> retention.figures.read_inputs: csv round trips
included); :func:`figure_cases` lists every (figure, dataset) the workflow draws.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from retention import figures, paths, stats
from retention.figures import specs as figure_specs
from retention.fitting import fit as fitmod
from retention.fitting import nulls
from retention.fitting import traces as tr
from retention.fitting.simulate import simulate_traces
from retention.stats import f6

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("octdl", "cub200")  # the paper's names, so that paper values attach
ARCHS = ("resnet18", "deit_small")
SEEDS = (0, 1, 2)
LABELS = {"resnet18": "ResNet-18 (test label)", "deit_small": "DeiT-S (test label)"}
MODELS = {"resnet18": "resnet18.a1_in1k", "deit_small": "deit_small_patch16_224.fb_in1k"}
STUDY = {"sources": {d: d for d in DATASETS}, "models": MODELS, "labels": LABELS, "alpha": 0.05}
DEFINITIONS = ("since_learned", "raw", "since_learned_soft")
SAMPLER_DATASETS = ["octdl"]  # the sampler on one dataset only
CONFIG = {
    "grid": {"datasets": list(DATASETS), "archs": list(ARCHS), "seeds": list(SEEDS)},
    "sampler": {"enabled": True, "datasets": SAMPLER_DATASETS},
    "retention": {"lambda_max": 5.0},
    "figures": {"min_samples": 30, "dpi": 150},
}
CFG = stats.StatsConfig(bootstrap=20, permutations=20, tie_draws=10, null_draws=3)
N_TRAIN, N_HELDOUT, SIZE = 240, 60, 8
DRAW_DPI = CONFIG["figures"]["dpi"]  # the PNG's dpi: text extents round differently at 72


def _run(dataset: int, arch: int, seed: int, base):
    arrays = simulate_traces(
        n_samples=N_TRAIN,
        n_heldout=N_HELDOUT,
        epochs=10,
        warmup_epochs=1,
        n_classes=6,
        seed=100 * dataset + 10 * arch + seed,
    )
    if base is not None:  # every run of a dataset shares one split
        arrays["label"], arrays["heldout_label"] = base
    if DATASETS[dataset] == "cub200":  # class names a csv reader would take for numbers
        arrays["class_names"] = np.array([str(k) for k in range(6)])
    return arrays


def _metrics(arrays: dict) -> pd.DataFrame:
    t = arrays["t"]
    return pd.DataFrame(
        {
            "epoch": np.arange(1, t.size + 1),
            "t": t,
            "phase": np.where(t <= 0, "warmup", "finetune"),
            "lr": 1e-3,
            "train_loss": np.linspace(2, 0.5, t.size),
            "train_acc": arrays["correct"].mean(0),
            "heldout_acc": arrays["heldout_correct"].mean(0),
            "seconds": 1.0,
            "images_per_s": 100.0,
            "n_trained": N_TRAIN,
            "n_distinct_trained": np.minimum(N_TRAIN, (np.arange(t.size) + 1) * N_TRAIN // 3),
            "device": "cpu",
        }
    )


def _write_dataset(root: Path, di: int, dataset: str) -> dict:
    """Every per-run file and every statistics table of one dataset; returns its traces."""
    fits, nfits, runs, infos, arrays_of, base = [], [], [], [], {}, None
    for ai, arch in enumerate(ARCHS):
        for seed in SEEDS:
            arrays = _run(di, ai, seed, base)
            base = base or (arrays["label"].copy(), arrays["heldout_label"].copy())
            traces = tr.Traces(path="", run_name=f"{arch}/seed{seed}", **arrays)
            fits.append(fitmod.fit_table(traces, DEFINITIONS, primary="since_learned"))
            nfits.append(
                nulls.null_fit_table(traces, "since_learned", CFG.null_draws, 0, f"{arch}/seed{seed}")
            )
            runs.append((arch, seed))
            infos.append(stats.class_info_from_traces(arrays))
            arrays_of[(arch, seed)] = arrays
            where = {"dataset": dataset, "arch": arch, "seed": seed}
            for template in (paths.FITS, paths.TRACES, paths.METRICS):
                path = root / template.format(**where)
                path.parent.mkdir(parents=True, exist_ok=True)
                if template == paths.FITS:
                    fits[-1].to_parquet(path, index=False)
                elif template == paths.TRACES:
                    np.savez(path, **arrays)
                else:
                    _metrics(arrays).to_csv(path, index=False)
    manifest = _manifest(dataset, arrays_of[(ARCHS[0], SEEDS[0])])
    tables = stats.dataset_tables(fits, runs, CFG, dataset, "since_learned", infos, nfits, manifest=manifest)
    for name, table in tables.items():
        path = root / paths.STATS.format(dataset=dataset, table=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    return arrays_of


def _manifest(dataset: str, arrays: dict) -> pd.DataFrame:
    ids = np.concatenate([arrays["sample_id"], arrays["heldout_sample_id"]])
    labels = np.concatenate([arrays["label"], arrays["heldout_label"]])
    order = np.argsort(ids)
    return pd.DataFrame(
        {
            "sample_id": ids[order],
            "label": labels[order],
            "class_name": arrays["class_names"][labels[order]],
            "split": np.where(order < len(arrays["sample_id"]), "train", "heldout"),
            "source": [f"{dataset}:{i}" for i in ids[order]],
            "group": "",
        }
    )


def _write_prepared(root: Path, dataset: str, arrays: dict) -> None:
    """manifest.csv and images.npy: train and held-out samples, each image a flat grey
    level that encodes its row (so that a test can tell which image a thumbnail shows)."""
    manifest = _manifest(dataset, arrays)
    images = np.broadcast_to(
        (np.arange(len(manifest)) % 251).astype(np.uint8)[:, None, None, None], (len(manifest), SIZE, SIZE, 3)
    ).copy()
    (root / paths.MANIFEST.format(dataset=dataset)).parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(root / paths.MANIFEST.format(dataset=dataset), index=False)
    np.save(root / paths.IMAGES.format(dataset=dataset), images)


def _write_sampler(root: Path, dataset: str) -> None:
    """comparison.csv, curves.csv and summary.csv of budgeted runs (simulated traces)."""
    rows, curves = [], []
    for ai, arch in enumerate(ARCHS):
        for ki, kind in enumerate(("random", "spaced")):
            for seed in SEEDS:
                arrays = simulate_traces(
                    n_samples=120,
                    n_heldout=40,
                    epochs=6,
                    warmup_epochs=1,
                    n_classes=6,
                    seed=1000 + 100 * ai + 10 * ki + seed,
                )
                rows.append(
                    {
                        "arch": arch,
                        "kind": kind,
                        "seed": seed,
                        **f6.final_outcomes(arrays),
                        "coverage": 0.8 + 0.1 * ki,
                    }
                )
                curves.append(_metrics(arrays).assign(arch=arch, kind=kind, seed=seed))
    comparison = f6.compare_samplers(pd.DataFrame(rows), margin=0.01)
    for name, table in (
        ("comparison", comparison),
        ("curves", pd.concat(curves, ignore_index=True)),
        ("summary", f6.sampler_summary(comparison, dataset, "since_learned")),
    ):
        path = root / paths.SAMPLER.format(dataset=dataset, table=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)


@functools.lru_cache(maxsize=1)
def make_study() -> tuple[Path, dict]:
    """A study folder holding every input of every figure (built once per test session,
    shared by the test modules); returns (root, traces: dataset -> {(arch, seed): arrays})."""
    root = Path(tempfile.mkdtemp(prefix="figure-study-"))
    traces = {}
    for di, dataset in enumerate(DATASETS):
        traces[dataset] = _write_dataset(root, di, dataset)
        _write_prepared(root, dataset, traces[dataset][(ARCHS[0], SEEDS[0])])
    for dataset in SAMPLER_DATASETS:
        _write_sampler(root, dataset)
    return root, traces


def load(
    root: Path, name: str, dataset: str | None = None, study_fields=STUDY, **config
) -> figures.FigureInputs:
    """The inputs of figure ``name`` (of ``dataset``, for a figure drawn per dataset) as
    its rule reads them (``config``: overrides of the figures section)."""
    cfg = {**CONFIG, "figures": {**CONFIG["figures"], **config}}
    if figure_specs.FIGURES[name].per_dataset and dataset is None:
        dataset = figure_specs.figure_datasets(name, DATASETS, SAMPLER_DATASETS)[0]
    files, params = figure_specs.figure_job(name, cfg, study_fields, dataset=dataset)
    files = {k: [root / p for p in v] for k, v in files.items()}
    return figures.read_inputs(
        files,
        params["runs"],
        params["datasets"],
        list(figure_specs.RUN_FILES),
        params["datasets_of"],
        params["study"],
        params["lambda_max"],
        params["min_samples"],
    )


def figure_cases() -> list[tuple[str, str | None]]:
    """(figure, dataset) of every figure file the workflow draws for the test grid
    (dataset None: a figure of every dataset)."""
    out = []
    for name, spec in figure_specs.FIGURES.items():
        if spec.per_dataset:
            out += [(name, d) for d in figure_specs.figure_datasets(name, DATASETS, SAMPLER_DATASETS)]
        else:
            out.append((name, None))
    return out


def draw(root: Path, name: str, dataset: str | None = None, **kw):
    """Figure ``name`` drawn from the study on a canvas at :data:`DRAW_DPI`, and the texts
    it drew (:func:`drawn_texts`)."""
    fig = figures.draw(name, load(root, name, dataset, **kw))
    FigureCanvasAgg(fig)
    fig.set_dpi(DRAW_DPI)
    return fig, drawn_texts(fig)


def drawn_texts(fig) -> list:
    """Every Text artist the figure actually draws (visible, non-empty, tick labels only
    for ticks in view), recorded while drawing."""
    seen = []
    draw_text = matplotlib.text.Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            seen.append(self)
        return draw_text(self, renderer)

    matplotlib.text.Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = draw_text
    return list(dict.fromkeys(seen))


def series_artists(ax) -> list:
    """The data artists of an axes (lines, collections, patches, images)."""
    return [*ax.lines, *ax.collections, *ax.patches, *ax.images]


def marks_of(fig, gid: str) -> list:
    """Every data artist of the figure tagged ``gid``."""
    return [a for ax in fig.axes for a in series_artists(ax) if a.get_gid() == gid]


def title_of(ax) -> str:
    return ax.get_title(loc="left") or ax.get_title()

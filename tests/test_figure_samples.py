"""What the figures of samples draw (gallery, retention heatmap, trace examples, training
curves, data map): the one order of samples.csv, its ties, and the curves, on the small
study of tests/figure_fixtures.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retention import paths
from retention.figures import examples, heatmap, order, style, thumbnails, training

from .figure_fixtures import ARCHS, DATASETS, LABELS, N_TRAIN, SEEDS, draw, make_study, title_of


@pytest.fixture(scope="module")
def study():
    return make_study()


@pytest.fixture(scope="module")
def built(study):
    cache = {}

    def get(name, dataset=None):
        if (name, dataset) not in cache:
            cache[(name, dataset)] = draw(study[0], name, dataset)
        return cache[(name, dataset)]

    return get


def _shown_rows(fig) -> list[list[int]]:
    """The images.npy rows of the thumbnails of each gallery row (the grey level encodes
    the row), top to bottom."""
    rows: dict[float, list] = {}
    for ax in fig.axes:
        if ax.images:
            box = ax.get_position()
            rows.setdefault(round(box.y0, 3), []).append((box.x0, int(ax.images[0].get_array()[0, 0, 0])))
    return [[g for _, g in sorted(r)] for _, r in sorted(rows.items(), reverse=True)]


def test_the_gallery_rows_are_reproduced_from_samples_csv(study, built):
    root = study[0]
    for dataset in DATASETS:
        samples = pd.read_csv(root / paths.STATS.format(dataset=dataset, table="samples"))
        manifest = pd.read_csv(root / paths.MANIFEST.format(dataset=dataset))
        row_of = {int(s): r % 251 for r, s in enumerate(manifest["sample_id"])}
        expected = []
        for arch in ARCHS:
            ranked = samples.dropna(subset=[f"{arch}_rank"]).sort_values(f"{arch}_rank")
            n = thumbnails.N_THUMBS
            expected.append([row_of[s] for s in ranked["sample_id"].head(n)])  # ranks 1..n
            expected.append([row_of[s] for s in ranked["sample_id"].iloc[::-1].head(n)])  # the largest ranks
        assert _shown_rows(built("gallery", dataset)[0]) == expected, dataset


def test_extremes_from_a_tie_group_say_that_they_are_a_random_draw(study, built):
    root = study[0]
    samples = pd.read_csv(root / paths.STATS.format(dataset="octdl", table="samples"))
    ranked = order.ranked(samples, ARCHS[0])
    _, least = order.ends(ranked, thumbnails.N_THUMBS)
    tie = int(least["tie"].iloc[0])
    assert tie > thumbnails.N_THUMBS  # the simulated runs have many samples at λ = 0
    note = order.tie_note(least, "mean λ")
    assert note == f"{len(least)} shown: a random draw of the {tie:,} samples tied at mean λ = 0"
    texts = [t.get_text().replace("\n", " ") for t in built("gallery", "octdl")[1]]
    assert any("least forgotten" in t and f"random draw of the {tie:,} samples" in t for t in texts)
    assert order.tie_note(ranked.assign(tie=1).head(3)) == ""


def test_the_heatmap_sorts_samples_by_the_order_of_samples_csv(study, built):
    root, traces = study
    fig = built("retention_heatmap")[0]
    samples = pd.read_csv(root / paths.STATS.format(dataset="cub200", table="samples"))
    for arch in ARCHS:
        ax = next(a for a in fig.axes if title_of(a).startswith(f"cub200 · {LABELS[arch]}"))
        runs = {k: v for k, v in traces["cub200"].items() if k[0] == arch}
        ids = np.asarray(runs[(arch, SEEDS[0])]["sample_id"])
        share = np.mean(
            [np.asarray(v["correct"], float) for v in runs.values()], axis=0
        )  # one split: same ids
        ranked = samples.dropna(subset=[f"{arch}_rank"]).sort_values(f"{arch}_rank")["sample_id"].to_numpy()
        pos = {int(s): i for i, s in enumerate(ids)}
        top = np.asarray(ax.images[0].get_array())[: len(ranked)]
        assert np.allclose(top, share[[pos[int(s)] for s in ranked]])
        assert heatmap.seed_share_correct(runs, arch)[2].shape == share.shape


def test_retention_examples_use_the_order_of_samples_csv(study):
    root = study[0]
    fits = pd.read_parquet(root / paths.FITS.format(dataset="octdl", arch=ARCHS[0], seed=0))
    samples = pd.read_csv(root / paths.STATS.format(dataset="octdl", table="samples"))
    most, least, _ = examples.select_examples(fits, samples, ARCHS[0], 3)
    fitted = set(fits[fits["primary"] & (fits["status"] == "fitted")]["sample_id"])
    by_rank = [s for s in samples.sort_values(f"{ARCHS[0]}_rank")["sample_id"] if s in fitted]
    assert list(most["sample_id"]) == by_rank[:3] and list(least["sample_id"]) == by_rank[::-1][:3]
    assert set(most["sample_id"]).isdisjoint(least["sample_id"])


@pytest.mark.parametrize("definition", ["since_learned", "raw", "since_learned_soft"])
def test_retention_examples_draw_the_fitted_model(study, definition):
    root, traces = study
    fits = pd.read_parquet(root / paths.FITS.format(dataset="octdl", arch=ARCHS[0], seed=0))
    sub = fits[fits["trace"] == definition].assign(primary=True)
    samples = pd.read_csv(root / paths.STATS.format(dataset="octdl", table="samples"))
    most, least, _ = examples.select_examples(sub, samples, ARCHS[0], 2)
    ids = np.concatenate([most["sample_id"], least["sample_id"]]).astype(np.int64)
    ts = examples.shown_traces(sub, traces["octdl"][(ARCHS[0], 0)], ids)
    rows = sub.set_index("sample_id").loc[ids]
    for k, sid in enumerate(ids):
        m = ts.mask[k]
        assert m.sum() == rows.loc[sid, "n_points"]
        # the points and the model read from the fits table reproduce its SSE: nothing refitted
        assert np.sum((ts.y[k][m] - ts.models[k](ts.tau[m])) ** 2) == pytest.approx(
            rows.loc[sid, "sse"], rel=1e-6, abs=1e-9
        )


def test_training_curves_show_accuracy_and_loss_of_both_sets(study, built):
    _, traces = study
    fig = built("training_curves", "octdl")[0]
    loss_axes = [ax for ax in fig.axes if ax.get_ylabel() == "cross-entropy loss"]
    assert len(loss_axes) == len(ARCHS)
    for ax in loss_axes:
        arch = next(a for a in ARCHS if LABELS[a] in title_of(ax))
        runs = {k: v for k, v in traces["octdl"].items() if k[0] == arch}
        heldout = np.mean([np.asarray(v["heldout_loss"], float).mean(0) for v in runs.values()], axis=0)
        thick = [
            ln
            for ln in ax.lines
            if ln.get_linewidth() > 1 and ln.get_linestyle() == style.SPLIT_STYLES["heldout"]
        ]
        assert any(np.allclose(ln.get_ydata(), heldout) for ln in thick)
    metrics = pd.DataFrame({"t": [0, 1], "train_loss": [1.0, 0.5]})
    assert list(training.loss_curves(metrics, None)) == ["train_mode"]  # traces without losses


def test_data_map_plots_every_sample_once_per_architecture(built):
    fig = built("data_map")[0]
    counts = [
        sum(len(c.get_offsets()) for c in ax.collections)
        for ax in fig.axes
        if ax.collections and ax.get_xlabel()
    ]
    assert counts and all(n == N_TRAIN for n in counts)

"""Tests of what the figures draw (retention.figures, retention.figures.specs,
scripts/plot_figure.py), on the small study of tests/figure_fixtures.py read back the way
the figure rules read it. Their layout at print width: tests/test_figure_layout.py; the
figures of samples: tests/test_figure_samples.py; the figure rules and the HTML report:
tests/test_report.py.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from PIL import Image

from retention import figures, findings, paths, stats
from retention.figures import forest, marks, style
from retention.figures import specs as figure_specs

from .figure_fixtures import (
    ARCHS,
    CFG,
    CONFIG,
    DATASETS,
    LABELS,
    MODELS,
    ROOT,
    SAMPLER_DATASETS,
    SEEDS,
    STUDY,
    draw,
    drawn_texts,
    load,
    make_study,
    marks_of,
    title_of,
)
from .test_figure_layout import MAX_PX, overlaps


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


def forests(fig) -> list:
    """The forest panels of a figure (their y ticks name rows; their x axis is a value)."""
    return [
        ax
        for ax in fig.axes
        if ax.get_yticklabels()
        and any(t.get_text() for t in ax.get_yticklabels())
        and ax.get_xlabel()
        and "interval" in ax.get_xlabel()
    ]


def test_every_declared_figure_has_a_function_and_a_caption():
    assert set(figures.DRAW) == set(figure_specs.FIGURES)
    for name in figure_specs.FIGURES:
        caption = ROOT / "workflow" / "report" / f"{name}.rst"
        assert caption.exists(), caption
        text = caption.read_text()
        # what was measured, on how many samples, against chance/null, what to look for
        assert re.search(r"[Ll]ook for|[Rr]ead", text), (
            f"{name}: the caption says nothing about what to look for"
        )


def test_save_figure_writes_pdf_and_png_of_the_figures_size(built, tmp_path):
    fig = built("gallery", "octdl")[0]
    pdf, png = tmp_path / "gallery.pdf", tmp_path / "gallery.png"
    figures.save_figure(fig, pdf, png, 40)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        assert (
            abs(im.size[0] - fig.get_figwidth() * 40) < 1 and abs(im.size[1] - fig.get_figheight() * 40) < 1
        )
        assert len(set(np.asarray(im.convert("L")).ravel().tolist())) > 10  # not a blank canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([pdf.name, png.name])  # nothing half-written


def test_save_figure_is_deterministic(study, tmp_path):
    for stem in ("a", "b"):
        fig = figures.draw("training_curves", load(study[0], "training_curves", "octdl"))
        figures.save_figure(fig, tmp_path / f"{stem}.pdf", tmp_path / f"{stem}.png", 40)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


# ------------------------------------------------------------------ estimates, nulls, verdicts


def _star_values(fig) -> list[float]:
    """The values of the paper's stars in forest panels (x)."""
    return [
        float(line.get_xdata()[0])
        for line in marks_of(fig, marks.PAPER)
        if isinstance(line, Line2D) and line.get_marker() == style.PAPER_MARKER
    ]


def test_paper_values_are_drawn_only_for_the_papers_datasets_and_models(study):
    root = study[0]
    # F1 cross (seed pairs) and pooled: OCTDL 0.34, CUB-200 0.15
    for dataset, value in (("octdl", 0.34), ("cub200", 0.15)):
        fig = figures.draw("jaccard", load(root, "jaccard", dataset))
        assert sorted(round(v, 2) for v in _star_values(fig)) == [value, value]
    # F2's 0.52 and 0.74 attach to the rows pooled over the paper's datasets, drawn with each
    assert {0.52, 0.74} <= {round(v, 2) for v in _star_values(figures.draw("r2", load(root, "r2", "octdl")))}
    assert {0.52, 0.74} <= {
        round(v, 2) for v in _star_values(figures.draw("primary_findings", load(root, "primary_findings")))
    }
    other = {**STUDY, "sources": {d: "imagefolder" for d in DATASETS}}
    for name in ("jaccard", "r2", "seed_stability", "warmup_loss", "primary_findings"):
        fig = figures.draw(name, load(root, name, study_fields=other))
        assert not marks_of(fig, marks.PAPER), f"{name}: a paper value on a dataset that is not the paper's"


def _rows_drawn(ax) -> dict[float, dict]:
    """y -> what a forest panel drew at that row: the estimate's x, the null bars (kind ->
    (low, high, outlined)) and the text on the right."""
    rows: dict[float, dict] = {}
    for line in ax.lines:
        solid = line.get_gid() == marks.SOLID or str(line.get_gid()).startswith("hollow")
        if solid and line.get_marker() == "o" and len(line.get_ydata()) == 1:
            rows.setdefault(round(float(line.get_ydata()[0]), 3), {})["value"] = float(line.get_xdata()[0])
    for patch in ax.patches:
        kind = next((k for k, name in marks.NULLS.items() if patch.get_gid() == name), None)
        if kind:
            y = round(patch.get_y() + patch.get_height() / 2 - marks.NULL_OFFSET[kind], 3)
            rows.setdefault(y, {}).setdefault("nulls", {})[kind] = (
                patch.get_x(),
                patch.get_x() + patch.get_width(),
                patch.get_label() == marks.DECIDES,
            )
    for text in ax.texts:
        if text.get_gid() == forest.VERDICT:
            rows.setdefault(round(float(text.get_position()[1]), 3), {})["verdict"] = text.get_text()
    return rows


def test_both_nulls_are_drawn_and_the_one_the_verdict_rests_on_is_outlined(built):
    fig = built("primary_findings")[0]
    table = load(make_study()[0], "primary_findings").findings
    primary = table[table["primary"] & table["null_kind"].astype(str).ne("")]
    seen = 0
    for ax in forests(fig):
        for row in _rows_drawn(ax).values():
            if "verdict" not in row or "nulls" not in row:
                continue
            seen += 1
            assert set(row["nulls"]) == {"iid", "shuffle"}, row  # both ranges, each a range
            assert all(high > low for low, high, _ in row["nulls"].values())
            outlined = [k for k, (_, _, out) in row["nulls"].items() if out]
            assert len(outlined) == 1 and f"null ({outlined[0]})" in row["verdict"], row
            assert re.search(r"claim: [a-z ]+, Holm p [\d.e-]+", row["verdict"]), row["verdict"]
    assert seen == len(primary)


@pytest.mark.parametrize("name", ["primary_findings", "jaccard", "r2", "seed_stability", "warmup_loss"])
def test_no_dot_is_explained_by_a_null_outside_the_band_that_decides_it(name, built):
    for dataset in [None] if name == "primary_findings" else list(DATASETS):
        for ax in forests(built(name, dataset)[0]):
            for row in _rows_drawn(ax).values():
                if "explained by null" in row.get("verdict", ""):
                    low, high, _ = next(v for v in row["nulls"].values() if v[2])
                    assert low <= row["value"] <= high, (name, dataset, row)


def test_the_outlined_band_is_the_deciding_null_even_where_the_other_excludes_the_value():
    """A value inside the shuffle null's range and outside the iid null's: its verdict
    rests on the shuffle null, so that band is outlined and holds the dot."""
    table = pd.DataFrame(
        [
            {
                "id": "F5.meta",
                "dataset": "toy",
                "arch": "",
                "arch_b": "",
                "case": "",
                "primary": True,
                "value": 0.346,
                "ci_low": 0.32,
                "ci_high": 0.37,
                "n_samples": 500,
                "note": "",
                "claim": "greater",
                "null_iid": 0.313,
                "null_iid_low": 0.301,
                "null_iid_high": 0.325,
                "null_shuffle": 0.346,
                "null_shuffle_low": 0.33,
                "null_shuffle_high": 0.36,
                "null_kind": "shuffle",
                "claim_verdict": "holds",
                "null_verdict": "explained by null",
                "p_holm": 1e-5,
                "p_null_holm": 0.5,
                "paper_value": "",
            }
        ]
    )
    inputs = figures.FigureInputs(datasets=["toy"], findings=table)
    fig = figures.finding_figure(inputs, ["F5.meta"])
    FigureCanvasAgg(fig)
    (row,) = _rows_drawn(forests(fig)[0]).values()
    assert row["nulls"]["shuffle"][2] and not row["nulls"]["iid"][2]
    assert row["nulls"]["shuffle"][0] <= row["value"] <= row["nulls"]["shuffle"][1]
    assert not row["nulls"]["iid"][0] <= row["value"] <= row["nulls"]["iid"][1]
    assert "null (shuffle): explained by null, Holm p 0.5" in row["verdict"]


def test_chance_and_the_settling_criteria_are_drawn_where_they_apply(built):
    assert marks_of(built("jaccard", "octdl")[0], marks.CHANCE), "no chance level drawn"
    for name, value in (("jaccard", 0.6), ("seed_stability", 0.4)):
        lines = marks_of(built(name, "octdl")[0], marks.CRITERION)
        assert lines and {round(float(x), 3) for line in lines for x in line.get_xdata()} | {
            round(float(y), 3) for line in lines for y in line.get_ydata()
        } >= {value}, name
        texts = [t.get_text() for ax in forests(built(name, "octdl")[0]) for t in ax.texts]
        assert any(
            re.search(rf"settling: (above|not shown above|no interval for) {value:g}", t) for t in texts
        ), name


def test_value_axes_of_forests_include_zero(built):
    for name, dataset in (
        ("primary_findings", None),
        ("r2", "octdl"),
        ("warmup_loss", "octdl"),
        ("jaccard", "cub200"),
        ("robustness", "octdl"),
    ):
        for ax in forests(built(name, dataset)[0]):
            low, high = ax.get_xlim()
            assert low <= 0 <= high, (name, title_of(ax))


def test_estimates_from_too_few_samples_are_hollow_and_labelled(study):
    """With min_samples above every count, no estimate of any figure is drawn solid."""
    root = study[0]
    for name in ("jaccard", "r2", "seed_stability", "class_forgetting", "primary_findings"):
        fig = figures.draw(name, load(root, name, min_samples=10**6))
        # (F6 rows carry no sample count: its unit is the seed and its outcome the whole held-out set)
        # (nor the rows pooled over datasets: their counts are the datasets')
        solid = [
            a
            for a in marks_of(fig, marks.SOLID)
            if isinstance(a, Line2D)
            and not title_of(a.axes).startswith("F6")
            and "pooled over" not in _label_at(a)
        ]
        assert not solid, f"{name}: a solid estimate from fewer than min_samples samples"
        assert marks_of(fig, marks.hollow_label(10**6)), name
        ticks = " ".join(t.get_text() for ax in fig.axes for t in ax.get_yticklabels())
        assert f"< {10**6}" in ticks.replace("\n", " "), f"{name}: a hollow estimate without its reason"
    # with a low threshold, the same figures draw solid estimates
    assert marks_of(
        figures.draw("primary_findings", load(root, "primary_findings", min_samples=1)), marks.SOLID
    )


def _label_at(line) -> str:
    """The y tick label of the forest row a marker is drawn in."""
    y = round(float(np.asarray(line.get_ydata(), float)[0]), 3)
    ticks = dict(zip(np.round(line.axes.get_yticks(), 3), line.axes.get_yticklabels()))
    return ticks[y].get_text().replace("\n", " ") if y in ticks else ""


def test_a_forest_row_is_solid_hollow_or_left_out_with_its_reason():
    table = pd.DataFrame(
        {
            "id": ["F3.within"] * 3,
            "dataset": ["toy"] * 3,
            "arch": ["a", "b", "c"],
            "arch_b": "",
            "case": "",
            "value": [0.2, 0.3, np.nan],
            "ci_low": [0.1, 0.2, np.nan],
            "ci_high": [0.3, 0.4, np.nan],
            "n_samples": [100, 12, 0],
            "note": ["", "", "cut-off inside the lowest-score group: 0 of 9 samples"],
            "claim": "equivalent",
            "bound": 0.1,
            "paper_value": "",
            "primary": True,
        }
    )
    inputs = figures.FigureInputs(
        datasets=["toy"], findings=table, arch_labels={"c": "model C"}, min_samples=30
    )
    fig = figures.finding_figure(inputs, ["F3.within"])
    ax = fig.axes[0]
    lines = {
        tuple(np.round(np.asarray(line.get_xdata(), float), 3)): line
        for line in ax.lines
        if line.get_marker() == "o"
    }
    assert lines[(0.2,)].get_markerfacecolor() != "white" and lines[(0.3,)].get_markerfacecolor() == "white"
    assert len(lines) == 2  # the undefined row has no marker
    ticks = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
    assert "[n = 12 < 30]" in ticks[1]
    assert "no estimate: cut-off inside the lowest-score group" in ticks[2]
    assert "model C" in ticks[2]
    assert marks_of(fig, marks.EQUIVALENCE)  # the claim's bound beside the values
    assert len(ax.get_xticks()) > 0
    # a panel none of whose rows has an estimate draws no value scale, and says why
    undefined = table.iloc[[2]]
    fig = figures.finding_figure(dataclasses.replace(inputs, findings=undefined), ["F3.within"])
    ax = fig.axes[0]
    assert len(ax.get_xticks()) == 0 and "no row has an estimate" in ax.get_xlabel()


def test_each_architecture_has_one_colour_in_every_figure(built):
    colors = style.arch_colors(ARCHS)
    assert len(set(colors.values())) == len(ARCHS)
    seen = 0
    for name, dataset in (("primary_findings", None), ("seed_stability", "octdl"), ("warmup_loss", "cub200")):
        for ax in forests(built(name, dataset)[0]):
            ticks = {
                round(float(y), 3): t.get_text().replace("\n", " ")
                for y, t in zip(ax.get_yticks(), ax.get_yticklabels())
            }
            for y, row in _rows_drawn(ax).items():
                label = ticks.get(y, "")
                archs = [a for a in ARCHS if LABELS[a] in label]
                if len(archs) == 1 and " vs " not in label and "value" in row:
                    line = next(
                        ln
                        for ln in ax.lines
                        if ln.get_marker() == "o"
                        and len(ln.get_ydata()) == 1
                        and round(float(ln.get_ydata()[0]), 3) == y
                    )
                    assert line.get_color() == colors[archs[0]], (name, label)
                    seen += 1
    fig = built("training_curves", "octdl")[0]
    for ax in fig.axes:
        arch = next((a for a in ARCHS if LABELS[a] in title_of(ax)), None)
        if arch:
            assert {ln.get_color() for ln in ax.lines if ln.get_gid() != style.GUIDE} == {colors[arch]}
            seen += 1
    assert seen >= 8


def test_roles_are_told_apart_by_line_style_or_marker_not_by_colour(built):
    """Train and held-out by line style, the samplers by marker, the paper by a black star."""
    fig = built("sampler", "octdl")[0]
    for ax in fig.axes:
        arch = next((a for a in ARCHS if LABELS[a] in title_of(ax) and "accuracy" in title_of(ax)), None)
        if arch:
            lines = [ln for ln in ax.lines if ln.get_gid() != style.GUIDE]
            assert {ln.get_color() for ln in lines} == {style.arch_colors(ARCHS)[arch]}
            assert {ln.get_linestyle() for ln in lines} == {"-", "--"}
            assert {ln.get_marker() for ln in lines} == set(style.SAMPLER_MARKERS.values())
    stars = [
        ln
        for ln in marks_of(built("jaccard", "octdl")[0], marks.PAPER)
        if ln.get_marker() == style.PAPER_MARKER
    ]
    assert stars and {ln.get_color() for ln in stars} == {style.PAPER_COLOR}
    assert style.PAPER_COLOR not in style.ARCH_PALETTE and style.NULL_COLOR not in style.ARCH_PALETTE


def test_plain_words():
    assert style.plain("mean_p_true_since_learned of lambda") == "1 − mean p(true class) since learned of λ"
    assert (
        style.plain("trace since_learned_soft_la2, R2")
        == "trace since learned, on p(true class), learned after 2 correct, R²"
    )
    assert forest.template_text("F2 mean R2 {arch} minus {arch_b}, samples fitted in both") == (
        "F2 mean R² difference between the architectures, samples fitted in both"
    )
    assert "A" not in forest.template_text("F1 top-{q:.0%} Jaccard ({arch} vs {arch_b})").split()


def test_lambda_bounds_are_drawn_where_lambda_is_plotted(built):
    for name in ("seed_stability", "warmup_loss", "class_forgetting"):
        levels = set()  # the level of every horizontal or vertical guide line
        for line in (a for a in marks_of(built(name, "octdl")[0], style.GUIDE) if isinstance(a, Line2D)):
            for data in (line.get_xdata(), line.get_ydata()):
                values = set(np.asarray(data, float).round(6))
                levels |= values if len(values) == 1 else set()
        assert {0.0, CONFIG["retention"]["lambda_max"]} <= levels, name


def test_robustness_gives_each_finding_its_own_axis(built):
    fig = built("robustness", "octdl")[0]
    panels = forests(fig)
    ids = [f.id for f in stats.FINDINGS if f.primary and f.estimate is not None]
    assert len(panels) == len(ids)
    assert len({ax.get_xlim() for ax in panels}) > 1  # not one shared scale
    for ax in panels:  # the configured analysis first, then each variant, by name
        ticks = [t.get_text().replace("\n", " ") for t in ax.get_yticklabels()]
        assert "configured" in ticks[0] and any("score" in t or "trace" in t for t in ticks[1:])


def test_distributions_are_zoomed_to_their_data(study, built):
    fig = built("r2", "octdl")[0]
    ax = next(a for a in fig.axes if "distribution" in title_of(a))
    values = np.concatenate(
        [
            v
            for a, v in (
                (k[0], figures.f2.defined_r2(f))
                for k, f in load(study[0], "r2", "octdl").run("fits", "octdl").items()
            )
        ]
    )
    low, high = ax.get_xlim()
    q = np.quantile(values, [0.005, 0.995])
    assert low <= q[0] and high >= q[1] and (high - low) <= 1.25 * (q[1] - q[0]) + 1e-3


def test_a_panel_that_cannot_be_drawn_is_one_line(study):
    inputs = load(study[0], "jaccard", "octdl")
    t = inputs.tables["f1_jaccard"]["octdl"]
    t.loc[t["subset"] != "all", "value"] = np.nan  # the R² subset: no Jaccard defined
    fig = figures.draw("jaccard", inputs)
    FigureCanvasAgg(fig)
    notes = [t for ax in fig.axes if not ax.axison for t in ax.texts]
    assert notes and all("\n" not in t.get_text() for t in notes)
    assert any("no Jaccard defined" in t.get_text() for t in notes)


def test_sampler_tables_exist_only_for_the_sampler_datasets():
    files, params = figure_specs.figure_job("primary_findings", CONFIG, STUDY)
    assert params["datasets_of"]["summary"] == list(DATASETS)
    assert params["datasets_of"]["sampler_summary"] == SAMPLER_DATASETS
    files, params = figure_specs.figure_job("sampler", CONFIG, STUDY, dataset="octdl")
    assert params["datasets"] == ["octdl"] and all("octdl" in p for v in files.values() for p in v)
    with pytest.raises(ValueError, match="drawn per dataset"):
        figure_specs.figure_job("sampler", CONFIG, STUDY, dataset="cub200")
    files, params = figure_specs.figure_job("seed_stability", CONFIG, STUDY, dataset="cub200")
    assert sorted({r[2] for r in params["runs"]}) == list(SEEDS[:2])  # two seeds of each arch, not all
    assert {r[0] for r in params["runs"]} == {"cub200"} and all(
        "cub200" in p for v in files.values() for p in v
    )
    assert figure_specs.figure_paths("jaccard", DATASETS, SAMPLER_DATASETS, "pdf") == [
        f"results/figures/{d}/jaccard.pdf" for d in DATASETS
    ]
    assert figure_specs.figure_paths("sampler", DATASETS, SAMPLER_DATASETS, "png") == [
        "results/figures/octdl/sampler.png"
    ]
    assert figure_specs.figure_paths("data_map", DATASETS, SAMPLER_DATASETS, "png") == [
        "results/figures/data_map.png"
    ]


# ------------------------------------------------------------------ a made-up finding


def made_up_estimate(data: stats.StatsInput, cfg: stats.StatsConfig) -> list[stats.Estimate]:
    """A trivial estimator: the share of eligible samples of each architecture's runs."""
    out = []
    for arch in data.stack.archs:
        idx = data.stack.run_index(arch)
        share = float(data.stack.eligible[idx].mean())
        out.append(
            stats.Estimate(
                arch=arch,
                value=share,
                ci_low=share - 0.05,
                ci_high=share + 0.05,
                n_samples=int(data.stack.eligible[idx].any(0).sum()),
                n_runs=len(idx),
                extra={"n_eligible_runs": len(idx)},
            )
        )
    return out


def test_a_made_up_finding_reaches_the_findings_table_and_its_figure(study):
    finding = stats.Finding(
        id="X.eligible_share",
        group="X",
        label="X share of eligible samples ({arch})",
        estimate=made_up_estimate,
        unit="seed",
        test="none",
        columns=("n_eligible_runs",),
        limits=(0.0, 1.0),
    )
    registry = (*stats.FINDINGS, finding)
    root = study[0]
    summaries = []
    for dataset in DATASETS:
        fits = [
            pd.read_parquet(root / paths.FITS.format(dataset=dataset, arch=a, seed=s))
            for a in ARCHS
            for s in SEEDS
        ]
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
    xs = sorted(
        float(line.get_xdata()[0])
        for line in ax.lines
        if line.get_gid() == marks.SOLID and line.get_marker() == "o"
    )
    assert xs == pytest.approx(sorted(rows["value"]))
    assert not overlaps(drawn_texts(fig), fig.canvas.get_renderer())
    with pytest.raises(Exception, match="unknown finding id 'X.nothing'"):
        figures.finding_figure(inputs, ["X.nothing"], findings=registry)


# ----------------------------------------------------------------- plot_figure script


def _script(*args, cwd=None, timeout=180):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plot_figure.py"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def _config_file(tmp_path: Path) -> Path:
    """config.yaml laid over with the test study's grid and labels."""
    override = tmp_path / "study.yaml"
    archs = {a: {"model": MODELS[a], "weights": "none", "lr": 1e-3, "label": LABELS[a]} for a in ARCHS}
    datasets = {d: {"source": "digits", "storage_size": 8, "heldout_fraction": 0.2} for d in DATASETS}
    override.write_text(
        textwrap.dedent(f"""\
        grid: {{datasets: {list(DATASETS)}, archs: {list(ARCHS)}, seeds: {list(SEEDS)}}}
        datasets: {datasets}
        archs: {archs}
        sampler: {{datasets: [octdl]}}
        """).replace("'", '"')
    )
    return override


def test_plot_figure_help_and_standalone_mode(study, tmp_path):
    res = _script("--help")
    assert res.returncode == 0 and "finding" in res.stdout and "--config" in res.stdout
    root = study[0]
    config = _config_file(tmp_path)
    res = _script(
        "sampler",
        "--config",
        str(ROOT / "config.yaml"),
        str(config),
        "--workdir",
        str(root),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    with Image.open(
        tmp_path / "out" / "octdl" / "sampler.png"
    ) as im:  # drawn per dataset: the sampler's only
        assert im.size[0] <= MAX_PX[0] and im.size[1] <= MAX_PX[1]
    assert not (tmp_path / "out" / "cub200").exists()
    res = _script(
        "jaccard",
        "--datasets",
        "cub200",
        "--config",
        str(ROOT / "config.yaml"),
        str(config),
        "--workdir",
        str(root),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "cub200" / "jaccard.png").exists() and not (
        tmp_path / "out" / "octdl" / "jaccard.png"
    ).exists()
    res = _script(
        "finding",
        "--ids",
        "F3.within",
        "F2.arch_mean",
        "--config",
        str(ROOT / "config.yaml"),
        str(config),
        "--workdir",
        str(root),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "finding_F3.within_F2.arch_mean.pdf").stat().st_size > 2000


def test_plot_figure_reports_a_missing_input_in_one_line(study, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(study[0], root)
    (root / paths.STATS.format(dataset="octdl", table="f1_jaccard")).unlink()
    res = _script(
        "jaccard", "--config", str(ROOT / "config.yaml"), str(_config_file(tmp_path)), "--workdir", str(root)
    )
    assert res.returncode == 1
    assert "f1_jaccard.csv does not exist" in res.stderr and "Traceback" not in res.stderr
    assert not (root / "results" / "figures" / "octdl" / "jaccard.png").exists()
    res = _script(
        "finding",
        "--ids",
        "F9.none",
        "--config",
        str(ROOT / "config.yaml"),
        str(_config_file(tmp_path)),
        "--workdir",
        str(study[0]),
        "--out",
        str(tmp_path),
    )
    assert (
        res.returncode == 1 and "unknown finding id 'F9.none'" in res.stderr and "Traceback" not in res.stderr
    )


def test_min_samples_is_a_config_value_with_its_default_in_the_schema():
    import yaml

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    spec = schema["properties"]["figures"]["properties"]["min_samples"]
    assert spec["default"] == config["figures"]["min_samples"] == 30
    inputs = figures.FigureInputs(datasets=[], min_samples=config["figures"]["min_samples"])
    assert inputs.small(29) and not inputs.small(30) and not inputs.small(math.nan)


def test_figure_inputs_read_text_columns_as_text(study):
    inputs = load(study[0], "class_forgetting", "cub200")
    names = set(inputs.table("f4_class", "cub200")["class_name"]) - {""}
    assert names == {str(k) for k in range(6)}  # "3", not 3 or "3.0"
    assert dataclasses.is_dataclass(inputs)

"""Tests of retention.figures, scripts/plot_figure.py and the figure rules.

The figure functions are fed tables made by the real pipeline (simulated traces ->
retention.fit.fit_table -> retention.stats.dataset_tables -> csv round trip), so the
column names are those the workflow writes.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from retention import figures, findings, stats
from retention import fit as fitmod
from retention import traces as tr
from retention.sampler import compare_samplers, sampler_summary

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("octdl", "cub200")  # the paper's names, so that paper values match
ARCHS = ("resnet18", "deit_small")
SEEDS = (0, 1, 2)
LABELS = {"resnet18": "ResNet-18 (test label)", "deit_small": "DeiT-S (test label)"}
DEFINITIONS = ("since_learned", "raw", "since_learned_soft")
DPI = 40


def _csv(df: pd.DataFrame) -> pd.DataFrame:
    """A csv round trip with pandas' defaults (text columns with gaps come back as NaN)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    buf.seek(0)
    return pd.read_csv(buf)


def _metrics(arrays: dict, seed: int) -> pd.DataFrame:
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
            "n_trained": arrays["correct"].shape[0],
            "device": "cpu",
        }
    )


@pytest.fixture(scope="module")
def grid():
    """Fits, traces, metrics and statistics tables of a tiny 2 x 2 x 3 grid."""
    out = {"fits": {}, "traces": {}, "metrics": {}, "tables": {}, "written": {}}
    for di, dataset in enumerate(DATASETS):
        for kind in ("fits", "traces", "metrics"):
            out[kind][dataset] = {}
        base = None
        for ai, arch in enumerate(ARCHS):
            for seed in SEEDS:
                arrays = tr.simulate_traces(
                    n_samples=240,
                    n_heldout=60,
                    epochs=10,
                    warmup_epochs=1,
                    n_classes=6,
                    seed=100 * di + 10 * ai + seed,
                )
                if base is None:  # every run of a dataset shares one split
                    base = (arrays["label"].copy(), arrays["heldout_label"].copy())
                arrays["label"], arrays["heldout_label"] = base
                if dataset == "cub200":  # class names that a csv reader would take for numbers
                    arrays["class_names"] = np.array([str(k) for k in range(6)])
                traces = tr.Traces(path="", run_name=f"{arch}/seed{seed}", **arrays)
                fits = fitmod.fit_table(traces, DEFINITIONS, primary="since_learned")
                out["fits"][dataset][(arch, seed)] = fits
                out["traces"][dataset][(arch, seed)] = arrays
                out["metrics"][dataset][(arch, seed)] = _metrics(arrays, seed)
        runs = list(out["fits"][dataset])
        infos = [stats.class_info_from_traces(out["traces"][dataset][k]) for k in runs]
        tables = stats.dataset_tables(
            [out["fits"][dataset][k] for k in runs],
            runs,
            stats.StatsConfig(bootstrap=20, permutations=20),
            dataset,
            class_infos=infos,
        )
        out["written"][dataset] = tables  # as compute_stats writes them
        out["tables"][dataset] = {name: _csv(df) for name, df in tables.items()}
    return out


@pytest.fixture(scope="module")
def sampler_tables():
    """curves.csv and comparison.csv of both datasets, from retention.sampler."""
    rng = np.random.default_rng(0)
    curves, comparison = {}, {}
    for dataset in DATASETS:
        rows, frames = [], []
        for arch in ARCHS:
            for kind in ("random", "spaced"):
                for seed in SEEDS:
                    t = np.arange(-1, 6)
                    acc = np.clip(0.3 + 0.1 * (t + 1) + rng.normal(0, 0.02, t.size), 0, 1)
                    frames.append(
                        pd.DataFrame(
                            {
                                "epoch": t + 2,
                                "t": t,
                                "phase": np.where(t <= 0, "warmup", "finetune"),
                                "train_acc": acc,
                                "heldout_acc": acc - 0.05,
                                "n_trained": 50,
                                "arch": arch,
                                "kind": kind,
                                "seed": seed,
                            }
                        )
                    )
                    rows.append(
                        {
                            "arch": arch,
                            "kind": kind,
                            "seed": seed,
                            "heldout_acc": float(acc[-1] - 0.05),
                            "train_retention": float(rng.uniform(0.8, 0.9)),
                        }
                    )
        curves[dataset] = _csv(pd.concat(frames, ignore_index=True))
        comparison[dataset] = _csv(compare_samplers(pd.DataFrame(rows), n_boot=50, seed=0))
    return curves, comparison


@pytest.fixture(scope="module")
def built(grid, sampler_tables):
    """Each figure drawn once for the tests that only look at it."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = make_figure(name, grid, sampler_tables)
        return cache[name]

    return get


def _first_seed(mapping):
    return {d: {k: v for k, v in runs.items() if k[1] == SEEDS[0]} for d, runs in mapping.items()}


def _two_seeds(mapping):
    return {d: {k: v for k, v in runs.items() if k[1] in SEEDS[:2]} for d, runs in mapping.items()}


def _tables(grid, name):
    return {d: grid["tables"][d][name] for d in DATASETS}


def make_figure(name, grid, sampler_tables, paper=None):
    paper = findings.load_paper_values() if paper is None else paper
    if name == "retention_examples":
        return figures.retention_examples(
            _first_seed(grid["fits"]), _first_seed(grid["traces"]), arch_labels=LABELS
        )
    if name == "jaccard":
        return figures.jaccard(_tables(grid, "f1_jaccard"), paper, LABELS)
    if name == "r2":
        return figures.r2(grid["fits"], _tables(grid, "f2_r2"), paper, LABELS)
    if name == "seed_stability":
        return figures.seed_stability(
            _two_seeds(grid["fits"]), _tables(grid, "f3_seed_stability"), paper, LABELS
        )
    if name == "class_forgetting":
        return figures.class_forgetting(
            _tables(grid, "f4_class"), _tables(grid, "f4_class_similarity"), LABELS
        )
    if name == "warmup_loss":
        return figures.warmup_loss(grid["fits"], paper, LABELS)
    if name == "training_curves":
        return figures.training_curves(grid["metrics"], LABELS)
    if name == "robustness":
        return figures.robustness(_tables(grid, "robustness"), paper)
    if name == "alternative_scores":
        return figures.alternative_scores(grid["fits"], _tables(grid, "scores"), LABELS)
    if name == "sampler":
        curves, comparison = sampler_tables
        return figures.sampler(curves, comparison, paper, LABELS)
    raise AssertionError(name)


def _texts(fig) -> str:
    """Every title, tick label, axis label and legend text of a figure."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        out += [t.get_text() for t in ax.texts]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return "\n".join(out)


def _paper_marks(ax) -> list[float]:
    """y values of the red paper stars drawn in one axes."""
    ys = []
    for line in ax.get_lines():
        if line.get_marker() == "*" and line.get_color() == figures.PAPER_COLOR:
            ys += list(np.asarray(line.get_ydata(), float))
    return ys


# ------------------------------------------------------------------------ the figures


@pytest.mark.parametrize("name", figures.FIGURE_NAMES)
def test_each_figure_writes_pdf_and_png_of_the_expected_size(name, built, tmp_path):
    fig = built(name)
    pdf, png = tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"
    figures.save_figure(fig, pdf, png, DPI)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000
    w, h = fig.get_size_inches()
    with Image.open(png) as im:
        im.load()
        assert im.format == "PNG"
        # figsize * dpi pixels (matplotlib truncates fractional pixels)
        assert abs(im.size[0] - w * DPI) < 1 and abs(im.size[1] - h * DPI) < 1
        # not a blank canvas
        assert len(set(np.asarray(im.convert("L")).ravel().tolist())) > 10
    # written atomically: nothing but the two files is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([pdf.name, png.name])
    # one panel row per dataset: every dataset is named in the figure
    text = _texts(fig)
    for dataset in DATASETS:
        assert dataset in text, f"{name}: no panel names {dataset}"


@pytest.mark.parametrize(
    "name", [n for n in figures.FIGURE_NAMES if n != "robustness"]  # robustness: per trace, not arch
)
def test_architectures_are_named_by_their_config_label(name, built):
    text = _texts(built(name))
    for label in LABELS.values():
        assert label in text
    # the key is not shown where a label exists (a finding name is never a label here)
    assert "deit_small" not in text


def test_figures_without_labels_fall_back_to_the_arch_key(grid):
    fig = figures.training_curves(grid["metrics"])
    text = _texts(fig)
    assert "resnet18" in text and "deit_small" in text


def test_jaccard_marks_the_paper_value_of_each_dataset(grid, built):
    fig = built("jaccard")
    titled = {ax.get_title(): ax for ax in fig.axes}
    octdl = titled["octdl · all samples"]
    cub = titled["cub200 · all samples"]
    # seed-pooled and seed-pair stars at the paper's top-10% values
    assert sorted(_paper_marks(octdl)) == [0.34, 0.34]
    assert sorted(_paper_marks(cub)) == [0.15, 0.15]
    # no paper value for other datasets: rename the datasets and the stars are gone
    renamed = {"digits": grid["tables"]["octdl"]["f1_jaccard"]}
    fig = figures.jaccard(renamed, findings.load_paper_values(), LABELS)
    assert all(not _paper_marks(ax) for ax in fig.axes)


def test_r2_marks_the_paper_means_per_architecture(built):
    fig = built("r2")
    marks = sorted(_paper_marks(fig.axes[0]))
    assert marks == [0.52, 0.74]


def test_finding_names_the_figures_look_up_are_those_of_the_summary(grid):
    """The names matched against paper_values.csv must be written by stats.summary_table."""
    summary = set(grid["tables"]["octdl"]["summary"]["finding"])
    q = stats.StatsConfig().top_q
    ql = figures._qlabel(q)
    a, b = ARCHS
    expected = [
        f"F1 Jaccard {ql} {a} vs {b} (seed-pooled)",
        f"F1 Jaccard {ql} {a} vs {b} (seed pairs)",
        f"F2 mean R2 ({a})",
        f"F3 Spearman lambda across seeds ({b})",
        "F5 Spearman loss_t0 vs lambda (all runs)",
    ]
    for name in expected:
        assert name in summary
    outcomes = pd.DataFrame(
        [
            {"arch": a, "kind": k, "seed": s, "heldout_acc": 0.5 + s / 10, "train_retention": 0.8}
            for k in ("random", "spaced")
            for s in SEEDS
        ]
    )
    comparison = _csv(compare_samplers(outcomes, n_boot=20))
    summary = sampler_summary(comparison, "octdl", 0.5, "since_learned", 20)
    f6 = summary["finding"].tolist()
    assert f"F6 spaced minus random, {comparison['outcome'].iloc[0].replace('_', ' ')}" in f6
    assert summary.columns.tolist() == stats.SUMMARY_COLUMNS  # the summary.csv contract
    assert summary["interval"].str.contains("B = 20").all() and (summary["trace"] == "since_learned").all()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.34", (0.34, 0.34)),
        ("~0.01", (0.01, 0.01)),
        ("-0.22", (-0.22, -0.22)),
        ("0.30 to 0.50, p < 1e-45", (0.30, 0.50)),
        ("no improvement", None),
        ("", None),
    ],
)
def test_paper_number(text, value):
    assert figures.paper_number(text) == value


def test_select_examples_picks_the_extremes_of_lambda(grid):
    fits = grid["fits"]["octdl"][("resnet18", 0)]
    most, least = figures.select_examples(fits, 3)
    prim = fits[fits["primary"] & (fits["status"] == "fitted")].set_index("sample_id")
    lam = prim["lambda"]
    assert len(most) == len(least) == 3
    assert set(most).isdisjoint(least)
    assert lam.loc[most].min() >= lam.drop(index=most).max() - 1e-12
    assert lam.loc[least].max() <= lam.drop(index=least).min() + 1e-12


@pytest.mark.parametrize("definition", ["since_learned", "raw"])
def test_retention_examples_draw_the_fitted_model(grid, definition):
    fits = grid["fits"]["octdl"][("resnet18", 0)]
    arrays = grid["traces"]["octdl"][("resnet18", 0)]
    sub = fits[fits["trace"] == definition].assign(primary=True)
    most, least = figures.select_examples(sub, 2)
    ids = np.concatenate([most, least])
    ts, models = figures.example_models(sub, arrays, ids, lam_max=5.0)
    rows = sub.set_index("sample_id").loc[ids]
    for k, sid in enumerate(ids):
        r = rows.loc[sid]
        m = ts.mask[k]
        # the drawn model reproduces the fits table's SSE on the trace's points
        sse = np.sum((ts.y[k][m] - models[k](ts.tau[m])) ** 2)
        assert sse == pytest.approx(r["sse"], rel=1e-6, abs=1e-9)
        if definition == "since_learned":
            assert models[k](0.0) == pytest.approx(1.0)
            assert models[k](3.0) == pytest.approx(r["b"] + (1 - r["b"]) * np.exp(-3 * r["lambda"]))


def test_save_figure_is_deterministic(grid, tmp_path):
    """The same tables give the same bytes (a rerun does not change the files)."""
    for stem in ("a", "b"):
        fig = figures.training_curves(grid["metrics"], LABELS)
        figures.save_figure(fig, tmp_path / f"{stem}.pdf", tmp_path / f"{stem}.png", DPI)
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_grids_the_statistics_cannot_support_give_panels_that_say_so(grid):
    """One seed per architecture: seed pairs are empty, the figure still draws."""
    runs = {d: {k: v for k, v in r.items() if k[1] == 0} for d, r in grid["fits"].items()}
    f3 = {}
    for d, r in runs.items():
        keys = list(r)
        f3[d] = _csv(
            stats.f3_seed_stability_table(
                stats.stack_runs([r[k] for k in keys], keys, "since_learned"),
                stats.StatsConfig(bootstrap=20, permutations=20),
            )
        )
    fig = figures.seed_stability(runs, f3, None, LABELS)
    assert "needs two seeds" in _texts(fig)


# ----------------------------------------------------------------- plot_figure script


def _write_results(root: Path, grid, sampler_tables) -> None:
    for dataset in DATASETS:
        for (arch, seed), fits in grid["fits"][dataset].items():
            p = root / "fits" / dataset / arch / f"seed{seed}.parquet"
            p.parent.mkdir(parents=True, exist_ok=True)
            fits.to_parquet(p, index=False)
            run = root / "runs" / dataset / arch / f"seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            np.savez(run / "traces.npz", **grid["traces"][dataset][(arch, seed)])
            grid["metrics"][dataset][(arch, seed)].to_csv(run / "metrics.csv", index=False)
        (root / "stats" / dataset).mkdir(parents=True, exist_ok=True)
        for name, table in grid["written"][dataset].items():
            table.to_csv(root / "stats" / dataset / f"{name}.csv", index=False)
        (root / "sampler" / dataset).mkdir(parents=True, exist_ok=True)
        sampler_tables[0][dataset].to_csv(root / "sampler" / dataset / "curves.csv", index=False)
        sampler_tables[1][dataset].to_csv(
            root / "sampler" / dataset / "comparison.csv", index=False
        )


def test_plot_figure_script_draws_a_figure_from_the_contract_paths(grid, sampler_tables, tmp_path):
    results = tmp_path / "results"
    _write_results(results, grid, sampler_tables)
    script = ROOT / "scripts" / "plot_figure.py"
    res = subprocess.run(
        [
            sys.executable,
            str(script),
            "retention_examples",
            "--datasets",
            *DATASETS,
            "--archs",
            *ARCHS,
            "--seeds",
            *map(str, SEEDS),
            "--results",
            str(results),
            "--dpi",
            "30",
            "--label",
            "resnet18=R18",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    with Image.open(results / "figures" / "retention_examples.png") as im:
        assert im.size == (round(6.0 * 30), round(5.0 * 30))  # 2 archs x 2 datasets, 3 x 2.5 in
    assert (results / "figures" / "retention_examples.pdf").stat().st_size > 2000
    # a missing input is one line on stderr and exit 1, not a traceback
    (results / "stats" / "octdl" / "f1_jaccard.csv").unlink()
    res = subprocess.run(
        [
            sys.executable,
            str(script),
            "jaccard",
            "--datasets",
            *DATASETS,
            "--archs",
            *ARCHS,
            "--seeds",
            "0",
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert "f1_jaccard.csv does not exist" in res.stderr and "Traceback" not in res.stderr


def _plot_figure_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # for scripts/_retention_path.py
    spec = importlib.util.spec_from_file_location(
        "plot_figure", ROOT / "scripts" / "plot_figure.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plot_figure_reads_numeric_class_names_as_text(grid, sampler_tables, tmp_path, monkeypatch):
    results = tmp_path / "results"
    _write_results(results, grid, sampler_tables)
    script = _plot_figure_module(monkeypatch)
    inputs, runs = script.standalone_inputs(
        "class_forgetting", str(results), DATASETS, ARCHS, SEEDS
    )
    assert set(inputs) == {"f4_class", "f4_class_similarity"}  # nothing else is read
    fig = script.draw("class_forgetting", inputs, runs, DATASETS, LABELS)
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    # the loaders of the other figures read what their functions take
    for name in ("seed_stability", "sampler", "robustness"):
        inputs, runs = script.standalone_inputs(name, str(results), DATASETS, ARCHS, SEEDS)
        if name == "seed_stability":  # two seeds of each arch, not all
            assert sorted({s for _, _, s in runs}) == list(SEEDS[:2])
        text = _texts(script.draw(name, inputs, runs, DATASETS, LABELS))
        assert all(dataset in text for dataset in DATASETS)
    assert any(re.fullmatch(r"\d \(#\d+\)", t) for t in ticks), "; ".join(ticks)
    assert not any(re.match(r"\d\.0 ", t) for t in ticks)


# ------------------------------------------------------------------ Snakemake rules


def _snakemake() -> str:
    exe = Path(sys.executable).parent / "snakemake"
    found = str(exe) if exe.exists() else shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed")
    return found


def _env() -> dict:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    counts = {}
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^job\s+count\s*$", line))
    for line in lines[start + 2 :]:
        m = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def _dry_run(workdir: Path, target: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            _snakemake(),
            "-n",
            "--quiet",
            "rules",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            str(ROOT / "config.yaml"),
            str(ROOT / "config" / "demo.yaml"),
            "-d",
            str(workdir),
            target,
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_targeting_one_figure_schedules_only_its_upstream_jobs(tmp_path):
    import yaml

    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    n_data, n_arch, n_seed = (len(demo["grid"][k]) for k in ("datasets", "archs", "seeds"))
    # every run starts from its arch's weights, pretrained on one more dataset (glyphs)
    targets = {
        "training_curves": {
            "prepare_dataset": n_data + 1,
            "pretrain": n_arch,
            "finetune": n_data * n_arch * n_seed,
            "figure_training_curves": 1,
        },
        # the first seed of each arch only
        "retention_examples": {
            "prepare_dataset": n_data + 1,
            "pretrain": n_arch,
            "finetune": n_data * n_arch,
            "fit_traces": n_data * n_arch,
            "figure_retention_examples": 1,
        },
        "jaccard": {
            "prepare_dataset": n_data + 1,
            "pretrain": n_arch,
            "finetune": n_data * n_arch * n_seed,
            "fit_traces": n_data * n_arch * n_seed,
            "dataset_stats": n_data,
            "figure_jaccard": 1,
        },
    }
    procs = {}
    for name in targets:  # two at a time: each dry run is mostly Python start-up
        procs[name] = _dry_run(tmp_path / name, f"results/figures/{name}.pdf")
        if len(procs) % 2 == 0:
            for p in procs.values():
                p.wait(timeout=120)
    for name, expected in targets.items():
        out, _ = procs[name].communicate(timeout=120)
        assert procs[name].returncode == 0, out[-3000:]
        assert _job_counts(out) == expected, out[-3000:]


@pytest.mark.integration
def test_demo_builds_every_figure_and_the_report(tmp_path):
    """The demo DAG on a reduced grid (2 seeds, 3 epochs), then `snakemake --report`."""
    snakemake = _snakemake()
    override = tmp_path / "small.yaml"
    override.write_text(textwrap.dedent("""\
            grid: {seeds: [0, 1]}
            train: {warmup_epochs: 1, epochs: 3}
            pretrain: {epochs: 1}
            stats: {bootstrap: 50, permutations: 50}
            sampler: {datasets: [digits]}
            """))
    base = [
        snakemake,
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        str(ROOT / "config.yaml"),
        str(ROOT / "config" / "demo.yaml"),
        str(override),
        "-d",
        str(tmp_path / "work"),
    ]
    res = subprocess.run(
        base + ["--cores", "2", "--quiet"], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    work = tmp_path / "work"
    for name in figures.FIGURE_NAMES:
        png = work / "results" / "figures" / f"{name}.png"
        with Image.open(png) as im:
            assert im.size[0] > 200 and im.size[1] > 200
        assert (work / "results" / "figures" / f"{name}.pdf").stat().st_size > 2000
    res = subprocess.run(
        base + ["--report", "report.html"], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = (work / "report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in figures.FIGURE_NAMES:
        assert f"{name}.pdf" in html
    assert "findings.md" in html and "metrics.csv" in html
    # captions are rendered Jinja templates: config values in, no template syntax left
    assert "{{" not in html and "paper reports 0.34" in html
    assert "since_learned" in html

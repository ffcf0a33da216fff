"""The figure rules and the HTML report: what targeting one figure schedules, the findings
page (retention/findings/report.py, scripts/render_findings.py), and the report of the demo opened
in headless Chromium (Debian's package `chromium`; .ci/run installs it). Without Chromium
the browser tests skip, unless RETENTION_CHROMIUM_REQUIRED=1 (CI), where that is a failure.
"""

from __future__ import annotations

import html
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
import yaml
from PIL import Image

from retention import paths
from retention.figures import specs as figure_specs
from retention.findings import report

from .figure_fixtures import ROOT, load, make_study
from .test_figure_layout import MAX_PX

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
)


def _snakemake() -> str:
    exe = Path(sys.executable).parent / "snakemake"
    found = str(exe) if exe.exists() else shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed")
    return found


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def chromium() -> str:
    """The headless browser, or a skip (a failure under RETENTION_CHROMIUM_REQUIRED=1)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("RETENTION_CHROMIUM_REQUIRED") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def dump_dom(page: Path) -> str:
    """The DOM of ``page`` after its scripts ran, as headless Chromium serialises it."""
    res = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, "--dump-dom", page.resolve().as_uri()],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def screenshot(page: Path, out: Path, size=(1400, 1600)) -> Image.Image:
    res = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={out}",
            page.resolve().as_uri(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0 and out.exists(), res.stderr[-2000:]
    return Image.open(out).convert("L")


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


# ------------------------------------------------------------------ the figure rules


def test_targeting_one_figure_schedules_only_its_upstream_jobs(tmp_path):
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    datasets = demo["grid"]["datasets"]
    n_data, n_arch, n_seed = (len(demo["grid"][k]) for k in ("datasets", "archs", "seeds"))
    # every run starts from its arch's weights, pretrained on one more dataset (glyphs)
    pre = {"prepare_dataset": n_data + 1, "pretrain": n_arch}
    one = {"prepare_dataset": 2, "pretrain": n_arch}  # a figure of one dataset: it and glyphs
    # the fine-tuning jobs that make the first n seeds of every (dataset, arch): one per seed
    # group of train.seeds_per_job (rule finetune), and the runs linked to their folders
    seeds, k = demo["grid"]["seeds"], demo["train"].get("seeds_per_job", 1)
    groups = [seeds[i : i + k] for i in range(0, len(seeds), k)]

    def finetune(n, n_datasets):
        n_groups = sum(1 for g in groups if set(g) & set(seeds[:n]))
        return {"finetune": n_groups * n_datasets * n_arch, "publish_run": n * n_datasets * n_arch}

    # a figure of one dataset that reads its statistics: every run of that dataset only
    stats_of_one = {
        **one,
        **finetune(n_seed, 1),
        "fit_traces": n_arch * n_seed,
        "fit_nulls": n_arch * n_seed,
        "dataset_stats": 1,
    }
    first = datasets[0]
    targets = {
        # the first seed of each arch of every dataset
        paths.FIGURE.format(name="data_map", ext="pdf"): {
            **pre,
            **finetune(n_seed, n_data),
            "fit_traces": n_data * n_arch * n_seed,
            "figure_data_map": 1,
        },
        paths.FIGURE_OF_DATASET.format(dataset=first, name="jaccard", ext="pdf"): {
            **stats_of_one,
            "figure_jaccard": 1,
        },
        paths.FIGURE_OF_DATASET.format(dataset=first, name="gallery", ext="png"): {
            **stats_of_one,
            "figure_gallery": 1,
        },
        paths.FIGURE_OF_DATASET.format(dataset=first, name="training_curves", ext="pdf"): {
            **one,
            **finetune(n_seed, 1),
            "figure_training_curves": 1,
        },
    }
    base = [
        _snakemake(),
        "-n",
        "--quiet",
        "rules",
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        str(ROOT / "config.yaml"),
        str(ROOT / "config" / "demo.yaml"),
    ]
    procs = {
        t: subprocess.Popen(
            [*base, "-d", str(tmp_path / str(i)), "--", t],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, t in enumerate(targets)
    }
    for target, expected in targets.items():
        out, _ = procs[target].communicate(timeout=180)
        assert procs[target].returncode == 0, out[-3000:]
        assert _job_counts(out) == expected, (target, out[-3000:])


def test_the_report_sorts_the_findings_first_and_the_figures_in_the_papers_order():
    """The HTML report lists categories and subcategories by name (localeCompare)."""
    assert sorted(["Findings", figure_specs.REPORT_CATEGORY, "Runs", "Samples"]) == [
        "Findings",
        figure_specs.REPORT_CATEGORY,
        "Runs",
        "Samples",
    ]
    order = [
        figure_specs.FIGURES[n].subcategory
        for n in (
            "primary_findings",
            "jaccard",
            "r2",
            "seed_stability",
            "class_forgetting",
            "warmup_loss",
            "sampler",
        )
    ]
    assert order == sorted(order, key=str.lower)
    # the image sorts before the PDF in a figure's table (the report sorts labels by name)
    assert sorted(figure_specs.FORMATS.values()) == [figure_specs.FORMATS["png"], figure_specs.FORMATS["pdf"]]


# ------------------------------------------------------------------ the findings page


@pytest.fixture(scope="module")
def findings_page(tmp_path_factory):
    """results/findings.html of the test study, written by scripts/render_findings.py."""
    root, _ = make_study()
    tmp = tmp_path_factory.mktemp("page")
    inputs = load(root, "primary_findings")
    table = inputs.findings
    csv, md = tmp / "findings.csv", tmp / "findings.md"
    table.to_csv(csv, index=False)
    from retention import figures, findings

    md.write_text(findings.findings_markdown(table))
    png = tmp / "primary_findings.png"
    figures.save_figure(figures.draw("primary_findings", inputs), tmp / "primary_findings.pdf", png, 60)
    config = tmp / "study.yaml"
    config.write_text("grid: {datasets: [digits], archs: [cnn, vit], seeds: [0, 1]}\n")
    out = tmp / "findings.html"
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "render_findings.py"),
            "--csv",
            str(csv),
            "--md",
            str(md),
            "--figure",
            str(png),
            "--config",
            str(ROOT / "config.yaml"),
            str(ROOT / "config" / "demo.yaml"),
            str(config),
            "--out",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return out, table


def test_the_findings_page_opens_on_the_verdicts(findings_page):
    out, table = findings_page
    text = out.read_text(encoding="utf-8")
    primary = table[table["primary"]]
    body = text[text.index('<table class="verdicts">') :].split("</table>")[0].split("<tbody>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body)
    assert len(rows) == len(primary)
    first = primary.iloc[0]
    assert f"<b>{first['claim_verdict']}</b>" in rows[0] and f"<b>{first['null_verdict']}</b>" in rows[0]
    assert text.index('class="verdicts"') < text.index("<details")  # the verdicts first, the rest folded
    assert text.count('src="data:image/png;base64,') == 1
    config = re.search(r"<summary>Config.*?<pre>(.*?)</pre>", text, re.DOTALL).group(1)
    parsed = yaml.safe_load(html.unescape(config))
    assert parsed["grid"]["archs"] == ["cnn", "vit"] and "['" not in html.unescape(config)  # YAML, not Python
    assert not re.search(r"^\|", text, re.MULTILINE)  # every markdown table rendered


def test_the_findings_page_is_visible_in_a_browser(findings_page, tmp_path):
    out, table = findings_page
    dom = dump_dom(out)
    assert dom.count("<tr>") >= len(table[table["primary"]])
    assert re.search(r'<img src="data:image/png;base64,[^"]{1000,}', dom)
    shot = screenshot(out, tmp_path / "page.png", (1200, 900))
    assert len(np.unique(np.asarray(shot))) > 20  # text and a table, not a blank page


def test_markdown_of_the_findings_becomes_html():
    md = textwrap.dedent("""\
        # Findings

        Intro with **bold** and `code`.

        ## Verdicts

        | a | b \\| c |
        |---|---|
        | 1 | **x** |

        Read with care:

        - one
          continued
        - two
        """)
    intro, warnings, sections = report.sections(md)
    assert intro == "Intro with **bold** and `code`."
    assert warnings == ["one\n  continued", "two"] or [w.split() for w in warnings] == [
        ["one", "continued"],
        ["two"],
    ]
    ((heading, body),) = sections
    assert heading == "Verdicts" and "Read with care" not in body
    out = report.markdown_html(body)
    assert "<th>b | c</th>" in out and "<td><b>x</b></td>" in out


# ------------------------------------------------------------------ the demo's report


def _show_first_png(report_html: Path, out: Path) -> Path:
    """A copy of the report that, once loaded, shows its first PNG figure as the report's
    own view button does (handleImg: content "img", the file's data URI)."""
    script = textwrap.dedent("""\
        <script>
        window.addEventListener("load", function () {
          setTimeout(function () {
            const path = Object.keys(results).find(p => results[p].mime_type === "image/png");
            app.setView({content: "img", contentPath: results[path].data_uri, resultPath: path});
          }, 500);
        });
        </script>
        """)
    head, tail = report_html.read_text(encoding="utf-8").rsplit("</body>", 1)  # the page's own end
    out.write_text(head + script + "</body>" + tail, encoding="utf-8")
    return out


@pytest.mark.integration
def test_demo_builds_every_figure_and_a_report_that_opens_on_the_findings(tmp_path):
    """The demo DAG on a reduced grid (2 seeds, 3 epochs), then `snakemake --report`, opened
    in headless Chromium: the findings table and the figures are on the page."""
    override = tmp_path / "small.yaml"
    override.write_text(
        textwrap.dedent("""\
            grid: {seeds: [0, 1]}
            train: {warmup_epochs: 1, epochs: 3}
            pretrain: {epochs: 1}
            stats: {bootstrap: 50, permutations: 50, tie_draws: 20, null_draws: 2}
            sampler: {datasets: [digits]}
            """)
    )
    base = [
        _snakemake(),
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
        base + ["--cores", "2", "--quiet"],
        env=_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    work = tmp_path / "work"
    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    expected = []
    for name in figure_specs.FIGURES:
        expected += figure_specs.figure_paths(name, demo["grid"]["datasets"], ["digits"], "png")
    for path in expected:
        with Image.open(work / path) as im:
            assert 200 < im.size[0] <= MAX_PX[0] and 200 < im.size[1] <= MAX_PX[1], path
    res = subprocess.run(
        base
        + [
            "--report",
            "report.html",
            "--report-html-stylesheet-path",
            str(ROOT / "workflow" / "report" / "report.css"),
        ],
        env=_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    page = work / "report.html"
    text = page.read_text(errors="replace")
    for path in expected:
        assert Path(path).name in text and Path(path).with_suffix(".pdf").name in text
    assert "{{" not in text and "samples.csv" in text  # captions rendered; every sample's rank in the report
    dom = dump_dom(page)
    landing = dom[dom.index('class="prose prose-sm max-w-lg"') :]
    assert '<table class="verdicts">' in landing and "claim" in landing  # the report opens on the findings
    assert not re.search(
        r"\['|\[\d", html.unescape(landing.split('class="retention-findings"')[0])
    )  # no lists
    assert "  archs:\n  - cnn\n  - vit" in html.unescape(landing)  # the config as YAML
    assert re.search(r'<img src="data:image/png;base64,[^"]{1000,}', landing)  # and a figure in it
    dom = dump_dom(_show_first_png(page, tmp_path / "figure.html"))
    assert re.search(r'<div class="p-3"><img src="data:image/png', dom)  # a figure shown as an image
    findings = pd.read_csv(work / paths.FINDINGS_CSV)
    assert (findings["primary"].astype(str) == "True").sum() == landing.split("</table>")[0].count("<tr>") - 1

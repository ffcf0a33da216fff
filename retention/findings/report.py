"""The findings as HTML for the report (results/findings.html): the page the HTML report
opens on.

:func:`findings_html` writes one self-contained HTML fragment (it is shown on its own and
embedded in the report's landing page, workflow/report/workflow.rst): the verdicts first,
one line per primary finding and dataset with both verdicts and their Holm p, our value,
the paper's and the null the verdict rests on; the warnings of findings.md; the figure of
every primary finding (PNG, embedded); then each section of findings.md in full
(:func:`markdown_html`: the verdicts with their reasons, the primary findings in detail,
every exploratory row) and the study's config as YAML, each folded (``<details>``) so
that the page opens on the verdicts. :data:`STYLE` also makes the report's page scroll from
its top (the same rules as workflow/report/report.css, for reports made without it).
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml

from retention.findings.numbers import p_value, with_interval

#: the stylesheet of the HTML report (snakemake --report ... --report-html-stylesheet-path)
REPORT_CSS = Path(__file__).resolve().parents[1] / "workflow" / "report" / "report.css"
STYLE = """
<style>
.retention-findings { max-width: 72rem; font-size: 0.85rem; line-height: 1.35; }
.retention-findings table { border-collapse: collapse; margin: 0.5rem 0 1rem 0; display: block;
  overflow-x: auto; }
.retention-findings th, .retention-findings td { border: 1px solid #ccc; padding: 0.2rem 0.4rem;
  vertical-align: top; text-align: left; }
.retention-findings th { background: #f2f2f2; }
.retention-findings td.verdict { white-space: nowrap; }
.retention-findings pre { background: #f7f7f7; padding: 0.5rem; overflow-x: auto; font-size: 0.8rem; }
.retention-findings img { max-width: 100%; height: auto; }
.retention-findings details { margin: 0.4rem 0; }
.retention-findings summary { cursor: pointer; font-weight: 600; }
.prose.max-w-lg { max-width: 76rem; }
div.h-screen.overflow-auto.items-center { align-items: flex-start; justify-content: flex-start; }
</style>
"""
#: the compact verdict table: header -> cell of a findings row (HTML)
VERDICT_TABLE = (
    ("finding", lambda r: html.escape(str(r["finding"]))),
    ("dataset", lambda r: html.escape(str(r["dataset"]))),
    ("claim", lambda r: f"<b>{html.escape(_text(r, 'claim_verdict'))}</b>" + _p(r, "p_holm")),
    (
        "memoryless null",
        lambda r: (
            f"<b>{html.escape(_text(r, 'null_verdict'))}</b>"
            + (f" ({html.escape(_text(r, 'null_kind'))})" if _text(r, "null_kind") else "")
            + _p(r, "p_null_holm")
        ),
    ),
    (
        "ours (95% interval)",
        lambda r: html.escape(with_interval(r.get("value"), r.get("ci_low"), r.get("ci_high"))),
    ),
    ("paper", lambda r: html.escape(_text(r, "paper_value"))),
)


def _text(row: Mapping, key: str) -> str:
    v = row.get(key, "")
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _p(row: Mapping, key: str) -> str:
    p = p_value(row.get(key))
    return f", Holm p {p}" if p else ""


def verdict_table(table: pd.DataFrame) -> str:
    """The primary rows of the findings table (findings.csv) as an HTML table, the verdicts
    first."""
    primary = table[table["primary"].astype(str).str.lower().isin(["true", "1"])]
    head = "".join(f"<th>{h}</th>" for h, _ in VERDICT_TABLE)
    rows = []
    for r in primary.to_dict("records"):
        cells = "".join(
            f'<td class="verdict">{cell(r)}</td>'
            if h in ("claim", "memoryless null")
            else f"<td>{cell(r)}</td>"
            for h, cell in VERDICT_TABLE
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="verdicts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _inline(text: str) -> str:
    """Markdown's inline marks of findings.md (bold, code) on escaped text."""
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def markdown_html(text: str, shift: int = 1) -> str:
    """HTML of the Markdown that retention.findings.findings_markdown writes: headings
    (one level lower by ``shift``), paragraphs, bullet lists and pipe tables."""
    out, para, items = [], [], []
    lines = text.splitlines()

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading:
            flush()
            level = min(len(heading.group(1)) + shift, 6)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|(-+\|)+\s*$", lines[i + 1]):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            body = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                body.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
            continue
        elif line.startswith("- "):
            if para:
                flush()
            items.append(line[2:])
        elif line.strip():
            if items:
                items[-1] += " " + line.strip()
            else:
                para.append(line.strip())
        else:
            flush()
        i += 1
    flush()
    return "\n".join(out)


def sections(markdown: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    """findings.md cut into its intro, the bullet list after 'Read with care:' (the
    warnings) and its '## ' sections as (heading, body) without that list."""
    parts = re.split(r"^## +(.*)$", markdown, flags=re.MULTILINE)
    intro = re.sub(r"^# .*$", "", parts[0], flags=re.MULTILINE).strip()
    warnings, out = [], []
    for heading, body in zip(parts[1::2], parts[2::2]):
        care = re.search(r"^Read with care:\s*\n((?:\s*\n|- .*\n|  .*\n)+)", body + "\n", flags=re.MULTILINE)
        if care:
            warnings += [w.strip() for w in re.split(r"^- ", care.group(1), flags=re.MULTILINE) if w.strip()]
            body = body.replace(care.group(0).rstrip("\n"), "")
        out.append((heading.strip(), body.strip()))
    return intro, warnings, out


def png_img(path: str | Path, alt: str) -> str:
    """An <img> of a PNG file, embedded as a data URI (the page stands on its own)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def findings_html(
    table: pd.DataFrame, markdown: str, config: Mapping | None = None, figure: str | Path | None = None
) -> str:
    """The HTML fragment of results/findings.html (see the module docstring): ``table`` is
    findings.csv, ``markdown`` findings.md, ``config`` the study's resolved config,
    ``figure`` the PNG of every primary finding."""
    intro, warnings, rest = sections(markdown)
    parts = [
        '<meta charset="utf-8">',
        STYLE,
        '<div class="retention-findings">',
        "<h2>Findings: the verdicts</h2>",
        (
            "<p>One line per primary finding and dataset: the paper's claim by its own test and whether a "
            "memoryless "
            "process gives the value (the null kind the verdict rests on in parentheses), each with its "
            "Holm p. "
            "Below: what to read with care, every primary finding in one figure, then the reasons, the "
            "nulls' ranges, "
            "every other row and the config (click a heading to unfold it).</p>"
        ),
        verdict_table(table),
    ]
    if warnings:
        parts += [
            "<h3>Read with care</h3>",
            "<ul>" + "".join(f"<li>{_inline(w)}</li>" for w in warnings) + "</ul>",
        ]
    if figure is not None:
        parts += ["<h3>Every primary finding</h3>", png_img(figure, "every primary finding and its verdicts")]
    if intro:
        parts.append(f"<p>{_inline(' '.join(intro.split()))}</p>")
    for heading, body in rest:
        parts.append(f"<details><summary>{_inline(heading)}</summary>\n{markdown_html(body)}\n</details>")
    if config is not None:
        dumped = yaml.safe_dump(_plain(config), sort_keys=False, default_flow_style=False, allow_unicode=True)
        parts.append(
            "<details><summary>Config (YAML, every default of the schema filled in)</summary>"
            f"<pre>{html.escape(dumped)}</pre></details>"
        )
    parts.append("</div>")
    return "\n".join(parts) + "\n"


def _plain(value):
    """A config as plain dicts, lists and scalars (Snakemake's config may hold its own types)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

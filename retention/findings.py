"""The findings table: every dataset's summary rows beside the paper's values.

:func:`assemble_findings` takes any number of summary tables (``summary.csv`` of each
dataset from :func:`retention.stats.dataset_tables`, and of any later stage with the
same columns, e.g. the sampler's F6 rows), attaches the paper's value from one data
file (``retention/paper_values.csv``) and Holm-corrects every p-value across the whole
table. :func:`findings_markdown` renders it for ``results/findings.md``.

``paper_values.csv`` has columns ``finding``, ``dataset``, ``paper_value``, ``note``.
``finding`` and ``dataset`` are shell-style patterns (``*`` matches anything, so
``dataset`` ``*`` is a value the paper does not separate by dataset); the first
matching row wins. Finding names use the config's architecture keys.
"""

from __future__ import annotations

import fnmatch
import os
from importlib import resources
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import DataError

# fmt: off
SUMMARY_REQUIRED = (
    "finding", "dataset", "value", "ci_low", "ci_high", "test", "p_value", "n_samples", "n_runs",
)
FINDINGS_COLUMNS = [
    "finding", "dataset", "value", "ci_low", "ci_high", "paper_value", "test", "p_value",
    "p_holm", "n_samples", "n_runs", "trace", "interval", "detail", "paper_note",
]
# fmt: on
PAPER_COLUMNS = ("finding", "dataset", "paper_value", "note")


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (step-down, family = the finite entries; NaN stays NaN).

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max over j <= i of
    min(1, (m - j + 1) p_(j)).
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def load_paper_values(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's values (default: the packaged ``paper_values.csv``)."""
    if path is None:
        with resources.files("retention").joinpath("paper_values.csv").open() as fh:
            table = pd.read_csv(fh, dtype=str, keep_default_na=False)
        where = "retention/paper_values.csv"
    else:
        if not os.path.exists(path):
            raise DataError(f"paper values file {path} does not exist")
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        where = str(path)
    missing = [c for c in PAPER_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{where} lacks column(s) {missing}; expected {list(PAPER_COLUMNS)}")
    return table[list(PAPER_COLUMNS)]


def match_paper_value(finding: str, dataset: str, paper_values: pd.DataFrame) -> tuple[str, str]:
    """(paper_value, note) of the first row of ``paper_values`` whose patterns match
    ``finding`` and ``dataset``; ("", "") when none does."""
    for row in paper_values.itertuples(index=False):
        if fnmatch.fnmatchcase(finding, row.finding) and fnmatch.fnmatchcase(dataset, row.dataset):
            return row.paper_value, row.note
    return "", ""


def assemble_findings(
    summaries: Sequence[pd.DataFrame], paper_values: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One table of every summary row with the paper's value and Holm-adjusted p.

    summaries: tables with at least ``SUMMARY_REQUIRED`` columns (optional
    ``trace``, ``interval``, ``detail``). Rows keep their order (tables in the order
    given). Duplicate (finding, dataset) pairs are an error.
    """
    if paper_values is None:
        paper_values = load_paper_values()
    frames = []
    for k, df in enumerate(summaries):
        missing = [c for c in SUMMARY_REQUIRED if c not in df.columns]
        if missing:
            raise DataError(f"summary table {k + 1} lacks column(s) {missing}")
        frames.append(df)
    if not frames:
        raise DataError("no summary tables to assemble")
    table = pd.concat(frames, ignore_index=True)
    table["finding"] = table["finding"].astype(str)
    table["dataset"] = table["dataset"].astype(str)
    dup = table.duplicated(["finding", "dataset"])
    if dup.any():
        r = table[dup].iloc[0]
        raise DataError(f"finding {r['finding']!r} for dataset {r['dataset']!r} appears twice")
    matched = [
        match_paper_value(f, d, paper_values) for f, d in zip(table["finding"], table["dataset"])
    ]
    table["paper_value"] = [m[0] for m in matched]
    table["paper_note"] = [m[1] for m in matched]
    for c in ("value", "ci_low", "ci_high", "p_value"):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    table["p_holm"] = holm(table["p_value"].to_numpy())
    for c in ("n_samples", "n_runs"):
        table[c] = pd.to_numeric(table[c], errors="coerce").astype("Int64")
    for c in ("trace", "interval", "detail", "test"):
        if c not in table.columns:
            table[c] = ""
        table[c] = table[c].astype(object).where(table[c].notna(), "")
    return table.reindex(columns=FINDINGS_COLUMNS)


def _fmt(v, digits: int = 3) -> str:
    if v is None or pd.isna(v):
        return ""
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 10 ** (-digits):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}f}"


def _fmt_p(p) -> str:
    if p is None or pd.isna(p):
        return ""
    p = float(p)
    if p == 0:
        return "< 1e-300"
    return f"{p:.2g}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def findings_markdown(findings: pd.DataFrame, title: str = "Findings") -> str:
    """Markdown rendering of :func:`assemble_findings` output, one row per finding."""
    traces = sorted({t for t in findings.get("trace", pd.Series(dtype=str)) if t})
    lines = [
        f"# {title}",
        "",
        "Each row: this run's value with its 95% interval (method in the last column), the"
        " paper's value (arXiv 2604.11508, abstract), the test, its raw p-value and the"
        " Holm-corrected p-value (across every row of this table), and the samples and runs"
        " behind it. Empty value: the grid cannot support that comparison (see detail).",
    ]
    if traces:
        lines += ["", f"Trace definition: {', '.join(traces)}."]
    header = [
        "finding",
        "dataset",
        "value",
        "95% interval",
        "paper",
        "test",
        "p",
        "p (Holm)",
        "samples",
        "runs",
        "detail",
        "interval method",
    ]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in findings.itertuples(index=False):
        ci = f"{_fmt(r.ci_low)} to {_fmt(r.ci_high)}" if pd.notna(r.ci_low) else ""
        paper = r.paper_value if r.paper_value else ""
        cells = [
            r.finding,
            r.dataset,
            _fmt(r.value),
            ci,
            paper,
            r.test,
            _fmt_p(r.p_value),
            _fmt_p(r.p_holm),
            "" if pd.isna(r.n_samples) else int(r.n_samples),
            "" if pd.isna(r.n_runs) else int(r.n_runs),
            r.detail,
            r.interval,
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    notes = findings[findings["paper_note"].astype(str) != ""][["finding", "dataset", "paper_note"]]
    if len(notes):
        lines += ["", "Paper values:", ""]
        seen = set()
        for r in notes.itertuples(index=False):
            if r.paper_note not in seen:
                seen.add(r.paper_note)
                lines.append(f"- {r.finding} ({r.dataset}): {r.paper_note}")
    return "\n".join(lines) + "\n"

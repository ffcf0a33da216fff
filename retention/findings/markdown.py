"""findings.md: the verdicts first, then the primary findings in detail, then the
exploratory rows, and the lines a reader must know ("Read with care")."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd

from retention.chance import NEAR_CHANCE
from retention.findings.numbers import interval, number, p_value, with_interval
from retention.findings.verdicts import calibration_note
from retention.fitting.nulls import KINDS as NULL_KINDS
from retention.stats.registry import FINDINGS, by_id


def null_cell(row: Mapping) -> str:
    """Each null kind's mean and 95% range ('iid: 0.30 (0.26 to 0.35); shuffle: ...'), the
    one the null verdict rests on marked with an asterisk, or why a primary row has none."""
    decides = row.get("null_kind", "")
    parts = [
        f"{kind}{'*' if kind == decides else ''}: "
        + with_interval(row[f"null_{kind}"], row[f"null_{kind}_low"], row[f"null_{kind}_high"])
        for kind in NULL_KINDS
        if not pd.isna(row.get(f"null_{kind}"))
    ]
    if parts:
        return "; ".join(parts)
    finding = by_id(tuple(FINDINGS)).get(row["id"])
    if finding is not None and not finding.null:
        return "none: a paired comparison within seeds (its control runs on the same seeds)"
    return "undefined on the null runs" if not pd.isna(row.get("value")) else ""


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _paper_cell(row: pd.Series, table: pd.DataFrame) -> str:
    """The paper's value of a verdict line: the row's own, else the values attached to
    other findings of its group and dataset, each beside our estimate of it."""
    if row["paper_value"]:
        return str(row["paper_value"])
    group = row["id"].split(".")[0]
    same = table[
        (table["dataset"] == row["dataset"])
        & table["id"].str.startswith(group + ".")
        & (table["paper_value"] != "")
    ]
    return "; ".join(
        f"{r.paper_value} ({r.finding}: ours {number(r.value)}"
        + (f", {interval(r.ci_low, r.ci_high)})" if pd.notna(r.ci_low) else ")")
        for r in same.itertuples(index=False)
    )


def _warnings(table: pd.DataFrame) -> list[str]:
    """Lines for the reader: runs near chance or still learning at their end (and so the
    pretraining of an arch, once, though every dataset's rows carry it), and where lambda
    mostly sits at a bound."""

    def numeric(rows: pd.DataFrame, column: str) -> pd.Series:
        if column not in rows:
            return pd.Series(np.nan, rows.index)
        return pd.to_numeric(rows[column], errors="coerce")

    out = []
    runs = table[table["id"] == "Runs.accuracy"]
    pretraining = (runs["stage"] == "pretrain") if "stage" in runs else pd.Series(False, runs.index)
    fine, pre = runs[~pretraining], runs[pretraining].drop_duplicates("arch")
    for r in fine[numeric(fine, "near_chance") > 0].itertuples(index=False):
        out.append(
            f"- {r.dataset}, {r.finding}: {int(r.near_chance)} run(s) within {NEAR_CHANCE * 100:g} points of "
            f"chance ({float(r.chance):.0%}). Such runs learned little; their traces describe noise."
        )
    binary, soft = (table[table["id"] == fid] for fid in ("F2.arch_mean", "F2.arch_mean_soft"))
    if len(binary) and binary["value"].notna().any():
        out.append(
            "- F2: the decay fit's R^2 of a 0/1 trace is small by construction (here "
            f"{_span(binary['value'])}): a "
            "trace with one or two errors is fitted poorly by any smooth curve. The paper's 0.52 and 0.74 "
            "are on "
            "another scale; the closest we have is the R^2 of the p_true trace fitted with a free amplitude "
            f'("on the paper\'s scale": {_span(soft["value"])}).'
        )
    for r in fine[numeric(fine, "still_rising") > 0].itertuples(index=False):
        out.append(
            f"- {r.dataset}, {r.finding}: {int(r.still_rising)} run(s) still improving at the end (held-out "
            f"accuracy up to {float(r.rise) * 100:+.1f} points over the last epochs, more than "
            "convergence.tolerance). They have not converged: their forgetting is that of unfinished "
            "training (train longer: train.epochs)."
        )
    for r in pre[numeric(pre, "near_chance") > 0].itertuples(index=False):
        out.append(
            f"- {r.finding}: {float(r.value):.0%} on its source's held-out split, within "
            f"{NEAR_CHANCE * 100:g} points of chance ({float(r.chance):.0%}). The pretraining learned "
            "little; fine-tuning starts from features barely better than random weights (pretrain.epochs, "
            "pretrain.lr)."
        )
    for r in pre[numeric(pre, "still_rising") > 0].itertuples(index=False):
        out.append(
            f"- {r.finding}: still improving when pretraining ended ({float(r.rise) * 100:+.1f} points over "
            "its last epochs; more than convergence.tolerance). The features fine-tuning starts from are "
            "those of unfinished training (pretrain.epochs)."
        )
    for r in table[(table["id"] == "Fit.bounds") & (table["value"] > 0.5)].itertuples(index=False):
        out.append(
            f"- {r.dataset}, {r.finding}: {r.value:.0%} of the eligible samples (mean over seeds). Lambda "
            "is close "
            "to an indicator here; read F1, F3 and F5 with the robustness table's other rank scores."
        )
    return out


def _calibrated(row) -> str:
    """How far to trust a verdict, where its finding misses a calibration target (not said
    of a row that has no verdict on the claim)."""
    if row.get("claim_verdict") == "not comparable":
        return ""
    note = calibration_note(row)
    return f" ({note})" if note else ""


def _span(values: pd.Series) -> str:
    """'0.006 to 0.016' (min to max of the finite values), or 'undefined'."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    return f"{number(v.min())} to {number(v.max())}" if len(v) else "undefined"


#: the columns of findings.md's three tables: (header, cell of a row given the whole table)
VERDICT_COLUMNS = (
    ("finding", lambda r, t: r["finding"]),
    ("dataset", lambda r, t: r["dataset"]),
    ("ours (95% interval)", lambda r, t: with_interval(r["value"], r["ci_low"], r["ci_high"])),
    ("paper", lambda r, t: _paper_cell(r, t)),
    ("claim", lambda r, t: f"**{r['claim_verdict']}**: {r['claim_reason']}" + _calibrated(r)),
    ("memoryless null (95% range; * decides)", lambda r, t: null_cell(r)),
    ("beyond the null?", lambda r, t: f"**{r['null_verdict']}**: {r['null_reason']}"),
)
_ESTIMATE_COLUMNS = (
    ("finding", lambda r, t: r["finding"]),
    ("dataset", lambda r, t: r["dataset"]),
    ("value", lambda r, t: number(r["value"])),
    ("95% interval", lambda r, t: interval(r["ci_low"], r["ci_high"])),
    ("interval", lambda r, t: r["interval"]),
    ("test", lambda r, t: r["test"]),
    ("p", lambda r, t: p_value(r["p_value"])),
)
_COUNT_COLUMNS = (
    ("samples", lambda r, t: _count(r["n_samples"])),
    ("runs", lambda r, t: _count(r["n_runs"])),
    ("note", lambda r, t: r["note"]),
)
DETAIL_COLUMNS = (
    _ESTIMATE_COLUMNS
    + (
        ("claim p (Holm)", lambda r, t: p_value(r["p_holm"])),
        ("null p, one-sided (Holm)", lambda r, t: p_value(r["p_null_holm"])),
        ("null iid", lambda r, t: number(r["null_iid"])),
        ("null shuffle", lambda r, t: number(r["null_shuffle"])),
        ("excess over null", lambda r, t: number(r["excess"])),
    )
    + _COUNT_COLUMNS
)
EXPLORATORY_COLUMNS = _ESTIMATE_COLUMNS + (("paper", lambda r, t: r["paper_value"]),) + _COUNT_COLUMNS

INTRO = (
    "Each primary finding tests one claim of the paper (arXiv 2604.11508) on this study's runs, with seeds "
    "as "
    "the unit of replication, and has two verdicts. The claim: does the paper's claim pass its own test "
    "(holds, contradicted, inconclusive, not comparable), Holm-corrected over the primary findings of each "
    "dataset? The memoryless null: is our value further in the claim's direction than runs whose "
    "post-learning "
    "epochs are redrawn without memory give (beyond null, explained by null, undetermined), one-sided, "
    "Holm-corrected in its own family? A claim can hold and still be explained by per-sample difficulty "
    "alone. "
    "The rules, and how often each verdict is right on studies with a planted truth, are in docs/method.md "
    "(section Verdicts). Paper values attach only to the paper's datasets and architectures."
)


def _section(rows: pd.DataFrame, columns, table: pd.DataFrame) -> list[str]:
    return _table(
        [h for h, _ in columns], [[cell(r, table) for _, cell in columns] for _, r in rows.iterrows()]
    )


def findings_markdown(table: pd.DataFrame, title: str = "Findings") -> str:
    """Markdown of :func:`assemble_findings` output: the verdicts first, then the primary
    findings in detail, then the exploratory rows."""
    primary, explore = table[table["primary"]], table[~table["primary"]]
    lines = [f"# {title}", "", *textwrap.wrap(INTRO, 110, break_on_hyphens=False), "", "## Verdicts", ""]
    lines += _section(primary, VERDICT_COLUMNS, table)
    warnings = _warnings(table)
    if warnings:
        lines += ["", "Read with care:", "", *warnings]
    lines += ["", "## Primary findings in detail", "", *_section(primary, DETAIL_COLUMNS, table)]
    lines += [
        "",
        "## Exploratory (raw p-values, not corrected)",
        "",
        *_section(explore, EXPLORATORY_COLUMNS, table),
    ]
    notes = table[table["paper_note"] != ""].drop_duplicates("paper_note")
    if len(notes):
        lines += ["", "Paper values:", ""] + [
            f"- {r.finding} ({r.dataset}): {r.paper_note}" for r in notes.itertuples(index=False)
        ]
    return "\n".join(lines) + "\n"


def _count(v) -> str:
    return "" if v is None or pd.isna(v) else str(int(v))

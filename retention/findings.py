"""The findings table: every dataset's summary rows, the paper's values, Holm-corrected
p-values of the primary family, and a verdict per primary finding.

:func:`assemble_findings` takes the ``summary.csv`` of each dataset (and of the sampler
stage, F6) and a :class:`Study` (what the config says about datasets and
architectures). Paper values (``retention/paper_values.csv``) are keyed by finding id and
attach only where the dataset is one of the paper's (by its source) and the grid's
architectures are the paper's (by their timm model), never to the demo or a user's study.
Holm's correction runs per dataset over the primary findings (the registry's family);
every other row is exploratory and keeps its raw p. :func:`verdict` applies the rule
written in docs/method.md; :func:`findings_markdown` renders ``results/findings.md``.
"""

from __future__ import annotations

import fnmatch
import math
import os
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .chance import NEAR_CHANCE
from .errors import DataError
from .nulls import KINDS as NULL_KINDS
from .stats.estimate import Finding
from .stats.inference import holm
from .stats.registry import FINDINGS, by_id
from .stats.tables import summary_columns

PAPER_COLUMNS = ("id", "source", "model", "model_b", "paper_value", "note")
#: the paper's datasets (by source) and architectures (by timm model, without tag)
PAPER_SOURCES = ("octdl", "cub200")
PAPER_MODELS = ("resnet18", "deit_small_patch16_224")
VERDICTS = (
    "consistent with the paper",
    "contradicts the paper",
    "inconclusive",
    "consistent with null",
    "not comparable",
)
KEY = ["id", "dataset", "trace", "score", "arch", "arch_b", "case"]


@dataclass(frozen=True)
class Study:
    """What the findings need from the config: each grid dataset's source, each grid
    architecture's timm model and display label, the family-wise alpha."""

    sources: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    alpha: float = 0.05

    def is_paper(self, dataset: str) -> bool:
        """Whether ``dataset`` is one of the paper's, run with the paper's architectures."""
        return (
            self.sources.get(dataset) in PAPER_SOURCES
            and bool(self.models)
            and all(_base(m) in PAPER_MODELS for m in self.models.values())
        )

    @classmethod
    def from_config(cls, config: Mapping) -> "Study":
        grid = config["grid"]
        return cls(
            sources={d: config["datasets"][d]["source"] for d in grid["datasets"]},
            models={a: config["archs"][a]["model"] for a in grid["archs"]},
            labels={a: config["archs"][a].get("label", a) for a in grid["archs"]},
            alpha=float(config.get("stats", {}).get("alpha", 0.05)),
        )


def _base(model: str) -> str:
    return str(model).split(".", 1)[0]


def load_paper_values(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's values (default: the packaged ``paper_values.csv``), checked against
    the registry: an unknown finding id is an error."""
    if path is None:
        with resources.files("retention").joinpath("paper_values.csv").open() as fh:
            table = pd.read_csv(fh, dtype=str, keep_default_na=False)
        where = "retention/paper_values.csv"
    else:
        if not os.path.exists(path):
            raise DataError(f"paper values file {path} does not exist")
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        where = str(path)
    return check_paper_values(table, where)


def check_paper_values(
    table: pd.DataFrame, where: str, findings: Sequence[Finding] = FINDINGS
) -> pd.DataFrame:
    """The paper values' columns; DataError for a missing column or an id the registry lacks."""
    missing = [c for c in PAPER_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{where} lacks column(s) {missing}; expected {list(PAPER_COLUMNS)}")
    unknown = sorted(set(table["id"]) - set(by_id(tuple(findings))))
    if unknown:
        raise DataError(
            f"{where}: finding id {unknown[0]!r} is not in the registry (retention/stats/registry.py)"
        )
    return table[list(PAPER_COLUMNS)]


def paper_value(row: Mapping, study: Study, paper_values: pd.DataFrame) -> tuple[str, str]:
    """(paper value, note) of a findings row; ("", "") where none attaches."""
    dataset = str(row["dataset"])
    if not study.is_paper(dataset):
        return "", ""
    source = study.sources[dataset]
    models = [_base(study.models.get(str(row.get(k, "") or ""), "")) for k in ("arch", "arch_b")]
    for p in paper_values[paper_values["id"] == row["id"]].itertuples(index=False):
        if fnmatch.fnmatchcase(source, p.source) and all(
            (pat == "" and m == "") or (pat != "" and fnmatch.fnmatchcase(m, pat))
            for m, pat in zip(models, (p.model, p.model_b))
        ):
            return p.paper_value, p.note
    return "", ""


def _paper_sign(text: str) -> float:
    try:
        return float(np.sign(float(str(text).split()[0])))
    except (ValueError, IndexError):
        return math.nan


def verdict(row: Mapping, alpha: float) -> tuple[str, str]:
    """The verdict of a primary row and its reason (the rule of docs/method.md):

    1. no estimate: not comparable;
    2. the memoryless null explains the observed value (``p_null_holm``, the larger of
       the two null kinds' p, Holm-corrected over the dataset's primary rows, is not below
       alpha): consistent with null;
    3. the claim's test passes at alpha after Holm (for ``differs``, in the sign of the
       paper's value where one is attached): consistent with the paper;
    4. the 95% interval excludes the claim (``greater``: below 0; ``differs``: the
       opposite sign of the paper's, significant; ``equivalent``: outside +- bound;
       ``not_greater``: above the margin): contradicts the paper;
    5. otherwise inconclusive.
    """
    value, lo, hi = (float(row.get(k, math.nan)) for k in ("value", "ci_low", "ci_high"))
    p, claim = float(row.get("p_holm", math.nan)), str(row.get("claim", ""))
    if not np.isfinite(value):
        return "not comparable", str(row.get("note", "")) or "no estimate"
    p_null = float(row.get("p_null_holm", math.nan))
    if np.isfinite(p_null) and p_null >= alpha:
        # the null kind that explains it best (the larger p)
        kind = max(NULL_KINDS, key=lambda k: np.nan_to_num(float(row.get(f"null_{k}_p", math.nan)), nan=-1.0))
        nl, nh = float(row.get(f"null_{kind}_low", math.nan)), float(row.get(f"null_{kind}_high", math.nan))
        return (
            "consistent with null",
            f"the memoryless null gives it (Holm p {p_null:.2g}; {kind} null {nl:.3g} to {nh:.3g})",
        )
    bound = float(row.get("bound", math.nan))
    sign = _paper_sign(row.get("paper_value", ""))
    passed = np.isfinite(p) and p < alpha
    if claim == "differs" and passed and np.isfinite(sign) and np.sign(value) != sign:
        return (
            "contradicts the paper",
            f"significant (Holm p {p:.2g}) with the opposite sign of the paper's value",
        )
    if passed:
        return "consistent with the paper", f"Holm p {p:.2g} < {alpha:g}"
    against = {
        "greater": hi < 0,
        "differs": False,
        "equivalent": np.isfinite(bound) and (lo > bound or hi < -bound),
        "not_greater": np.isfinite(bound) and lo > bound,
    }.get(claim, False)
    if against:
        return "contradicts the paper", f"the 95% interval {lo:.3g} to {hi:.3g} excludes the claim"
    if np.isfinite(p):
        return "inconclusive", f"Holm p {p:.2g} is not below {alpha:g}"
    return "inconclusive", "no test: " + (str(row.get("note", "")) or "the estimate has no interval")


def assemble_findings(
    summaries: Sequence[pd.DataFrame],
    study: Study,
    paper_values: pd.DataFrame | None = None,
    findings: Sequence[Finding] = FINDINGS,
) -> pd.DataFrame:
    """One table of every summary row with its label, the paper's value, the
    Holm-adjusted p (primary rows, per dataset) and the verdict (primary rows)."""
    if not summaries:
        raise DataError("no summary tables to assemble")
    registry = by_id(tuple(findings))
    paper_values = (
        load_paper_values()
        if paper_values is None
        else check_paper_values(paper_values, "paper values", findings)
    )
    table = pd.concat([df.reindex(columns=summary_columns(findings)) for df in summaries], ignore_index=True)
    for c in (
        "id",
        "dataset",
        "trace",
        "score",
        "arch",
        "arch_b",
        "case",
        "claim",
        "note",
        "interval",
        "test",
    ):
        table[c] = table[c].astype(object).where(table[c].notna(), "").astype(str)
    unknown = sorted(set(table["id"]) - set(registry))
    if unknown:
        raise DataError(f"summary row of finding {unknown[0]!r}, which is not in the registry")
    dup = table.duplicated(KEY)
    if dup.any():
        r = table[dup].iloc[0]
        raise DataError(
            f"finding {r['id']} ({r['arch']} {r['arch_b']} {r['case']}) for dataset {r['dataset']} appears twice"
        )
    table["primary"] = table["primary"].astype(str).str.lower().isin(["true", "1"])
    rows = table.to_dict("records")
    table.insert(1, "finding", [registry[r["id"]].label_for(r, study.labels) for r in rows])
    matched = [paper_value(r, study, paper_values) for r in rows]
    table["paper_value"] = [m[0] for m in matched]
    table["paper_note"] = [m[1] for m in matched]
    table["p_holm"] = table["p_null_holm"] = math.nan
    # the larger of the two nulls' p: a value either null produces is "given by the null"
    p_null = table[[f"null_{k}_p" for k in NULL_KINDS]].astype(float).max(axis=1, skipna=False)
    for _, part in table[table["primary"]].groupby("dataset", sort=False):
        table.loc[part.index, "p_holm"] = holm(part["p_value"].to_numpy(float))
        table.loc[part.index, "p_null_holm"] = holm(p_null[part.index].to_numpy(float))
    verdicts = [verdict(r, study.alpha) if r["primary"] else ("", "") for r in table.to_dict("records")]
    table["verdict"] = [v[0] for v in verdicts]
    table["verdict_reason"] = [v[1] for v in verdicts]
    return table


# ------------------------------------------------------------------------- markdown


def _fmt(v, digits: int = 3) -> str:
    if v is None or pd.isna(v) or v == "":
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
    return "< 1e-300" if float(p) == 0 else f"{float(p):.2g}"


def _interval(lo, hi) -> str:
    return f"{_fmt(lo)} to {_fmt(hi)}" if pd.notna(lo) and pd.notna(hi) else ""


def _with_interval(value, lo, hi) -> str:
    """'0.12 (0.05 to 0.20)', or the value alone, or nothing."""
    if value is None or pd.isna(value):
        return ""
    interval = _interval(lo, hi)
    return f"{_fmt(value)} ({interval})" if interval else _fmt(value)


def _null_cell(row: Mapping) -> str:
    """Each null kind's mean and 95% range ('iid: 0.30 (0.26 to 0.35); shuffle: ...'), or
    why a primary row has none."""
    parts = [
        f"{kind}: {_with_interval(row[f'null_{kind}'], row[f'null_{kind}_low'], row[f'null_{kind}_high'])}"
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
        f"{r.paper_value} ({r.finding}: ours {_fmt(r.value)}"
        + (f", {_interval(r.ci_low, r.ci_high)})" if pd.notna(r.ci_low) else ")")
        for r in same.itertuples(index=False)
    )


def _warnings(table: pd.DataFrame) -> list[str]:
    """Lines for the reader: runs near chance or still learning at their end (and so the
    pretraining of an arch, once, though every dataset's rows carry it), and where lambda
    mostly sits at a bound."""

    def number(rows: pd.DataFrame, column: str) -> pd.Series:
        if column not in rows:
            return pd.Series(np.nan, rows.index)
        return pd.to_numeric(rows[column], errors="coerce")

    out = []
    runs = table[table["id"] == "Runs.accuracy"]
    pretraining = (runs["stage"] == "pretrain") if "stage" in runs else pd.Series(False, runs.index)
    fine, pre = runs[~pretraining], runs[pretraining].drop_duplicates("arch")
    for r in fine[number(fine, "near_chance") > 0].itertuples(index=False):
        out.append(
            f"- {r.dataset}, {r.finding}: {int(r.near_chance)} run(s) within {NEAR_CHANCE * 100:g} points of "
            f"chance ({float(r.chance):.0%}). Such runs learned little; their traces describe noise."
        )
    for r in fine[number(fine, "still_rising") > 0].itertuples(index=False):
        out.append(
            f"- {r.dataset}, {r.finding}: {int(r.still_rising)} run(s) still improving at the end (held-out "
            f"accuracy up to {float(r.rise) * 100:+.1f} points over the last epochs, more than "
            "convergence.tolerance). They have not converged: their forgetting is that of unfinished "
            "training (train longer: train.epochs)."
        )
    for r in pre[number(pre, "near_chance") > 0].itertuples(index=False):
        out.append(
            f"- {r.finding}: {float(r.value):.0%} on its source's held-out split, within "
            f"{NEAR_CHANCE * 100:g} points of chance ({float(r.chance):.0%}). The pretraining learned "
            "little; fine-tuning starts from features barely better than random weights (pretrain.epochs, "
            "pretrain.lr)."
        )
    for r in pre[number(pre, "still_rising") > 0].itertuples(index=False):
        out.append(
            f"- {r.finding}: still improving when pretraining ended ({float(r.rise) * 100:+.1f} points over "
            "its last epochs; more than convergence.tolerance). The features fine-tuning starts from are "
            "those of unfinished training (pretrain.epochs)."
        )
    for r in table[(table["id"] == "Fit.bounds") & (table["value"] > 0.5)].itertuples(index=False):
        out.append(
            f"- {r.dataset}, {r.finding}: {r.value:.0%} of the eligible samples (mean over seeds). Lambda is close "
            "to an indicator here; read F1, F3 and F5 with the robustness table's other rank scores."
        )
    return out


#: the columns of findings.md's three tables: (header, cell of a row given the whole table)
VERDICT_COLUMNS = (
    ("finding", lambda r, t: r["finding"]),
    ("dataset", lambda r, t: r["dataset"]),
    ("ours (95% interval)", lambda r, t: _with_interval(r["value"], r["ci_low"], r["ci_high"])),
    ("memoryless null (95% range)", lambda r, t: _null_cell(r)),
    ("paper", lambda r, t: _paper_cell(r, t)),
    ("p (Holm)", lambda r, t: _fmt_p(r["p_holm"])),
    ("verdict", lambda r, t: f"**{r['verdict']}**: {r['verdict_reason']}"),
)
_ESTIMATE_COLUMNS = (
    ("finding", lambda r, t: r["finding"]),
    ("dataset", lambda r, t: r["dataset"]),
    ("value", lambda r, t: _fmt(r["value"])),
    ("95% interval", lambda r, t: _interval(r["ci_low"], r["ci_high"])),
    ("interval", lambda r, t: r["interval"]),
    ("test", lambda r, t: r["test"]),
    ("p", lambda r, t: _fmt_p(r["p_value"])),
)
_COUNT_COLUMNS = (
    ("samples", lambda r, t: _count(r["n_samples"])),
    ("runs", lambda r, t: _count(r["n_runs"])),
    ("note", lambda r, t: r["note"]),
)
DETAIL_COLUMNS = _ESTIMATE_COLUMNS + (
    ("p (Holm)", lambda r, t: _fmt_p(r["p_holm"])),
    ("null iid", lambda r, t: _fmt(r["null_iid"])),
    ("null shuffle", lambda r, t: _fmt(r["null_shuffle"])),
    ("excess over null", lambda r, t: _fmt(r["excess"])),
) + _COUNT_COLUMNS
EXPLORATORY_COLUMNS = _ESTIMATE_COLUMNS + (("paper", lambda r, t: r["paper_value"]),) + _COUNT_COLUMNS

INTRO = (
    "Each primary finding tests one claim of the paper (arXiv 2604.11508) on this study's runs, with seeds as "
    "the unit of replication. The verdict compares our estimate with a memoryless null (runs whose post-learning "
    "epochs are redrawn independently: what per-sample difficulty alone produces) and with the paper's claim, at "
    "a family-wise alpha after Holm's correction over the primary findings of each dataset. The rule is in "
    "docs/method.md (section Verdicts). Paper values attach only to the paper's datasets and architectures."
)


def _section(rows: pd.DataFrame, columns, table: pd.DataFrame) -> list[str]:
    return _table([h for h, _ in columns], [[cell(r, table) for _, cell in columns] for _, r in rows.iterrows()])


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
    lines += ["", "## Exploratory (raw p-values, not corrected)", "", *_section(explore, EXPLORATORY_COLUMNS, table)]
    notes = table[table["paper_note"] != ""].drop_duplicates("paper_note")
    if len(notes):
        lines += ["", "Paper values:", ""] + [
            f"- {r.finding} ({r.dataset}): {r.paper_note}" for r in notes.itertuples(index=False)
        ]
    return "\n".join(lines) + "\n"


def _count(v) -> str:
    return "" if v is None or pd.isna(v) else str(int(v))

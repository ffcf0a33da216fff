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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

from .chance import NEAR_CHANCE
from .errors import DataError
from .nulls import KINDS as NULL_KINDS
from .numbers import interval, number, p_value, with_interval
from .stats.estimate import Finding
from .stats.inference import holm, t_ci, t_p
from .stats.registry import FINDINGS, by_id
from .stats.tables import summary_columns
from .verdicts import (
    calibration_note,
    claim_verdict,
    deciding_null,
    null_verdict,
    number_of,
    verdict_sentence,
)

PAPER_COLUMNS = ("id", "source", "model", "model_b", "paper_value", "note")
#: the paper's datasets (by source) and architectures (by timm model, without tag)
PAPER_SOURCES = ("octdl", "cub200")
PAPER_MODELS = ("resnet18", "deit_small_patch16_224")
#: the two axes of a primary finding's verdict (docs/method.md, section Verdicts)
CLAIM_VERDICTS = ("holds", "contradicted", "inconclusive", "not comparable")
NULL_VERDICTS = ("beyond null", "explained by null", "undetermined")
KEY = ["id", "dataset", "trace", "score", "arch", "arch_b", "case"]
#: the dataset name of the rows pooled over the paper's datasets (F2: the paper does not
#: separate its datasets), followed by the datasets' names
POOLED = "pooled over"


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
    def from_config(cls, config: Mapping) -> Study:
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
    """(paper value, note) of a findings row; ("", "") where none attaches. A row pooled
    over the paper's datasets (:func:`pooled_rows`) has the source ``pooled``."""
    dataset = str(row["dataset"])
    if dataset.startswith(POOLED):
        source = "pooled"
    elif study.is_paper(dataset):
        source = study.sources[dataset]
    else:
        return "", ""
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


def claim_sign(row: Mapping, study: Study, paper_values: pd.DataFrame) -> float:
    """The sign the paper gives a two-sided ("differs") claim of this row's architecture
    pair (+1, -1), from its paper value for any of the paper's datasets; NaN where the
    study is not the paper's or the paper gives none. F2's means are reported over the
    paper's datasets together, so their sign holds for each dataset."""
    if row.get("claim") != "differs" or not study.is_paper(str(row["dataset"])):
        return math.nan
    models = [_base(study.models.get(str(row.get(k, "") or ""), "")) for k in ("arch", "arch_b")]
    for p in paper_values[paper_values["id"] == row["id"]].itertuples(index=False):
        if all((pat == "" and m == "") or (pat != "" and fnmatch.fnmatchcase(m, pat))
               for m, pat in zip(models, (p.model, p.model_b))):
            return _paper_sign(p.paper_value)
    return math.nan


def load_calibration() -> pd.DataFrame:
    """The measured size, power and null size of each primary finding on planted truth
    (``retention/calibration.csv``, from ``benchmarks/calibrate.py --package``)."""
    with resources.files("retention").joinpath("calibration.csv").open() as fh:
        return pd.read_csv(fh).set_index("id")


def pooled_rows(table: pd.DataFrame, study: Study, findings: Sequence[Finding]) -> pd.DataFrame:
    """Rows of the findings the paper reports over its datasets together (``pooled``),
    pooled over the study's paper datasets: the mean of the datasets' values, its standard
    error from theirs (sqrt(sum se^2) / D) and Welch-Satterthwaite degrees of freedom;
    a two-sided t p of "0" for differences. Empty unless the study has a paper dataset."""
    datasets = [d for d in dict.fromkeys(table["dataset"]) if study.is_paper(d)]
    ids = [f.id for f in findings if f.pooled]
    differences = {f.id for f in findings if f.pooled and f.claim is not None}  # tested against 0
    part = table[table["id"].isin(ids) & table["dataset"].isin(datasets)]
    rows = []
    for _, group in part.groupby(["id", "arch", "arch_b", "case"], sort=False):
        value, se, df = (group[c].to_numpy(float) for c in ("value", "se", "df"))
        row = group.iloc[0].to_dict() | {"dataset": f"{POOLED} {', '.join(datasets)}", "p_value": math.nan}
        row |= {"primary": False, "claim": ""}  # exploratory: the primary tests are per dataset
        row |= {"ci_low": math.nan, "ci_high": math.nan, "interval": "", "test": "", "note": ""}
        row |= {"n_runs": int(group["n_runs"].sum()), "n_samples": math.nan}
        row["value"] = float(value.mean()) if np.isfinite(value).all() else math.nan
        if len(group) < len(datasets) or not np.isfinite(value).all():
            row["note"] = "undefined in a dataset"
        elif np.isfinite(se).all() and np.isfinite(df).all() and (se > 0).all():
            var = float((se**2).sum()) / len(se) ** 2
            dof = float((se**2).sum() ** 2 / (se**4 / df).sum())
            row["se"], row["df"] = math.sqrt(var), dof
            row["ci_low"], row["ci_high"] = t_ci(row["value"], row["se"], dof)
            row["interval"] = f"mean over {len(group)} datasets, t (Welch-Satterthwaite, {dof:.1f} df)"
            if row["id"] in differences:
                row["p_value"], row["test"] = t_p(row["value"], row["se"], dof), "two-sided t against 0"
        rows.append(row)
    return pd.DataFrame(rows, columns=table.columns)


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
        "null_direction",
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
    pooled = pooled_rows(table, study, findings)
    if len(pooled):
        table = pd.concat([table, pooled.astype(table.dtypes.to_dict())], ignore_index=True)
    rows = table.to_dict("records")
    table.insert(1, "finding", [registry[r["id"]].label_for(r, study.labels) for r in rows])
    matched = [paper_value(r, study, paper_values) for r in rows]
    table["paper_value"] = [m[0] for m in matched]
    table["paper_note"] = [m[1] for m in matched]
    table["claim_sign"] = [claim_sign(r, study, paper_values) for r in rows]
    table["p_holm"] = table["p_null_holm"] = math.nan
    table["null_kind"] = [deciding_null(r) if r["primary"] else "" for r in rows]
    table["null_p"] = [
        number_of(r, f"null_{k}_p") if k else math.nan for r, k in zip(rows, table["null_kind"])
    ]
    for _, part in table[table["primary"]].groupby("dataset", sort=False):
        table.loc[part.index, "p_holm"] = holm(part["p_value"].to_numpy(float))
        table.loc[part.index, "p_null_holm"] = holm(part["null_p"].to_numpy(float))
    axes = [
        (claim_verdict(r, study.alpha), null_verdict(r, study.alpha, registry[r["id"]].null))
        if r["primary"]
        else (("", ""), ("", ""))
        for r in table.to_dict("records")
    ]
    table["claim_verdict"] = [c[0] for c, _ in axes]
    table["claim_reason"] = [c[1] for c, _ in axes]
    table["null_verdict"] = [n[0] for _, n in axes]
    table["null_reason"] = [n[1] for _, n in axes]
    table["verdict"] = [verdict_sentence(c, n) if c[0] else "" for c, n in axes]
    calibration = load_calibration()
    for column in ("size", "power", "null_size"):
        measured = table["id"].map(calibration[column]) if column in calibration else math.nan
        table[f"calibration_{column}"] = np.where(table["primary"], measured, math.nan)
    return table


# ------------------------------------------------------------------------- markdown


def _null_cell(row: Mapping) -> str:
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
            f"- F2: the decay fit's R^2 of a 0/1 trace is small by construction (here {_span(binary['value'])}): a "
            "trace with one or two errors is fitted poorly by any smooth curve. The paper's 0.52 and 0.74 are on "
            "another scale; the closest we have is the R^2 of the p_true trace fitted with a free amplitude "
            f"(\"on the paper's scale\": {_span(soft['value'])})."
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
            f"- {r.dataset}, {r.finding}: {r.value:.0%} of the eligible samples (mean over seeds). Lambda is close "
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
    ("memoryless null (95% range; * decides)", lambda r, t: _null_cell(r)),
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
DETAIL_COLUMNS = _ESTIMATE_COLUMNS + (
    ("claim p (Holm)", lambda r, t: p_value(r["p_holm"])),
    ("null p, one-sided (Holm)", lambda r, t: p_value(r["p_null_holm"])),
    ("null iid", lambda r, t: number(r["null_iid"])),
    ("null shuffle", lambda r, t: number(r["null_shuffle"])),
    ("excess over null", lambda r, t: number(r["excess"])),
) + _COUNT_COLUMNS
EXPLORATORY_COLUMNS = _ESTIMATE_COLUMNS + (("paper", lambda r, t: r["paper_value"]),) + _COUNT_COLUMNS

INTRO = (
    "Each primary finding tests one claim of the paper (arXiv 2604.11508) on this study's runs, with seeds as "
    "the unit of replication, and has two verdicts. The claim: does the paper's claim pass its own test "
    "(holds, contradicted, inconclusive, not comparable), Holm-corrected over the primary findings of each "
    "dataset? The memoryless null: is our value further in the claim's direction than runs whose post-learning "
    "epochs are redrawn without memory give (beyond null, explained by null, undetermined), one-sided, "
    "Holm-corrected in its own family? A claim can hold and still be explained by per-sample difficulty alone. "
    "The rules, and how often each verdict is right on studies with a planted truth, are in docs/method.md "
    "(section Verdicts). Paper values attach only to the paper's datasets and architectures."
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

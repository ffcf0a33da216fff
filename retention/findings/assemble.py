"""The findings table: every dataset's summary rows, the paper's values, Holm-corrected
p-values of the primary family, and the two verdicts of each primary finding.

:func:`assemble_findings` takes the ``summary.csv`` of each dataset (and of the sampler
stage, F6) and a :class:`Study` (what the config says about datasets and
architectures). Paper values (``retention/findings/paper_values.csv``) are keyed by
finding id and attach only where the dataset is one of the paper's (by its source) and the
grid's architectures are the paper's (by their timm model), never to the demo or a user's
study; F2's attach to rows pooled over the paper's datasets (:func:`pooled_rows`). Holm's
correction runs per dataset over the primary findings (the registry's family); every other
row is exploratory and keeps its raw p. The verdicts are :mod:`retention.findings.verdicts`';
:mod:`retention.findings.markdown` renders ``results/findings.md``.
"""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

from retention.config import study_fields
from retention.errors import DataError
from retention.findings.verdicts import (
    claim_verdict,
    deciding_null,
    null_verdict,
    number_of,
    verdict_sentence,
)
from retention.stats.estimate import Finding
from retention.stats.inference import holm, t_ci, t_p
from retention.stats.registry import FINDINGS, by_id
from retention.stats.tables import summary_columns

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
    def from_config(cls, config: Mapping, archs: Sequence[str] | None = None) -> Study:
        """The study of a (filled-in) config (:func:`retention.config.study_fields`)."""
        return cls(**study_fields(config, archs))


def _base(model: str) -> str:
    return str(model).split(".", 1)[0]


def load_paper_values(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The paper's values (default: the packaged ``paper_values.csv``), checked against
    the registry: an unknown finding id is an error."""
    if path is None:
        with resources.files(__package__).joinpath("paper_values.csv").open() as fh:
            table = pd.read_csv(fh, dtype=str, keep_default_na=False)
        where = "retention/findings/paper_values.csv"
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
        if all(
            (pat == "" and m == "") or (pat != "" and fnmatch.fnmatchcase(m, pat))
            for m, pat in zip(models, (p.model, p.model_b))
        ):
            return _paper_sign(p.paper_value)
    return math.nan


def load_calibration() -> pd.DataFrame:
    """The measured size, power and null size of each primary finding on planted truth
    (``retention/findings/calibration.csv``, from ``benchmarks/calibrate.py --package``)."""
    with resources.files(__package__).joinpath("calibration.csv").open() as fh:
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
            f"finding {r['id']} ({r['arch']} {r['arch_b']} {r['case']}) for dataset {r['dataset']} appears "
            "twice"
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

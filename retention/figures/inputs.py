"""What every figure function takes (:class:`FigureInputs`) and how it is read from files.

A figure reads per-run files (``fits``, ``traces``, ``metrics``: dataset -> {(arch,
seed): object}), per-dataset files (statistics and sampler tables, the prepared
``manifest`` and ``images``: name -> dataset -> object) and the assembled findings table
(:func:`retention.findings.assemble_findings` of the datasets' ``summary.csv``, which
gives each row its label for people and, only for the paper's datasets and
architectures, the paper's value). Figures look findings up by registry id
(:meth:`FigureInputs.rows`), never by label text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retention import findings as findings_mod
from retention import io
from retention.errors import DataError
from retention.fitting.fit import LAMBDA_MAX

#: columns read as text wherever a table has them (class names such as "3" stay "3")
# fmt: off
TEXT_COLUMNS = (
    "id", "finding", "dataset", "trace", "score", "score_b", "arch", "arch_b", "case", "interval",
    "test", "claim", "unit", "note", "kind", "subset", "statistic", "class_name", "confused_with",
    "nearest_class", "most_forgotten", "least_forgotten", "outcome", "differences", "phase", "device",
    "split", "source", "group", "paper_value", "paper_note", "verdict", "claim_verdict", "claim_reason",
    "null_verdict", "null_reason", "null_kind", "null_direction", "class_name_b", "stage",
)
# fmt: on
TRACE_KEYS = ("sample_id", "label", "class_names", "t", "correct", "p_true")
#: read where the file has them (the training curves' losses)
OPTIONAL_TRACE_KEYS = ("loss", "heldout_loss", "heldout_correct")
#: per-dataset inputs that are summary tables (assembled into the findings table)
SUMMARY_TABLES = ("summary", "sampler_summary")


def read_csv(path) -> pd.DataFrame:
    """A workflow table with its text columns as text ("" where empty), checked
    (``retention.io.read_table``: missing, truncated or unreadable is one DataError)."""
    table = io.read_table(path, "input table", dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=True)
    for c in table.columns.intersection(TEXT_COLUMNS):
        table[c] = table[c].fillna("")
    return table


def read_fits(path) -> pd.DataFrame:
    return io.read_table(path, "fits table")


def read_traces(path) -> dict:
    return io.read_npz(path, "traces file", keys=TRACE_KEYS, optional=OPTIONAL_TRACE_KEYS)


def read_images(path) -> np.ndarray:
    """The prepared images (N, S, S, 3) uint8, memory-mapped."""
    images = io.read_npy(path, "prepared images")
    if images.ndim != 4 or images.dtype != np.uint8:
        raise DataError(
            f"{path}: expected uint8 images of shape (N, S, S, 3), got {images.dtype} {images.shape}"
        )
    return images


READERS = {"fits": read_fits, "traces": read_traces, "metrics": read_csv, "images": read_images}


@dataclass
class FigureInputs:
    """Everything a figure function may draw from (each figure uses a part of it).

    datasets: the panel rows, in order; runs: kind -> dataset -> {(arch, seed): fits
    table / traces arrays / metrics table}; tables: name -> dataset -> table (or the
    images array); findings: the assembled findings table; arch_labels: arch -> the
    name shown; lambda_max: the fits' bound on lambda; min_samples: estimates from fewer
    samples are drawn hollow and marked.
    """

    datasets: Sequence[str]
    runs: Mapping[str, Mapping[str, Mapping[tuple, Any]]] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    findings: pd.DataFrame | None = None
    arch_labels: Mapping[str, str] = field(default_factory=dict)
    lambda_max: float = LAMBDA_MAX
    min_samples: int = 30

    def label(self, arch) -> str:
        """The display name of an architecture (its config label, else its key)."""
        return str(self.arch_labels.get(str(arch), arch))

    def pair_label(self, arch, arch_b="") -> str:
        return self.label(arch) + (f" vs {self.label(arch_b)}" if arch_b else "")

    def colors(self) -> dict[str, str]:
        """arch -> its colour, the same in every figure (the grid's order:
        :func:`retention.figures.style.arch_colors`)."""
        from retention.figures.style import arch_colors

        return arch_colors([*self.arch_labels, *self.archs()])

    def name_archs(self, text: str) -> str:
        """``text`` (a note of the statistics) with architecture keys replaced by labels."""
        for arch, label in self.arch_labels.items():
            text = re.sub(rf"\b{re.escape(arch)}\b", label, text)
        return text

    def run(self, kind: str, dataset: str) -> dict:
        """{(arch, seed): object} of one per-run input kind and dataset ({} if absent)."""
        return dict(self.runs.get(kind, {}).get(dataset, {}))

    def table(self, name: str, dataset: str) -> pd.DataFrame:
        """One per-dataset table (an empty frame if absent)."""
        t = self.tables.get(name, {}).get(dataset)
        return t if t is not None else pd.DataFrame()

    def archs(self, dataset: str | None = None) -> list[str]:
        """Architectures present (in the order of ``arch_labels``, then of appearance)."""
        seen: list[str] = []
        datasets = [dataset] if dataset else list(self.datasets)
        for kind in self.runs.values():
            for d in datasets:
                seen += [str(k[0]) for k in kind.get(d, {})]
        for tables in self.tables.values():
            for d in datasets:
                t = tables.get(d)
                if isinstance(t, pd.DataFrame) and "arch" in t.columns:
                    seen += [a for a in t["arch"].astype(str) if a and a not in ("all", "nan")]
        seen = list(dict.fromkeys(seen))
        order = [a for a in self.arch_labels if a in seen]
        return order + [a for a in seen if a not in order]

    def rows(self, finding_id: str, dataset: str | None = None, **equal) -> pd.DataFrame:
        """Rows of the findings table of one registry id (and dataset, and columns equal
        to the given values)."""
        f = self.findings
        if f is None or f.empty:
            return pd.DataFrame(columns=["id", "dataset", "arch", "arch_b", "case", "value"])
        keep = f["id"] == finding_id
        if dataset is not None:
            keep &= f["dataset"] == dataset
        for col, value in equal.items():
            keep &= f[col].astype(str) == str(value)
        return f[keep]

    def small(self, n) -> bool:
        """Whether a sample count is known and below ``min_samples``."""
        n = number(n)
        return math.isfinite(n) and n < self.min_samples


def number(v) -> float:
    """A float, NaN for anything missing or not a number."""
    try:
        return math.nan if v is None or (isinstance(v, str) and not v.strip()) or pd.isna(v) else float(v)
    except (TypeError, ValueError):
        return math.nan


def text_of(df: pd.DataFrame, column: str) -> pd.Series:
    """A column as text ("" where missing), whatever the reader made of it."""
    if column not in df.columns:
        return pd.Series([""] * len(df), index=df.index, dtype=object)
    return df[column].astype(object).where(df[column].notna(), "").astype(str)


def by_run(kind: str, paths: Sequence, runs: Sequence) -> dict:
    """dataset -> {(arch, seed): object} from the per-run input list ``paths``."""
    paths = list(paths)
    if len(paths) != len(runs):
        raise DataError(f"{len(paths)} {kind} files for {len(runs)} runs")
    out: dict = {}
    for path, (dataset, arch, seed) in zip(paths, runs):
        out.setdefault(str(dataset), {})[(str(arch), int(seed))] = READERS.get(kind, read_csv)(path)
    return out


def by_dataset(name: str, paths: Sequence, datasets: Sequence) -> dict:
    """dataset -> table (or images) from the per-dataset input list ``paths``."""
    paths = list(paths)
    if len(paths) != len(datasets):
        raise DataError(f"{len(paths)} {name} files for {len(datasets)} datasets")
    return {str(d): READERS.get(name, read_csv)(p) for p, d in zip(paths, datasets)}


def read_inputs(
    files: Mapping[str, Sequence],
    runs: Sequence,
    datasets: Sequence[str],
    run_kinds: Sequence[str],
    datasets_of: Mapping[str, Sequence[str]] | None = None,
    study: Mapping | None = None,
    lambda_max: float = LAMBDA_MAX,
    min_samples: int = 30,
    runs_of: Mapping[str, Sequence] | None = None,
) -> FigureInputs:
    """FigureInputs from named lists of paths (as a figure rule passes them).

    files: kind -> paths; the kinds in ``run_kinds`` hold one path per run of ``runs``
    ([dataset, arch, seed]; ``runs_of[kind]`` where a kind has fewer: the metrics of trained
    runs only), every other kind one path per dataset of ``datasets_of[kind]`` (default
    ``datasets``; retention.figures.specs.figure_job gives all three). study: the
    :class:`retention.findings.Study` fields; with summary tables among the inputs, the
    findings table is assembled from them.
    """
    study = findings_mod.Study(**(study or {}))
    runs_of = runs_of or {}
    run_data = {k: by_run(k, files[k], runs_of.get(k, runs)) for k in run_kinds if k in files}
    datasets_of = datasets_of or {}
    tables = {
        name: by_dataset(name, paths, datasets_of.get(name, datasets))
        for name, paths in files.items()
        if name not in run_kinds
    }
    summaries = [t for name in SUMMARY_TABLES for t in tables.get(name, {}).values()]
    table = findings_mod.assemble_findings(summaries, study) if summaries else None
    return FigureInputs(
        datasets=[str(d) for d in datasets],
        runs=run_data,
        tables=tables,
        findings=table,
        arch_labels=dict(study.labels),
        lambda_max=float(lambda_max),
        min_samples=int(min_samples),
    )


def one_dataset(inputs: FigureInputs, figure: str) -> str:
    """The dataset of a figure drawn per dataset (retention.figures.specs: per_dataset)."""
    if len(inputs.datasets) != 1:
        raise DataError(f"figure {figure} is drawn per dataset; it was given {list(inputs.datasets)}")
    return str(inputs.datasets[0])

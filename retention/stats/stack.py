"""The runs of one dataset, aligned by sample: the input of every estimator.

:func:`stack_runs` takes one fits table per run (docs/contracts.md "fits table"), picks
one trace definition and one rank score, and aligns the runs by ``sample_id``. Seeds are
the unit of replication: run (arch, seed) and run (arch_b, seed) belong to the same seed
unit, and the estimators resample or model those units, never samples pooled across runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retention.errors import DataError
from retention.stats.settings import RANK_SCORES

ELIGIBLE = ("fitted", "unforgettable")
EXCLUDED = ("never_learned", "too_short")
STATUSES = ELIGIBLE + EXCLUDED
# fmt: off
#: fits-table columns the statistics read
REQUIRED_COLUMNS = (
    "trace", "sample_id", "label", "status", "lambda", "b", "r2", "forget_events",
    "mean_retention", "t_learn", "loss_t0", "el2n_t0", "confidence", "variability",
    "aic_exp", "aic_power", "soft_lambda", "soft_mean_retention", "soft_r2",
)
# fmt: on
NUMERIC = REQUIRED_COLUMNS[4:]


def rank_score(values: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A rank score of "most forgotten" from fits columns (higher = more forgotten).

    lambda: the fitted decay rate; forgetting_amount: 1 - b (how far retention falls);
    area: 1 - mean retention since learned; soft_lambda: lambda of the same definition on
    p_true; mean_p_true_since_learned: 1 - the mean p_true since learned.
    """
    if name == "lambda":
        return values["lambda"]
    if name == "forgetting_amount":
        return 1.0 - values["b"]
    if name == "area":
        return 1.0 - values["mean_retention"]
    if name == "soft_lambda":
        return values["soft_lambda"]
    if name == "mean_p_true_since_learned":
        return 1.0 - values["soft_mean_retention"]
    raise DataError(f"unknown rank score {name!r}; expected one of {', '.join(RANK_SCORES)}")


@dataclass
class RunStack:
    """One trace definition and rank score of every run of a dataset, aligned by sample.

    ``values[col]`` is (runs, samples) float for each numeric fits column; ``status``
    (runs, samples) str ('missing' where a run lacks the sample); ``eligible`` marks
    fitted / unforgettable samples with a finite score; ``score`` is the rank score where
    eligible, else NaN. ``memo`` caches intermediate results shared by estimators.
    """

    trace: str
    score_name: str
    runs: tuple[tuple[str, int], ...]
    sample_id: np.ndarray
    label: np.ndarray
    status: np.ndarray
    values: dict
    eligible: np.ndarray
    score: np.ndarray
    memo: dict = field(default_factory=dict, repr=False)

    @property
    def archs(self) -> list[str]:
        """Architectures in order of first appearance."""
        return list(dict.fromkeys(a for a, _ in self.runs))

    @property
    def seeds(self) -> list[int]:
        """Seeds (units of replication) in increasing order."""
        return sorted({s for _, s in self.runs})

    def run_index(self, arch: str) -> list[int]:
        """Indices of the runs of ``arch``, in seed order."""
        return sorted((i for i, (a, _) in enumerate(self.runs) if a == arch), key=lambda i: self.runs[i][1])

    def index(self, arch: str, seed: int) -> int | None:
        """Index of run (arch, seed), or None."""
        try:
            return self.runs.index((arch, seed))
        except ValueError:
            return None

    def why_undefined(self, min_samples: int) -> str:
        """The study-wide reason an estimate may be undefined ("" when the runs have enough
        eligible samples): no sample learned in any run, or too few."""
        counts = self.eligible.sum(axis=1)
        if not counts.any():
            excluded = {s: int((self.status == s).sum()) for s in EXCLUDED}
            how = ", ".join(f"{n} {s}" for s, n in excluded.items() if n)
            return f"no sample was ever learned in any run ({how or 'no samples'} over {len(self.runs)} runs)"
        if counts.max() < min_samples:
            return (
                f"too few samples were learned: at most {int(counts.max())} eligible per run, "
                f"fewer than stats.min_samples ({min_samples})"
            )
        return ""

    def cached(self, key: tuple, compute: Callable[[], object]):
        """``compute()`` once per key for this stack (estimators share intermediates)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


def check_runs(fits: Sequence[pd.DataFrame], runs: Sequence) -> list[tuple[str, int]]:
    """The (arch, seed) keys as a list; DataError when they do not fit the tables."""
    runs = [(str(a), int(s)) for a, s in runs]
    if len(fits) != len(runs):
        raise DataError(f"{len(fits)} fits tables but {len(runs)} run keys; give one (arch, seed) per table")
    if not runs:
        raise DataError("statistics need at least one run")
    dup = [r for r in runs if runs.count(r) > 1]
    if dup:
        raise DataError(f"run {dup[0][0]}/seed{dup[0][1]} is given twice")
    return runs


def trace_labels(fits: Sequence[pd.DataFrame]) -> list[str]:
    """Trace definitions present in the fits tables, in order of first appearance."""
    labels: list[str] = []
    for df in fits:
        if "trace" not in df.columns:
            raise DataError("fits table lacks column 'trace'; see docs/contracts.md 'fits table'")
        for t in pd.unique(df["trace"].astype(str)):
            if t not in labels:
                labels.append(t)
    return labels


def _rows_of(df: pd.DataFrame, name: str, trace: str) -> dict[str, np.ndarray]:
    """The columns of one run's rows of ``trace`` as arrays, checked."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"fits table of run {name} lacks column(s) {missing}; see docs/contracts.md 'fits table'"
        )
    traces = df["trace"].to_numpy().astype(str)
    keep = traces == trace
    if not keep.any():
        raise DataError(
            f"fits table of run {name} has no rows for trace {trace!r}; it has {sorted(set(traces))}"
        )
    sid = df["sample_id"].to_numpy(np.int64)[keep]
    order = np.argsort(sid, kind="stable")
    sid = sid[order]
    if np.any(sid[1:] == sid[:-1]):
        dup = sid[1:][sid[1:] == sid[:-1]][0]
        raise DataError(f"fits table of run {name}, trace {trace!r}: sample_id {dup} appears twice")
    status = df["status"].to_numpy().astype(str)[keep][order]
    bad = sorted(set(np.unique(status)) - set(STATUSES))
    if bad:
        raise DataError(f"fits table of run {name}: unknown status {bad}; expected {list(STATUSES)}")
    cols = {c: df[c].to_numpy(float)[keep][order] for c in ("label", *NUMERIC)}
    broken = np.isin(status, ELIGIBLE) & ~np.isfinite(cols["lambda"])
    if broken.any():
        raise DataError(
            f"fits table of run {name}: sample {sid[broken][0]} is fitted/unforgettable but lambda is NaN"
        )
    return {"sample_id": sid, "status": status, **cols}


def _aligned(run: dict, ids: np.ndarray) -> dict[str, np.ndarray]:
    """A run's columns at the positions of ``ids`` (NaN / 'missing' where it lacks one)."""
    if run["sample_id"].size == ids.size and np.array_equal(run["sample_id"], ids):
        return run
    pos = np.searchsorted(run["sample_id"], ids)
    pos = np.minimum(pos, max(run["sample_id"].size - 1, 0))
    has = run["sample_id"][pos] == ids if run["sample_id"].size else np.zeros(ids.size, bool)
    out = {"status": np.where(has, run["status"][pos], "missing")}
    for c, v in run.items():
        if c not in ("sample_id", "status"):
            out[c] = np.where(has, v[pos], np.nan)
    return out


def stack_runs(fits: Sequence[pd.DataFrame], runs: Sequence, trace: str, score: str = "lambda") -> RunStack:
    """Align the rows of ``trace`` in every run's fits table by ``sample_id``."""
    runs = check_runs(fits, runs)
    if score not in RANK_SCORES:
        raise DataError(f"unknown rank score {score!r}; expected one of {', '.join(RANK_SCORES)}")
    subs = [_rows_of(df, f"{a}/seed{s}", trace) for (a, s), df in zip(runs, fits)]
    ids = np.unique(np.concatenate([s["sample_id"] for s in subs]))
    aligned = [_aligned(s, ids) for s in subs]
    labels = np.vstack([a["label"] for a in aligned])
    first = np.nanmax(np.where(np.isfinite(labels), labels, -np.inf), axis=0)
    clash = np.isfinite(labels) & (labels != first[None])
    if clash.any():
        r, c = np.argwhere(clash)[0]
        raise DataError(
            f"sample {ids[c]} has label {int(labels[r, c])} in run {runs[r][0]}/seed{runs[r][1]} "
            f"but {int(first[c])} in another run; the runs must share one split"
        )
    status = np.vstack([a["status"] for a in aligned])
    values = {c: np.vstack([a[c] for a in aligned]) for c in NUMERIC}
    raw = rank_score(values, score)
    eligible = np.isin(status, ELIGIBLE) & np.isfinite(raw)
    return RunStack(
        trace=trace,
        score_name=score,
        runs=tuple(runs),
        sample_id=ids,
        label=first.astype(np.int64),
        status=status,
        values=values,
        eligible=eligible,
        score=np.where(eligible, raw, np.nan),
    )


def masked_mean(values: np.ndarray, mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean of ``values`` where ``mask`` (and finite) along ``axis``; NaN where none."""
    ok = mask & np.isfinite(values)
    count = ok.sum(axis)
    total = np.where(ok, values, 0.0).sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def status_counts_table(fits: Sequence[pd.DataFrame], runs: Sequence) -> pd.DataFrame:
    """Fit status counts per run and trace definition (the samples excluded from the
    rankings, never_learned and too_short, are counted: docs/method.md section 6)."""
    rows = []
    for df, (arch, seed) in zip(fits, runs):
        for trace, part in df.groupby("trace", sort=False):
            counts = part["status"].astype(str).value_counts()
            rows.append(
                {"trace": trace, "arch": arch, "seed": int(seed), "n_samples": len(part)}
                | {s: int(counts.get(s, 0)) for s in STATUSES}
            )
    return pd.DataFrame(rows, columns=["trace", "arch", "seed", "n_samples", *STATUSES])


@dataclass
class StatsInput:
    """What every estimator reads: the aligned runs (one trace definition and rank score)
    and, for the class-level findings, the class names and each run's class similarity
    (:class:`retention.stats.f4.RunClassInfo`; None where the traces were not given).
    ``values_only``: estimators may skip work that only intervals need (null runs)."""

    stack: RunStack
    class_names: list[str]
    class_infos: list | None = None
    values_only: bool = False  # null runs: the estimates' values are all that is used


def frame(rows: list[dict], columns: Sequence[str], table: str) -> pd.DataFrame:
    """A table with exactly ``columns``; a row with any other key is an error (nothing is
    dropped silently)."""
    extra = sorted({k for row in rows for k in row} - set(columns))
    if extra:
        raise ValueError(f"table {table}: row key(s) {extra} are not among its columns {list(columns)}")
    return pd.DataFrame(rows, columns=list(columns))

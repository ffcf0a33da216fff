"""What a finding is (:class:`Finding`), what its estimator returns (:class:`Estimate`),
and the paper's claim it is judged against (:class:`Claim`).

The registry (:mod:`retention.stats.registry`) declares every finding once with these
types; tables, ``findings.md``, paper values, verdicts and figures are derived from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: claim kinds: what "holds" means for a finding (docs/method.md, section Verdicts)
CLAIMS = {
    "greater": "the effect is positive (one-sided test of H0: effect <= 0)",
    "differs": (
        "the effect is not zero (two-sided test; its sign must match the paper's where the paper gives one)"
    ),
    "equivalent": "the effect lies within +- the bound (TOST of H0: |effect| >= bound)",
    "not_greater": "the effect is below the margin (one-sided test of H0: effect >= margin)",
}
#: the direction in which a value supports each kind of claim, as the null p tests it:
#: "greater" (above the null), "two-sided", or "toward_zero" (closer to 0 than the null)
NULL_DIRECTIONS = {
    "greater": "greater",
    "differs": "two-sided",
    "equivalent": "toward_zero",
    "not_greater": "less",
}


@dataclass(frozen=True)
class Claim:
    """The paper's claim a primary finding tests: ``kind`` (a key of ``CLAIMS``) and the
    claim in words; equivalence and margin claims carry their bound in each estimate
    (column ``bound``)."""

    kind: str
    text: str

    def __post_init__(self):
        if self.kind not in CLAIMS:
            raise ValueError(f"unknown claim kind {self.kind!r}; expected one of {list(CLAIMS)}")

    @property
    def null_direction(self) -> str:
        """The direction of the one-sided null p (``NULL_DIRECTIONS``)."""
        return NULL_DIRECTIONS[self.kind]


@dataclass
class Estimate:
    """One row of a finding: the value for one architecture (or pair, or case) of one
    dataset, its interval and test. Unset numbers are NaN; ``note`` says why a value is
    missing. ``extra`` holds the finding's own columns (declared in ``Finding.columns``)."""

    arch: str = ""
    arch_b: str = ""
    case: str = ""
    value: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    interval: str = ""
    p_value: float = math.nan
    test: str = ""
    n_samples: int | None = None
    n_runs: int | None = None
    pairs_used: int | None = None
    pairs_total: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        """What tells this row apart from the other rows of its finding."""
        return (self.arch, self.arch_b, self.case)


@dataclass(frozen=True)
class Finding:
    """One finding, declared once.

    id: stable key (tables, paper values, figures); group: the paper's finding it belongs to
    (F1..F6) or a group beyond the paper; label: a template for people ({arch}, {arch_b},
    {case} and ``extra`` keys); estimate: (StatsInput, StatsConfig) -> list[Estimate], or
    None when another stage computes it (F6, the sampler); unit: what its interval and test
    resample or model; test: how it is tested; primary: in the Holm family of its dataset;
    null: recomputed on null runs; claim: the paper's claim (primary findings); columns: its
    own columns; figure: the figure that draws it; uses_score: depends on the rank score
    (recomputed under each in the robustness table); limits: the range the quantity can take
    (a correlation's [-1, 1]): its intervals are truncated to it; pooled: the paper reports
    it over its datasets together, so the findings add a row pooled over the study's paper
    datasets (its estimates carry the columns ``se`` and ``df``).
    """

    id: str
    group: str
    label: str
    estimate: Callable | None
    unit: str
    test: str
    primary: bool = False
    null: bool = False
    claim: Claim | None = None
    columns: tuple[str, ...] = ()
    figure: str | None = None
    uses_score: bool = True
    limits: tuple[float, float] = (-math.inf, math.inf)
    pooled: bool = False

    def __post_init__(self):
        if self.primary and self.claim is None:
            raise ValueError(f"finding {self.id}: a primary finding needs the claim it tests")
        if self.pooled and not {"se", "df"} <= set(self.columns):
            raise ValueError(f"finding {self.id}: a pooled finding needs the columns se and df")

    def label_for(self, row: Mapping, arch_labels: Mapping | None = None) -> str:
        """The label filled in from a row of the findings (arch and arch_b by their display
        names; case, score and the finding's own columns as they are)."""
        names = arch_labels or {}
        fields = {k: row.get(k, "") for k in ("case", "score", "trace", *self.columns)}
        for key in ("arch", "arch_b"):
            value = str(row.get(key, "") or "")
            fields[key] = names.get(value, value)
        if "{arch_b}" in self.label and not fields["arch_b"]:  # a grid of one architecture
            fields["arch_b"] = "a second architecture"
        try:
            return self.label.format(**fields)
        except (ValueError, TypeError):  # a number that is missing (NaN read back as text)
            return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", self.label).format(**fields)

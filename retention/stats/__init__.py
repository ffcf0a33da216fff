"""Statistics of every finding, per dataset (docs/method.md sections 6 and 7).

Seeds are the unit of replication for every interval and test that compares runs; the
findings are declared once in :mod:`.registry`; :func:`dataset_tables` computes every
table of ``results/stats/{dataset}/``. Modules: ``runs`` (the aligned runs, rank scores),
``ranksets`` (exactly-k top sets), ``pairs`` (pair statistics over seeds), ``inference``
(t, jackknife, TOST, meta-analysis, Holm, permutations), ``correlation`` (Spearman),
``f1`` .. ``f5`` and ``scores`` (the estimators), ``tables`` (summary, nulls, robustness).
"""

from .config import RANK_SCORES, StatsConfig
from .correlation import spearman
from .estimate import Claim, Estimate, Finding
from .f4 import RunClassInfo, class_info_from_traces, class_similarity
from .registry import FINDINGS, by_id
from .runs import ELIGIBLE, EXCLUDED, STATUSES, RunStack, StatsInput, stack_runs
from . import samples
from .scores import SCORES
from .tables import TABLE_NAMES, dataset_tables, summary_columns

__all__ = [
    "ELIGIBLE",
    "samples",
    "EXCLUDED",
    "FINDINGS",
    "RANK_SCORES",
    "SCORES",
    "STATUSES",
    "TABLE_NAMES",
    "Claim",
    "Estimate",
    "Finding",
    "RunClassInfo",
    "RunStack",
    "StatsConfig",
    "StatsInput",
    "by_id",
    "class_info_from_traces",
    "class_similarity",
    "dataset_tables",
    "spearman",
    "stack_runs",
    "summary_columns",
]

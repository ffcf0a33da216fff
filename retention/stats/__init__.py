"""Statistics of every finding, per dataset (docs/method.md sections 6 and 7).

Seeds are the unit of replication for every interval and test that compares runs; the
findings are declared once in :mod:`.registry`; :func:`dataset_tables` computes every
table of ``results/stats/{dataset}/``. Modules: ``runs`` (the aligned runs, rank scores),
``ranksets`` (exactly-k top sets), ``pairs`` (pair statistics over seeds), ``inference``
(t, jackknife, TOST, meta-analysis, Holm, permutations), ``correlation`` (Spearman),
``f1`` .. ``f5`` and ``scores`` (the estimators), ``tables`` (summary, nulls, robustness).
"""

from retention.stats import samples
from retention.stats.correlation import spearman
from retention.stats.estimate import Claim, Estimate, Finding
from retention.stats.f4 import RunClassInfo, class_info_from_traces, class_similarity
from retention.stats.registry import FINDINGS, by_id
from retention.stats.scores import SCORES
from retention.stats.settings import RANK_SCORES, StatsConfig
from retention.stats.stack import ELIGIBLE, EXCLUDED, STATUSES, RunStack, StatsInput, stack_runs
from retention.stats.tables import dataset_tables, summary_columns

__all__ = [
    "ELIGIBLE",
    "samples",
    "EXCLUDED",
    "FINDINGS",
    "RANK_SCORES",
    "SCORES",
    "STATUSES",
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

"""The analysis of one dataset's runs held in memory: fits, null runs and the statistics of
the primary findings, as the workflow's rules fit_traces, fit_nulls and dataset_stats
compute them, without files.

For studies made in code (the calibration benchmark ``benchmarks/calibrate.py``, tests)
and for notebooks. The result is a ``summary.csv``-shaped table that
:func:`retention.findings.assemble_findings` turns into verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from retention.fitting import fit, nulls
from retention.fitting import traces as tr
from retention.stats.estimate import Finding
from retention.stats.registry import FINDINGS
from retention.stats.settings import SOFT_SCORES, StatsConfig
from retention.stats.stack import StatsInput, stack_runs
from retention.stats.tables import null_inputs, summary_table


def analyse_runs(
    runs: Sequence[tuple[str, int, tr.Traces]],
    cfg: StatsConfig,
    dataset: str,
    primary: str = "since_learned",
    min_points: int = 3,
    only: Callable[[Finding], bool] = lambda f: f.primary,
    findings: Sequence[Finding] = FINDINGS,
) -> pd.DataFrame:
    """The summary rows of the findings ``only`` selects (default: the primary ones) for the
    runs (arch, seed, traces) of one dataset: each run fitted under the primary trace
    definition, ``cfg.null_draws`` null runs of each kind fitted by the same code, and
    every selected finding computed on the runs and on the null runs. F4's class
    similarity needs the traces' held-out records and is not computed here."""
    soft = cfg.rank_score in SOFT_SCORES
    keys = [(arch, int(seed)) for arch, seed, _ in runs]
    fits, null_fits = [], []
    for arch, seed, traces in runs:
        name = f"{dataset}/{arch}/seed{seed}"
        fits.append(fit.fit_table(traces, [], primary, min_points, cfg.lambda_max, soft_columns=True))
        if cfg.null_draws:
            null_fits.append(
                nulls.null_fit_table(
                    traces, primary, cfg.null_draws, cfg.seed, name, min_points, cfg.lambda_max, soft
                )
            )
    stack = stack_runs(fits, keys, primary, cfg.rank_score)
    names = [str(c) for c in runs[0][2].class_names]
    data = StatsInput(stack, names)
    null_data = null_inputs(null_fits, keys, primary, cfg.rank_score, names, None) if null_fits else None
    return summary_table(data, cfg, dataset, findings, null_data, only=only)

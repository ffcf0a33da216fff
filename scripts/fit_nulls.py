"""Fit the null runs of one run: traces.npz -> the null fits table (docs/method.md section 7a).

``stats.null_draws`` memoryless versions of the run per null kind (iid, shuffle: each
sample's record after its learning point redrawn from its own post-learning epochs),
fitted by the same code as the run, for the primary trace definition. Rule fit_nulls, or:
    python scripts/fit_nulls.py traces.npz nulls.parquet --trace since_learned --draws 20
"""

import argparse
import logging
import time

from retention import io
from retention.config import default_trace_label, schema_default
from retention.errors import ConfigError
from retention.fitting import nulls
from retention.fitting.fit import LAMBDA_MAX
from retention.fitting.traces import load_traces, parse_label
from retention.stats.settings import SOFT_SCORES

log = logging.getLogger("retention.fit_nulls")


def run(
    traces_path,
    out_path,
    primary,
    draws,
    seed,
    run_name,
    min_points=3,
    lambda_max=LAMBDA_MAX,
    rank_score="lambda",
):
    """Load, draw and fit the null runs, write the table atomically (arguments checked first)."""
    io.check_output(out_path, (".parquet", ".csv"), "null fits table")
    io.require_file(traces_path, "traces file")
    parse_label(primary)
    start = time.perf_counter()
    traces = load_traces(traces_path, run_name)
    if rank_score in SOFT_SCORES and not traces.has_p_true:
        raise ConfigError(
            f"stats.rank_score: {rank_score} needs p_true, which run {traces.run_name} does not "
            f"record ({traces_path})"
        )
    table = nulls.null_fit_table(
        traces,
        primary,
        int(draws),
        int(seed),
        traces.run_name,
        int(min_points),
        float(lambda_max),
        soft_columns=rank_score in SOFT_SCORES,
    )
    io.save_table(out_path, table)
    log.info(
        "%s: %d null draws x %d kinds, %d rows, %.1f s",
        traces.run_name,
        draws,
        len(nulls.KINDS),
        len(table),
        time.perf_counter() - start,
    )


def main():
    if "snakemake" in globals():
        sm = snakemake  # noqa: F821
        io.setup_logging(sm.log[0])
        w, r = sm.wildcards, sm.params.retention
        run(
            sm.input.traces,
            sm.output.nulls,
            sm.params.primary,
            sm.params.draws,
            sm.params.seed,
            f"{w.dataset}/{w.arch}/seed{w.seed}",
            r["min_points"],
            r["lambda_max"],
            sm.params.rank_score,
        )
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", help="a run's traces.npz")
    ap.add_argument("output", help="the null fits table to write (.parquet or .csv)")
    ap.add_argument(
        "--trace", default=default_trace_label(), help="the primary trace label (default: %(default)s)"
    )
    ap.add_argument(
        "--draws",
        type=int,
        default=schema_default("stats", "null_draws"),
        help="null runs per kind (default: %(default)s)",
    )
    ap.add_argument("--seed", type=int, default=schema_default("stats", "seed"))
    ap.add_argument("--run-name", help="the run's name: seeds its draws (default: from the path)")
    ap.add_argument("--min-points", type=int, default=schema_default("retention", "min_points"))
    ap.add_argument("--lambda-max", type=float, default=LAMBDA_MAX)
    ap.add_argument(
        "--rank-score",
        default=schema_default("stats", "rank_score"),
        help="the rank score the null runs are ranked by (default: %(default)s)",
    )
    ap.add_argument("--log")
    args = ap.parse_args()
    io.setup_logging(args.log)
    run(
        args.traces,
        args.output,
        args.trace,
        args.draws,
        args.seed,
        args.run_name,
        args.min_points,
        args.lambda_max,
        args.rank_score,
    )


if __name__ == "__main__":
    io.run_main(main)

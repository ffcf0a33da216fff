"""Fit the retention decay of every train sample of one run: traces.npz -> fits table.

One row per (trace definition, train sample) with status, lambda, b, R^2, SSE, AIC of the
exponential and power-law models and per-sample scores (docs/contracts.md, "fits table").
The configured definition is marked primary=True; the robustness definitions follow.

Run by the rule fit_traces (params.retention = config["retention"]), or standalone:
    python scripts/fit_traces.py results/runs/digits/resnet18/seed0/traces.npz fits.parquet
    python scripts/fit_traces.py traces.npz fits.csv --trace raw --soft --robustness since_learned conditional
The output suffix picks the format (.parquet or .csv).
"""

import argparse
import logging
import time

from retention import io
from retention.config import schema_default
from retention.errors import ConfigError
from retention.fitting.fit import LAMBDA_MAX, fit_table
from retention.fitting.traces import DEFINITIONS, load_traces, parse_label, trace_label

log = logging.getLogger("retention.fit_traces")


def run(
    traces_path,
    fits_path,
    primary="since_learned",
    robustness=(),
    min_points=3,
    lambda_max=LAMBDA_MAX,
    run_name=None,
):
    """Load, fit every definition (``primary``: the configured trace label), write the
    table atomically. The arguments are checked first, before any fitting."""
    io.check_output(fits_path, (".parquet", ".csv"), "fits table")
    for key, labels in (("retention.trace", [primary]), ("retention.robustness", robustness)):
        for label in labels:
            try:
                parse_label(label)
            except ValueError as err:
                raise ConfigError(f"{key}: {err}") from err
    if int(min_points) < 1:
        raise ConfigError(f"retention.min_points must be >= 1, got {min_points}")
    if not float(lambda_max) > 0:
        raise ConfigError(f"retention.lambda_max must be > 0, got {lambda_max}")
    io.require_file(traces_path, "traces file")
    start = time.perf_counter()
    traces = load_traces(traces_path, run_name)
    log.info("%s: %d train samples, epochs t = 0..%d", traces.run_name, traces.n_samples, traces.epochs)
    robustness, soft = list(robustness), True
    if not traces.has_p_true:  # an imported run without p_true: no soft definitions
        if parse_label(primary).soft:
            raise ConfigError(
                f"retention.soft: the primary trace {primary} needs p_true, which run "
                f"{traces.run_name} does not record ({traces_path})"
            )
        skipped = [label for label in robustness if parse_label(label).soft]
        robustness, soft = [label for label in robustness if label not in skipped], False
        log.warning(
            "%s records no p_true: no soft trace definitions (%s), soft columns NaN",
            traces.run_name,
            ", ".join(skipped) or "none configured",
        )
    table = fit_table(traces, robustness, primary, int(min_points), float(lambda_max), soft)
    io.save_table(fits_path, table)
    log.info(
        "wrote %d rows (%d definitions) to %s in %.2f s",
        len(table),
        table["trace"].nunique(),
        fits_path,
        time.perf_counter() - start,
    )


def main():
    if "snakemake" in globals():
        sm = snakemake  # noqa: F821
        io.setup_logging(sm.log[0])
        r = sm.params.retention
        w = sm.wildcards
        name = (
            f"{w.dataset}/{w.arch}/seed{w.seed}"
            if all(k in w.keys() for k in ("dataset", "arch", "seed"))
            else None
        )
        run(
            sm.input.traces,
            sm.output.fits,
            sm.params.primary,
            r.get("robustness", []),
            r["min_points"],
            r["lambda_max"],
            name,
        )
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("traces", help="a run's traces.npz (contract in docs/contracts.md)")
    parser.add_argument("output", help="the fits table to write: .parquet or .csv")
    parser.add_argument(
        "--trace",
        default=schema_default("retention", "trace"),
        choices=DEFINITIONS,
        help="primary trace definition (default: %(default)s)",
    )
    parser.add_argument("--soft", action="store_true", help="primary definition on p_true instead of correct")
    parser.add_argument(
        "--learned-after",
        type=int,
        default=schema_default("retention", "learned_after"),
        help="consecutive correct epochs that count as learned (default: %(default)s)",
    )
    parser.add_argument(
        "--robustness",
        nargs="*",
        default=[],
        metavar="LABEL",
        help="further definitions in the same table, e.g. since_warmup raw since_learned_soft since_learned",
    )
    parser.add_argument(
        "--min-points",
        type=int,
        default=schema_default("retention", "min_points"),
        help="traces with fewer points are too_short (default: %(default)s)",
    )
    parser.add_argument(
        "--lambda-max", type=float, default=LAMBDA_MAX, help="upper bound of lambda, per epoch"
    )
    parser.add_argument("--run-name", help="name of the run in messages (default: from the path)")
    parser.add_argument("--log", help="also log to this file")
    args = parser.parse_args()
    io.setup_logging(args.log)
    run(
        args.traces,
        args.output,
        trace_label(args.trace, args.soft, args.learned_after),
        args.robustness,
        args.min_points,
        args.lambda_max,
        args.run_name,
    )


if __name__ == "__main__":
    io.run_main(main)

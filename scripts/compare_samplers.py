"""Compare the spaced-repetition sampler with random sampling (finding F6).

Reads every budgeted run of one dataset (traces.npz and metrics.csv) and writes the
paired comparison per architecture (comparison.csv), the learning curves with the
distinct samples trained so far (curves.csv) and the findings rows (summary.csv)
(retention.stats.f6.sampler_tables). Run by the rule compare_samplers, or standalone:

    python scripts/compare_samplers.py --dataset digits --outdir results/sampler/digits \
        --runs cnn:random:0 cnn:spaced:0 ... --workdir . --margin 0.01
"""

import argparse
import logging
from pathlib import Path

from retention import io, paths
from retention.config import default_trace_label, schema_default
from retention.errors import DataError
from retention.stats.f6 import sampler_tables

log = logging.getLogger("retention.compare_samplers")


def parse_run(text: str) -> tuple[str, str, int]:
    """'arch:kind:seed' -> (arch, kind, seed); anything else is an error naming the value."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise DataError(f"--runs {text!r}: expected arch:kind:seed, e.g. resnet18:spaced:0")
    return parts[0], parts[1], int(parts[2])


def main():
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        io.setup_logging(sm.log[0])
        args = (sm.params.runs, sm.input.traces, sm.input.metrics, sm.wildcards.dataset, sm.params.trace)
        tables = sampler_tables(*args, sm.params.margin)
        outputs = {name: sm.output[name] for name in tables}
    else:
        ap = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("--dataset", required=True)
        ap.add_argument("--runs", nargs="+", required=True, help="arch:kind:seed of every budgeted run")
        ap.add_argument("--workdir", default=".", help="the study folder holding results/ (default: here)")
        ap.add_argument(
            "--outdir", required=True, help="writes comparison.csv, curves.csv and summary.csv here"
        )
        ap.add_argument(
            "--trace", default=default_trace_label(), help="the trace label of the scout's lambda"
        )
        ap.add_argument(
            "--margin",
            type=float,
            default=schema_default("sampler", "margin"),
            help="accuracy gain that counts as an improvement (default: %(default)s)",
        )
        ap.add_argument("--log")
        args = ap.parse_args()
        runs = [parse_run(text) for text in args.runs]
        where = [dict(dataset=args.dataset, arch=a, sampler=k, seed=s) for a, k, s in runs]
        traces = [Path(args.workdir) / paths.BUDGET_TRACES.format(**w) for w in where]
        metrics = [Path(args.workdir) / paths.BUDGET_METRICS.format(**w) for w in where]
        io.check_output_folder(args.outdir, "--outdir")
        for path in traces + metrics:
            io.require_file(path, "budgeted run's file")
        io.setup_logging(args.log)
        tables = sampler_tables(runs, traces, metrics, args.dataset, args.trace, args.margin)
        outputs = {name: Path(args.outdir) / f"{name}.csv" for name in tables}
    log.info("spaced minus random:\n%s", tables["comparison"].to_string(index=False))
    for name, path in outputs.items():
        io.save_table(path, tables[name])


if __name__ == "__main__":
    io.run_main(main)

"""Compare the spaced-repetition sampler with random sampling (finding F6).

Reads every budgeted run of one dataset (traces.npz and metrics.csv) and writes the
paired comparison per architecture (comparison.csv), the learning curves with the
distinct samples trained so far (curves.csv) and the findings rows (summary.csv).
Run by the rule compare_samplers, or standalone:

    python scripts/compare_samplers.py --dataset digits --outdir results/sampler/digits \
        --runs cnn:random:0 cnn:spaced:0 ... --results results --margin 0.01
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

import _retention_path  # noqa: F401  (the package beside scripts/)
from retention.config import default_trace_label, schema_default
from retention import io
from retention.errors import DataError
from retention.stats import f6

log = logging.getLogger("retention.compare_samplers")
CURVE_COLUMNS = ["epoch", "t", "phase", "train_acc", "heldout_acc", "n_trained", "n_distinct_trained"]


def read_run(traces_path, metrics_path) -> tuple[dict, pd.DataFrame]:
    """Final outcomes (with coverage: the share of the train set trained at least once)
    and the learning curve of one budgeted run."""
    keys = ("sample_id", "t", "correct", "heldout_correct")
    traces = io.read_npz(traces_path, "budgeted run's traces", keys=keys)
    outcomes = f6.final_outcomes(traces)
    n_train = len(traces["sample_id"])
    curve = io.read_table(metrics_path, "budgeted run's metrics", columns=("epoch", "heldout_acc")).reindex(
        columns=CURVE_COLUMNS
    )
    last = curve["n_distinct_trained"].iloc[-1] if len(curve) else np.nan
    return {**outcomes, "coverage": float(last) / n_train if pd.notna(last) else np.nan}, curve


def compare(
    runs, traces_paths, metrics_paths, dataset: str, trace: str, margin: float
) -> dict[str, pd.DataFrame]:
    """The comparison, curves and summary tables of one dataset's budgeted runs."""
    rows, curves = [], []
    for (arch, kind, seed), traces_path, metrics_path in zip(runs, traces_paths, metrics_paths):
        outcomes, curve = read_run(traces_path, metrics_path)
        rows.append({"arch": arch, "kind": kind, "seed": int(seed), **outcomes})
        curves.append(curve.assign(arch=arch, kind=kind, seed=int(seed)))
    outcomes = pd.DataFrame(rows)
    log.info("final outcomes per run:\n%s", outcomes.to_string(index=False))
    comparison = f6.compare_samplers(outcomes, margin)
    log.info("spaced minus random:\n%s", comparison.to_string(index=False))
    return {
        "comparison": comparison,
        "curves": pd.concat(curves, ignore_index=True),
        "summary": f6.sampler_summary(comparison, dataset, trace),
    }


def main():
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        io.setup_logging(sm.log[0])
        tables = compare(
            sm.params.runs,
            sm.input.traces,
            sm.input.metrics,
            sm.wildcards.dataset,
            sm.params.trace,
            sm.params.margin,
        )
        outputs = {name: sm.output[name] for name in tables}
    else:
        ap = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("--dataset", required=True)
        ap.add_argument("--runs", nargs="+", required=True, help="arch:kind:seed of every budgeted run")
        ap.add_argument(
            "--results", default="results", help="the results folder holding sampler/{dataset}/..."
        )
        ap.add_argument(
            "--outdir", required=True, help="writes comparison.csv, curves.csv and summary.csv here"
        )
        ap.add_argument("--trace", default=default_trace_label(), help="the trace label of the scout's lambda")
        ap.add_argument("--margin", type=float, default=schema_default("sampler", "margin"),
                        help="accuracy gain that counts as an improvement (default: %(default)s)")
        ap.add_argument("--log")
        args = ap.parse_args()
        io.setup_logging(args.log)
        runs = []
        for text in args.runs:
            parts = text.split(":")
            if len(parts) != 3 or not parts[2].isdigit():
                raise DataError(f"--runs {text!r}: expected arch:kind:seed, e.g. resnet18:spaced:0")
            runs.append((parts[0], parts[1], int(parts[2])))
        base = Path(args.results) / "sampler" / args.dataset
        paths = [base / a / k / f"seed{s}" for a, k, s in runs]
        io.check_output_folder(args.outdir, "--outdir")
        for path in paths:
            io.require_file(path / "traces.npz", "budgeted run's traces")
            io.require_file(path / "metrics.csv", "budgeted run's metrics")
        tables = compare(
            runs,
            [p / "traces.npz" for p in paths],
            [p / "metrics.csv" for p in paths],
            args.dataset,
            args.trace,
            args.margin,
        )
        outputs = {name: Path(args.outdir) / f"{name}.csv" for name in tables}
    for name, path in outputs.items():
        io.save_table(path, tables[name])


if __name__ == "__main__":
    io.run_main(main)

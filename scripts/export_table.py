"""Export a dataset's runs as one long table (Parquet) and their class centroid cosine.

Run by the rule export_table (target ``export``), or standalone in a study folder:

    python scripts/export_table.py results/runs/digits/*/seed*/traces.npz \
        --manifest results/data/digits/manifest.csv \
        --table results/export/digits/traces.parquet \
        --centroids results/export/digits/class_centroid_cosine.parquet

One row per run, split, sample and epoch (docs/contracts.md "Long table"); a dataset with
source: traces reads it back as it is. Without --runs the (arch, seed) of each traces file
is read from its path (.../{arch}/seed{seed}/traces.npz).
"""

import argparse
import logging

from retention import paths
from retention.errors import DataError
from retention.io import check_output, require_file, run_main, setup_logging

log = logging.getLogger("retention")


def main() -> None:
    from retention.dynamics.export import export_table

    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        export_table(
            list(sm.input.traces), sm.params.runs, sm.output.table, sm.output.centroids, sm.input.manifest
        )
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="+", help="traces.npz of every run")
    ap.add_argument("--runs", nargs="*", help="arch/seed<seed> of each traces file (default: from the paths)")
    ap.add_argument("--manifest", help="the dataset's manifest.csv (each sample's source)")
    ap.add_argument("--table", required=True, help="the long table to write (.parquet or .csv)")
    ap.add_argument("--centroids", required=True, help="the class centroid cosine table to write")
    ap.add_argument("--log", help="log file")
    args = ap.parse_args()
    check_output(args.table, (".parquet", ".csv"), "--table")
    check_output(args.centroids, (".parquet", ".csv"), "--centroids")
    for path in [*args.traces, *([args.manifest] if args.manifest else [])]:
        require_file(path)
    setup_logging(args.log)
    from retention.dynamics.sources import parse_run_key

    if args.runs:
        runs = [parse_run_key(r) for r in args.runs]
        if None in runs:
            raise DataError(
                f"--runs {args.runs[runs.index(None)]!r}: expected <arch>/seed<seed>, e.g. cnn/seed0"
            )
    else:
        found = [paths.run_of(p) for p in args.traces]
        if None in found:
            bad = args.traces[found.index(None)]
            raise DataError(f"cannot read arch and seed from {bad}; pass --runs <arch>/seed<seed> ...")
        runs = [(run["arch"], int(run["seed"])) for run in found]
    export_table(args.traces, runs, args.table, args.centroids, args.manifest)


if __name__ == "__main__":
    run_main(main)

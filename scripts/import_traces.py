"""Import runs recorded elsewhere (a long table or cartography folders) as traces.npz and manifest.csv.

Run by the rule import_traces_<dataset> (a dataset with source: traces), or standalone:

    python scripts/import_traces.py dynamics.parquet --out results/runs/mine \
        --manifest results/data/mine/manifest.csv
    python scripts/import_traces.py my_cartography_runs/ --out results/runs/mine \
        --manifest results/data/mine/manifest.csv --t0-epoch 2

The input is a long table (.parquet or .csv, one row per run, sample and epoch) or a folder
of dataset-cartography runs (dynamics_epoch_<k>.jsonl files, one folder per run named
<arch>/seed<seed>); docs/contracts.md describes both. Each run is written to
<out>/<arch>/seed<seed>/traces.npz. Everything is checked before anything is written; a
bad input gets one line naming the file, the row or line, and the column.
"""

import argparse
import logging
from pathlib import Path

from retention.dynamics import sources as imports
from retention.errors import DataError
from retention.io import check_output, check_output_folder, require_file, run_main, setup_logging

log = logging.getLogger("retention")


def run(settings: dict, outputs: dict, manifest, centroids=None) -> None:
    """Import (retention.dynamics.importing.import_dataset) and log what was written."""
    from retention.dynamics.importing import import_dataset

    imported = import_dataset(settings, outputs, manifest, centroids)
    log.info("wrote %d runs (%s) and %s", len(imported.runs), ", ".join(outputs), manifest)


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        centroids = sm.input.get("centroids")
        run(
            dict(sm.params.settings),
            dict(zip(sm.params.runs, sm.output.traces)),
            sm.output.manifest,
            centroids[0] if centroids else None,
        )
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="a long table (.parquet, .csv) or a folder of cartography runs")
    ap.add_argument("--out", required=True, help="writes <out>/<arch>/seed<seed>/traces.npz")
    ap.add_argument("--manifest", required=True, help="the manifest.csv to write (one row per sample)")
    ap.add_argument("--format", choices=["auto", *imports.FORMATS], default="auto")
    ap.add_argument(
        "--run", help="<arch>/seed<seed> of a table without run columns, or of a folder that is one run"
    )
    ap.add_argument(
        "--t0-epoch", type=int, help="the recorded epoch that is t = 0 (default: column t, else the first)"
    )
    ap.add_argument("--class-names", nargs="+", help="names of the classes 0..C-1")
    ap.add_argument(
        "--centroids",
        help="a table of each run's class centroid cosine (arch, seed, class_a, class_b, cosine)",
    )
    ap.add_argument("--log", help="log file")
    args = ap.parse_args()
    check_output(args.manifest, (".csv",), "--manifest")
    check_output_folder(args.out, "--out")
    if not Path(args.path).exists():
        raise DataError(
            f"runs to import {args.path} do not exist; give a long table or a folder of cartography runs"
        )
    if args.centroids:
        require_file(args.centroids, "--centroids")
    setup_logging(args.log)
    spec = {
        "path": args.path,
        "format": args.format,
        "run": args.run,
        "t0_epoch": args.t0_epoch,
        "class_names": args.class_names,
    }
    runs = imports.imported_runs(spec, "(command line)")
    outputs = {imports.run_key(a, s): str(Path(args.out) / a / f"seed{s}" / "traces.npz") for a, s in runs}
    run(imports.settings_of(spec, "(command line)"), outputs, args.manifest, args.centroids)


if __name__ == "__main__":
    run_main(main)

"""Statistics tables of one dataset (METHOD.md section 7) from its runs' fits and traces.

Run by Snakemake (rule ``dataset_stats``) or standalone:

    python scripts/compute_stats.py --dataset digits --outdir results/stats/digits \
        --fits results/fits/digits/*/seed*.parquet \
        --traces results/runs/digits/*/seed*/traces.npz

Without ``--runs`` the (arch, seed) of each fits table is read from its path
(``.../{arch}/seed{seed}.parquet``); ``--traces`` (same order as ``--fits``) supplies
the held-out confusion and class-centroid similarity of F4 and is optional.
Writes one csv per table of ``retention.stats.TABLE_NAMES`` (docs/contracts.md).
"""

import argparse
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

import _retention_path  # noqa: F401  (the package beside scripts/)
from retention import stats
from retention.errors import DataError
from retention.io import run_main, save_table, setup_logging

log = logging.getLogger("retention")
RUN_PATH = re.compile(r"(?P<arch>[A-Za-z0-9_\-]+)/seed(?P<seed>-?\d+)\.(parquet|csv)$")


def read_fits(path: str | Path) -> pd.DataFrame:
    """A fits table (parquet or csv)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"fits table {path} does not exist; run the fit stage first")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def read_class_info(path: str | Path, run: str) -> stats.RunClassInfo:
    """Held-out confusion and centroid similarity of one run's traces.npz."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"traces file {path} of run {run} does not exist")
    with np.load(path, allow_pickle=False) as arrays:
        return stats.class_info_from_traces(arrays, run=f"{run} ({path})")


def run_from_path(path: str | Path) -> tuple[str, int]:
    """(arch, seed) from a path ending in ``{arch}/seed{seed}.parquet``."""
    m = RUN_PATH.search(Path(path).as_posix())
    if not m:
        raise DataError(f"cannot read arch and seed from {path}; pass --runs arch:seed ...")
    return m["arch"], int(m["seed"])


def parse_run(text: str) -> tuple[str, int]:
    """'arch:seed' -> (arch, seed); anything else is an error naming the value."""
    arch, _, seed = text.rpartition(":")
    if not arch or not seed.isdigit():
        raise DataError(f"--runs {text!r}: expected arch:seed, e.g. resnet18:0")
    return arch, int(seed)


def compute(fits_paths, traces_paths, runs, stats_config, primary, dataset) -> dict:
    """Every table of one dataset (``retention.stats.dataset_tables``) from file paths."""
    cfg = stats.StatsConfig.from_mapping(stats_config)
    runs = [(str(a), int(s)) for a, s in runs]
    if len(runs) != len(fits_paths):
        raise DataError(f"{len(fits_paths)} fits tables but {len(runs)} run keys")
    fits = [read_fits(p) for p in fits_paths]
    class_infos = None
    if traces_paths:
        if len(traces_paths) != len(fits_paths):
            raise DataError(
                f"{len(traces_paths)} traces files for {len(fits_paths)} fits tables; "
                "give one per run"
            )
        class_infos = [read_class_info(p, f"{a}/seed{s}") for p, (a, s) in zip(traces_paths, runs)]
    log.info("dataset %s: %d runs %s, primary trace %s", dataset, len(runs), runs, primary)
    tables = stats.dataset_tables(
        fits, runs, cfg, dataset, primary=primary, class_infos=class_infos
    )
    for _, row in tables["summary"].iterrows():
        log.info(
            "%s: %s [%s, %s] p=%s %s",
            row["finding"],
            row["value"],
            row["ci_low"],
            row["ci_high"],
            row["p_value"],
            row["detail"],
        )
    return tables


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--fits", nargs="+", required=True, help="fits tables, one per run")
    ap.add_argument(
        "--traces", nargs="*", default=[], help="traces.npz of the same runs, same order"
    )
    ap.add_argument(
        "--runs", nargs="*", help="arch:seed of each fits table (default: from the paths)"
    )
    ap.add_argument("--dataset", required=True, help="dataset name written into summary.csv")
    ap.add_argument("--outdir", required=True, help="directory for the csv tables")
    ap.add_argument("--primary", help="primary trace label (default: rows flagged primary)")
    ap.add_argument("--top-q", type=float, default=0.10)
    ap.add_argument("--sensitivity-q", type=float, nargs="+", default=[0.05, 0.10, 0.20])
    ap.add_argument("--r2-min", type=float, default=0.6)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", help="log file")
    return ap.parse_args()


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        tables = compute(
            list(sm.input.fits),
            list(sm.input.traces),
            sm.params.runs,
            dict(sm.params.stats),
            sm.params.primary,
            sm.wildcards.dataset,
        )
        outputs = {name: sm.output[name] for name in stats.TABLE_NAMES}
    else:
        args = parse_args()
        setup_logging(args.log)
        runs = (
            [parse_run(r) for r in args.runs]
            if args.runs
            else [run_from_path(p) for p in args.fits]
        )
        cfg = {
            "top_q": args.top_q,
            "sensitivity_q": args.sensitivity_q,
            "r2_min": args.r2_min,
            "bootstrap": args.bootstrap,
            "permutations": args.permutations,
            "seed": args.seed,
        }
        tables = compute(args.fits, args.traces, runs, cfg, args.primary, args.dataset)
        outputs = {name: Path(args.outdir) / f"{name}.csv" for name in stats.TABLE_NAMES}
    for name, path in outputs.items():
        save_table(path, tables[name])
        log.info("wrote %s (%d rows)", path, len(tables[name]))


if __name__ == "__main__":
    run_main(main)

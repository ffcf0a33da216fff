"""Statistics tables of one dataset (docs/method.md section 7) from its runs' fits, null runs and traces.

Run by Snakemake (rule ``dataset_stats``) or standalone:

    python scripts/compute_stats.py --dataset digits --outdir results/stats/digits \
        --fits results/fits/digits/*/seed*.parquet \
        --traces results/runs/digits/*/seed*/traces.npz \
        --nulls results/nulls/digits/*/seed*.parquet --config config.yaml

Without ``--runs`` the (arch, seed) of each fits table is read from its path
(``.../{arch}/seed{seed}.parquet``). ``--traces`` (same order as ``--fits``) supplies the
held-out confusion and class-centroid similarity of F4; ``--nulls`` the null runs (rule
fit_nulls); both optional. ``--pretrain arch=metrics.csv`` with ``--pretrain-manifest``
(the source's) adds each arch's pretraining to the held-out accuracy rows. Settings: the
``stats``, ``retention`` and ``convergence`` sections of ``--config`` (default: the
schema's defaults). Writes one csv per table of ``retention.paths.STATS_TABLES``
(docs/contracts.md).
"""

import argparse
import dataclasses
import logging
from pathlib import Path

import pandas as pd

from retention import chance, io, paths, stats
from retention.config import default_trace_label
from retention.errors import DataError
from retention.io import run_main, save_table, setup_logging

log = logging.getLogger("retention")


# the columns every fits and null fits table has (docs/contracts.md)
FIT_COLUMNS = ("trace", "sample_id", "label", "status", "lambda")


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """A fits or null fits table (parquet or csv), checked (``retention.io.read_table``)."""
    return io.read_table(path, f"{what} table", columns=FIT_COLUMNS)


def read_class_info(path: str | Path, run: str, convergence: dict | None = None) -> stats.RunClassInfo:
    """Held-out confusion and centroid similarity of one run's traces.npz, and (with the
    config's ``convergence`` section) whether its held-out accuracy still rose at the end."""
    arrays = io.read_npz(path, f"traces file of run {run}")
    info = stats.class_info_from_traces(arrays, run=f"{run} ({path})")
    if convergence is None:
        return info
    acc = chance.run_accuracy(arrays, (convergence["epochs"], convergence["tolerance"]))
    return dataclasses.replace(info, heldout_rise=acc.rise, still_rising=acc.rising)


def read_pretraining(metrics: dict, manifest, convergence: dict) -> dict[str, chance.RunAccuracy]:
    """{arch: its pretraining's held-out accuracy} from each arch's pretraining metrics.csv
    and the source's manifest.csv (for the chance level)."""
    if not metrics:
        return {}
    source = io.read_table(manifest, "pretraining source's manifest", columns=("label", "split"))
    labels = source.loc[source["split"] == "heldout", "label"].to_numpy()
    n_classes = int(source["label"].max()) + 1
    out = {}
    for arch, path in metrics.items():
        table = io.read_table(path, "pretraining metrics", columns=("epoch", "heldout_acc"))
        acc = chance.pretrain_accuracy(
            table["heldout_acc"], labels, n_classes, (convergence["epochs"], convergence["tolerance"])
        )
        out[arch] = acc
        for line in (
            chance.chance_warning(acc, f"{arch} ({path})", "pretraining"),
            chance.rising_warning(acc, f"{arch} ({path})", "pretraining"),
        ):
            if line:
                log.warning(line)
    return out


def run_from_path(path: str | Path) -> tuple[str, int]:
    """(arch, seed) from a fits table's path (retention.paths.FITS: ``.../{arch}/seed{seed}.parquet``)."""
    run = paths.run_of(path)
    if run is None:
        raise DataError(f"cannot read arch and seed from {path}; pass --runs arch:seed ...")
    return run["arch"], int(run["seed"])


def parse_run(text: str) -> tuple[str, int]:
    """'arch:seed' -> (arch, seed); anything else is an error naming the value."""
    arch, _, seed = text.rpartition(":")
    if not arch or not seed.isdigit():
        raise DataError(f"--runs {text!r}: expected arch:seed, e.g. resnet18:0")
    return arch, int(seed)


def parse_pretrain(text: str) -> tuple[str, str]:
    """'arch=metrics.csv' -> (arch, path)."""
    arch, _, path = text.partition("=")
    if not arch or not path:
        raise DataError(f"--pretrain {text!r}: expected arch=metrics.csv")
    return arch, path


def compute(
    fits_paths,
    traces_paths,
    null_paths,
    runs,
    cfg: stats.StatsConfig,
    primary,
    dataset,
    manifest=None,
    convergence: dict | None = None,
    pretrain: dict | None = None,
    pretrain_manifest=None,
) -> dict:
    """Every table of one dataset (``retention.stats.dataset_tables``) from file paths;
    convergence: the config's section; pretrain: {arch: its pretraining's metrics.csv}
    with the source's manifest."""
    runs = [(str(a), int(s)) for a, s in runs]
    for what, given in (("traces", traces_paths), ("null fits", null_paths)):
        if given and len(given) != len(fits_paths):
            raise DataError(f"{len(given)} {what} files for {len(fits_paths)} fits tables; give one per run")
    fits = [read_table(p, "fits") for p in fits_paths]
    pretraining = read_pretraining(pretrain or {}, pretrain_manifest, convergence) if convergence else {}
    infos = (
        [
            dataclasses.replace(read_class_info(p, f"{a}/seed{s}", convergence), pretrain=pretraining.get(a))
            for p, (a, s) in zip(traces_paths, runs)
        ]
        if traces_paths
        else None
    )
    null_fits = [read_table(p, "null fits") for p in null_paths] if null_paths else None
    log.info(
        "dataset %s: %d runs %s, trace %s, rank score %s", dataset, len(runs), runs, primary, cfg.rank_score
    )
    listing = (
        io.read_table(
            manifest, "manifest", columns=("sample_id", "class_name", "source"), dtype={"class_name": str}
        )
        if manifest
        else None
    )
    tables = stats.dataset_tables(fits, runs, cfg, dataset, primary, infos, null_fits, manifest=listing)
    for row in tables["summary"].itertuples(index=False):
        log.info(
            "%s %s %s %s: %.4g [%.4g, %.4g] p=%.3g %s",
            row.id,
            row.arch,
            row.arch_b,
            row.case,
            row.value,
            row.ci_low,
            row.ci_high,
            row.p_value,
            row.note,
        )
    return tables


def standalone() -> tuple[dict, dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fits", nargs="+", required=True, help="fits tables, one per run")
    ap.add_argument("--traces", nargs="*", default=[], help="traces.npz of the same runs, same order")
    ap.add_argument("--nulls", nargs="*", default=[], help="null fits tables of the same runs, same order")
    ap.add_argument("--manifest", help="the dataset's manifest.csv (samples.csv then names the files)")
    ap.add_argument("--runs", nargs="*", help="arch:seed of each fits table (default: from the paths)")
    ap.add_argument("--dataset", required=True, help="dataset name written into summary.csv")
    ap.add_argument("--outdir", required=True, help="directory for the csv tables")
    ap.add_argument(
        "--primary", default=default_trace_label(), help="primary trace label (default: %(default)s)"
    )
    ap.add_argument(
        "--pretrain",
        nargs="*",
        default=[],
        metavar="ARCH=METRICS",
        help="each arch's pretraining metrics.csv (weights: pretrain)",
    )
    ap.add_argument("--pretrain-manifest", help="the pretraining source's manifest.csv (with --pretrain)")
    ap.add_argument("--config", help="a config file: its stats, retention and convergence sections")
    ap.add_argument("--log", help="log file")
    args = ap.parse_args()
    setup_logging(args.log)
    io.check_output_folder(args.outdir, "--outdir")
    pretrain = dict(parse_pretrain(text) for text in args.pretrain)
    if pretrain and not args.pretrain_manifest:
        raise DataError("--pretrain needs --pretrain-manifest (the source's manifest.csv)")
    inputs = [*args.fits, *args.traces, *args.nulls, *pretrain.values()]
    for path in inputs + [p for p in (args.manifest, args.pretrain_manifest) if p]:
        io.require_file(path)
    from retention.config import fill_defaults, load_config, load_schema

    config = load_config(args.config) if args.config else fill_defaults({}, load_schema())
    section, lambda_max = config["stats"], config["retention"]["lambda_max"]
    runs = [parse_run(r) for r in args.runs] if args.runs else [run_from_path(p) for p in args.fits]
    cfg = stats.StatsConfig.from_mapping(section, lambda_max)
    tables = compute(
        args.fits,
        args.traces,
        args.nulls,
        runs,
        cfg,
        args.primary,
        args.dataset,
        args.manifest,
        config["convergence"],
        pretrain,
        args.pretrain_manifest,
    )
    return tables, {name: Path(args.outdir) / f"{name}.csv" for name in paths.STATS_TABLES}


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        cfg = stats.StatsConfig.from_mapping(dict(sm.params.stats), sm.params.lambda_max)
        tables = compute(
            list(sm.input.fits),
            list(sm.input.traces),
            list(sm.input.nulls),
            sm.params.runs,
            cfg,
            sm.params.primary,
            sm.wildcards.dataset,
            sm.input.manifest,
            dict(sm.params.convergence),
            dict(zip(sm.params.pretrain_archs, sm.input.pretrain)),
            sm.input.pretrain_manifest[0] if sm.input.pretrain_manifest else None,
        )
        outputs = {name: sm.output[name] for name in paths.STATS_TABLES}
    else:
        tables, outputs = standalone()
    for name, path in outputs.items():
        save_table(path, tables[name])
        log.info("wrote %s (%d rows)", path, len(tables[name]))


if __name__ == "__main__":
    run_main(main)

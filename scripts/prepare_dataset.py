"""Prepare a dataset: list, split and decode it into manifest.csv + images.npy.

Run by the rule prepare_dataset, or standalone:
    python scripts/prepare_dataset.py --source digits --storage-size 32 --out results/data/digits
"""

import argparse
import logging
from pathlib import Path

from retention import io
from retention.acquire import data, listing
from retention.config import schema_default

log = logging.getLogger("retention.prepare")


def prepare(spec: dict, options: dict, manifest: Path, images: Path, workers: int):
    """``options``: the config's data section (split_seed, skip_corrupt, min_per_class, ...)."""
    prepared = data.prepare_dataset(
        source=spec["source"],
        path=spec.get("path"),
        storage_size=spec["storage_size"],
        heldout_fraction=spec["heldout_fraction"],
        split_seed=options["split_seed"],
        imbalance_ratio=spec["imbalance_ratio"],
        skip_corrupt=options["skip_corrupt"],
        workers=workers,
        min_per_class=options["min_per_class"],
        skip_empty_classes=options["skip_empty_classes"],
    )
    for line in prepared.skipped:
        log.warning("skipped unreadable image %s", line)
    counts = prepared.manifest.groupby(["split", "class_name"]).size()
    log.info(
        "%d images (%d skipped); per split and class:\n%s",
        len(prepared.manifest),
        len(prepared.skipped),
        counts.to_string(),
    )
    with io.all_or_none(images, manifest):
        io.save_npy(images, prepared.images)
        io.save_table(manifest, prepared.manifest)


def main():
    if "snakemake" in globals():
        sm = snakemake  # noqa: F821
        io.setup_logging(sm.log[0])
        prepare(sm.params.spec, sm.params.data, Path(sm.output.manifest), Path(sm.output.images), sm.threads)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", required=True, choices=listing.SOURCES)
    parser.add_argument("--path", help="the extracted dataset tree (not for digits)")
    parser.add_argument("--storage-size", type=int, required=True, help="square storage resolution in pixels")
    parser.add_argument(
        "--heldout-fraction", type=float, default=schema_default("datasets", "*", "heldout_fraction")
    )
    parser.add_argument(
        "--imbalance-ratio",
        type=float,
        default=schema_default("datasets", "*", "imbalance_ratio"),
        help="digits_lt only (default: %(default)s)",
    )
    parser.add_argument("--split-seed", type=int, default=schema_default("data", "split_seed"))
    parser.add_argument("--skip-corrupt", action="store_true")
    parser.add_argument(
        "--min-per-class",
        type=int,
        default=schema_default("data", "min_per_class"),
        help="train images each class needs (default: %(default)s)",
    )
    parser.add_argument("--skip-empty-classes", action="store_true", help="leave empty class folders out")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/manifest.csv and OUT/images.npy")
    args = parser.parse_args()
    io.setup_logging()
    if args.path is not None and not Path(args.path).exists():
        from retention.errors import DataError

        raise DataError(f"--path {args.path} does not exist")
    io.check_output_folder(args.out)
    spec = dict(
        source=args.source,
        path=args.path,
        storage_size=args.storage_size,
        heldout_fraction=args.heldout_fraction,
        imbalance_ratio=args.imbalance_ratio,
    )
    options = dict(
        split_seed=args.split_seed,
        skip_corrupt=args.skip_corrupt,
        min_per_class=args.min_per_class,
        skip_empty_classes=args.skip_empty_classes,
    )
    prepare(spec, options, args.out / "manifest.csv", args.out / "images.npy", args.workers)


if __name__ == "__main__":
    io.run_main(main)

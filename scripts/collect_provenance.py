"""The provenance table (results/provenance.csv) from every training run's run.json.

Run by Snakemake (rule ``provenance``) or standalone:

    python scripts/collect_provenance.py results/runs/*/*/seed*/run.json \
        results/sampler/*/*/*/seed*/run.json results/pretrain/*/*/run.json \
        --out results/provenance.csv

One row per run.json, in the order given: stage, dataset, arch, seed, sampler kind, the
versions, device, host, git commit, start, end and duration (docs/contracts.md).
"""

import argparse
import logging

from retention import provenance
from retention.io import check_output, require_file, run_main, save_table, setup_logging

log = logging.getLogger("retention")


def collect(record_paths, out) -> None:
    """Read every run.json of ``record_paths`` and write their table to ``out``."""
    table = provenance.provenance_table([provenance.read_record(p) for p in record_paths])
    save_table(out, table)
    commits = sorted(set(table["git_commit"].dropna()))
    devices = sorted(set(table["device"].dropna().astype(str)))
    log.info(
        "wrote %s (%d runs; git commits %s; devices %s)",
        out,
        len(table),
        ", ".join(c[:10] for c in commits) or "unknown",
        "; ".join(devices) or "unknown",
    )
    if len(commits) > 1:
        log.warning("the runs come from %d git commits: compare their code before pooling them", len(commits))
    dirty = table[table["git_dirty"].astype(str).str.lower() == "true"]
    if len(dirty):
        diffs = sorted(set(dirty["git_diff_sha256"].dropna().astype(str)))
        log.warning(
            "%d of %d runs were trained from a checkout with uncommitted changes (diff sha256 %s): "
            "their code is not the commit's",
            len(dirty),
            len(table),
            ", ".join(d[:12] for d in diffs) or "unknown",
        )
    for (stage, dataset), data in table.dropna(subset=["data_sha256"]).groupby(["stage", "dataset"]):
        if data["data_sha256"].nunique() > 1:
            log.warning(
                "the %s runs of %s trained on %d different versions of the prepared data (data_sha256)",
                stage,
                dataset,
                data["data_sha256"].nunique(),
            )


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        collect(list(sm.input.records), sm.output.table)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+", help="run.json files")
    ap.add_argument("--out", required=True, help="the csv to write (results/provenance.csv)")
    ap.add_argument("--log", help="log file")
    args = ap.parse_args()
    setup_logging(args.log)
    check_output(args.out, (".csv",), "--out")
    for path in args.records:
        require_file(path, "run record")
    collect(args.records, args.out)


if __name__ == "__main__":
    run_main(main)

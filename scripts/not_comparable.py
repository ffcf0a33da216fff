"""Summary rows of findings that cannot be computed on a dataset: no value, the reason as the note.

Run by the rule sampler_not_comparable_<dataset> (the F6 rows of a dataset with source:
traces, whose runs were recorded elsewhere: there are no images to train the sampler's
budgeted runs on), or standalone:

    python scripts/not_comparable.py --dataset mine --group F6 \
        --archs cnn vit --reason "no images" --out results/sampler/mine/summary.csv

The rows have the columns of every summary.csv, so that the findings table shows these
findings as not comparable, with the reason, rather than leaving them out.
"""

import argparse
import logging

from retention.config import default_trace_label
from retention.errors import ArgumentError
from retention.io import check_output, run_main, save_table, setup_logging
from retention.stats.registry import FINDINGS

log = logging.getLogger("retention")


def write(group, dataset, trace, archs, reason, out) -> None:
    from retention.dynamics.importing import not_comparable_summary

    table = not_comparable_summary(group, dataset, trace, archs, reason)
    save_table(out, table)
    log.info("wrote %s: %d rows not comparable (%s)", out, len(table), reason)


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        p = sm.params
        write(p.group, p.dataset, p.trace, p.archs, p.reason, sm.output.summary)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--group", default="F6", help="the findings of this group of retention/stats/registry.py")
    ap.add_argument("--archs", nargs="+", required=True, help="one row per finding and architecture")
    ap.add_argument("--reason", required=True, help="why they cannot be computed (the rows' note)")
    ap.add_argument("--trace", default=default_trace_label(), help="the primary trace label (column trace)")
    ap.add_argument("--out", required=True, help="the summary csv to write")
    ap.add_argument("--log", help="log file")
    args = ap.parse_args()
    check_output(args.out, (".csv",), "--out")
    groups = {f.group for f in FINDINGS}
    if args.group not in groups:
        raise ArgumentError(
            f"--group {args.group!r} is not a finding group; one of {', '.join(sorted(groups))}"
        )
    setup_logging(args.log)
    write(args.group, args.dataset, args.trace, args.archs, args.reason, args.out)


if __name__ == "__main__":
    run_main(main)

"""The findings table (results/findings.csv and .md) from every summary.csv.

Run by Snakemake (rule ``findings``) or standalone:

    python scripts/make_findings.py results/stats/*/summary.csv \
        --csv results/findings.csv --md results/findings.md

Any table with the summary columns can be added (e.g. the sampler's F6 rows); the
paper's values come from retention/paper_values.csv (or ``--paper-values``), p-values
are Holm-corrected across the whole table.
"""

import argparse
import logging
from pathlib import Path

import pandas as pd

import _retention_path  # noqa: F401  (the package beside scripts/)
from retention import findings
from retention.errors import DataError
from retention.io import run_main, save_table, save_text, setup_logging

log = logging.getLogger("retention")


def make(summary_paths, csv_path, md_path, paper_values=None) -> pd.DataFrame:
    """Read the summaries, assemble, write csv and markdown; returns the table."""
    tables = []
    for p in summary_paths:
        if not Path(p).exists():
            raise DataError(f"summary table {p} does not exist; run the statistics stage first")
        tables.append(pd.read_csv(p, keep_default_na=True))
    table = findings.assemble_findings(tables, findings.load_paper_values(paper_values))
    save_table(csv_path, table)
    save_text(md_path, findings.findings_markdown(table))
    log.info(
        "wrote %s and %s (%d findings from %d tables)", csv_path, md_path, len(table), len(tables)
    )
    return table


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        paper = sm.input.paper_values
        make(list(sm.input.summaries), sm.output.csv, sm.output.md, paper)
    else:
        ap = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("summaries", nargs="+", help="summary.csv tables")
        ap.add_argument("--csv", required=True)
        ap.add_argument("--md", required=True)
        ap.add_argument(
            "--paper-values", help="paper values csv (default: retention/paper_values.csv)"
        )
        ap.add_argument("--log")
        args = ap.parse_args()
        setup_logging(args.log)
        make(args.summaries, args.csv, args.md, args.paper_values)


if __name__ == "__main__":
    run_main(main)

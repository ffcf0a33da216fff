"""The findings table (results/findings.csv and .md) from every summary.csv.

Run by Snakemake (rule ``findings``) or standalone:

    python scripts/make_findings.py results/stats/*/summary.csv results/sampler/*/summary.csv \
        --config config.yaml --csv results/findings.csv --md results/findings.md

The config tells which datasets and architectures are the paper's (paper values attach
only to those), the architectures' display labels and the family-wise alpha. Paper values
come from retention/findings/paper_values.csv (or ``--paper-values``), keyed by finding id.
"""

import argparse
import logging

import pandas as pd

from retention import findings, io
from retention.io import run_main, save_table, save_text, setup_logging

log = logging.getLogger("retention")


def make(summary_paths, study: findings.Study, csv_path, md_path, paper_values=None) -> pd.DataFrame:
    """Read the summaries, assemble, write csv and markdown; returns the table."""
    tables = [
        io.read_table(p, "summary table", columns=("id", "dataset"), keep_default_na=True)
        for p in summary_paths
    ]
    table = findings.assemble_findings(tables, study, findings.load_paper_values(paper_values))
    save_table(csv_path, table)
    save_text(md_path, findings.findings_markdown(table))
    for r in table[table["primary"]].itertuples(index=False):
        log.info("%s (%s): %.4g, Holm p %.3g: %s", r.finding, r.dataset, r.value, r.p_holm, r.verdict)
    log.info("wrote %s and %s (%d rows from %d tables)", csv_path, md_path, len(table), len(tables))
    return table


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        make(list(sm.input.summaries), findings.Study(**sm.params.study), sm.output.csv, sm.output.md)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summaries", nargs="+", help="summary.csv tables")
    ap.add_argument("--config", required=True, help="the study's config (grid, datasets, archs, stats)")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--paper-values", help="paper values csv (default: retention/findings/paper_values.csv)")
    ap.add_argument("--log")
    args = ap.parse_args()
    setup_logging(args.log)
    from retention.config import load_config

    io.check_output(args.csv, (".csv",), "--csv")
    io.check_output(args.md, (".md",), "--md")
    for path in args.summaries:
        io.require_file(path, "summary table")
    if args.paper_values:
        io.require_file(args.paper_values, "paper values file")
    make(
        args.summaries,
        findings.Study.from_config(load_config(args.config)),
        args.csv,
        args.md,
        args.paper_values,
    )


if __name__ == "__main__":
    run_main(main)

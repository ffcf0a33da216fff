"""The findings as HTML for the report: results/findings.html from findings.csv and .md.

Run by Snakemake (rule ``findings_html``) or standalone in a study folder:

    python scripts/render_findings.py --csv results/findings.csv --md results/findings.md \
        --config config.yaml config/demo.yaml --figure results/figures/primary_findings.png \
        --out results/findings.html

The verdicts first (one line per primary finding and dataset, both verdicts with their
Holm p), the warnings and the figure of every primary finding, then findings.md in full
and the study's config as YAML (retention/findings/report.py).
"""

import argparse
import logging
from pathlib import Path

import pandas as pd

from retention.errors import DataError
from retention.findings import report
from retention.io import check_output, require_file, run_main, save_text, setup_logging

log = logging.getLogger("retention")


def render(csv_path, md_path, out, config=None, figure=None) -> None:
    """Read the findings table, its markdown and the figure of the primary findings and
    write their HTML to ``out``."""
    for path in (csv_path, md_path, *([figure] if figure else [])):
        if not Path(path).exists():
            raise DataError(
                f"{path} does not exist; run the findings rule and the primary findings' figure first"
            )
    table = pd.read_csv(csv_path, keep_default_na=True)
    markdown = Path(md_path).read_text(encoding="utf-8")
    save_text(out, report.findings_html(table, markdown, config, figure))
    log.info(
        "wrote %s (%d primary rows)",
        out,
        int(table["primary"].astype(str).str.lower().isin(["true", "1"]).sum()),
    )


def main() -> None:
    if "snakemake" in globals():
        sm = globals()["snakemake"]
        setup_logging(sm.log[0])
        render(sm.input.csv, sm.input.md, sm.output.html, dict(sm.params.config), sm.input.figure)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True, help="results/findings.csv")
    ap.add_argument("--md", required=True, help="results/findings.md")
    ap.add_argument(
        "--config", nargs="+", help="config files (config.yaml first, overlays after), shown as YAML"
    )
    ap.add_argument("--figure", help="results/figures/primary_findings.png (embedded)")
    ap.add_argument("--out", required=True, help="the HTML to write (results/findings.html)")
    ap.add_argument("--log")
    args = ap.parse_args()
    check_output(args.out, (".html",), "--out")
    for path in [args.csv, args.md, *(args.config or []), *([args.figure] if args.figure else [])]:
        require_file(path)
    setup_logging(args.log)
    config = None
    if args.config:
        from retention.config import load_config, validate_config

        config = validate_config(load_config(*args.config), check_models=False)
    render(args.csv, args.md, args.out, config, args.figure)


if __name__ == "__main__":
    run_main(main)

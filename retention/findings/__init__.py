"""The findings table: paper values, Holm, the two verdicts of each primary finding
(:mod:`.verdicts`), findings.md (:mod:`.markdown`) and its HTML (:mod:`.report`).

The package's names are those of :mod:`.assemble` and :mod:`.markdown`, so that
``from retention import findings; findings.assemble_findings(...)`` reads as one module.
"""

from retention.findings.assemble import (
    CLAIM_VERDICTS,
    NULL_VERDICTS,
    PAPER_MODELS,
    PAPER_SOURCES,
    POOLED,
    Study,
    assemble_findings,
    check_paper_values,
    load_calibration,
    load_paper_values,
)
from retention.findings.markdown import findings_markdown

__all__ = [
    "CLAIM_VERDICTS",
    "NULL_VERDICTS",
    "PAPER_MODELS",
    "PAPER_SOURCES",
    "POOLED",
    "Study",
    "assemble_findings",
    "check_paper_values",
    "findings_markdown",
    "load_calibration",
    "load_paper_values",
]

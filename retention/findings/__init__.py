"""The findings table: paper values, Holm, the two verdicts of each primary finding
(:mod:`.verdicts`), findings.md (:mod:`.markdown`) and its HTML (:mod:`.report`).

The package's names are those of :mod:`.assemble` and :mod:`.markdown`, so that
``from retention import findings; findings.assemble_findings(...)`` reads as one module.
They are imported from their modules on first use: a job that only renders the report
(:mod:`.report`) does not import the statistics (scipy) with the package.
"""

from __future__ import annotations

from retention.lazy import lazy_getattr

#: each public name -> its module
_MODULES = {
    "CLAIM_VERDICTS": "assemble",
    "NULL_VERDICTS": "assemble",
    "PAPER_MODELS": "assemble",
    "PAPER_SOURCES": "assemble",
    "POOLED": "assemble",
    "Study": "assemble",
    "assemble_findings": "assemble",
    "check_paper_values": "assemble",
    "load_calibration": "assemble",
    "load_paper_values": "assemble",
    "findings_markdown": "markdown",
}


__getattr__ = lazy_getattr(__name__, _MODULES)
__all__ = list(_MODULES)

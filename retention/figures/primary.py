"""Every primary finding at a glance (figure ``primary_findings``): one forest panel per
claim of the paper, one line per dataset and architecture (or pair), with both
verdicts and their Holm p on the right of each primary line.

F2's panel adds each architecture's mean R² (on the traces we fit, and on the paper's
scale), so that the difference is read against the values it is a difference of, and the
paper's 0.52 and 0.74 where they attach (rows pooled over the paper's datasets). F3's
shows the paper's settling criterion. F4 has no primary hypothesis (the paper describes
its classes); a line says so and points to the class-level figure.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from retention.figures.forest import forest_figure, row_label
from retention.figures.inputs import FigureInputs
from retention.stats.registry import by_id

#: (heading, the ids of its rows (the primary first), the words before each id's label)
PANELS = (
    (
        (
            "F1 · are the most forgotten samples architecture-specific? Jaccard of the top-q sets, "
            "within minus across architectures"
        ),
        ("F1.difference",),
        {},
    ),
    (
        "F2 · does the exponential decay describe the traces? R² of the decay fit",
        ("F2.arch_difference", "F2.arch_mean", "F2.arch_mean_soft"),
        {
            "F2.arch_difference": "difference",
            "F2.arch_mean": "mean R²",
            "F2.arch_mean_soft": "mean R², paper's scale",
        },
    ),
    (
        "F3 · is forgetting stable across seeds? Mean Spearman ρ of the rank score over seed pairs",
        ("F3.within",),
        {},
    ),
    (
        "F5 · does the loss after head warmup predict forgetting? Spearman ρ, random effects over runs",
        ("F5.meta",),
        {},
    ),
    (
        "F6 · does spaced repetition help? Final held-out accuracy, spaced minus random sampler",
        ("F6.heldout",),
        {},
    ),
)
F4_NOTE = (
    "F4 (the class level) has no primary hypothesis: the paper describes its classes; "
    "see the class-level figure"
)


def primary_findings(inputs: FigureInputs) -> Figure:
    """Every primary finding (the Holm family of each dataset), one forest panel per
    claim (see the module docstring)."""
    table = inputs.findings if inputs.findings is not None else pd.DataFrame(columns=["id", "dataset"])
    registry = by_id()
    panels = []
    for heading, ids, words in PANELS:
        parts = []
        for finding_id in ids:
            mine = table[table["id"] == finding_id]
            keep = mine["dataset"].isin(inputs.datasets) | mine["dataset"].astype(str).str.startswith(
                "pooled over"
            )
            parts.append(mine[keep])
        rows = pd.concat(parts) if parts else table.iloc[:0]
        labels = [
            (f"{words[r['id']]} · " if r["id"] in words else "") + row_label(r, inputs)
            for r in rows.to_dict("records")
        ]
        panels.append((heading, rows, registry[ids[0]], labels))
    return forest_figure(inputs, panels, notes=[F4_NOTE])

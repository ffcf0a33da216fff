"""Trace labels: ``<definition>[_soft][_la<n>]`` names a trace definition (docs/method.md
section 4). Kept apart from retention.fitting.traces (numpy) because parsing the workflow needs it."""

import re
from dataclasses import dataclass

from retention.config import schema_choices

#: the trace definitions (the schema's values of retention.trace; docs/method.md section 4)
DEFINITIONS = schema_choices("retention", "trace")
SOFT_SUFFIX = "_soft"


@dataclass(frozen=True)
class TraceSpec:
    """A trace definition label, parsed: ``since_learned_soft_la2`` is the definition
    ``since_learned`` on p_true, a sample counting as learned after 2 consecutive correct
    epochs. The label grammar is ``<definition>[_soft][_la<n>]``."""

    definition: str
    soft: bool = False
    learned_after: int = 1

    @property
    def label(self) -> str:
        return trace_label(self.definition, self.soft, self.learned_after)

    @property
    def soft_counterpart(self) -> "TraceSpec":
        """The same definition on p_true (itself when already soft)."""
        return TraceSpec(self.definition, True, self.learned_after)


_LABEL = re.compile(r"^(?P<definition>[a-z_]+?)(?P<soft>_soft)?(?:_la(?P<la>[1-9][0-9]*))?$")


#: definitions without a learning point: ``learned_after`` does not apply to them
NO_LEARNING_POINT = ("raw",)


def trace_label(definition: str, soft: bool = False, learned_after: int = 1) -> str:
    """The label of a trace definition: ``<definition>[_soft][_la<n>]`` (``_la1`` omitted, and
    no ``_la`` for a definition without a learning point, ``raw``)."""
    la = 1 if definition in NO_LEARNING_POINT else learned_after
    return definition + (SOFT_SUFFIX if soft else "") + (f"_la{la}" if la != 1 else "")


def parse_label(label: str) -> TraceSpec:
    """Parse a trace label (see :class:`TraceSpec`); ValueError naming the label if unknown."""
    m = _LABEL.match(str(label))
    if not m or m["definition"] not in DEFINITIONS:
        raise ValueError(
            f"unknown trace definition {label!r}: expected one of {', '.join(DEFINITIONS)}, "
            f"optionally with the suffix {SOFT_SUFFIX!r} (p_true in place of correct) and "
            "'_la<n>' (learned after n consecutive correct epochs)"
        )
    la = int(m["la"] or 1)
    if la != 1 and m["definition"] in NO_LEARNING_POINT:
        raise ValueError(f"trace definition {label!r}: 'raw' has no learning point, so no '_la<n>'")
    return TraceSpec(m["definition"], bool(m["soft"]), la)


def parse_definition(label: str) -> tuple[str, bool]:
    """``since_learned_soft`` -> (``since_learned``, True); ValueError for unknown labels."""
    spec = parse_label(label)
    return spec.definition, spec.soft

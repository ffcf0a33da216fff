"""The two verdicts of a primary finding (docs/method.md, section Verdicts).

:func:`claim_verdict`: does the paper's claim pass its own test (seeds as the unit, Holm
over the dataset's primary family)? :func:`null_verdict`: is the value further in the
claim's direction than a memoryless process with the run's per-sample rates gives
(one-sided null p, Holm in its own family)? The null never gates the claim. Both read
one row of the findings table (after Holm); :func:`verdict_sentence` joins them for people.
How often each verdict is right on planted truth: ``benchmarks/calibrate.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from retention.findings.numbers import interval, number, p_text
from retention.fitting.nulls import KINDS as NULL_KINDS

#: what a calibrated verdict must meet on planted truth at the paper grid's size (docs/method.md
#: section 7b): a false claim holds in at most ``size``, a true one in at least ``power``, a
#: study without memory is beyond the null in at most ``null_size``
TARGETS = {"size": 0.05, "power": 0.80, "null_size": 0.05}


def calibration_note(row: Mapping) -> str:
    """What a reader must know of a primary row's calibration: every measured rate that
    misses its target ("" when all are met or none is measured)."""
    words = {
        "size": "a false claim holds in",
        "power": "a true claim holds in",
        "null_size": "a study without memory is beyond the null in",
    }
    missed = []
    for key, target in TARGETS.items():
        rate = number_of(row, f"calibration_{key}")
        if np.isfinite(rate) and (rate < target if key == "power" else rate > target):
            missed.append(f"{words[key]} {rate:.0%}")
    return ("on planted truth at the paper grid's size " + "; ".join(missed)) if missed else ""


def number_of(row: Mapping, key: str) -> float:
    """The row's value at ``key`` as a float (NaN where missing or not a number)."""
    try:
        return float(row.get(key, math.nan))
    except (TypeError, ValueError):
        return math.nan


def claim_verdict(row: Mapping, alpha: float) -> tuple[str, str]:
    """The paper's claim by its own test (docs/method.md, section Verdicts), with its reason:

    1. not comparable: no estimate, or no test (the row's note says why);
    2. contradicted: for a two-sided claim, significant (Holm) with the opposite sign of
       the paper's; or the 95% interval excludes the claim (``greater``: below 0;
       ``equivalent``: entirely outside +- bound; ``not_greater``: entirely above the margin);
    3. holds: the claim's test passes at alpha after Holm over the dataset's primary family;
    4. inconclusive: otherwise.
    The memoryless null does not enter (it is the other axis, :func:`null_verdict`).
    """
    value, lo, hi = (number_of(row, k) for k in ("value", "ci_low", "ci_high"))
    p, claim, bound = number_of(row, "p_holm"), str(row.get("claim", "")), number_of(row, "bound")
    note = str(row.get("note", "") or "")
    if not np.isfinite(value):
        return "not comparable", note or "no estimate"
    if not np.isfinite(p):
        return "not comparable", "no test: " + (note or "the estimate has no interval")
    passed, sign = p < alpha, number_of(row, "claim_sign")
    if claim == "differs" and passed and np.isfinite(sign) and np.sign(value) != sign:
        return (
            "contradicted",
            f"significant with the opposite sign of the paper's (claim p (Holm) {p_text(p)})",
        )
    if passed:
        reason = f"claim p (Holm) {p_text(p)} < {alpha:g}"
        p_zero = number_of(row, "p_zero")
        if claim == "not_greater" and value < 0 and np.isfinite(p_zero) and p_zero < alpha:
            reason += (
                f"; but worse, not only no better: {number(value)} ({interval(lo, hi)}), "
                f"two-sided p {p_text(p_zero)} (raw)"
            )
        return "holds", reason
    against = {
        "greater": hi < 0,
        "equivalent": np.isfinite(bound) and (lo > bound or hi < -bound),
        "not_greater": np.isfinite(bound) and lo > bound,
    }.get(claim, False)
    if against:
        return (
            "contradicted",
            f"the 95% interval {interval(lo, hi)} excludes the claim (claim p (Holm) {p_text(p)})",
        )
    return "inconclusive", f"claim p (Holm) {p_text(p)} is not below {alpha:g}"


def deciding_null(row: Mapping) -> str:
    """The null kind the null verdict rests on: the one with the larger p (a value is beyond
    the memoryless null only if it is beyond both); "" where no kind has a p."""
    ps = {k: number_of(row, f"null_{k}_p") for k in NULL_KINDS if np.isfinite(number_of(row, f"null_{k}"))}
    if not ps:
        return ""
    if any(not np.isfinite(v) for v in ps.values()):
        return next(k for k, v in ps.items() if not np.isfinite(v))
    return max(ps, key=ps.get)


def _position(value: float, lo: float, hi: float) -> str:
    if value > hi:
        return "above"
    if value < lo:
        return "below"
    return "inside"


def null_verdict(row: Mapping, alpha: float, has_null: bool = True) -> tuple[str, str]:
    """Whether a memoryless process with the run's per-sample rates gives the value
    (docs/method.md, section Verdicts), with its reason:

    1. beyond null: the one-sided null p (in the direction that supports the claim) of the
       deciding null kind (:func:`deciding_null`), Holm-corrected over the dataset's primary
       rows with a null, is below alpha;
    2. explained by null: the value lies inside that null's 95% range;
    3. undetermined: no null (the finding has none, or it is undefined on the null runs, or
       its draws have no spread), or the value lies outside the range without being beyond
       the null after Holm (the reason says on which side).
    """
    value = number_of(row, "value")
    if not has_null:
        return "undetermined", "no memoryless null: a paired comparison of two samplers on the same seeds"
    if not np.isfinite(value):
        return "undetermined", "no estimate"
    kind = deciding_null(row)
    if not kind:
        return "undetermined", "the finding is undefined on the null runs"
    mean, lo, hi = (number_of(row, f"null_{kind}{s}") for s in ("", "_low", "_high"))
    p_holm = number_of(row, "p_null_holm")
    where = f"{kind} null {interval(lo, hi)}"
    if not np.isfinite(number_of(row, f"null_{kind}_p")):
        if np.isfinite(lo) and lo == hi:
            return (
                "undetermined",
                f"the {kind} null's draws have no spread (all {number(mean)}); ours {number(value)}",
            )
        return "undetermined", f"too few defined {kind} null draws"
    side = _position(value, lo, hi)
    if np.isfinite(p_holm) and p_holm < alpha:
        return "beyond null", f"null p (Holm) {p_text(p_holm)}; ours {side} the {where}"
    if side == "inside":
        return "explained by null", f"the {where} contains ours (null p (Holm) {p_text(p_holm)})"
    direction = str(row.get("null_direction", ""))
    toward = direction == "two-sided" or (
        {"greater": "above", "less": "below"}.get(direction) == side
        or (direction == "toward_zero" and abs(value) < abs(mean))
    )
    how = "in the claim's direction" if toward else "against the claim's direction"
    return (
        "undetermined",
        f"ours lies {side} the {where}, {how}, null p (Holm) {p_text(p_holm)} not below {alpha:g}",
    )


def verdict_sentence(claim: tuple[str, str], null: tuple[str, str]) -> str:
    """The verdict for people: both axes with their reasons."""
    return f"claim {claim[0]} ({claim[1]}); memoryless null: {null[0]} ({null[1]})"

"""How numbers are written for people in findings.md, the verdicts and the figures."""

from __future__ import annotations

import pandas as pd


def number(v, digits: int = 3) -> str:
    """A number for people: 3 decimals, scientific outside [1e-3, 1000), "" for NaN."""
    if v is None or pd.isna(v) or v == "":
        return ""
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 10 ** (-digits):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}f}"


def p_value(p) -> str:
    """A p-value: 2 significant digits ("< 1e-300" for 0, "" for NaN)."""
    if p is None or pd.isna(p):
        return ""
    return "< 1e-300" if float(p) == 0 else f"{float(p):.2g}"


def p_text(p) -> str:
    """A p-value for a sentence ("n/a" where there is none)."""
    return p_value(p) or "n/a"


def interval(lo, hi) -> str:
    """'0.05 to 0.20', or "" where either end is missing."""
    return f"{number(lo)} to {number(hi)}" if pd.notna(lo) and pd.notna(hi) else ""


def with_interval(value, lo, hi) -> str:
    """'0.12 (0.05 to 0.20)', or the value alone, or nothing."""
    if value is None or pd.isna(value):
        return ""
    text = interval(lo, hi)
    return f"{number(value)} ({text})" if text else number(value)

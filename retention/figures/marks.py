"""How an estimate is drawn, the same way in every figure: the value with its 95%
interval (solid; hollow where it rests on fewer than ``min_samples`` samples, has no
interval or comes from partly undefined sets), the memoryless null's mean and 95% range
(grey), the chance level (dotted) and the paper's value (red star, or band for a range),
and lambda's bounds (dashed) wherever lambda is an axis.

``orient="h"``: the value runs along x and ``pos`` is the row's y; ``"v"``: the value
runs along y at x = ``pos``.
"""

from __future__ import annotations

import math
import re

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from .inputs import number
from .style import CHANCE_COLOR, COLORBAR, NULL_COLOR, PAPER_COLOR, guide, tag

NULL = "memoryless null: mean and 95% range"
CHANCE = "chance level"
PAPER = "paper"
SOLID = "solid: 95% interval"
EQUIVALENCE = "equivalence range of the claim (± bound)"
MARGIN = "margin of the claim (non-superiority)"
BOUND_COLOR = "#55a868"
#: findings whose ``chance`` column is a reference, not the chance level of their value
#: (a difference of Jaccards is 0 by chance)
NO_CHANCE_LEVEL = frozenset({"F1.difference"})

_NUMBER = re.compile(r"^\s*[~≈]?\s*(-?\d*\.?\d+(?:e-?\d+)?)(?:\s*to\s*(-?\d*\.?\d+))?", re.I)


def paper_number(text) -> tuple[float, float] | None:
    """(low, high) of a paper value such as '0.34', '~0.01' or '0.30 to 0.50, p < 1e-45'
    (low == high for a single number); None where it is not a number."""
    m = _NUMBER.match(str(text or ""))
    if not m:
        return None
    lo = float(m.group(1))
    return lo, float(m.group(2)) if m.group(2) else lo


def hollow_label(min_samples: int) -> str:
    return f"hollow: fewer than {min_samples} samples, no interval, or some sets undefined"


def caveat(row, min_samples: int) -> str:
    """'' for an estimate drawn solid, else why it is hollow or missing."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    value, n = number(get("value")), number(get("n_samples"))
    note = str(get("note", "") or "")
    if not math.isfinite(value):
        return "no estimate" + (f": {short_note(note)}" if note else "")
    if math.isfinite(n) and n < min_samples:
        return f"n = {int(n)} < {min_samples}"
    if not (math.isfinite(number(get("ci_low"))) and math.isfinite(number(get("ci_high")))):
        return "no interval"
    if "undefined" in note:
        return "some sets undefined"
    return ""


def short_note(note: str, width: int = 48) -> str:
    """The gist of a note: the part before its first colon or parenthesis, shortened."""
    head = re.split(r":|, e\.g\.| \(", str(note), maxsplit=1)[0].strip() or str(note)
    return head if len(head) <= width else head[: width - 1] + "…"


def estimate(ax, pos, value, low, high, color, name, hollow=False, orient="h", marker="o", ms=4.5):
    """A value with its interval (where finite); hollow when ``hollow``. Tagged ``name``."""
    err = None
    if math.isfinite(number(low)) and math.isfinite(number(high)):
        err = [[max(value - low, 0.0)], [max(high - value, 0.0)]]
    xy = ([value], [pos]) if orient == "h" else ([pos], [value])
    kw = {"xerr": err} if orient == "h" else {"yerr": err}
    h = ax.errorbar(*xy, **kw, fmt=marker, color=color, ms=ms, mfc="white" if hollow else color,
                    mew=1.1, capsize=2, lw=1, zorder=4)
    return tag(h, name)


def null_range(ax, pos, row, orient="h", width=0.6) -> bool:
    """The memoryless null's 95% range (grey band) and mean (grey tick) of a summary row."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    mean, low, high = (number(get(k)) for k in ("null_iid", "null_iid_low", "null_iid_high"))
    if not (math.isfinite(low) and math.isfinite(high)):
        return False
    if orient == "h":
        tick = ax.plot([mean, mean], [pos - width / 2, pos + width / 2], color=NULL_COLOR, lw=1.6, zorder=2)
    else:
        tick = ax.plot([pos - width / 2, pos + width / 2], [mean, mean], color=NULL_COLOR, lw=1.6, zorder=2)
    band = _band(pos, low, high, width, orient)
    band.set(color=NULL_COLOR, alpha=0.35, lw=0, zorder=1)
    ax.add_patch(band)
    tag([band, *tick], NULL)
    return True


def null_handle():
    return Patch(facecolor=NULL_COLOR, alpha=0.5, edgecolor=NULL_COLOR, label=NULL)


def chance(ax, pos, value, orient="h", width=0.7) -> bool:
    """The chance level of a row (dotted)."""
    value = number(value)
    if not math.isfinite(value):
        return False
    span = [pos - width / 2, pos + width / 2]
    xy = ([value, value], span) if orient == "h" else (span, [value, value])
    tag(ax.plot(*xy, color=CHANCE_COLOR, lw=1.2, ls=":", zorder=3), CHANCE)
    return True


def chance_handle():
    return Line2D([], [], color=CHANCE_COLOR, lw=1.2, ls=":", label=CHANCE)


def paper(ax, pos, text, orient="h", width=0.7) -> bool:
    """The paper's value of a row: a red star (a band from low to high for a range)."""
    value = paper_number(text)
    if value is None:
        return False
    lo, hi = value
    if hi > lo:
        band = _band(pos, lo, hi, width, orient)
        band.set(color=PAPER_COLOR, alpha=0.18, lw=0, zorder=1)
        ax.add_patch(band)
        tag(band, PAPER)
    xy = ([(lo + hi) / 2], [pos]) if orient == "h" else ([pos], [(lo + hi) / 2])
    tag(ax.plot(*xy, "*", color=PAPER_COLOR, ms=8, zorder=5), PAPER)
    return True


def paper_handle():
    return Line2D([], [], color=PAPER_COLOR, marker="*", ls="none", ms=8, label=PAPER)


def solid_handles(min_samples: int) -> dict:
    """Legend entries for the solid and the hollow marker."""
    return {
        SOLID: Line2D([], [], color="0.25", marker="o", ls="-", ms=4.5, lw=1),
        hollow_label(min_samples): Line2D([], [], color="0.25", marker="o", mfc="white", ls="none", ms=4.5),
    }


def claim_bound(ax, pos, row, orient="h", width=0.7) -> str:
    """The bound a primary claim is tested against (column ``bound``): the equivalence
    range +- bound (claim ``equivalent``) or the margin (``not_greater``). Returns the
    legend label drawn ("" if none)."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    bound, claim = number(get("bound")), str(get("claim", "") or "")
    if not math.isfinite(bound) or claim not in ("equivalent", "not_greater"):
        return ""
    lo, hi = (-bound, bound) if claim == "equivalent" else (bound, bound)
    name = EQUIVALENCE if claim == "equivalent" else MARGIN
    if hi > lo:
        band = _band(pos, lo, hi, width, orient)
        band.set(color=BOUND_COLOR, alpha=0.18, lw=0, zorder=0)
        ax.add_patch(band)
        tag(band, name)
    else:
        span = [pos - width / 2, pos + width / 2]
        tag(ax.plot(*(([lo, lo], span) if orient == "h" else (span, [lo, lo])), color=BOUND_COLOR, lw=1.6, zorder=3), name)
    return name


def _band(pos, lo, hi, width, orient) -> Rectangle:
    """A rectangle from lo to hi along the value axis, ``width`` wide across it."""
    if orient == "h":
        return Rectangle((lo, pos - width / 2), hi - lo, width)
    return Rectangle((pos - width / 2, lo), width, hi - lo)


def bound_handle(name: str):
    if name == EQUIVALENCE:
        return Patch(color=BOUND_COLOR, alpha=0.3, label=name)
    return Line2D([], [], color=BOUND_COLOR, lw=1.6, label=name)


def lambda_bounds(ax, lam_max: float, axis: str = "y") -> None:
    """Dashed lines at lambda = 0 and lambda = lam_max (the fit's bounds)."""
    line = ax.axhline if axis == "y" else ax.axvline
    for v in (0.0, float(lam_max)):
        guide(line(v, color="0.35", lw=0.8, ls="--", zorder=0))


def lambda_label(lam_max: float, what: str = "λ") -> str:
    """An axis label for lambda that names its bounds."""
    return f"{what} (1/epoch)\ndashed: its bounds 0 and {lam_max:g}"


def _finite(values) -> np.ndarray:
    return np.asarray([x for x in (number(v) for v in values) if math.isfinite(x)], dtype=float)


def value_limits(values, marks=(), intervals=(), limits=(-math.inf, math.inf), pad=0.06):
    """(low, high, symlog threshold or None) of an axis showing ``values`` with their
    reference ``marks`` (nulls, chance, paper) and ``intervals``.

    The view covers the values and marks; an outlier more than 20 interquartile ranges
    from the median switches an unbounded quantity's axis to a symmetric log scale.
    Intervals are shown whole within the quantity's ``limits`` (a correlation's [-1, 1]);
    an unbounded quantity's intervals may extend the view by at most twice the span of
    the values and marks (longer ones run into the frame).
    """
    core = np.concatenate([_finite(values), _finite(marks)])
    ivals = _finite(intervals)
    if core.size == 0:
        core = ivals if ivals.size else np.array([-1.0, 1.0])
    lo, hi = float(core.min()), float(core.max())
    q25, median, q75 = np.quantile(core, [0.25, 0.5, 0.75])
    bulk = max(q75 - q25, 1e-9)
    thresh = None
    bounded = math.isfinite(limits[0]) and math.isfinite(limits[1])
    if not bounded and np.abs(core - median).max() > 20 * bulk:
        thresh = float(max(abs(q25), abs(q75), bulk))
    span = max(hi - lo, 0.05 * max(abs(lo), abs(hi)), 1e-3)
    reach = math.inf if bounded or thresh is not None else 2 * span
    if ivals.size:
        lo, hi = min(lo, max(ivals.min(), lo - reach)), max(hi, min(ivals.max(), hi + reach))
    lo, hi = max(lo, limits[0]), min(hi, limits[1])
    span = max(hi - lo, 1e-3)
    return float(lo - pad * span), float(hi + pad * span), thresh


def set_value_axis(ax, values, marks=(), intervals=(), limits=(-math.inf, math.inf), orient="h") -> None:
    """Limits (and a symlog scale where an outlier needs one) of the value axis."""
    lo, hi, thresh = value_limits(values, marks, intervals, limits)
    axis = ax.xaxis if orient == "h" else ax.yaxis
    if thresh is not None:
        (ax.set_xscale if orient == "h" else ax.set_yscale)("symlog", linthresh=thresh)
        axis.set_major_locator(FixedLocator(symlog_ticks(lo, hi, thresh)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(NullLocator())
    else:
        axis.set_major_locator(MaxNLocator(nbins=5))
    (ax.set_xlim if orient == "h" else ax.set_ylim)(lo, hi)


def symlog_ticks(lo: float, hi: float, thresh: float) -> list[float]:
    """Ticks of a symlog axis from lo to hi: 0 and at most two powers of ten on each side
    above the linear region around 0 (the outermost, and one two decades closer)."""
    first = math.floor(math.log10(thresh))
    ticks = [0.0]
    for sign, edge in ((1, hi), (-1, lo)):
        if sign * edge <= 0:
            continue
        decades = list(range(first + 1, math.floor(math.log10(sign * edge)) + 1))  # clear of 0's label
        keep = decades[-1:] + (decades[-3:-2] if len(decades) >= 3 else [])
        ticks += [sign * 10.0**e for e in keep]
    return sorted(ticks)


def correlation_matrix(ax, m: np.ndarray, names, cell, axis_label: str, bar_label: str) -> None:
    """A symmetric matrix of correlations as a heatmap from -1 to 1 with a colour bar;
    ``cell(i, j)`` gives the text written in each off-diagonal cell ("" for none)."""
    im = tag(ax.imshow(m, vmin=-1, vmax=1, cmap="vlag"), COLORBAR)
    for i, j in zip(*np.nonzero(np.isfinite(m) & ~np.eye(len(m), dtype=bool))):
        ax.text(j, i, cell(i, j), ha="center", va="center", fontsize=5, color="white" if abs(m[i, j]) > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    ax.grid(False)
    ax.set_xlabel(axis_label)
    ax.set_ylabel(axis_label)
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=bar_label)

"""How an estimate is drawn, the same way in every figure.

The value with its 95% interval (solid; hollow where it rests on fewer than
``min_samples`` samples, has no interval or comes from partly undefined sets); the two
memoryless nulls' 95% ranges as grey bars above (iid redraw) and below (shuffled order)
the value, each with its mean as a tick, the one the null verdict rests on outlined
(:func:`null_ranges`); the chance level (dotted); the paper's value (a black star, and a
black bracket for a range); the bound a claim is tested against (dashed); a criterion of
the paper's (dash-dot, :func:`criterion`); and λ's bounds (dashed) wherever λ is an axis.

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

from retention.figures.inputs import number
from retention.figures.style import (
    BOUND_STYLE,
    CHANCE_COLOR,
    COLORBAR,
    CORRELATION_CMAP,
    CRITERION_STYLE,
    GUIDE_COLOR,
    NULL_COLOR,
    PAPER_COLOR,
    PAPER_MARKER,
    SMALL_FONT,
    guide,
    tag,
)
from retention.fitting.nulls import KINDS as NULL_KINDS

#: legend labels of the marks (each series' gid)
NULLS = {
    "iid": "memoryless null, epochs redrawn (iid): 95% range, | mean",
    "shuffle": "memoryless null, epochs shuffled: 95% range, | mean",
}
DECIDES = "outlined: the null the verdict rests on"
NULL_HATCH = {"iid": "", "shuffle": "/////"}
NULL_OFFSET = {"iid": -0.22, "shuffle": 0.22}  # rows run down the page: iid above, shuffle below
CHANCE = "chance level"
PAPER = "paper's value (bracket: its range)"
SOLID = "estimate, 95% interval"
EQUIVALENCE = "equivalence bound of the claim (±)"
MARGIN = "margin of the claim"
CRITERION = "the paper's settling criterion"
#: findings whose ``chance`` column is a reference, not the chance level of their value
#: (a difference of Jaccards is 0 by chance)
NO_CHANCE_LEVEL = frozenset({"F1.difference"})

_NUMBER = re.compile(r"^\s*[~≈]?\s*(-?\d*\.?\d+(?:e-?\d+)?)(?:\s*to\s*(-?\d*\.?\d+))?", re.IGNORECASE)


def _getter(row):
    return row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)


def paper_number(text) -> tuple[float, float] | None:
    """(low, high) of a paper value such as '0.34', '~0.01' or '0.30 to 0.50, p < 1e-45'
    (low == high for a single number); None where it is not a number."""
    m = _NUMBER.match(str(text or ""))
    if not m:
        return None
    lo = float(m.group(1))
    return lo, float(m.group(2)) if m.group(2) else lo


def hollow_label(min_samples: int) -> str:
    return f"hollow: < {min_samples} samples, no interval or sets undefined"


def caveat(row, min_samples: int, why: bool = True) -> str:
    """'' for an estimate drawn solid, else why it is hollow or missing (``why``: with
    the gist of the row's note)."""
    get = _getter(row)
    value, n = number(get("value")), number(get("n_samples"))
    note = str(get("note", "") or "")
    if not math.isfinite(value):
        return "no estimate" + (f": {short_note(note)}" if note and why else "")
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
    h = ax.errorbar(
        *xy,
        **kw,
        fmt=marker,
        color=color,
        ms=ms,
        mfc="white" if hollow else color,
        mew=1.1,
        capsize=2,
        lw=1,
        zorder=4,
    )
    return tag(h, name)


def null_range(row, kind: str) -> tuple[float, float, float]:
    """(mean, low, high) of one null kind of a findings row (NaN where absent)."""
    get = _getter(row)
    return tuple(number(get(f"null_{kind}{s}")) for s in ("", "_low", "_high"))


def null_ranges(ax, pos, row, orient="h", height=0.16) -> list[str]:
    """Both memoryless nulls of a findings row: each kind's 95% range as a grey bar
    (iid plain, above the value; shuffle hatched, below) with its mean as a tick; the
    kind the null verdict rests on (column ``null_kind``) outlined in black. Returns the
    kinds drawn. The bars' artists carry the kind's legend label as gid, and the
    outlined one the label :data:`DECIDES` (``get_label``)."""
    decides = str(_getter(row)("null_kind", "") or "")
    drawn = []
    for kind in NULL_KINDS:
        mean, low, high = null_range(row, kind)
        if not (math.isfinite(low) and math.isfinite(high)):
            continue
        at = pos + NULL_OFFSET[kind]
        band = _band(at, low, high, height, orient)
        band.set(
            facecolor=NULL_COLOR,
            alpha=0.55 if kind == "iid" else 0.35,
            hatch=NULL_HATCH[kind],
            edgecolor="black" if kind == decides else NULL_COLOR,
            lw=0.9 if kind == decides else 0,
            zorder=1,
        )
        if kind == decides:
            band.set_label(DECIDES)
        ax.add_patch(band)
        span = [at - height / 2 - 0.03, at + height / 2 + 0.03]
        tick = ax.plot(
            *(([mean, mean], span) if orient == "h" else (span, [mean, mean])), color="0.3", lw=1.1, zorder=2
        )
        tag([band, *tick], NULLS[kind])
        drawn.append(kind)
    return drawn


def null_handles(kinds, decided: bool) -> dict:
    """Legend entries of the null kinds drawn (and of the outline, where one decides)."""
    out = {
        NULLS[k]: Patch(
            facecolor=NULL_COLOR,
            alpha=0.55 if k == "iid" else 0.35,
            hatch=NULL_HATCH[k],
            edgecolor=NULL_COLOR,
        )
        for k in NULL_KINDS
        if k in kinds
    }
    if decided:
        out[DECIDES] = Patch(facecolor="white", edgecolor="black", lw=0.9)
    return out


def chance(ax, pos, value, orient="h", width=0.8) -> bool:
    """The chance level of a row (dotted)."""
    value = number(value)
    if not math.isfinite(value):
        return False
    span = [pos - width / 2, pos + width / 2]
    xy = ([value, value], span) if orient == "h" else (span, [value, value])
    tag(ax.plot(*xy, color=CHANCE_COLOR, lw=1.2, ls=":", zorder=3), CHANCE)
    return True


def chance_handle():
    return Line2D([], [], color=CHANCE_COLOR, lw=1.2, ls=":")


def paper(ax, pos, text, orient="h") -> bool:
    """The paper's value of a row: a black star (and a black bracket from low to high
    for a range), just off the row so that it does not hide our value."""
    value = paper_number(text)
    if value is None:
        return False
    lo, hi = value
    at = pos - 0.32 if orient == "h" else pos + 0.3
    if hi > lo:
        xy = ([lo, hi], [at, at]) if orient == "h" else ([at, at], [lo, hi])
        tag(ax.plot(*xy, color=PAPER_COLOR, lw=1.0, marker="|", ms=4, zorder=5), PAPER)
    xy = ([(lo + hi) / 2], [at]) if orient == "h" else ([at], [(lo + hi) / 2])
    tag(ax.plot(*xy, PAPER_MARKER, color=PAPER_COLOR, mec="white", mew=0.4, ms=7, zorder=6), PAPER)
    return True


def paper_handle():
    return Line2D([], [], color=PAPER_COLOR, marker=PAPER_MARKER, ls="-", lw=1.0, ms=7, mec="white", mew=0.4)


def solid_handles(min_samples: int) -> dict:
    """Legend entries for the solid and the hollow marker."""
    return {
        SOLID: Line2D([], [], color="0.25", marker="o", ls="-", ms=4.5, lw=1),
        hollow_label(min_samples): Line2D([], [], color="0.25", marker="o", mfc="white", ls="none", ms=4.5),
    }


def claim_bound(ax, pos, row, orient="h", width=0.8) -> str:
    """The bound a primary claim is tested against (column ``bound``): the equivalence
    bounds -bound and +bound (claim ``equivalent``) or the margin (``not_greater``), as
    dashed segments across the row. Returns the legend label drawn ("" if none)."""
    get = _getter(row)
    bound, claim = number(get("bound")), str(get("claim", "") or "")
    if not math.isfinite(bound) or claim not in ("equivalent", "not_greater"):
        return ""
    name = EQUIVALENCE if claim == "equivalent" else MARGIN
    span = [pos - width / 2, pos + width / 2]
    for v in (-bound, bound) if claim == "equivalent" else (bound,):
        tag(
            ax.plot(
                *(([v, v], span) if orient == "h" else (span, [v, v])),
                color="0.2",
                lw=1.1,
                ls=BOUND_STYLE,
                zorder=3,
            ),
            name,
        )
    return name


def bound_handle(name: str):
    return Line2D([], [], color="0.2", lw=1.1, ls=BOUND_STYLE)


def criterion(ax, pos, value, orient="h", width=0.8) -> bool:
    """A criterion of the paper's (the settling criteria: Jaccard 0.6, Spearman 0.4) as
    a dash-dot segment across the row."""
    value = number(value)
    if not math.isfinite(value):
        return False
    span = [pos - width / 2, pos + width / 2]
    tag(
        ax.plot(
            *(([value, value], span) if orient == "h" else (span, [value, value])),
            color="black",
            lw=1.1,
            ls=CRITERION_STYLE,
            zorder=3,
        ),
        CRITERION,
    )
    return True


def criterion_handle():
    return Line2D([], [], color="black", lw=1.1, ls=CRITERION_STYLE)


def _band(pos, lo, hi, width, orient) -> Rectangle:
    """A rectangle from lo to hi along the value axis, ``width`` wide across it."""
    if orient == "h":
        return Rectangle((lo, pos - width / 2), hi - lo, width)
    return Rectangle((pos - width / 2, lo), width, hi - lo)


def lambda_bounds(ax, lambda_max: float, axis: str = "y") -> None:
    """Dashed lines at λ = 0 and λ = lambda_max (the fit's bounds)."""
    line = ax.axhline if axis == "y" else ax.axvline
    for v in (0.0, float(lambda_max)):
        guide(line(v, color=GUIDE_COLOR, lw=0.8, ls=BOUND_STYLE, zorder=0))


def lambda_label(lambda_max: float, what: str = "λ") -> str:
    """An axis label for λ that names its bounds."""
    return f"{what} (1/epoch)\ndashed: its bounds 0 and {lambda_max:g}"


def _finite(values) -> np.ndarray:
    return np.asarray([x for x in (number(v) for v in values) if math.isfinite(x)], dtype=float)


def value_limits(values, marks=(), intervals=(), limits=(-math.inf, math.inf), pad=0.06):
    """(low, high, symlog threshold or None) of an axis showing ``values`` with their
    reference ``marks`` (nulls, chance, paper, 0) and ``intervals``.

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


def set_value_axis(
    ax, values, marks=(), intervals=(), limits=(-math.inf, math.inf), orient="h", zero: bool = True
) -> None:
    """Limits (and a symlog scale where an outlier needs one) of the value axis; with
    ``zero``, 0 is always in view (differences and correlations are read against it)."""
    marks = [*marks, 0.0] if zero else list(marks)
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


#: inches of a correlation matrix's panel taken by its row names and colour bar (titles wrap in the rest)
MATRIX_MARGIN_IN = 1.7


def correlation_matrix(ax, m: np.ndarray, names, cell, axis_label: str, bar_label: str) -> None:
    """A symmetric matrix of correlations as a heatmap from -1 to 1 with a colour bar;
    ``cell(i, j)`` gives the text written in each off-diagonal cell ("" for none)."""
    im = tag(ax.imshow(m, vmin=-1, vmax=1, cmap=CORRELATION_CMAP), COLORBAR)
    for i, j in zip(*np.nonzero(np.isfinite(m) & ~np.eye(len(m), dtype=bool))):
        ax.text(
            j,
            i,
            cell(i, j),
            ha="center",
            va="center",
            fontsize=SMALL_FONT,
            color="white" if abs(m[i, j]) > 0.6 else "black",
        )
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    ax.grid(False)
    ax.set_xlabel(axis_label)
    ax.set_ylabel(axis_label)
    bar = ax.figure.colorbar(im, ax=ax, shrink=0.85, fraction=0.08, pad=0.03)
    bar.set_label(bar_label)
    bar.set_ticks([-1, 0, 1])

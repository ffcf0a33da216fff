"""The layout of every figure at print width (issues 18 and 25), drawn from the small study
of tests/figure_fixtures.py with matplotlib's renderer (each Text's window extent after a
draw):

- at most 7.2 in wide (a two-column page at 100%) and at most 3,000 x 2,400 px at the
  configured dpi;
- no text under 6 pt at print width;
- no text overlaps another text, a colour bar, or another panel's frame (so that no tick
  label runs into a neighbour), and no text leaves the canvas;
- every axis with tick labels has a label, and every plotted series has a legend entry;
- words for people: no registry ids, no snake_case, λ and never "lambda".
"""

from __future__ import annotations

import itertools
import re

import pytest

from retention.figures import specs as figure_specs
from retention.figures import style

from .figure_fixtures import (
    CONFIG,
    DATASETS,
    LABELS,
    draw,
    figure_cases,
    make_study,
    series_artists,
    title_of,
)

MAX_PX = (3000, 2400)
CASES = figure_cases()
#: snake_case tokens a figure may show: the test grid's own keys are user words (none here)
SNAKE = re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def built():
    """Each (figure, dataset) drawn once, with the texts it drew."""
    cache = {}

    def get(name, dataset=None):
        if (name, dataset) not in cache:
            cache[(name, dataset)] = draw(make_study()[0], name, dataset)
        return cache[(name, dataset)]

    return get


def _id(case) -> str:
    return f"{case[0]}-{case[1] or 'all'}"


def _overlap(a, b, tolerance: float = 1.0) -> bool:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w > tolerance and h > tolerance


def overlaps(texts, renderer, tolerance: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts whose window extents overlap by more than ``tolerance`` pixels."""
    boxes = [t.get_window_extent(renderer) for t in texts]
    return [
        (a.get_text(), b.get_text())
        for (a, ba), (b, bb) in itertools.combinations(zip(texts, boxes), 2)
        if _overlap(ba, bb, tolerance)
    ]


def _owner(text):
    """The axes a text belongs to (tick labels, axis labels, titles, texts placed in it),
    or None for the figure's own texts (the legend)."""
    return getattr(text, "axes", None)


def _colorbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_every_figure_is_drawn_per_dataset_or_over_all_of_them():
    names = {name for name, _ in CASES}
    assert names == set(figure_specs.FIGURES)
    assert ("sampler", "cub200") not in CASES and ("sampler", "octdl") in CASES  # the sampler's datasets only


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_size_and_type_at_print_width(case, built):
    """At most 7.2 in wide and every text at least 6 pt at that width."""
    fig, texts = built(*case)
    width, height = fig.get_size_inches()
    assert width <= style.PRINT_WIDTH + 1e-9, f"{case}: {width:.2f} in wide"
    w, h = width * CONFIG["figures"]["dpi"], height * CONFIG["figures"]["dpi"]
    assert w <= MAX_PX[0] and h <= MAX_PX[1], f"{case}: {w:.0f} x {h:.0f} px at the configured dpi"
    scale = min(1.0, style.PRINT_WIDTH / width)
    small = sorted(
        {
            (round(t.get_fontsize() * scale, 2), t.get_text()[:40])
            for t in texts
            if t.get_fontsize() * scale < style.MIN_FONT - 1e-6
        }
    )
    assert not small, f"{case}: text under {style.MIN_FONT} pt at print width: {small[:5]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_no_text_overlaps_text_a_colorbar_or_another_panel(case, built):
    fig, texts = built(*case)
    renderer = fig.canvas.get_renderer()
    clash = overlaps(texts, renderer)
    assert not clash, f"{case}: overlapping texts {clash[:5]}"
    w, h = fig.get_size_inches() * fig.dpi
    boxes = {id(t): t.get_window_extent(renderer) for t in texts}
    for t in texts:
        box = boxes[id(t)]
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= w + 1 and box.y1 <= h + 1, (
            f"{case}: {t.get_text()!r} is cut off"
        )
    for bar in _colorbars(fig):
        frame = bar.get_window_extent(renderer)
        for t in texts:
            if _owner(t) is not bar and _overlap(boxes[id(t)], frame):
                pytest.fail(f"{case}: {t.get_text()!r} overlaps a colour bar")
    panels = [ax for ax in fig.axes if ax.axison and ax not in _colorbars(fig)]
    for ax in panels:
        frame = ax.patch.get_window_extent(renderer)
        for t in texts:
            if _panel_of(_owner(t)) is not ax and _overlap(boxes[id(t)], frame, tolerance=1.5):
                pytest.fail(f"{case}: {t.get_text()!r} runs into the panel {title_of(ax)!r}")


def _panel_of(owner):
    """The panel a text's axes belongs to: a colour bar's is the panel of its image."""
    bar = getattr(owner, "_colorbar", None)
    if bar is not None:
        return getattr(bar.mappable, "axes", None)
    return owner


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_axes_are_labelled_and_series_are_in_the_legend(case, built):
    fig, texts = built(*case)
    drawn = {id(t) for t in texts}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks() + axis.get_minor_ticks()
            shown = [t.label1.get_text() for t in ticks if id(t.label1) in drawn] + [
                t.label2.get_text() for t in ticks if id(t.label2) in drawn
            ]
            if any(_is_number(x) for x in shown):  # row names (a forest's rows) label themselves
                assert axis.get_label_text().strip(), (
                    f"{case}: an axis of {title_of(ax)!r} has ticks but no label"
                )
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    legend = {t.get_text() for leg in legends for t in leg.get_texts()}
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":  # explained by its own label
            continue
        for artist in series_artists(ax):
            gid = artist.get_gid()
            assert gid is not None, f"{case}: an untagged {type(artist).__name__} in {title_of(ax)!r}"
            if gid not in (style.GUIDE, style.COLORBAR, style.PICTURE):
                assert style.plain(gid) in legend, f"{case}: series {gid!r} has no legend entry"


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-").replace("%", "").replace(",", "").strip() or "x")
    except ValueError:
        return bool(re.fullmatch(r"\$?[−-]?10\^\{?[−-]?\d+\}?\$?|\$\\mathdefault\{.*\}\$", text.strip()))
    return True


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_words_for_people(case, built):
    """Datasets and models by their names; no registry ids, snake_case or 'lambda'."""
    text = "\n".join(t.get_text() for t in built(*case)[1])
    name, dataset = case
    for d in (
        [dataset] if dataset else figure_specs.figure_datasets(name, DATASETS, CONFIG["sampler"]["datasets"])
    ):
        assert d in text, f"{case}: no panel names {d}"
    assert any(label in text for label in LABELS.values()), case
    assert not re.search(r"\b(resnet18|deit_small)\b", text), f"{case}: an architecture named by its key"
    assert not re.search(r"\b(F\d|Scores|Fit|Runs)\.\w+", text), f"{case}: a finding id reaches the reader"
    assert not SNAKE.findall(text), f"{case}: snake_case {SNAKE.findall(text)[:3]}"
    assert not re.search(r"lambda", text, re.IGNORECASE), f"{case}: 'lambda' where λ is meant"
    assert not re.search(r"\bA minus B\b|\bA vs B\b", text), case


def test_the_layout_checks_catch_what_they_look_for():
    """The checks fail on a figure that has each fault (so that they can fail at all)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from .figure_fixtures import drawn_texts

    fig, axes = style.new_figure(1, 2, row_h=2.0)
    fig.set_layout_engine("none")  # so that nothing makes room
    axes[0, 0].text(1.02, 0.5, "runs into the next panel", transform=axes[0, 0].transAxes)
    axes[0, 1].text(0.5, 0.5, "tiny", fontsize=4)
    axes[0, 1].text(0.5, 0.5, "over it")
    im = axes[0, 1].imshow([[0, 1], [1, 0]])
    fig.colorbar(im, ax=axes[0, 1]).set_label("bar")
    axes[0, 1].text(1.1, 0.5, "on the bar", transform=axes[0, 1].transAxes)
    FigureCanvasAgg(fig)
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    assert ("tiny", "over it") in overlaps(texts, renderer)
    assert any(t.get_fontsize() < style.MIN_FONT for t in texts)
    bar = _colorbars(fig)[0].get_window_extent(renderer)
    assert any(t.get_text() == "on the bar" and _overlap(t.get_window_extent(renderer), bar) for t in texts)
    frame = axes[0, 1].patch.get_window_extent(renderer)
    assert any(
        t.get_text().startswith("runs into") and _overlap(t.get_window_extent(renderer), frame) for t in texts
    )

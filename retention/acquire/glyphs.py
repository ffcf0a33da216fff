"""Synthetic glyphs: a pretraining source made in code, for the embedded digits demo.

Each class is one printed character (Latin and Greek letters, symbols; no digit and no
letter that fonts draw like one: O, o, I, l), rendered in one of the 12 DejaVu faces
that matplotlib ships, with a random stroke weight and a random affine transform
(rotation, shear, aspect, scale), then put through the acquisition of scikit-learn's
digits (UCI optdigits): a 32 x 32 binary bitmap, the glyph size-normalised in it, cut
into 4 x 4 blocks whose "on" pixels are counted, giving an 8 x 8 image of 17 grey levels
(scaled to 0..255, as ``retention.acquire.data`` stores the digits). As a dataset source
(``synthetic_glyphs``) it is made with ``data.split_seed`` as its seed.

Image ``i`` depends on (``seed``, ``i``) alone, so any image can be made again on its
own and the dataset is the same whatever order or threads make it. Classes are
interleaved (image ``i`` is of class ``i % n_classes``), so the first
``per_class * n_classes`` images hold exactly ``per_class`` of each class. Given the
same Pillow (FreeType) and matplotlib fonts, the same seed gives the same bytes.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from retention.errors import DataError

SOURCE = "synthetic_glyphs"
# one class per character; every one is drawn by every face in FONT_FACES
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
GREEK = "ΓΔΘΛΞΠΣΦΨΩαβγδεζηθλμξπστφψω"
SYMBOLS = "+×÷#@&%$?!<>=*~§¶€£¥∞∑√∂∫≈≠±←→↑↓♠♣♥♦♪●■▲◆∀∃∇∈⊂∪∩⊕⊗∧∨¬†‡¤"
CHARACTERS = LETTERS + GREEK + SYMBOLS
FONT_FACES = tuple(
    f"DejaVu{family}{style}.ttf"
    for family in ("Sans", "Serif", "SansMono")
    for style in (
        ("", "-Bold", "-Italic", "-BoldItalic")
        if family == "Serif"
        else ("", "-Bold", "-Oblique", "-BoldOblique")
    )
)
IMAGES_PER_CLASS = 32  # the source's size: 32 x 131 classes = 4,192 images
RESOLUTION = 8  # the digits' 8 x 8
BLOCK = 4  # optdigits: 32 x 32 bitmaps, 4 x 4 blocks
RENDER_SIZE = 48  # font size (pixels) of the first, antialiased rendering

_local = threading.local()  # FreeType faces are not shared between threads


def font_dir() -> Path:
    """The folder of the TrueType fonts matplotlib ships (DejaVu among them)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _font(face: str) -> ImageFont.FreeTypeFont:
    cache = _local.__dict__.setdefault("fonts", {})
    if face not in cache:
        path = font_dir() / face
        if not path.is_file():
            raise DataError(f"font {path} is missing (synthetic_glyphs uses matplotlib's DejaVu fonts)")
        cache[face] = ImageFont.truetype(str(path), RENDER_SIZE)
    return cache[face]


def _affine(rng: np.random.Generator) -> np.ndarray:
    """A random 2 x 2 map: rotation +-15 degrees, shear +-0.3, aspect 0.75..1.33."""
    angle = math.radians(rng.uniform(-15, 15))
    shear = rng.uniform(-0.3, 0.3)
    aspect = math.exp(rng.uniform(math.log(0.75), math.log(4 / 3)))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([math.sqrt(aspect), 1 / math.sqrt(aspect)])


def render_bitmap(char: str, rng: np.random.Generator, resolution: int = RESOLUTION) -> np.ndarray:
    """One random rendering of ``char`` as a binary bitmap, bool (4 r, 4 r) for r = resolution.

    A random DejaVu face and stroke weight, a random affine transform, then the glyph's
    bounding box scaled (aspect kept) so that its longer side spans 75-100% of the
    bitmap, placed at a random position where it fits.
    """
    face = FONT_FACES[rng.integers(len(FONT_FACES))]
    stroke = int(rng.integers(0, 4))
    canvas = 3 * RENDER_SIZE
    img = Image.new("L", (canvas, canvas))
    ImageDraw.Draw(img).text(
        (canvas / 2, canvas / 2),
        char,
        font=_font(face),
        fill=255,
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=255,
    )
    inv = np.linalg.inv(_affine(rng))  # Image.transform maps output to input pixels
    c = canvas / 2
    offset = np.array([c, c]) - inv @ np.array([c, c])
    img = img.transform(
        img.size,
        Image.Transform.AFFINE,
        (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1]),
        resample=Image.Resampling.BILINEAR,
    )
    box = img.getbbox()
    if box is None:
        raise DataError(f"glyph {char!r} of font {face} renders empty")
    glyph = img.crop(box)
    side = BLOCK * resolution
    longest = rng.uniform(0.75, 1.0) * side
    scale = longest / max(glyph.size)
    w = max(1, min(side, round(glyph.size[0] * scale)))
    h = max(1, min(side, round(glyph.size[1] * scale)))
    glyph = glyph.resize((w, h), Image.Resampling.BILINEAR)
    out = np.zeros((side, side), dtype=bool)
    x0, y0 = int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1))
    out[y0 : y0 + h, x0 : x0 + w] = np.asarray(glyph) >= 128
    return out


def block_counts(bitmap: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """optdigits' reduction: "on" pixels per ``block`` x ``block`` cell, scaled to uint8 0..255."""
    r = bitmap.shape[0] // block
    counts = bitmap.reshape(r, block, r, block).sum(axis=(1, 3))
    return np.rint(counts * (255.0 / block**2)).astype(np.uint8)


def glyph_label(index: int, n_classes: int = len(CHARACTERS)) -> int:
    """The class of image ``index`` (classes interleave)."""
    return index % n_classes


def make_glyph(seed: int, index: int, resolution: int = RESOLUTION) -> np.ndarray:
    """Image ``index`` of the source made with ``seed``: uint8 (resolution, resolution)."""
    rng = np.random.default_rng([seed, index])
    return block_counts(render_bitmap(CHARACTERS[glyph_label(index)], rng, resolution))


def make_glyphs(
    seed: int, per_class: int = IMAGES_PER_CLASS, resolution: int = RESOLUTION
) -> tuple[np.ndarray, np.ndarray]:
    """The whole source: images uint8 (N, r, r) and labels int64 (N), N = per_class x classes."""
    n = per_class * len(CHARACTERS)
    images = np.stack([make_glyph(seed, i, resolution) for i in range(n)])
    labels = np.array([glyph_label(i) for i in range(n)], dtype=np.int64)
    return images, labels


def class_name(label: int) -> str:
    """A readable, file-safe name of a class: the character and its code point."""
    char = CHARACTERS[label]
    return f"U+{ord(char):04X} {char}"


def list_glyphs(seed: int, per_class: int = IMAGES_PER_CLASS) -> pd.DataFrame:
    """The manifest rows of the source (``retention.acquire.data`` columns; no official split).

    ``source`` is ``synthetic_glyphs:<seed>:<index>``, which ``read_glyph`` renders.
    """
    n = per_class * len(CHARACTERS)
    labels = np.array([glyph_label(i) for i in range(n)], dtype=np.int64)
    return pd.DataFrame(
        {
            "sample_id": np.arange(n, dtype=np.int64),
            "label": labels,
            "class_name": [class_name(k) for k in labels],
            "split": "",
            "source": [f"{SOURCE}:{seed}:{i}" for i in range(n)],
            "group": "",
        }
    )


def read_glyph(source: str) -> Image.Image:
    """The RGB image of a ``synthetic_glyphs:<seed>:<index>`` manifest source."""
    try:
        _, seed, index = source.split(":")
        pixels = make_glyph(int(seed), int(index))
    except ValueError:
        raise DataError(f"'{source}' is not a {SOURCE}:<seed>:<index> source") from None
    return Image.fromarray(pixels).convert("RGB")

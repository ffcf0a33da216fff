"""The synthetic glyphs source (retention.acquire.glyphs) and its hook in retention.acquire.listing."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from retention.acquire import data, glyphs, listing
from retention.errors import DataError


def test_classes_are_distinct_and_hold_no_digit_or_digit_like_letter():
    chars = glyphs.CHARACTERS
    assert len(set(chars)) == len(chars) >= 100
    assert not set(chars) & set("0123456789OoIl")


def test_every_character_renders_in_every_face():
    """No class falls back to the font's missing-glyph box or to nothing."""

    def render(font, char):
        img = Image.new("L", (96, 96))
        ImageDraw.Draw(img).text((48, 48), char, font=font, fill=255, anchor="mm")
        return np.asarray(img)

    for face in glyphs.FONT_FACES:
        font = glyphs._font(face)
        missing = render(font, "\ue000")  # a private-use code point: the missing-glyph box
        for char in glyphs.CHARACTERS:
            img = render(font, char)
            assert img.max() > 0 and not np.array_equal(img, missing), (face, char)


def test_source_is_seeded_balanced_and_shaped_like_the_digits():
    images, labels = glyphs.make_glyphs(seed=3, per_class=2)
    n_classes = len(glyphs.CHARACTERS)
    assert images.shape == (2 * n_classes, 8, 8) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels, minlength=n_classes).tolist() == [2] * n_classes
    # optdigits' 17 grey levels (4 x 4 block counts), scaled to 0..255 like listing._digits
    levels = np.rint(np.arange(17) * 255 / 16).astype(np.uint8)
    assert set(np.unique(images)) <= set(levels)
    assert (images.reshape(len(images), -1).max(axis=1) == 255).mean() > 0.5  # strokes fill blocks
    again, _ = glyphs.make_glyphs(seed=3, per_class=2)
    other, _ = glyphs.make_glyphs(seed=4, per_class=2)
    assert np.array_equal(images, again)
    assert (images != other).any(axis=(1, 2)).mean() > 0.9
    # one image alone is the same as in the whole set (it depends on seed and index only)
    assert np.array_equal(glyphs.make_glyph(3, 141), images[141])
    # images of a class differ (random face, stroke, transform)
    same_class = images[labels == 0]
    assert not np.array_equal(same_class[0], same_class[1])


def test_block_counts_is_optdigits_reduction():
    bitmap = np.zeros((32, 32), dtype=bool)
    bitmap[:4, :4] = True  # one full block
    bitmap[4:6, 4:6] = True  # 4 of 16 pixels of the next diagonal block
    out = glyphs.block_counts(bitmap)
    assert out.shape == (8, 8) and out.dtype == np.uint8
    assert out[0, 0] == 255 and out[1, 1] == round(4 * 255 / 16)
    assert out.sum() == 255 + round(4 * 255 / 16)


def test_glyphs_is_a_dataset_source_of_retention_data():
    assert glyphs.SOURCE in listing.SOURCES
    listed = listing.list_samples(glyphs.SOURCE, split_seed=5)
    n_classes = len(glyphs.CHARACTERS)
    assert len(listed) == glyphs.IMAGES_PER_CLASS * n_classes
    assert listed["class_name"].nunique() == n_classes
    assert listed["source"].iloc[7] == f"{glyphs.SOURCE}:5:7"
    split = data.assign_split(listed, 0.25, split_seed=5)
    held = split.groupby("label")["split"].apply(lambda s: (s == "heldout").sum())
    assert set(held) == {round(0.25 * glyphs.IMAGES_PER_CLASS)}  # stratified
    subset = split.iloc[: 2 * n_classes]
    one = data.decode_images(subset, storage_size=16, workers=1)
    two = data.decode_images(subset, storage_size=16, workers=2)
    assert one.images.shape == (2 * n_classes, 16, 16, 3) and one.images.dtype == np.uint8
    assert np.array_equal(one.images, two.images)
    # the storage image is the 8 x 8 glyph upsampled, as for the digits
    small = glyphs.make_glyph(5, 9)
    assert np.array_equal(one.images[9], data.to_storage(Image.fromarray(small).convert("RGB"), 16))


def test_malformed_glyph_source_names_itself():
    with pytest.raises(DataError, match="synthetic_glyphs:x:1"):
        listing.read_image("synthetic_glyphs:x:1")

"""A shopper's photo of one item that is already catalog-like (light background, the item
centred and filling it) is searched as it is, except that a tall or wide one is padded to a
square on its own background: CLIP's preprocessing centre-crops, which dropped its ends."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clip_train.fashion import BACKGROUND
from search.benchmarks import scenes
from search.detection import query_photo

TROUSERS = "t10k-9011-red"  # a held-out pair of trousers: tall and narrow


def tall_photo() -> Image.Image:
    """128 x 256, the trousers from the top edge to the bottom one."""
    canvas = Image.new("RGB", (128, 256), BACKGROUND)
    return scenes.paste(canvas, scenes.cutout(TROUSERS, 256), (-64, 0))


def item_pixels(photo: Image.Image) -> int:
    rgb = np.asarray(photo, np.float32)
    return int((np.abs(rgb - np.array(BACKGROUND)).max(axis=-1) > 40).sum())


def centre_crop(photo: Image.Image) -> Image.Image:
    side = min(photo.size)
    left, top = (photo.width - side) // 2, (photo.height - side) // 2
    return photo.crop((left, top, left + side, top + side))


@pytest.mark.parametrize("shape", ["tall", "wide"])
def test_a_tall_or_wide_catalog_like_photo_is_padded_not_cropped(shape):
    photo = tall_photo() if shape == "tall" else tall_photo().transpose(Image.Transpose.ROTATE_90)
    ink = item_pixels(photo)
    assert item_pixels(centre_crop(photo)) < 0.8 * ink  # what the model saw before: no ends

    padded = query_photo(photo)

    assert padded.size == (256, 256)  # square: the model's centre crop keeps all of it
    assert item_pixels(padded) >= 0.98 * ink  # every part of the item is still there
    corners = np.asarray(padded, np.float32)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.abs(corners - np.array(BACKGROUND)).max() <= 3  # on the photo's own background


def test_a_square_catalog_like_photo_is_left_alone():
    photo = scenes.paste(Image.new("RGB", (128, 128), BACKGROUND), scenes.cutout(TROUSERS), (0, 0))
    assert query_photo(photo) is photo


@pytest.mark.parametrize("seed", range(3))
def test_a_faint_knit_on_a_fabric_is_cut_out_whole(seed):
    # A held-out red pullover filling a photo of a blue-grey fabric: at the busy-scene
    # threshold only a sleeve stood out, and the shopper's search was for a sleeve.
    photo = scenes.degraded("t10k-7474-red", "textured background", np.random.default_rng(seed))
    assert query_photo(photo).width >= 0.9 * photo.width


@pytest.mark.parametrize("index", [7474, 9714, 974, 4022])  # pullover, shirt, trousers, sandal
def test_a_white_garment_on_a_dark_floor_is_cut_out_white_not_grey(index):
    # Thin fabric shows the floor through it; unmixed against the median of the item, half
    # of it stayed mixed with the dark floor and a white shirt was searched as a grey one.
    photo = scenes.degraded(f"t10k-{index}-white", "dark background", np.random.default_rng(0))
    out = np.asarray(query_photo(photo), np.float32)
    ink = np.abs(out - np.array(BACKGROUND, np.float32)).sum(axis=-1) > 30
    assert out[ink].mean() >= 200, out[ink].mean()

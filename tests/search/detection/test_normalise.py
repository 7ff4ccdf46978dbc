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


def tilted(slug: str, degrees: float, background: str = "studio") -> Image.Image:
    """A held-out item photographed turned by ``degrees`` (counter-clockwise)."""
    turned = scenes.cutout(slug).rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    return scenes.paste(
        scenes.background(turned.size, background, np.random.default_rng(0)), turned, (0, 0)
    )


def box_fill(photo: Image.Image, away: float = 40) -> float:
    """The share of the item's box its pixels (``away`` from the light canvas) cover: an
    item square to the frame fills its box best."""
    rgb = np.asarray(photo, np.float32)
    ys, xs = np.nonzero(np.abs(rgb - np.array(BACKGROUND)).max(axis=-1) > away)
    return len(xs) / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))


# Held-out trousers, a dress, a coat and a bag: tall, tall, taller than wide, and wide.
UPRIGHT = ["t10k-9011-red", "t10k-13-blue", "t10k-6-red", "t10k-18-green"]


@pytest.mark.parametrize("degrees", [-20, -15, 12, 15, 22])
@pytest.mark.parametrize("slug", UPRIGHT)
def test_a_tilted_item_is_searched_upright(slug, degrees):
    upright = box_fill(
        scenes.paste(Image.new("RGB", (128, 128), BACKGROUND), scenes.cutout(slug), (0, 0))
    )
    photo = tilted(slug, degrees)
    assert box_fill(photo) < 0.93 * upright  # tilted, the item fills less of its box

    shot = query_photo(photo)

    assert box_fill(shot) > 0.95 * upright  # as square to the frame as the catalog shot
    assert shot.width == shot.height
    corners = np.asarray(shot, np.float32)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.abs(corners - np.array(BACKGROUND)).max() <= 3  # corners the turn uncovered


def on_fabric(item: Image.Image) -> Image.Image:
    photo = scenes.background((256, 256), "textured", np.random.default_rng(1))
    return scenes.paste(photo, item, (40, 50))


def test_a_tilted_item_on_a_fabric_is_searched_upright():
    slug = UPRIGHT[0]
    # The red item itself (``away``), not the faint halo of fabric its matte leaves.
    upright = box_fill(query_photo(on_fabric(scenes.cutout(slug))), away=120)
    turned = scenes.cutout(slug).rotate(-18, Image.Resampling.BICUBIC, expand=True)
    assert box_fill(tilted(slug, -18)) < 0.93 * box_fill(tilted(slug, 0))

    shot = query_photo(on_fabric(turned))

    assert box_fill(shot, away=120) > 0.95 * upright


@pytest.mark.parametrize("index", range(0, 200, 7))
def test_an_upright_catalog_shot_is_not_turned(index):
    # Shoes and bags with slanted outlines included: their smallest box is still upright.
    photo = scenes.paste(
        Image.new("RGB", (128, 128), BACKGROUND), scenes.cutout(f"t10k-{index}-red"), (0, 0)
    )
    assert query_photo(photo) is photo


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_a_tilted_photo_in_any_mode_is_turned_into_an_rgb_shot(mode):
    turned = scenes.cutout(UPRIGHT[0]).rotate(-18, Image.Resampling.BICUBIC, expand=True)
    if mode == "RGBA":  # a cut-out: transparent around the item, as a shop exports it
        photo = turned
    else:
        photo = tilted(UPRIGHT[0], -18).convert(mode)
    shot = query_photo(photo)
    assert shot.mode == "RGB" and shot.width == shot.height
    corners = np.asarray(shot, np.float32)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.min() > 200  # a light canvas, not black

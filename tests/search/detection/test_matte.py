"""Cutting an item out of a photo by its box (normalise.item_on_canvas): the item on the
catalog's canvas, also where the photo's own segmentation fails (a busy background, items
packed together), known items at known boxes."""

from __future__ import annotations

import numpy as np
import pytest

from clip_train.fashion import PALETTE, load_split
from clip_train.scenes import compose
from search.detection.foreground import rgb_on_white, segment
from search.detection.normalise import CANVAS, item_on_canvas

CASES = [
    (k, lay) for k in ("studio", "noise", "checks", "stripes") for lay in ("tiled", "scattered")
]


@pytest.mark.parametrize(("kind", "layout"), [*CASES, ("blobs", "tiled")])
def test_each_item_is_cut_out_onto_the_canvas(kind, layout):
    """On the noise and stripes scenes the photo's segmentation finds nothing (its threshold
    is above the items' contrast): the cut-outs were blank canvas before the local reading."""
    images, _ = load_split("t10k")
    rng = np.random.default_rng(11)
    garments = [(images[i], PALETTE["blue"]) for i in (0, 1, 2)]  # a boot, a pullover, trousers
    photo, boxes = compose(garments, rng, kind=kind, layout=layout, gaps=(-0.3, -0.1))
    fg, rgb = segment(photo), rgb_on_white(photo)
    for box in boxes:
        cut = np.asarray(item_on_canvas(rgb, fg, box), np.float32)
        blue = (cut[..., 2] - cut[..., 0] > 50) & (cut[..., 2] - cut[..., 1] > 30)
        assert blue.mean() > 0.08, (kind, layout, blue.mean())  # the item is there
        corners = np.concatenate([cut[:3, :3], cut[:3, -3:], cut[-3:, :3], cut[-3:, -3:]])
        close = np.abs(corners.reshape(-1, 3) - np.array(CANVAS)).max(axis=1) < 40
        assert close.mean() > 0.6  # and the background is mostly the canvas, not the scene

"""A shopper's photo -> a catalog-like shot of its main item, before it is embedded.

Catalog photos show one item, centred, filling a light square. A phone photo has it small,
off-centre, on another background, darker. ``catalog_look`` crops to the main detected item
with a margin, puts it on a light square canvas (the background replaced through a soft matte)
and, for photos that are not on a light background, brightens the item a little. A photo that
already looks like a catalog shot is kept whole, padded to a square on its own background when
it is tall or wide (``squared``); where nothing is found it is returned as it is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from search.detection.base import Detection, Detector
from search.detection.foreground import (
    BLUR,
    ONE_ITEM_K,
    Foreground,
    _clean,
    distance,
    rgb_on_white,
    segment,
    threshold_for,
)

CANVAS = (248, 248, 246)  # the catalog's studio background (the demo catalog's own)
MARGIN = 0.05  # of the item's longer side, each way (catalog shots leave about this much)
MAX_GAIN = 1.6  # brightening of an item on a dark photo, at most
LIGHT_BACKGROUND = 200.0  # border luminance above which a photo counts as a studio shot
LOCAL_WHEN = 0.5  # share of "foreground" around a box at which its own background is read
MIN_RING = 64  # pixels around the box needed to read a background from them
MIN_FILL = 0.15  # share of a box an item's matte must cover to be believed
SOLID_PERCENTILE = 90  # of the item's distances from the background: its fully opaque parts
MAX_TILT = 25  # degrees, either way: how far a tilted item is turned back upright at most
# An item is tilted when turning it makes its box this much smaller than it is upright; a
# catalog shot's own box is already the smallest (0.99 to 1.0 for every demo category).
TILT_GAIN = 0.95
MIN_TILT = 10
TILT_SIDE = 128  # the tilt is read on the item's mask at this size


def already_catalog_like(fg: Foreground, main: Detection) -> bool:
    x, y, w, h = main.box
    centred = abs(x + w / 2 - 0.5) < 0.1 and abs(y + h / 2 - 0.5) < 0.1
    return fg.background_luminance >= LIGHT_BACKGROUND and max(w, h) >= 0.8 and centred


def catalog_look(image: Image.Image, detector: Detector | None = None) -> Image.Image:
    """The main item (largest detection) as a catalog shot, turned upright when it is tilted
    (``upright``); ``detector`` defaults to the foreground segmentation itself (its boxes),
    any other detector supplies the box only."""
    fg = segment(image, ONE_ITEM_K)
    # Whether the photo is a catalog shot already is the segmentation's call: its box is the
    # item's exact extent, and a detector trained on scenes of several items may see a
    # full-frame item a little smaller than it is.
    if fg.boxes and already_catalog_like(fg, max(fg.boxes, key=lambda d: d.area)):
        # The photo is kept whole: every part of it the segmentation found (a pair of shoes
        # is two), grown as the matte's mask is, bounds the crop after a turn.
        grown = Image.fromarray(fg.mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))
        mask = grown.resize(image.size, Image.Resampling.BILINEAR).point(lambda v: 255 * (v > 127))
        shot = squared(image, fg.background)
        return upright(shot, squared(mask.convert("RGB"), np.zeros(3)).convert("L"), fg.background)
    boxes = detector.detect(image) if detector is not None else fg.boxes
    if not boxes:
        return image
    main = max(boxes, key=lambda d: d.area)
    return upright(*_on_canvas(rgb_on_white(image), fg, main.box), np.array(CANVAS, np.float32))


def squared(image: Image.Image, background: np.ndarray) -> Image.Image:
    """A tall or wide photo centred on a square of its ``background`` colour (a square one as
    it is): CLIP's preprocessing centre-crops to a square, which drops the ends of an item
    that fills a tall or wide photo."""
    if image.width == image.height:
        return image
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), tuple(int(round(c)) for c in background))
    canvas.paste(rgb_on_white(image), ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def item_on_canvas(
    rgb: Image.Image, fg: Foreground, box: tuple[float, float, float, float]
) -> Image.Image:
    """``_on_canvas``'s shot."""
    return _on_canvas(rgb, fg, box)[0]


def _on_canvas(
    rgb: Image.Image, fg: Foreground, box: tuple[float, float, float, float]
) -> tuple[Image.Image, Image.Image]:
    """The ``box`` region, squared with a margin, background matted out onto ``CANVAS``.

    The matte is the photo's segmentation ``fg``, unless that failed for this box (``_failed``:
    a busy background, items packed together); then the background is read from the band
    just outside the box (``local_foreground``), and failing that the box is kept whole.
    Returned with the item's mask on the same square (what ``upright`` turns it by)."""
    W, H = rgb.size
    x, y, w, h = box[0] * W, box[1] * H, box[2] * W, box[3] * H
    side = max(2, round(max(w, h) * (1 + 2 * MARGIN)))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    region = (max(0, left), max(0, top), min(W, left + side), min(H, top + side))
    crop = np.asarray(rgb.crop(region), dtype=np.float32)
    grown = Image.fromarray(fg.mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))
    inside = np.asarray(grown.resize((W, H), Image.Resampling.BILINEAR).crop(region)) > 127
    ring = _ring(crop.shape[:2], region, (x, y, w, h))
    if ring.sum() >= MIN_RING and _failed(inside, ring):
        fg, inside = local_foreground(crop, ring)
        if _failed(inside, ring):  # no reading of this background: the whole box, soft matte
            inside = ~ring
    gain = _gain(crop, inside, fg)
    crop, bg = crop * gain, fg.background * gain
    # Colour unmixing: an edge pixel is alpha * item + (1 - alpha) * background, with alpha
    # from its distance to the background over the item's own; the background share is
    # swapped for the canvas, so edges fade to white as in a studio shot, not to the old
    # background. Outside the (slightly grown) item mask: canvas only. The item's own
    # distance is that of its most solid parts (``SOLID_PERCENTILE``): a thin fabric shows
    # the background through much of it, and taking the median as solid left that half
    # mixed with a dark floor (white read as grey, orange as brown).
    dist = distance(crop, bg)
    solid = dist[inside & (dist > 2 * fg.threshold * gain)]
    reach = (
        float(np.percentile(solid, SOLID_PERCENTILE))
        if solid.size
        else float(dist.max(initial=1.0))
    )
    alpha = np.clip(dist / max(reach, 1.0), 0.0, 1.0)[..., None]
    item = crop + (1 - alpha) * (np.array(CANVAS, np.float32) - bg)
    crop = np.where(inside[..., None], item, np.array(CANVAS, np.float32))
    canvas = np.empty((side, side, 3), np.float32)
    canvas[:] = CANVAS
    ox, oy = region[0] - left, region[1] - top
    canvas[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    mask = np.zeros((side, side), np.uint8)
    mask[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = inside * 255
    shot = Image.fromarray(canvas.clip(0, 255).astype(np.uint8), "RGB")
    return shot, Image.fromarray(mask)


def tilt(mask: np.ndarray) -> float:
    """Degrees (counter-clockwise, as ``Image.rotate``) that turn the item whose pixels are
    ``mask`` upright, 0 when it is upright already. Upright is the turn that makes its box
    smallest (a garment, bag or shoe is photographed square to the frame), taken only when
    that shrinks the box to ``TILT_GAIN`` of its area or less. The box is the pixels' 2nd to
    98th percentile each way, so specks of a textured floor left in the mask do not stretch
    it."""
    ys, xs = np.nonzero(mask)
    if xs.size < 16:
        return 0.0
    step = max(1, xs.size // 2048)  # every pixel is not needed for a box's percentiles
    xs, ys = xs[::step], ys[::step]
    # Image rows run down: turning the picture counter-clockwise by a turns each point
    # (x, y) to (x cos a + y sin a, -x sin a + y cos a).
    angles = np.arange(-MAX_TILT, MAX_TILT + 1)
    rad = np.radians(angles)[:, None]
    x, y = xs - xs.mean(), ys - ys.mean()
    tx, ty = x * np.cos(rad) + y * np.sin(rad), -x * np.sin(rad) + y * np.cos(rad)
    spread = lambda v: np.diff(np.percentile(v, [2, 98], axis=1), axis=0)[0]  # noqa: E731
    areas = spread(tx) * spread(ty)
    best = int(np.argmin(areas))
    # Smallest at the end of the range: the box keeps shrinking past it, which a tilted
    # item's does not (a diagonal shape, or what is left of a textured floor).
    if best in (0, len(angles) - 1) or areas[best] > TILT_GAIN * areas[MAX_TILT]:
        return 0.0
    return float(angles[best]) if abs(angles[best]) >= MIN_TILT else 0.0


def upright(image: Image.Image, mask: Image.Image, background: np.ndarray) -> Image.Image:
    """A shot whose item (``mask``, same size) is tilted turned upright (``tilt``) and
    squared again around it with the catalog's margin, the uncovered corners ``background``;
    an upright one as it is. CLIP models trained on upright catalog shots take a garment
    tilted by 15 degrees for another category about a third more often.

    The item's new box comes from its turned mask, not from a new matte: a white item on a
    light floor would lose its faint parts to one."""
    small = mask.copy()
    small.thumbnail((TILT_SIDE, TILT_SIDE), Image.Resampling.NEAREST)
    angle = tilt(np.asarray(small) > 127)
    if not angle:
        return image
    fill = tuple(int(round(c)) for c in background)
    turned = rgb_on_white(image).rotate(
        angle, Image.Resampling.BICUBIC, expand=True, fillcolor=fill
    )
    box = mask.rotate(angle, Image.Resampling.NEAREST, expand=True).getbbox()
    if box is None:
        return image
    w, h = box[2] - box[0], box[3] - box[1]
    side = max(2, round(max(w, h) * (1 + 2 * MARGIN)))
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(turned.crop(box), ((side - w) // 2, (side - h) // 2))
    return canvas


def _failed(inside: np.ndarray, ring: np.ndarray) -> bool:
    """A matte that makes no sense for an item's box: most of its surroundings are
    "foreground" (a busy background read as items) or almost none of the box is (the item
    taken for background texture; a garment fills at least a third of its box)."""
    return inside[ring].mean() > LOCAL_WHEN or inside[~ring].mean() < MIN_FILL


def _ring(
    shape: tuple[int, int], region: tuple[int, int, int, int], box: tuple[float, ...]
) -> np.ndarray:
    """bool [h, w] over the region: its pixels outside the box (the box's surroundings)."""
    h, w = shape
    x0, y0 = int(box[0]) - region[0], int(box[1]) - region[1]
    x1, y1 = int(np.ceil(box[0] + box[2])) - region[0], int(np.ceil(box[1] + box[3])) - region[1]
    ring = np.ones((h, w), bool)
    ring[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = False
    return ring


def local_foreground(crop: np.ndarray, ring: np.ndarray) -> tuple[Foreground, np.ndarray]:
    """The region's own background (median colour and spread of the ``ring`` pixels, as
    ``segment`` reads the photo's border) and foreground mask, slightly grown."""
    blurred = np.asarray(
        Image.fromarray(crop.clip(0, 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(BLUR)),
        np.float32,
    )
    background = np.median(blurred[ring], axis=0)
    threshold = threshold_for(blurred[ring], background)
    mask = _clean(distance(blurred, background) > threshold)
    grown = np.asarray(
        Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))
    )
    return Foreground(mask, background, threshold, []), grown > 127


def _gain(crop: np.ndarray, inside: np.ndarray, fg: Foreground) -> float:
    """Mild auto-contrast: on a photo without a light background, scale the item so its
    brightest part reaches a studio level (at most ``MAX_GAIN``; black stays dark)."""
    if fg.background_luminance >= LIGHT_BACKGROUND:
        return 1.0
    item = crop.max(axis=-1)[inside & (distance(crop, fg.background) > fg.threshold)]
    if item.size == 0:
        return 1.0
    peak = float(np.percentile(item, 99))
    return float(np.clip(235.0 / max(peak, 1.0), 1.0, MAX_GAIN))

"""Zero-shot detection without weights: foreground against the background seen at the border.

Catalog-like photos, collages, side-by-side and grid outfit photos put items on a background
that also fills the photo's border (white, grey, dark, a texture). The background colour is
the border's median; a pixel is foreground when it is farther from it than the border's own
spread allows; morphological opening/closing (PIL min/max filters) removes specks and joins
an item's parts; each connected component is one item. Pure numpy/PIL, a few ms per photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from search.detection.base import Detection, clamp_box

WORK_SIDE = 192  # segmentation runs on the photo resized to this longer side
BLUR = 2  # box blur radius at work scale: averages background texture away
MIN_THRESHOLD = 14.0  # RGB distance a clean background still needs (white item on white)
# A shopper's photo of one item, read at twice this threshold, lost a thin knit's body to its
# fabric background (only the sleeves were kept).
ONE_ITEM_K = 1.0
MIN_AREA = 0.003  # components smaller than this share of the photo are specks
PIECE = 0.3  # a component this share of a neighbour's pixels, next to it, is a piece of it
PIECE_GAP = 3  # work pixels: how near a piece must be
WHOLE_PHOTO = 0.97  # a "component" spanning this share both ways is the background failing
BAND_FILL = 0.9  # a band across the photo from its edge filling this share of its box: scenery


@dataclass
class Foreground:
    """The segmentation of one photo, at work scale."""

    mask: np.ndarray  # bool [h, w], after cleanup
    background: np.ndarray  # RGB float [3]
    threshold: float
    boxes: list[Detection]

    @property
    def background_luminance(self) -> float:
        return float(self.background @ np.array([0.299, 0.587, 0.114]))


def rgb_on_white(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited onto white (a cut-out product)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def border_pixels(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    band = max(2, round(0.04 * min(h, w)))
    parts = [arr[:band], arr[-band:], arr[:, :band], arr[:, -band:]]
    return np.concatenate([p.reshape(-1, 3) for p in parts])


def distance(arr: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.sqrt(((arr - colour) ** 2).sum(axis=-1))


def _clean(mask: np.ndarray) -> np.ndarray:
    """Opening (drop specks and texture), then closing (join an item's strokes)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    img = img.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    img = img.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))
    return np.asarray(img) > 127


def components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """8-connected components as (x0, y0, x1, y1, pixels), x1/y1 exclusive; row runs joined
    with a union-find (few runs per row: fast in plain Python)."""
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs: list[tuple[int, int, int, int]] = []  # (y, start, end, run label)
    previous: list[tuple[int, int, int]] = []
    for y, row in enumerate(mask):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.view(np.uint8), [0]))))
        current = []
        for s, e in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            label = len(parent)
            parent.append(label)
            for ps, pe, pl in previous:
                if ps <= e and pe >= s:  # touching, diagonals included
                    a, b = find(pl), find(label)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
            current.append((s, e, label))
            runs.append((y, s, e, label))
        previous = current
    stats: dict[int, list[int]] = {}
    for y, s, e, label in runs:
        st = stats.setdefault(find(label), [s, y, e, y + 1, 0])
        st[0], st[1] = min(st[0], s), min(st[1], y)
        st[2], st[3] = max(st[2], e), max(st[3], y + 1)
        st[4] += e - s
    return [tuple(v) for v in stats.values()]


def _gap(a: list[int], b: list[int]) -> int:
    """Pixels between two boxes (0 when they touch or overlap)."""
    return max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3], 0)


def _merge(comps: list[list[int]]) -> list[list[int]]:
    """Pieces join their item: a piece mostly inside another item's box (a strap, a sole),
    or a much smaller piece next to it (a bag's faint handle). Items of a collage are of
    comparable size and apart, so they stay separate."""
    comps = sorted(comps, key=lambda c: -c[4])
    kept: list[list[int]] = []
    for c in comps:
        area = (c[2] - c[0]) * (c[3] - c[1])
        for k in kept:
            ix = max(0, min(c[2], k[2]) - max(c[0], k[0]))
            iy = max(0, min(c[3], k[3]) - max(c[1], k[1]))
            if ix * iy > 0.5 * area or (c[4] < PIECE * k[4] and _gap(c, k) <= PIECE_GAP):
                k[:4] = [min(c[0], k[0]), min(c[1], k[1]), max(c[2], k[2]), max(c[3], k[3])]
                k[4] += c[4]
                break
        else:
            kept.append(list(c))
    return kept


def _background_part(x0: int, y0: int, x1: int, y1: int, w: int, h: int, fill: float) -> bool:
    """A "component" that is the scene, not an item: the whole photo (the background read
    from the border failing), or a solid band from one side of the photo to the other that
    starts at its edge (a sky above a field, a floor, a wall), which no product looks like."""
    bw, bh = (x1 - x0) / w, (y1 - y0) / h
    if bw >= WHOLE_PHOTO and bh >= WHOLE_PHOTO and fill > 0.85:
        return True
    across = (bw >= WHOLE_PHOTO and (y0 == 0 or y1 == h)) or (
        bh >= WHOLE_PHOTO and (x0 == 0 or x1 == w)
    )
    return across and fill > BAND_FILL


def threshold_for(pixels: np.ndarray, background: np.ndarray, k: float = 2.0) -> float:
    """How far from ``background`` a pixel must be to be an item, given background ``pixels``
    (the border, or the ring around a box): ``k`` times their spread, plus a small margin.
    The spread is 3x their median distance, about the 95th percentile of a noisy texture's
    (the median, not a high percentile, so that an item touching the border does not count
    as texture)."""
    spread = 3.0 * float(np.median(distance(pixels, background)))
    return max(MIN_THRESHOLD, k * spread + 6.0)


def segment(image: Image.Image, k: float = 2.0) -> Foreground:
    """Background colour and spread from the border, foreground mask, one box per item.

    ``k``: the threshold in spreads of the border (``threshold_for``). 2 keeps several items
    apart on a busy background (blobs, noise); a photo of one item is read at
    ``ONE_ITEM_K``, which keeps the faint parts of a garment on a fabric."""
    rgb = rgb_on_white(image)
    scale = WORK_SIDE / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small = rgb.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.BoxBlur(BLUR))
    arr = np.asarray(small, dtype=np.float32)
    border = border_pixels(arr)
    background = np.median(border, axis=0)
    threshold = threshold_for(border, background, k)
    dist = distance(arr, background)
    mask = _clean(dist > threshold)
    h, w = mask.shape
    boxes = []
    for x0, y0, x1, y1, pixels in _merge([list(c) for c in components(mask)]):
        bw, bh = (x1 - x0) / w, (y1 - y0) / h
        fill = pixels / ((x1 - x0) * (y1 - y0))
        if pixels < MIN_AREA * w * h or _background_part(x0, y0, x1, y1, w, h, fill):
            continue
        contrast = float(np.median(dist[y0:y1, x0:x1][mask[y0:y1, x0:x1]])) / threshold
        confidence = 0.5 * (1 - np.exp(-(contrast - 1))) + 0.5 * min(1.0, fill / 0.3)
        boxes.append(
            Detection(
                clamp_box((x0 / w, y0 / h, bw, bh)), round(float(np.clip(confidence, 0, 1)), 4)
            )
        )
    boxes.sort(key=lambda d: -d.area)
    return Foreground(mask, background, threshold, boxes)


class ForegroundDetector:
    """``DETECTOR=foreground``: no weights, any photo whose border shows the background."""

    name = "foreground"

    def detect(self, image: Image.Image, *, max_items: int = 8) -> list[Detection]:
        return segment(image).boxes[:max_items]

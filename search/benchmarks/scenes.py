"""Shoppers' photos built from held-out catalog items, seeded: collages of 2 to 4 items and
single items that are not studio shots (small, off-centre, rotated, darker, on other
backgrounds).

Items are cut out of their Fashion-MNIST source (the demo product's slug names it), coloured
exactly as the catalog colours them (``clip_train.fashion.colourise``), with the ink as alpha,
so they can be put on any background.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image, ImageFilter

from clip_train import scenes as synthetic
from clip_train.fashion import BACKGROUND, PALETTE, load_split

Box = tuple[float, float, float, float]
DEGRADATIONS = (
    "original",
    "half size",
    "off-centre",
    "rotated 15°",
    "darker x0.6",
    "grey background",
    "dark background",
    "textured background",
    "phone-like",
)
LAYOUTS = ("row", "grid", "column")
# Busy scenes: what the foreground detector cannot do. Touching or overlapping neighbours
# (items 85-100% of a tile, tiles overlapping by 10-30%: the garments' own margins leave them
# touching or overlapping a little) and scattered items, on these backgrounds in turn.
BUSY_BACKGROUNDS = ("noise", "blobs", "stripes", "checks", "studio", "grey", "dark", "gradient")
TOUCHING, TOUCHING_SCALES = (-0.3, -0.1), (0.85, 1.0)


@cache
def _split(split: str) -> tuple[np.ndarray, np.ndarray]:
    return load_split(split)


def cutout(slug: str, size: int = 128) -> Image.Image:
    """The demo product ``{split}-{index}-{colour}`` as an RGBA cut-out (colourise's look)."""
    split, index, colour = slug.split("-", 2)
    gray = _split(split)[0][int(index)]
    ink = Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BICUBIC)
    ink = ink.filter(ImageFilter.GaussianBlur(radius=size / 224))
    alpha = np.asarray(ink, dtype=np.float32)[..., None] / 255.0
    rgb = np.array(PALETTE[colour], dtype=np.float32) * (0.75 + 0.25 * alpha)
    rgba = np.concatenate([rgb, alpha * 255], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def ink_box(item: Image.Image, at: tuple[int, int], canvas: tuple[int, int]) -> Box:
    """The visible item's box (alpha > 10%) as fractions of the canvas."""
    x0, y0, x1, y1 = item.getchannel("A").point(lambda a: 255 if a > 25 else 0).getbbox()
    W, H = canvas
    return ((at[0] + x0) / W, (at[1] + y0) / H, (x1 - x0) / W, (y1 - y0) / H)


def background(size: tuple[int, int], kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = size
    if kind == "textured":
        # A blue-grey fabric: blotchy noise and a fine weave.
        base = np.array((150, 160, 175), np.float32)
        noise = rng.normal(0, 10, (h // 4 + 1, w // 4 + 1, 1)).repeat(4, 0).repeat(4, 1)[:h, :w]
        stripes = 8 * np.sin(np.arange(w) / 3.0)[None, :, None]
        return Image.fromarray((base + noise + stripes).clip(0, 255).astype(np.uint8), "RGB")
    colour = {"studio": BACKGROUND, "grey": (128, 128, 128), "dark": (30, 30, 30)}[kind]
    return Image.new("RGB", size, colour)


def paste(canvas: Image.Image, item: Image.Image, at: tuple[int, int]) -> Image.Image:
    out = canvas.convert("RGBA")
    out.alpha_composite(item, at)
    return out.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def degraded(slug: str, kind: str, rng: np.random.Generator) -> Image.Image:
    """One item as a shopper might photograph it (``DEGRADATIONS``)."""
    item = cutout(slug)
    if kind == "half size":
        return paste(background((128, 128), "studio", rng), item.resize((64, 64)), (32, 32))
    if kind in ("off-centre", "phone-like"):
        side = 256 if kind == "off-centre" else 224
        small = item if kind == "off-centre" else item.rotate(int(rng.integers(-8, 9)), expand=True)
        free = side - small.width
        at = (int(rng.integers(0, free // 4 + 1)), int(rng.integers(0, free + 1)))
        if rng.random() < 0.5:
            at = (free - at[0], at[1])
        bg = "studio" if kind == "off-centre" else "textured"
        photo = paste(background((side, side), bg, rng), small, at)
        if kind == "phone-like":
            dark = np.asarray(photo, np.float32) * 0.8
            photo = _jpeg(Image.fromarray(dark.astype(np.uint8), "RGB"), 70)
        return photo
    if kind == "rotated 15°":
        # Fixed, drawing nothing from ``rng``: the other kinds' photos stay as they were.
        turned = item.rotate(15, Image.Resampling.BICUBIC, expand=True)
        return paste(background(turned.size, "studio", rng), turned, (0, 0))
    bg = {"grey background": "grey", "dark background": "dark", "textured background": "textured"}
    photo = paste(background((128, 128), bg.get(kind, "studio"), rng), item, (0, 0))
    if kind == "darker x0.6":
        photo = Image.fromarray((np.asarray(photo, np.float32) * 0.6).astype(np.uint8), "RGB")
    return photo


def collage(
    slugs: list[str], layout: str, rng: np.random.Generator, bg: str = "studio"
) -> tuple[Image.Image, list[Box]]:
    """2 to 4 items side by side (``row``), in a 2x2 ``grid`` or an outfit ``column``, each
    tile jittered a little; returns the photo and each item's true box, in order."""
    tile, gap = 128, int(rng.integers(8, 25))
    n = len(slugs)
    cols = {"row": n, "column": 1, "grid": 2}[layout]
    rows = -(-n // cols)
    W, H = cols * tile + (cols + 1) * gap, rows * tile + (rows + 1) * gap
    photo = background((W, H), bg, rng)
    boxes = []
    for i, slug in enumerate(slugs):
        scale = float(rng.uniform(0.75, 1.0))
        item = cutout(slug, round(tile * scale))
        r, c = divmod(i, cols)
        at = (
            gap + c * (tile + gap) + int(rng.integers(0, tile - item.width + 1)),
            gap + r * (tile + gap) + int(rng.integers(0, tile - item.height + 1)),
        )
        photo = paste(photo, item, at)
        boxes.append(ink_box(item, at, (W, H)))
    return photo, boxes


def busy(slugs: list[str], rng: np.random.Generator, index: int) -> tuple[Image.Image, list[Box]]:
    """Scene ``index`` of the busy kind: the demo products ``slugs`` (catalog colours),
    touching (even ``index``) or scattered with overlaps (odd), on ``BUSY_BACKGROUNDS`` in
    turn; the photo and each item's true box, in order (``clip_train.scenes.compose``)."""
    garments = []
    for slug in slugs:
        split, item, colour = slug.split("-", 2)
        garments.append((_split(split)[0][int(item)], PALETTE[colour]))
    kind = BUSY_BACKGROUNDS[(index // 2) % len(BUSY_BACKGROUNDS)]
    layout = "tiled" if index % 2 == 0 else "scattered"
    return synthetic.compose(
        garments, rng, kind=kind, layout=layout, gaps=TOUCHING, scales=TOUCHING_SCALES
    )


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0

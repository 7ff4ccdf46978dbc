"""Synthetic shop-the-look scenes for training and measuring a detector, seeded, no Django.

A scene is several Fashion-MNIST garments, coloured as the demo catalog colours them, on a
background a shopper's photo might have (studio white, grey, dark, a plain colour, fabric
noise, stripes, checks, a gradient, busy blobs) under uneven lighting, with each item's true
box. Items are laid out either as tiles (a row, a column, a 2x2 grid: collages and outfit
photos) whose gaps can be negative, so neighbours touch or overlap, or scattered at random
with a bounded overlap. What the weightless foreground detector cannot handle (touching
items, busy backgrounds) is the point: the trained detector learns it here.

Training draws from the *train* split; the evaluation (``search.benchmarks.scenes``) builds
held-out scenes from the demo catalog's *t10k* items with its own seeds.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from clip_train.fashion import BACKGROUND, PALETTE

Box = tuple[float, float, float, float]  # x, y, w, h as fractions of the photo
Garment = tuple[np.ndarray, tuple[int, int, int] | None]  # 28x28 ink, RGB colour
BACKGROUND_KINDS = (
    "studio",
    "grey",
    "dark",
    "plain",
    "noise",
    "stripes",
    "checks",
    "gradient",
    "blobs",
)
# Training draws the busy backgrounds twice as often: they are where detection is hard.
KIND_WEIGHTS = np.array([1, 1, 1, 1, 2, 2, 2, 1, 2], np.float64) / 13
MAX_OVERLAP = 0.35  # share of the smaller item's box another item may cover (scattered)


def garment_cutout(gray: np.ndarray, colour: tuple[int, int, int], size: int) -> Image.Image:
    """An item as an RGBA cut-out ``size`` px wide, ink as alpha (``clip_train.fashion``'s
    colouring: darker ink -> a slightly darker shade of the colour)."""
    ink = Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BICUBIC)
    ink = ink.filter(ImageFilter.GaussianBlur(radius=size / 224))
    alpha = np.asarray(ink, dtype=np.float32)[..., None] / 255.0
    rgb = np.array(colour, dtype=np.float32) * (0.75 + 0.25 * alpha)
    rgba = np.concatenate([rgb, alpha * 255], axis=-1).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def ink_bbox(item: Image.Image) -> tuple[int, int, int, int] | None:
    """The visible item (alpha above 10%) in the cut-out's pixels, x1/y1 exclusive."""
    return item.getchannel("A").point(lambda a: 255 if a > 25 else 0).getbbox()


def background(w: int, h: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """float32 [h, w, 3], 0..255."""
    if kind in ("studio", "grey", "dark"):
        colour = {"studio": BACKGROUND, "grey": (128, 128, 128), "dark": (30, 30, 30)}[kind]
        return np.broadcast_to(np.array(colour, np.float32), (h, w, 3)).copy()
    base = rng.uniform(20, 240, 3).astype(np.float32)
    if kind == "plain":
        return np.broadcast_to(base, (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":  # blotchy fabric
        cell = int(rng.integers(2, 9))
        noise = rng.normal(0, rng.uniform(6, 22), (h // cell + 1, w // cell + 1, 3))
        noise = noise.repeat(cell, 0).repeat(cell, 1)[:h, :w]
        return base + noise.astype(np.float32)
    if kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(3, 24)
        wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
        other = rng.uniform(20, 240, 3).astype(np.float32)
        mix = (0.5 + 0.5 * wave)[..., None] * rng.uniform(0.2, 1.0)
        return base * (1 - mix) + other * mix
    if kind == "checks":
        cell = rng.uniform(4, 30)
        on = ((xx // cell + yy // cell) % 2)[..., None]
        other = base + rng.uniform(-70, 70, 3).astype(np.float32)
        return base * (1 - on) + other * on
    if kind == "gradient":
        other = rng.uniform(20, 240, 3).astype(np.float32)
        t = xx / max(w - 1, 1) * rng.uniform(-1, 1) + yy / max(h - 1, 1) * rng.uniform(-1, 1)
        t = ((t - t.min()) / max(float(np.ptp(t)), 1e-6))[..., None]
        return base * (1 - t) + other * t
    # blobs: a busy scene, blurred shapes of random colours (room, street, furniture)
    img = Image.fromarray(np.broadcast_to(base, (h, w, 3)).clip(0, 255).astype(np.uint8))
    layer = Image.new("RGB", (w, h))
    layer.paste(img)
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(4, 16))):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.1, 0.6) * h
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 4)))
    return np.asarray(layer, np.float32)


def _overlap(a: list[float], b: list[float]) -> float:
    """The intersection as a share of the smaller box (x0, y0, x1, y1)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / max(smaller, 1e-6)


def _tiled(
    sizes: list[int], rng: np.random.Generator, gaps: tuple[float, float] = (-0.18, 0.2)
) -> tuple[int, int, list[tuple[int, int]]]:
    """A row, column or 2x2 grid; the gap between tiles (a share of the tile, drawn from
    ``gaps``) may be negative: neighbours touch or overlap."""
    n, tile = len(sizes), max(sizes)
    layout = rng.choice(["row", "column", "grid"] if n > 2 else ["row", "column"])
    cols = {"row": n, "column": 1, "grid": 2}[str(layout)]
    rows = -(-n // cols)
    gap = int(rng.uniform(*gaps) * tile)
    margin = int(rng.integers(4, max(5, tile // 4)))
    step = tile + gap
    W, H = 2 * margin + (cols - 1) * step + tile, 2 * margin + (rows - 1) * step + tile
    spots = []
    for i, s in enumerate(sizes):
        r, c = divmod(i, cols)
        jx, jy = int(rng.integers(0, tile - s + 1)), int(rng.integers(0, tile - s + 1))
        spots.append((margin + c * step + jx, margin + r * step + jy))
    return W, H, spots


def _scattered(
    sizes: list[int], rng: np.random.Generator
) -> tuple[int, int, list[tuple[int, int]]]:
    """Random places on a canvas a little larger than the items need, overlap bounded."""
    area = sum(s * s for s in sizes)
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    side = np.sqrt(area * rng.uniform(1.3, 3.0))
    W = max(int(side * np.sqrt(aspect)), max(sizes) + 2)
    H = max(int(side / np.sqrt(aspect)), max(sizes) + 2)
    placed: list[list[float]] = []
    spots = []
    for s in sizes:
        for _ in range(40):
            x, y = int(rng.integers(0, W - s + 1)), int(rng.integers(0, H - s + 1))
            box = [x, y, x + s, y + s]
            if all(_overlap(box, p) <= MAX_OVERLAP for p in placed):
                break
        placed.append(box)
        spots.append((x, y))
    return W, H, spots


def _lit(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven light: a global gain, a gradient across the photo, sensor noise."""
    h, w = arr.shape[:2]
    gain = rng.uniform(0.55, 1.25)
    ramp = np.linspace(-1, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
    ramp = ramp[None, :, None] if ramp.size == w else ramp[:, None, None]
    arr = arr * gain * (1 + rng.uniform(-0.25, 0.25) * ramp)
    return arr + rng.normal(0, rng.uniform(0, 6), arr.shape).astype(np.float32)


def compose(
    garments: list[Garment],
    rng: np.random.Generator,
    *,
    kind: str | None = None,
    tile: int = 128,
    layout: str | None = None,
    gaps: tuple[float, float] = (-0.18, 0.2),
    scales: tuple[float, float] = (0.55, 1.0),
) -> tuple[Image.Image, list[Box]]:
    """A photo of ``garments`` (in this order) and each one's true box, in the same order.

    ``kind`` picks the background (``BACKGROUND_KINDS``, random by default); items are about
    ``tile`` px, each scaled by a share drawn from ``scales`` (a little rotated sometimes), ``layout`` "tiled"
    (gaps drawn from ``gaps``, shares of a tile) or "scattered" (random by default). A
    garment whose colour is None gets a random one that stands out from the background under
    it (an invisible item would teach a detector to see items in plain texture).
    """
    kind = kind or str(rng.choice(BACKGROUND_KINDS))
    sides = [max(16, round(tile * rng.uniform(*scales))) for _ in garments]
    angles = [float(rng.uniform(-12, 12)) if rng.random() < 0.3 else 0.0 for _ in garments]
    sizes = [_rotated_side(s, a) for s, a in zip(sides, angles, strict=True)]
    layout = layout or ("tiled" if rng.random() < 0.5 else "scattered")
    if len(garments) > 1 and layout == "tiled":
        W, H, spots = _tiled(sizes, rng, gaps)
    else:
        W, H, spots = _scattered(sizes or [tile], rng)
        spots = spots[: len(garments)]  # an empty scene is a background of one item's size
    bg = background(W, H, kind, rng)
    canvas = Image.fromarray(bg.clip(0, 255).astype(np.uint8), "RGB").convert("RGBA")
    boxes = []
    for (gray, colour), side, angle, (x, y) in zip(garments, sides, angles, spots, strict=True):
        if colour is None:
            under = bg[y : y + side, x : x + side].reshape(-1, 3).mean(axis=0)
            colour = _standing_out(under, rng)
        item = garment_cutout(gray, colour, side)
        if angle:
            item = item.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        canvas.alpha_composite(item, (x, y))
        x0, y0, x1, y1 = ink_bbox(item) or (0, 0, *item.size)
        x0, y0 = max(0, x + x0), max(0, y + y0)
        x1, y1 = min(W, x + x1), min(H, y + y1)
        boxes.append((x0 / W, y0 / H, (x1 - x0) / W, (y1 - y0) / H))
    arr = _lit(np.asarray(canvas.convert("RGB"), np.float32), rng)
    photo = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.3:
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=int(rng.integers(60, 95)))
        photo = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return photo, boxes


def _rotated_side(side: int, degrees: float) -> int:
    """The square cut-out's side after ``rotate(expand=True)``."""
    if not degrees:
        return side
    return Image.new("L", (side, side)).rotate(degrees, expand=True).width


def _standing_out(under: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A random colour at least 90 (RGB distance) from ``under``, else black or white."""
    for _ in range(20):
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - under) >= 90:
            return tuple(int(v) for v in colour)
    return (20, 20, 20) if under.mean() > 128 else (235, 235, 235)


def random_scene(
    images: np.ndarray, rng: np.random.Generator, *, max_items: int = 5
) -> tuple[Image.Image, list[Box]]:
    """A training scene: 0 to ``max_items`` random items of ``images`` (mostly 2 to 4), each
    a catalog colour or, a third of the time, any colour that stands out."""
    n = int(rng.choice(np.arange(max_items + 1), p=_count_weights(max_items)))
    colours = list(PALETTE.values())
    garments = []
    for i in rng.choice(len(images), n, replace=False):
        colour = colours[int(rng.integers(len(colours)))] if rng.random() < 0.67 else None
        garments.append((images[i], colour))
    kind = str(rng.choice(BACKGROUND_KINDS, p=KIND_WEIGHTS))
    return compose(garments, rng, kind=kind, tile=int(rng.integers(36, 101)))


def _count_weights(max_items: int) -> np.ndarray:
    w = np.array([0.04, 0.16] + [0.8 / 3] * 3 + [0.1] * (max_items - 4), np.float64)[
        : max_items + 1
    ]
    return w / w.sum()

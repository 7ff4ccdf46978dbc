"""(image, caption) pairs to train on, and the sources that make them.

A ``DataSource`` gives a run its training and validation ``PairData``; ``train()`` picks one by
name (``TrainOptions.source``) from the sources it is given, by default ``SOURCES``:

* ``fashion-mnist``: the Fashion-MNIST product photos coloured on the fly (``clip_train.fashion``).
  Every time an item is drawn it gets a random palette colour and one of its varied captions,
  so the model sees each garment in many colours. No database needed.

Sources backed by an application's data (the shop's catalog: ``search.training_data``) live
with that application and build ``ImageTextPairs`` from the images and captions they read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from clip_train.fashion import (
    BACKGROUND,
    CATEGORIES,
    PALETTE,
    captions,
    describe,
    load_split,
    sample_items,
)
from clip_train.model import LoadedModel
from clip_train.options import TrainOptions
from search.embeddings.clip import import_torch, to_rgb


class PairData(ABC):
    """(image, caption) pairs; ``batch`` gives pixels in [0, 1] at the model's input size."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def batch(
        self, idx: np.ndarray, rng: np.random.Generator, *, train: bool
    ) -> tuple[Any, list[str]]:
        """Pixels (float tensor [B, 3, S, S] in 0..1) and one caption per item.

        ``train=True`` draws a random caption (and colour, where the source can) per item;
        ``train=False`` gives each item's fixed validation caption.
        """

    #: Whether ``variant_batch`` can show the same items in another colour.
    has_variants = False
    #: Distinct label prompts ("a dress"); ``label_ids`` maps items to them. Empty: no labels.
    label_prompts: list[str] = []

    def label_ids(self, idx: np.ndarray) -> np.ndarray:
        """Index into ``label_prompts`` per item (only called when ``label_prompts`` is set)."""
        raise TypeError(f"{type(self).__name__} has no labels")

    #: Whether ``views`` can show items both as a shopper's photo and as a catalog shot.
    has_views = False

    def views(self, idx: np.ndarray, rng: np.random.Generator):
        """Pixels of the n items as shoppers' photos [n], and the same as catalog shots [n].
        Only called when ``has_views``."""
        raise TypeError(f"{type(self).__name__} cannot show an item as a shopper's photo")

    def variant_batch(self, idx: np.ndarray, rng: np.random.Generator):
        """The n items twice, in two different colours: pixels [2n], captions [2n], and for
        each image the colour name of its partner (image j's partner is j + n mod 2n).
        Only called when ``has_variants``."""
        raise TypeError(f"{type(self).__name__} cannot show an item in another colour")


class DataSource(ABC):
    """Where a run's pairs come from, named by ``TrainOptions.source``."""

    @abstractmethod
    def load(self, opts: TrainOptions, model: LoadedModel) -> tuple[PairData, PairData | None]:
        """Training and validation pairs (validation may be None) at ``model``'s input size.

        Raise ``TrainingError`` when there is nothing to train on, saying what to change.
        """


class ImageTextPairs(PairData):
    """Images decoded and resized once (kept as uint8), each with a list of captions."""

    def __init__(
        self,
        pixels,
        captions: Sequence[Sequence[str]],
        val_captions: Sequence[str],
        labels: Sequence[str] | None = None,
    ):
        if len(pixels) != len(captions) or len(captions) != len(val_captions):
            raise ValueError("pixels, captions and val_captions must have the same length")
        self.pixels = pixels  # uint8 [N, 3, S, S]
        self.captions = [list(c) for c in captions]
        self.val_captions = list(val_captions)
        self.labels = list(labels) if labels is not None else None
        if self.labels is not None and all(self.labels):
            self.label_prompts = sorted(set(self.labels))
            where = {p: i for i, p in enumerate(self.label_prompts)}
            self._label_ids = np.array([where[p] for p in self.labels])

    def label_ids(self, idx):
        return self._label_ids[np.asarray(idx)]

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def from_images(
        cls,
        images: Sequence[Image.Image],
        captions: Sequence[Sequence[str]],
        geometry: Callable,
        val_captions: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
    ) -> ImageTextPairs:
        torch, _ = import_torch()
        pixels = torch.stack(
            [(geometry(to_rgb(im)) * 255).round().to(torch.uint8) for im in images]
        )
        val = val_captions if val_captions is not None else [c[0] for c in captions]
        return cls(pixels, captions, val, labels)

    def batch(self, idx, rng, *, train):
        pixels = self.pixels[list(idx)].float() / 255
        if train:
            caps = [self.captions[i][int(rng.integers(len(self.captions[i])))] for i in idx]
        else:
            caps = [self.val_captions[i] for i in idx]
        return pixels, caps


class FashionPairs(PairData):
    """Fashion-MNIST garments, coloured per draw exactly as ``clip_train.fashion.colourise`` does.

    ``colourise`` blends a palette colour into a light background by the garment's ink ``a``
    (upscaled to 128 px and blurred): ``bg * (1 - a) + rgb * (0.75 a + 0.25 a^2)``. Resizing is
    linear, so resizing ``a`` and ``a^2`` once to the model's input size gives the same pixels
    as colouring at 128 px and then resizing (what the search sees), for any colour, for free.
    """

    PHOTO_SIZE = 128  # the demo catalog's photo size (shop.demo.catalog)

    def __init__(
        self,
        gray: np.ndarray,
        items: Sequence,
        size: int,
        *,
        resample: int = Image.Resampling.BICUBIC,
    ):
        torch, _ = import_torch()
        self.items = list(items)
        self.colours = list(PALETTE)
        self.palette = torch.tensor([PALETTE[c] for c in self.colours], dtype=torch.float32)
        self.background = torch.tensor(BACKGROUND, dtype=torch.float32).view(1, 3, 1, 1)
        self.ink = torch.from_numpy(
            np.stack(
                [_ink_moments(gray[it.index], size, self.PHOTO_SIZE, resample) for it in self.items]
            )
        )  # float16 [N, 2, S, S]: a and a^2, resized
        self.label_prompts = [f"a {name.lower()}" for name, _, _ in CATEGORIES]
        self._labels = np.array([it.label for it in self.items])

    def __len__(self) -> int:
        return len(self.items)

    def label_ids(self, idx):
        return self._labels[np.asarray(idx)]

    def render(
        self,
        idx: Sequence[int],
        colour_ids: Sequence[int],
        rng: np.random.Generator | None = None,
        photo_share: float = 0.0,
    ):
        """Pixels [n, 3, S, S] in 0..1; with ``rng``, about ``photo_share`` of them are shown
        as a shopper's photo (``shopper_photo``), the rest as the catalog shows them."""
        torch, _ = import_torch()
        ink = self.ink[list(idx)].float()
        colour_ids = np.asarray(colour_ids)
        background = self.background.expand(len(ink), 3, *ink.shape[-2:]).clone()
        photo = np.zeros(len(ink), dtype=bool)
        if rng is not None and photo_share > 0:
            photo = rng.random(len(ink)) < photo_share
        if photo.any():
            where = torch.from_numpy(np.flatnonzero(photo))
            ink[where] = _warp(ink[where], rng)
            background[where] = _backgrounds(int(photo.sum()), ink.shape[-1], rng)
        a, a2 = ink[:, :1], ink[:, 1:]
        rgb = self.palette[list(colour_ids)].view(-1, 3, 1, 1)
        out = background * (1 - a) + rgb * (0.75 * a + 0.25 * a2)
        if photo.any():
            # Lighting: dimmer or brighter shots, never so dim that white reads as grey
            # (the caption keeps its colour name); a little sensor noise.
            light = np.ones(len(ink), dtype=np.float32)
            pale = np.isin(colour_ids, [self.colours.index(c) for c in ("white", "grey", "black")])
            low = np.where(pale, 0.85, 0.6)
            light[photo] = rng.uniform(low[photo], 1.12)
            out = out * torch.from_numpy(light).view(-1, 1, 1, 1)
            noise = torch.from_numpy(rng.normal(0, 4, out.shape).astype(np.float32))
            out = out + noise * torch.from_numpy(photo.astype(np.float32)).view(-1, 1, 1, 1)
        return out.round().clamp_(0, 255) / 255

    has_variants = True
    has_views = True
    #: Share of training images rendered as shoppers' photos (set from ``TrainOptions``).
    photo_share = 0.0

    def batch(self, idx, rng, *, train):
        if not train:
            colour_ids = [self.colours.index(self.items[i].colour) for i in idx]
            caps = [f"a {self.items[i].colour} {self.items[i].category_name.lower()}" for i in idx]
            return self.render(idx, colour_ids), caps
        colour_ids = rng.integers(len(self.colours), size=len(idx))
        pixels = self.render(idx, colour_ids, rng, self.photo_share)
        return pixels, self._captions(idx, colour_ids, rng)

    def variant_batch(self, idx, rng):
        n = len(idx)
        first = rng.integers(len(self.colours), size=n)
        second = (first + rng.integers(1, len(self.colours), size=n)) % len(self.colours)
        both_idx = np.concatenate([idx, idx])
        both = np.concatenate([first, second])
        words = [self.colours[int(c)] for c in np.concatenate([second, first])]
        pixels = self.render(both_idx, both, rng, self.photo_share)
        return pixels, self._captions(both_idx, both, rng), words

    def views(self, idx, rng):
        """The same items in the same colours twice: as shoppers' photos, and as catalog shots."""
        colour_ids = rng.integers(len(self.colours), size=len(idx))
        return self.render(idx, colour_ids, rng, 1.0), self.render(idx, colour_ids)

    def _captions(self, idx, colour_ids, rng) -> list[str]:
        """One of ``clip_train.fashion.captions`` (varied phrasings) per item, in its drawn colour."""
        caps = []
        for i, c in zip(idx, colour_ids, strict=True):
            item = replace(self.items[i], colour=self.colours[int(c)])
            options = captions(item, describe(item, rng)[0], rng)
            caps.append(options[int(rng.integers(len(options)))])
        return caps


def _warp(ink, rng: np.random.Generator):
    """A shopper's framing of the garment's ink [m, 2, S, S]: rotated up to 15 degrees, 45 to
    100% of its catalog size, anywhere it still fits. Outside the garment is background."""
    torch, _ = import_torch()
    F = torch.nn.functional
    m = len(ink)
    angle = np.deg2rad(rng.uniform(-15, 15, m))
    size = rng.uniform(0.45, 1.0, m)
    room = 1 - size
    tx, ty = (rng.uniform(-room, room) for _ in range(2))
    theta = np.zeros((m, 2, 3), dtype=np.float32)
    # affine_grid maps output to input coordinates: the inverse of "shrink, rotate, move".
    cos, sin = np.cos(angle) / size, np.sin(angle) / size
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, sin, -sin, cos
    theta[:, 0, 2] = -(cos * tx + sin * ty)
    theta[:, 1, 2] = -(-sin * tx + cos * ty)
    grid = F.affine_grid(torch.from_numpy(theta), list(ink.shape), align_corners=False)
    return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _backgrounds(m: int, size: int, rng: np.random.Generator):
    """Backgrounds of shoppers' photos, 0..255 [m, 3, S, S]: a third the studio's, the rest
    plain surfaces of any colour, gradients, stripes, checks and blotchy textures."""
    torch, _ = import_torch()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((m, 3, size, size), dtype=np.float32)
    for j in range(m):
        base = rng.uniform(20, 250, 3) if rng.random() < 0.7 else np.full(3, rng.uniform(30, 240))
        other = np.clip(base + rng.normal(0, 60, 3), 0, 255)
        kind = rng.integers(6)
        if kind == 0:
            mix = np.zeros_like(xx)
            base = np.array(BACKGROUND, dtype=np.float32)
        elif kind == 1:
            mix = np.zeros_like(xx)
        elif kind == 2:
            t = rng.uniform(0, 2 * np.pi)
            mix = np.clip(np.cos(t) * xx + np.sin(t) * yy, 0, 1)
        elif kind == 3:
            t, f = rng.uniform(0, np.pi), rng.uniform(3, 10)
            mix = 0.5 + 0.5 * np.sin(2 * np.pi * f * (np.cos(t) * xx + np.sin(t) * yy))
        elif kind == 4:
            f = int(rng.integers(2, 8))
            mix = ((np.floor(xx * f) + np.floor(yy * f)) % 2).astype(np.float32)
        else:
            coarse = rng.random((int(rng.integers(3, 9)),) * 2).astype(np.float32)
            mix = np.asarray(Image.fromarray(coarse, "F").resize((size, size), Image.BICUBIC))
            mix = np.clip(mix, 0, 1)
        out[j] = base[:, None, None] * (1 - mix) + other[:, None, None] * mix
    return torch.from_numpy(out)


def _ink_moments(gray: np.ndarray, size: int, photo_size: int, resample: int) -> np.ndarray:
    """The garment's ink ``a`` at ``photo_size`` as colourise makes it, and a^2, resized to ``size``."""
    ink = Image.fromarray(gray, "L").resize((photo_size, photo_size), Image.Resampling.BICUBIC)
    ink = ink.filter(ImageFilter.GaussianBlur(radius=photo_size / 224))
    a = np.asarray(ink, dtype=np.float32) / 255.0
    out = []
    for moment in (a, a * a):
        img = Image.fromarray(moment, "F")
        if size != photo_size:
            img = img.resize((size, size), resample)
        out.append(np.asarray(img))
    return np.stack(out).astype(np.float16)  # bicubic over/undershoot kept, as in the photo


class FashionMnist(DataSource):
    """Train and validation sets from one Fashion-MNIST split (``opts.split``; disjoint garments)."""

    def load(self, opts: TrainOptions, model: LoadedModel) -> tuple[FashionPairs, FashionPairs]:
        gray, labels = load_split(opts.split)
        per_class = int(np.bincount(labels, minlength=len(CATEGORIES)).min())
        limit = per_class * len(CATEGORIES)
        val_count = min(opts.val_count, limit // 10)
        train_count = min(opts.train_count, limit - val_count)
        items = sample_items(labels, train_count + val_count, opts.seed)
        # sample_items cycles through the categories, so both parts stay balanced.
        size, resample = model.input_size, model.resample
        train = FashionPairs(gray, items[:train_count], size, resample=resample)
        train.photo_share = opts.photo_share
        val = FashionPairs(gray, items[train_count:], size, resample=resample)
        return train, val


#: The sources that need nothing but files; an application adds its own (``{**SOURCES, ...}``).
SOURCES: Mapping[str, DataSource] = {"fashion-mnist": FashionMnist()}

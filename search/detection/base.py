"""The detection seam: a photo -> the product-like items in it (box, category guess, confidence).

A detector is any object with ``detect(image) -> list[Detection]``; ``DETECTOR`` picks one
(``search/detection/__init__.py``). Boxes are fractions of the upright photo, like the
shopper's ``crop``, so they can be cropped with ``shop.images.crop_fraction``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class Detection:
    """One item: ``box`` = (x, y, w, h) as fractions of the photo, 0..1."""

    box: tuple[float, float, float, float]
    confidence: float
    category: str | None = None

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]

    def labelled(self, category: str | None, confidence: float) -> Detection:
        return replace(self, category=category, confidence=round(confidence, 4))


@runtime_checkable
class Detector(Protocol):
    """Finds items; at most ``max_items``, largest first. A photo without items gives []."""

    name: str

    def detect(self, image: Image.Image, *, max_items: int = 8) -> list[Detection]: ...


def clamp_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box moved and shrunk to lie inside the photo (fractions), at least one pixel-ish."""
    x, y, w, h = box
    x, y = min(max(x, 0.0), 0.999), min(max(y, 0.0), 0.999)
    w, h = max(min(w, 1.0 - x), 0.001), max(min(h, 1.0 - y), 0.001)
    return (round(x, 4), round(y, 4), round(w, 4), round(h, 4))

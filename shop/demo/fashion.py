"""The Fashion-MNIST demo products; they live in ``clip_train.fashion`` (no Django), which
training renders too. Re-exported here for the demo catalog's users."""

from clip_train.fashion import (
    BACKGROUND,
    CATEGORIES,
    PALETTE,
    PRICE_RANGE,
    DemoItem,
    captions,
    colourise,
    describe,
    load_split,
    sample_items,
)

__all__ = [
    "BACKGROUND",
    "CATEGORIES",
    "PALETTE",
    "PRICE_RANGE",
    "DemoItem",
    "captions",
    "colourise",
    "describe",
    "load_split",
    "sample_items",
]

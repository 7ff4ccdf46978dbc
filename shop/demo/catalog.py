"""Build a demo catalog from Fashion-MNIST through the normal catalog services."""

from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal

import numpy as np
from django.db import transaction

from clip_train.fashion import CATEGORIES, colourise, describe, load_split, sample_items
from shop import services
from shop.models import Product


def demo_catalog_build(
    *,
    count: int,
    seed: int = 0,
    split: str = "t10k",
    size: int = 128,
    progress: Callable[[int], None] | None = None,
    balanced: bool = False,
) -> int:
    """Create ``count`` products (idempotent by slug: re-running adds nothing twice)."""
    images, labels = load_split(split)
    items = sample_items(labels, count, seed, balanced=balanced)
    rng = np.random.default_rng(seed + 1)
    categories = {slug: services.category_get_or_create(name=name) for name, _, slug in CATEGORIES}
    existing = set(
        Product.objects.filter(slug__startswith=f"{split}-").values_list("slug", flat=True)
    )
    created = 0
    for item in items:
        description, price = describe(item, rng)
        slug = f"{split}-{item.index}-{item.colour}"
        if slug in existing:
            continue
        buf = io.BytesIO()
        colourise(images[item.index], item.colour, size).save(buf, "PNG")
        buf.seek(0)
        with transaction.atomic():
            services.product_create(
                title=item.title,
                slug=slug,
                description=description,
                price=Decimal(str(price)),
                category=categories[item.category_slug],
                colour=item.colour,
                attributes={"source": f"fashion-mnist/{split}/{item.index}"},
                in_stock=bool(rng.random() > 0.15),
                images=[(f"{slug}.png", buf)],
            )
        created += 1
        if progress:
            progress(1)
    return created

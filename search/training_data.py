"""Training data from the shop's catalog (database + media files), for ``clip_train``.

``SOURCES`` is what the ``train_clip`` command and the Celery task train from: clip_train's own
sources plus ``catalog``, the products in the database with their image files and captions
made from the title, description, colour and category. Validation holds out whole products.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
from django.core.files.storage import default_storage

from clip_train import data
from clip_train.data import DataSource, ImageTextPairs
from clip_train.model import LoadedModel
from clip_train.options import TrainingError, TrainOptions
from shop.images import InvalidImage, open_image
from shop.models import Product

log = logging.getLogger(__name__)


def product_captions(product) -> list[str]:
    """Ways a shopper might describe a catalog product."""
    title = product.title.strip()
    category = product.category.name.strip().lower() if product.category_id else ""
    colour = (product.colour or "").strip().lower()
    caps = [title, f"a photo of a {title.lower()}", product.embedding_text]
    if product.description.strip():
        caps.append(product.description.strip())
    if category:
        caps += [f"a {category}", f"a photo of a {category}"]
        if colour:
            caps += [f"{colour} {category}", f"a {colour} {category}"]
    if colour:
        caps.append(f"something {colour}")
    return list(dict.fromkeys(c for c in caps if c))


class Catalog(DataSource):
    """Every image of the catalog's products; validation holds out whole products."""

    def load(
        self, opts: TrainOptions, model: LoadedModel
    ) -> tuple[ImageTextPairs, ImageTextPairs | None]:
        products = list(Product.objects.with_images().order_by("id"))
        products = [p for p in products if p.images.all()]
        if len(products) < 2:
            raise TrainingError(
                "The catalog has fewer than 2 products with images; add products first "
                "(or use --source fashion-mnist)."
            )
        rng = np.random.default_rng(opts.seed)
        order = rng.permutation(len(products))
        n_val = min(opts.val_count, len(products) // 10) if len(products) >= 10 else 0
        val_ids = set(order[:n_val].tolist())
        chosen = [p for i, p in enumerate(products) if i not in val_ids]
        train = _pairs(chosen, opts.train_count, model.geometry)
        if train is None or len(train) < 2:
            raise TrainingError("Fewer than 2 catalog images could be read; check MEDIA storage.")
        val = _pairs([products[i] for i in sorted(val_ids)], 10**9, model.geometry)
        return train, val


def _pairs(products: list, limit: int, geometry) -> ImageTextPairs | None:
    """At most ``limit`` images of ``products`` (unreadable ones skipped), or None if none."""
    images, caps, val_caps, labels = [], [], [], []
    for product in products:
        captions = product_captions(product)
        for pimg in product.images.all():
            if len(images) >= limit:
                break
            try:
                with default_storage.open(pimg.image.name, "rb") as f:
                    images.append(open_image(f))
            except (OSError, InvalidImage) as exc:
                log.warning("Skipping image %s of product %s: %s", pimg.pk, product.pk, exc)
                continue
            caps.append(captions)
            val_caps.append(f"a photo of a {product.title.strip().lower()}")
            labels.append(f"a {product.category.name.strip().lower()}")
    if not images:
        return None
    return ImageTextPairs.from_images(images, caps, geometry, val_caps, labels)


SOURCES: Mapping[str, DataSource] = {**data.SOURCES, "catalog": Catalog()}

"""Catalog writes. Every path that adds or changes images goes through here, so indexing
is requested exactly once, after the transaction commits."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import IO

from django.core.files.base import File
from django.db import transaction
from django.utils.text import slugify

from search.services.indexing import embeddings_request
from shop.models import Category, Product, ProductImage


def category_get_or_create(*, name: str) -> Category:
    category, _ = Category.objects.get_or_create(slug=slugify(name), defaults={"name": name})
    return category


def _unique_slug(title: str) -> str:
    base = slugify(title)[:200] or "product"
    slug, n = base, 1
    while Product.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def product_create(
    *,
    title: str,
    price: Decimal,
    category: Category,
    description: str = "",
    currency: str = "EUR",
    colour: str = "",
    attributes: dict | None = None,
    in_stock: bool = True,
    images: Sequence[tuple[str, IO[bytes]]] = (),
    slug: str | None = None,
    external_id: str | None = None,
) -> Product:
    product = Product.objects.create(
        title=title,
        slug=slug or _unique_slug(title),
        description=description,
        price=price,
        currency=currency,
        category=category,
        colour=colour,
        attributes=attributes or {},
        in_stock=in_stock,
        external_id=external_id,
    )
    for position, (name, fileobj) in enumerate(images):
        product_image_add(product=product, name=name, fileobj=fileobj, position=position)
    embeddings_request(product_ids=[product.pk])
    return product


@transaction.atomic
def product_image_add(
    *, product: Product, name: str, fileobj: IO[bytes], position: int | None = None
) -> ProductImage:
    if position is None:
        position = product.images.count()
    image = ProductImage(product=product, position=position)
    image.image.save(name, File(fileobj, name=name), save=False)
    image.save()
    embeddings_request(image_ids=[image.pk])
    return image

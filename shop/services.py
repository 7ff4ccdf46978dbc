"""Catalog writes: the admin, the API, the importer and the demo all write through here.

Each write tells search what changed through ``search.catalog_sync``, the one module of search
that shop imports, so indexing is requested exactly once, after the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import IO

from django.core.files.base import File
from django.db import transaction
from django.utils.text import slugify

from search import catalog_sync
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
    catalog_sync.catalog_changed(product_ids=[product.pk])
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
    catalog_sync.catalog_changed(image_ids=[image.pk])
    return image


# Fields whose change makes the product's text vector stale (``Product.embedding_text``).
_TEXT_FIELDS = {"title", "description"}


@transaction.atomic
def product_save(*, product: Product, changed_fields: Iterable[str] = ()) -> Product:
    """Save a product edited as a whole (the admin form): new ones get embedded, an edited
    title or description re-embeds the text."""
    created = product.pk is None
    product.save()
    if created:
        catalog_sync.catalog_changed(product_ids=[product.pk])
    elif _TEXT_FIELDS & set(changed_fields):
        catalog_sync.catalog_changed(texts_changed=[product.pk])
    else:
        catalog_sync.catalog_changed(fields_changed=[product.pk])
    return product


@transaction.atomic
def product_image_save(*, image: ProductImage, file_changed: bool = False) -> ProductImage:
    """Save an image edited as a whole (an admin inline): a new image gets embedded, a
    replaced file drops its old vectors and is embedded again."""
    created = image.pk is None
    image.save()
    if created:
        catalog_sync.catalog_changed(image_ids=[image.pk])
    elif file_changed:
        catalog_sync.catalog_changed(images_replaced=[image.pk])
    return image


@transaction.atomic
def product_image_delete(*, image: ProductImage) -> None:
    image.delete()  # its vectors go with it (the foreign keys cascade)


@contextmanager
def catalog_bulk_write() -> Iterator[catalog_sync.EmbeddingRequests]:
    """Around many writes (an import); see ``search.catalog_sync.catalog_bulk_write``."""
    with catalog_sync.catalog_bulk_write() as requested:
        yield requested


def catalog_index_now(*, product_ids: Sequence[int]) -> None:
    """Embed these products in this process instead of queueing (``import_catalog --index``)."""
    catalog_sync.catalog_index_now(product_ids=product_ids)


@transaction.atomic
def products_reindex(*, product_ids: Sequence[int]) -> catalog_sync.Reindexing:
    """Have search index these products again (the admin's re-index action and button).

    Atomic, so by the time this returns to a caller outside any transaction the work has
    been published (or the broker found down): ``queued`` is then True or False.
    """
    return catalog_sync.catalog_reindex(product_ids=product_ids)

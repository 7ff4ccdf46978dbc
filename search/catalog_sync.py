"""Keeps the search index in step with the catalog: the one module of search that shop calls.

Search depends on shop, never the reverse, except for this entry point, which
``shop/services.py`` (and nothing else in shop) imports. Every catalog write ends here, after
its transaction commits; what is scheduled is found again by the sweep if the broker is down.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from search.services import indexing
from search.services.indexing import EmbeddingRequests, Reindexing
from search.vectorstore import keyword
from shop.models import ProductImage


def catalog_changed(
    *,
    product_ids: Iterable[int] = (),
    image_ids: Iterable[int] = (),
    texts_changed: Iterable[int] = (),
    images_replaced: Iterable[int] = (),
    fields_changed: Iterable[int] = (),
) -> None:
    """New products and images get embedded; changed texts and replaced files re-embedded.

    The keyword documents of new and edited products (``fields_changed``: any edit, say the
    colour) are rewritten here, in the writer's transaction: one cheap statement, and the
    document commits or rolls back with the product.
    """
    product_ids, texts_changed = list(product_ids), list(texts_changed)
    images_replaced = list(images_replaced)
    keyword.documents_refresh([*product_ids, *texts_changed, *fields_changed])
    if texts_changed:
        indexing.text_embeddings_invalidate(product_ids=texts_changed)
    if images_replaced:
        indexing.image_embeddings_invalidate(image_ids=images_replaced)
    indexing.embeddings_request(image_ids=image_ids, product_ids=product_ids)


@contextmanager
def catalog_bulk_write() -> Iterator[EmbeddingRequests]:
    """Around many writes (an import): the embedding work of those that commit is collected;
    the caller queues it in full batches (``enqueue()``) or embeds inline (``catalog_index_now``)
    instead of one task per product."""
    with indexing.embeddings_requests_collected() as requested:
        yield requested


def catalog_index_now(*, product_ids: Sequence[int]) -> None:
    """Embed the products' images and texts in this process; what fails stays pending for
    the sweep."""
    image_ids = list(
        ProductImage.objects.filter(product_id__in=product_ids).values_list("id", flat=True)
    )
    indexing.images_embed(image_ids=image_ids)
    indexing.product_texts_embed(product_ids=product_ids)


def catalog_reindex(*, product_ids: Sequence[int]) -> Reindexing:
    """Index these products afresh (an admin's "re-index"): keyword documents rewritten now,
    in the caller's transaction; vectors of the configured model dropped and queued again
    after commit (``Reindexing.queued`` says whether the broker took them)."""
    keyword.documents_refresh(list(product_ids))
    return indexing.products_reindex(product_ids=product_ids)

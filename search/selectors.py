"""Reads: pending work, the active model, and the vector queries."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from search.models import EmbeddingModel
from shop.models import Product, ProductImage


def active_embedding_model() -> EmbeddingModel | None:
    return EmbeddingModel.objects.filter(is_active=True).first()


def image_ids_pending(*, model: EmbeddingModel, limit: int | None = None) -> list[int]:
    """Images with no vector from ``model``: the state is derived, so it can never be lost."""
    qs = (
        ProductImage.objects.exclude(embeddings__model=model)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return list(qs[:limit] if limit else qs)


def product_ids_text_pending(*, model: EmbeddingModel, limit: int | None = None) -> list[int]:
    qs = (
        Product.objects.exclude(text_embeddings__model=model)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return list(qs[:limit] if limit else qs)


@dataclass(frozen=True)
class CatalogFilters:
    category_slug: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    colour: str | None = None

    def sql(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.category_slug:
            clauses.append("p.category_id = (SELECT id FROM shop_category WHERE slug = %s)")
            params.append(self.category_slug)
        if self.min_price is not None:
            clauses.append("p.price >= %s")
            params.append(self.min_price)
        if self.max_price is not None:
            clauses.append("p.price <= %s")
            params.append(self.max_price)
        if self.in_stock is not None:
            clauses.append("p.in_stock = %s")
            params.append(self.in_stock)
        if self.colour:
            clauses.append("lower(p.colour) = lower(%s)")
            params.append(self.colour)
        return "".join(f" AND {c}" for c in clauses), params


@dataclass(frozen=True)
class VectorHit:
    product_id: int
    image_id: int | None
    similarity: float


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def _set_search_params(cur) -> None:
    # Iterative scans let a filtered HNSW query keep walking the graph until the page is
    # full instead of returning whatever survived the filter in the first ef_search hits.
    cur.execute(f"SET LOCAL hnsw.ef_search = {int(settings.HNSW_EF_SEARCH)}")
    cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")


def nearest_images_sql(
    *,
    model: EmbeddingModel,
    vector: np.ndarray,
    filters: CatalogFilters,
    exclude_product_ids: tuple[int, ...] = (),
) -> tuple[str, list]:
    """Image hits nearest to ``vector`` (SQL + params, ending in a LIMIT placeholder).

    ORDER BY is the bare distance expression the partial HNSW index is built on, with no
    tie-breaker column, or PostgreSQL would sort instead of walking the index.
    """
    dim = int(model.dim)
    where, params = filters.sql()
    if exclude_product_ids:
        where += " AND NOT (p.id = ANY(%s))"
        params.append(list(exclude_product_ids))
    qvec = _vector_literal(vector)
    sql = f"""
        SELECT i.product_id, e.image_id,
               e.embedding::vector({dim}) <=> %s::vector({dim}) AS distance
        FROM search_imageembedding e
        JOIN shop_productimage i ON i.id = e.image_id
        JOIN shop_product p ON p.id = i.product_id
        WHERE e.model_id = {int(model.pk)}{where}
        ORDER BY e.embedding::vector({dim}) <=> %s::vector({dim})
        LIMIT %s
    """
    return sql, [qvec, *params, qvec]


def products_nearest_by_image(
    *,
    model: EmbeddingModel,
    vector: np.ndarray,
    filters: CatalogFilters,
    limit: int,
    offset: int = 0,
    exclude_product_ids: tuple[int, ...] = (),
    min_similarity: float | None = None,
) -> list[VectorHit]:
    """Products ranked by their best-matching image (each product once), via the HNSW index.

    Ties are broken by product id, so paging is stable.
    """
    wanted = offset + limit
    sql, params = nearest_images_sql(
        model=model, vector=vector, filters=filters, exclude_product_ids=exclude_product_ids
    )
    # Several images per product: over-fetch image hits and keep each product's best;
    # widen the window while a page is short and the index may still hold more.
    candidates = max(wanted * 3, 40)
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            _set_search_params(cur)
            cur.execute(sql, [*params, candidates])
            rows = cur.fetchall()
        best: dict[int, tuple[int, float]] = {}
        for product_id, image_id, distance in rows:
            if product_id not in best or distance < best[product_id][1]:
                best[product_id] = (image_id, distance)
        if len(best) >= wanted or len(rows) < candidates or candidates >= 50_000:
            break
        candidates *= 4
    hits = sorted(
        (VectorHit(pid, img, 1.0 - float(dist)) for pid, (img, dist) in best.items()),
        key=lambda h: (-h.similarity, h.product_id),
    )
    if min_similarity is not None:
        hits = [h for h in hits if h.similarity >= min_similarity]
    return hits[offset:wanted]


def products_nearest_by_text(
    *,
    model: EmbeddingModel,
    vector: np.ndarray,
    filters: CatalogFilters,
    limit: int,
) -> list[VectorHit]:
    """Products whose title+description vector is nearest (image -> description matching)."""
    dim = int(model.dim)
    where, params = filters.sql()
    qvec = _vector_literal(vector)
    sql = f"""
        SELECT t.product_id, 1 - (t.embedding::vector({dim}) <=> %s::vector({dim}))
        FROM search_textembedding t JOIN shop_product p ON p.id = t.product_id
        WHERE t.model_id = {int(model.pk)}{where}
        ORDER BY t.embedding::vector({dim}) <=> %s::vector({dim})
        LIMIT %s
    """
    with transaction.atomic(), connection.cursor() as cur:
        _set_search_params(cur)
        cur.execute(sql, [qvec, *params, qvec, limit])
        rows = cur.fetchall()
    return [VectorHit(r[0], None, float(r[1])) for r in rows]


def image_vectors(*, model: EmbeddingModel, product_id: int) -> np.ndarray:
    from search.models import ImageEmbedding

    rows = ImageEmbedding.objects.filter(model=model, image__product_id=product_id).values_list(
        "embedding", flat=True
    )
    return np.array([np.asarray(v, dtype=np.float32) for v in rows])


def index_stats() -> dict:
    """What the search answers from and how complete it is."""
    from search.models import ImageEmbedding, TextEmbedding

    model = active_embedding_model()
    images = ProductImage.objects.count()
    embedded = ImageEmbedding.objects.filter(model=model).count() if model else 0
    return {
        "active_model": model.key if model else None,
        "dimension": model.dim if model else None,
        "products": Product.objects.count(),
        "images": images,
        "embedded_images": embedded,
        "pending_images": images - embedded,
        "embedded_texts": TextEmbedding.objects.filter(model=model).count() if model else 0,
    }

"""Reads: the active model, pending work, coverage per model, index statistics.

Nearest-neighbour queries live in the vector store (``search.vectorstore``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from search.models import EmbeddingModel, ImageEmbedding, TextEmbedding
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


def image_vectors(*, model: EmbeddingModel, product_id: int) -> np.ndarray:
    return products_image_vectors(model=model, product_ids=[product_id]).get(
        product_id, np.zeros((0, 0), dtype=np.float32)
    )


def products_image_vectors(
    *, model: EmbeddingModel, product_ids: list[int]
) -> dict[int, np.ndarray]:
    """Each product's image vectors from ``model``, for many products in one query."""
    rows = ImageEmbedding.objects.filter(
        model=model, image__product_id__in=product_ids
    ).values_list("image__product_id", "embedding")
    grouped: dict[int, list[np.ndarray]] = {}
    for product_id, vector in rows:
        grouped.setdefault(product_id, []).append(np.asarray(vector, dtype=np.float32))
    return {product_id: np.array(vectors) for product_id, vectors in grouped.items()}


def index_stats() -> dict:
    """What the search answers from and how complete it is."""
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


@dataclass(frozen=True)
class ModelCoverage:
    model: EmbeddingModel
    images_embedded: int
    images_total: int
    texts_embedded: int
    texts_total: int

    @property
    def is_active(self) -> bool:
        return self.model.is_active

    @property
    def images_ratio(self) -> float:
        return self.images_embedded / self.images_total if self.images_total else 1.0

    @property
    def is_complete(self) -> bool:
        """Every image has a vector: the condition for switching search to this model."""
        return self.images_embedded >= self.images_total


def _per_model_count(qs: QuerySet) -> Coalesce:
    counted = qs.filter(model=OuterRef("pk")).order_by().values("model").annotate(n=Count("*"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), Value(0))


def _table_count(model) -> RawSQL:
    # An uncorrelated scalar subquery: PostgreSQL evaluates it once per query, not per row.
    return RawSQL(f"SELECT COUNT(*) FROM {model._meta.db_table}", (), output_field=IntegerField())


def embedding_models_with_coverage() -> QuerySet[EmbeddingModel]:
    """Every model, annotated with images/texts embedded and the catalog's totals."""
    return EmbeddingModel.objects.annotate(
        images_embedded=_per_model_count(ImageEmbedding.objects),
        texts_embedded=_per_model_count(TextEmbedding.objects),
        images_total=_table_count(ProductImage),
        texts_total=_table_count(Product),
    ).order_by("-is_active", "-created_at")


def embedding_coverage() -> list[ModelCoverage]:
    """Per model (one query, whatever the number of models or products): images embedded / total, texts embedded / total; active model first."""
    return [
        ModelCoverage(
            model=m,
            images_embedded=m.images_embedded,
            images_total=m.images_total,
            texts_embedded=m.texts_embedded,
            texts_total=m.texts_total,
        )
        for m in embedding_models_with_coverage()
    ]


def products_with_index_state(
    qs: QuerySet[Product], *, model: EmbeddingModel | None
) -> QuerySet[Product]:
    """Annotate ``images_pending``: the product has an image ``model`` has not embedded.

    A subquery in the page's own query, so a changelist shows the state of 100 products
    with no extra query per row. With no model yet, every product with images is pending.
    """
    images = ProductImage.objects.filter(product=OuterRef("pk"))
    if model is not None:
        images = images.exclude(
            Exists(ImageEmbedding.objects.filter(image=OuterRef("pk"), model=model))
        )
    return qs.annotate(
        images_pending=Exists(images),
        has_images=Exists(ProductImage.objects.filter(product=OuterRef("pk"))),
    )

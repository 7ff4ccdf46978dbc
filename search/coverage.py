"""Selectors: how much of the catalog each embedding model covers.

Counts come from one query per call, whatever the number of models or products, so the
admin pages that show them stay cheap at shop scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from search.models import EmbeddingModel, ImageEmbedding, TextEmbedding
from shop.models import Product, ProductImage


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
    def texts_ratio(self) -> float:
        return self.texts_embedded / self.texts_total if self.texts_total else 1.0

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
    """Per model: images embedded / total, texts embedded / total; active model first."""
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

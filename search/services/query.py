"""The one query service behind both the HTML pages and the API.

A query is a list of weighted terms (text, an uploaded image, a catalog product). Each term
becomes a unit vector from the active model; the query vector is their weighted sum,
re-normalised. Negative weights push results away from a direction ("not leather").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from django.conf import settings
from django.core.cache import cache
from PIL import Image

from search.embeddings import Encoder, ModelSpec
from search.embeddings.registry import get_encoder
from search.filters import CatalogFilters
from search.models import EmbeddingModel
from search.selectors import active_embedding_model, image_vectors
from search.vectorstore import VectorHit, vector_store
from shop.models import Product


class SearchError(ValueError):
    """A query that cannot be answered as asked; the message tells the user what to change."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Term:
    kind: Literal["text", "image", "product"]
    weight: float = 1.0
    text: str = ""
    image: Image.Image | None = None
    product_id: int | None = None


@dataclass
class SearchRequest:
    terms: list[Term]
    filters: CatalogFilters = field(default_factory=CatalogFilters)
    limit: int = 24
    offset: int = 0
    min_score: float | None = None
    exclude_product_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ProductHit:
    product: Product
    score: float
    rank: int
    image_id: int | None

    @property
    def image(self):
        """The product image that matched best (falls back to the primary image)."""
        images = {img.id: img for img in self.product.images.all()}
        return images.get(self.image_id) or self.product.primary_image


@dataclass
class SearchResponse:
    hits: list[ProductHit]
    model: EmbeddingModel
    limit: int
    offset: int

    @property
    def has_more(self) -> bool:
        return len(self.hits) == self.limit

    @property
    def next_offset(self) -> int:
        return self.offset + self.limit

    @property
    def prev_offset(self) -> int:
        return max(0, self.offset - self.limit)


def require_active_model() -> EmbeddingModel:
    model = active_embedding_model()
    if model is None:
        raise SearchError(
            "The search index is empty: no product has been embedded yet. Add products, "
            "start a worker (see README) and try again.",
            status=503,
        )
    return model


def model_encoder(model: EmbeddingModel):
    return get_encoder(ModelSpec(model.name, model.pretrained))


def text_vector(model: EmbeddingModel, text: str, encoder: Encoder | None = None) -> np.ndarray:
    """A text's unit vector, cached in Redis per model (queries repeat a lot)."""
    return text_vectors(model, [text], encoder)[0]


def text_vectors(
    model: EmbeddingModel, texts: Sequence[str], encoder: Encoder | None = None
) -> np.ndarray:
    """Unit vectors of ``texts``: one cache round trip, and the misses embedded in one batch."""
    keys = ["qv:" + hashlib.sha256(f"{model.key}\0{t}".encode()).hexdigest() for t in texts]
    cached = cache.get_many(keys)
    missing = [i for i, key in enumerate(keys) if key not in cached]
    if missing:
        fresh = (encoder or model_encoder(model)).embed_texts([texts[i] for i in missing])
        new = {keys[i]: v.astype(np.float32).tobytes() for i, v in zip(missing, fresh, strict=True)}
        cache.set_many(new, settings.QUERY_CACHE_SECONDS)
        cached.update(new)
    return np.stack([np.frombuffer(cached[key], dtype=np.float32) for key in keys])


def image_vector(
    model: EmbeddingModel, image: Image.Image, encoder: Encoder | None = None
) -> np.ndarray:
    return (encoder or model_encoder(model)).embed_images([image])[0]


def product_vector(model: EmbeddingModel, product_id: int) -> np.ndarray:
    """A product's look: the mean of its image vectors, re-normalised."""
    if not Product.objects.filter(pk=product_id).exists():
        raise SearchError(f"Product {product_id} does not exist.", status=404)
    vectors = image_vectors(model=model, product_id=product_id)
    if len(vectors) == 0:
        raise SearchError(
            f"Product {product_id} has no indexed image yet; try again once indexing has run.",
            status=409,
        )
    return _unit(vectors.mean(axis=0))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise SearchError("The weighted terms cancel each other out; change the weights.")
    return (vector / norm).astype(np.float32)


def term_vector(model: EmbeddingModel, term: Term, encoder: Encoder | None = None) -> np.ndarray:
    if term.kind == "text":
        # The encoder only when one is given: text_vector(model, text) is the seam tests stub.
        return text_vector(model, term.text, encoder) if encoder else text_vector(model, term.text)
    if term.kind == "image":
        return image_vector(model, term.image, encoder)
    return product_vector(model, term.product_id)


def query_vector(
    model: EmbeddingModel, terms: list[Term], encoder: Encoder | None = None
) -> np.ndarray:
    if not terms:
        raise SearchError("Give a text query, a photo or a product to search with.")
    if not any(t.weight > 0 for t in terms):
        raise SearchError("At least one term needs a positive weight.")
    total = sum(t.weight * term_vector(model, t, encoder) for t in terms)
    return _unit(total)


def products_search(request: SearchRequest, *, encoder: Encoder | None = None) -> SearchResponse:
    """``encoder``: what turns the terms into vectors (``embed_texts`` / ``embed_images``);
    default the active model's own encoder. Benchmarks pass a stand-in."""
    model = require_active_model()
    vector = query_vector(model, request.terms, encoder)
    exclude = set(request.exclude_product_ids)
    exclude.update(t.product_id for t in request.terms if t.kind == "product")
    raw = vector_store().nearest_images(
        model=model,
        vector=vector,
        filters=request.filters,
        limit=request.limit,
        offset=request.offset,
        exclude_product_ids=tuple(sorted(exclude)),
        min_similarity=request.min_score,
    )
    return SearchResponse(_hydrate(raw, request.offset), model, request.limit, request.offset)


def _hydrate(raw: list[VectorHit], offset: int) -> list[ProductHit]:
    products = Product.objects.with_images().in_bulk([h.product_id for h in raw])
    return [
        ProductHit(products[h.product_id], round(h.similarity, 4), offset + i + 1, h.image_id)
        for i, h in enumerate(raw)
        if h.product_id in products
    ]

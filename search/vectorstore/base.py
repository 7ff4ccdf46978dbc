"""What search needs from a vector store. One module per store implements it; the
``SEARCH_VECTOR_STORE`` setting picks one (see ``search.vectorstore.vector_store``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from search.filters import CatalogFilters

if TYPE_CHECKING:
    from search.models import EmbeddingModel


@dataclass(frozen=True)
class VectorHit:
    product_id: int
    image_id: int | None
    similarity: float


class VectorStore(Protocol):
    def nearest_images(
        self,
        *,
        model: EmbeddingModel,
        vector: np.ndarray,
        filters: CatalogFilters,
        limit: int,
        offset: int = 0,
        exclude_product_ids: tuple[int, ...] = (),
        min_similarity: float | None = None,
    ) -> list[VectorHit]:
        """Products ranked by their best-matching image, each product once, ties by id."""

    def image_similarities(
        self, *, model: EmbeddingModel, vector: np.ndarray, product_ids: list[int]
    ) -> dict[int, tuple[int, float]]:
        """product id -> (best image id, cosine similarity), exactly, for these products."""

    def nearest_texts(
        self, *, model: EmbeddingModel, vector: np.ndarray, filters: CatalogFilters, limit: int
    ) -> list[VectorHit]:
        """Products whose title+description vector is nearest."""

    def indexes_ensure(
        self, model: EmbeddingModel, *, concurrently: bool | None = None, wait: bool = True
    ) -> None:
        """Build the model's approximate-nearest-neighbour indexes if missing or broken."""

    def indexes_drop(self, model: EmbeddingModel) -> None:
        """Remove the model's indexes (before its vectors are deleted)."""

    def index_names(self, model: EmbeddingModel) -> list[str]:
        """The names of the model's indexes, image index first."""

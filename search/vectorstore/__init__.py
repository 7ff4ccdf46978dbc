"""The vector store seam: ``vector_store()`` returns the configured implementation."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from search.vectorstore.base import VectorHit, VectorStore

__all__ = ["VectorHit", "VectorStore", "vector_store"]


@cache
def _store(path: str) -> VectorStore:
    return import_string(path)()


def vector_store() -> VectorStore:
    return _store(settings.SEARCH_VECTOR_STORE)

"""The HTTP status of each error the search code raises on purpose, for pages and API alike."""

from __future__ import annotations

from search.embeddings import ModelLoadError
from search.services.query import SearchError
from shop.images import InvalidImage

# The message of each says what the user should change; the status says whose fault it is.
KNOWN_ERRORS = (SearchError, InvalidImage, ModelLoadError)


def error_status(exc: Exception) -> int:
    """400-class for what the request can change, 503 when no model can be loaded."""
    if isinstance(exc, ModelLoadError):
        return 503
    return exc.status

"""Turn request parameters (query string or JSON) into a SearchRequest: shared by HTML and API."""

from __future__ import annotations

from django.conf import settings

from search.selectors import CatalogFilters
from search.services.query import SearchRequest, Term


def search_request_from(data: dict, terms: list[Term]) -> SearchRequest:
    """``data`` is a validated FiltersSerializer payload."""
    return SearchRequest(
        terms=terms,
        filters=CatalogFilters(
            category_slug=data.get("category") or None,
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            in_stock=data.get("in_stock"),
            colour=data.get("colour") or None,
        ),
        limit=data.get("limit") or settings.SEARCH_DEFAULT_LIMIT,
        offset=data.get("offset") or 0,
        min_score=data.get("min_score"),
    )

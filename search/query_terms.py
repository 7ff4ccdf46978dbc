"""Validated request data -> SearchRequest. Shared by the HTML views and the API, so a page
and an API call with the same parameters run the very same query."""

from __future__ import annotations

from django.conf import settings

from search.detection import query_photo
from search.filters import CatalogFilters
from search.services.query import SearchRequest, Term


def search_request_from(data: dict, terms: list[Term], **extra) -> SearchRequest:
    """``data`` is a validated FiltersSerializer payload."""
    return SearchRequest(
        terms=terms,
        filters=CatalogFilters.from_params(data),
        limit=data.get("limit") or settings.SEARCH_DEFAULT_LIMIT,
        offset=data.get("offset") or 0,
        min_score=data.get("min_score"),
        sort=data.get("sort") or "relevance",
        **extra,
    )


def text_terms(data: dict) -> list[Term]:
    return [Term(kind="text", text=data["q"])]


def image_terms(data: dict) -> list[Term]:
    """Photo (or catalog product) plus optional modifier and negative, from ImageSearchInput."""
    modifiers = modifier_terms(data)
    look_weight = 1.0 - sum(t.weight for t in modifiers if t.weight > 0)
    if data.get("image") is not None:
        # The main item, as the catalog would show it (search/detection/normalise.py); the
        # request's ``auto_crop`` (default on) turns it off.
        image = query_photo(data["image"]) if data.get("auto_crop", True) else data["image"]
        return [Term(kind="image", image=image, weight=look_weight), *modifiers]
    return [Term(kind="product", product_id=data["product"], weight=look_weight), *modifiers]


def modifier_terms(data: dict) -> list[Term]:
    """The words steering a look ("this, but in red", "not leather"): ``text`` with weight
    ``text_weight`` and ``negative`` pushing away with ``negative_weight``. The look itself
    (a photo, a product, each item of a shop-the-look photo) gets 1 - the text's weight."""
    terms = []
    text = (data.get("text") or "").strip()
    if text:
        terms.append(Term(kind="text", text=text, weight=data["text_weight"]))
    negative = (data.get("negative") or "").strip()
    if negative and data["negative_weight"] > 0:
        terms.append(Term(kind="text", text=negative, weight=-data["negative_weight"]))
    return terms


def similar_terms(product_id: int, data: dict) -> list[Term]:
    return image_terms({**data, "product": product_id, "image": None, "negative": ""})


def hybrid_terms(data: dict) -> list[Term]:
    terms = [Term(kind="text", text=t, weight=w) for t, w in data["text"].items()]
    terms += [Term(kind="image", image=i["image"], weight=i["weight"]) for i in data["images"]]
    terms += [
        Term(kind="product", product_id=p["product"], weight=p["weight"]) for p in data["products"]
    ]
    return terms

"""Validated request data -> CatalogFilters and SearchRequest terms (search/filters.py,
search/query_terms.py), checked value by value: the API tests only see the ranked result."""

from __future__ import annotations

from decimal import Decimal

import pytest

from search.filters import CatalogFilters
from search.query_terms import (
    hybrid_terms,
    image_terms,
    search_request_from,
    similar_terms,
    text_terms,
)
from search.services.query import Term

PHOTO = object()  # a decoded photo, passed on as is (auto_crop off: cropping has its own tests)


def test_filters_from_params_maps_category_and_empty_values():
    f = CatalogFilters.from_params(
        {
            "category": "dress",
            "min_price": Decimal("5"),
            "max_price": "",
            "in_stock": False,
            "colour": "red",
            "exclude_colours": ("blue",),  # never taken from request data
        }
    )
    assert f == CatalogFilters(
        category_slug="dress", min_price=Decimal("5"), max_price=None, in_stock=False, colour="red"
    )
    assert f.exclude_colours == () and f.exclude_words == ()
    assert CatalogFilters.from_params({}) == CatalogFilters()
    assert CatalogFilters.from_params({"category_slug": "dress"}).category_slug is None


def test_search_request_defaults_and_values(settings):
    settings.SEARCH_DEFAULT_LIMIT = 7
    terms = text_terms({"q": "red dress"})
    assert terms == [Term(kind="text", text="red dress", weight=1.0)]
    r = search_request_from({"category": "dress"}, terms, query="red dress")
    assert (r.limit, r.offset, r.min_score, r.query) == (7, 0, None, "red dress")
    assert r.filters == CatalogFilters(category_slug="dress")
    assert r.terms is terms
    r = search_request_from({"limit": 3, "offset": 6, "min_score": 0.2}, terms)
    assert (r.limit, r.offset, r.min_score, r.query) == (3, 6, 0.2, None)


def test_image_terms_photo_modifier_and_negative():
    data = {"image": PHOTO, "auto_crop": False, "text": "  in blue ", "text_weight": 0.25}
    data |= {"negative": " stripes ", "negative_weight": 0.5}
    assert image_terms(data) == [
        Term(kind="image", image=PHOTO, weight=0.75),
        Term(kind="text", text="in blue", weight=0.25),
        Term(kind="text", text="stripes", weight=-0.5),
    ]


def test_image_terms_without_text_ignore_the_text_weight():
    data = {"image": PHOTO, "auto_crop": False, "text": "   ", "text_weight": 0.25, "negative": "x"}
    data["negative_weight"] = 0.0  # a zero-weight negative is dropped
    assert image_terms(data) == [Term(kind="image", image=PHOTO, weight=1.0)]
    assert image_terms({"image": PHOTO, "auto_crop": False, "text_weight": 0.4}) == [
        Term(kind="image", image=PHOTO, weight=1.0)
    ]


def test_similar_terms_search_by_the_product_and_drop_photo_and_negative():
    data = {"image": PHOTO, "auto_crop": False, "text": "longer", "text_weight": 0.3}
    data |= {"negative": "red", "negative_weight": 0.5}
    terms = similar_terms(42, data)
    assert terms == [
        Term(kind="product", product_id=42, weight=pytest.approx(0.7)),
        Term(kind="text", text="longer", weight=0.3),
    ]


def test_hybrid_terms_keep_every_weight():
    data = {
        "text": {"red": 0.5, "leather": -0.25},
        "images": [{"image": PHOTO, "auto_crop": False, "weight": 0.2}],
        "products": [{"product": 9, "weight": 0.1}],
    }
    assert hybrid_terms(data) == [
        Term(kind="text", text="red", weight=0.5),
        Term(kind="text", text="leather", weight=-0.25),
        Term(kind="image", image=PHOTO, weight=0.2),
        Term(kind="product", product_id=9, weight=0.1),
    ]


def test_request_keeps_the_page_asked_for_and_filters_are_values():
    """Mutants of search_request_from ('offset or 0' -> 'and') and of CatalogFilters
    (frozen) survived the API tests."""
    request = search_request_from({"offset": 48, "limit": 12}, [Term(kind="text", text="red")])
    assert (request.offset, request.limit) == (48, 12)
    assert search_request_from({}, []).offset == 0
    filters = CatalogFilters(colour="red")
    with pytest.raises(AttributeError):
        filters.colour = "blue"  # shared by the page and the API call of one query
    assert hash(filters) == hash(CatalogFilters(colour="red"))


def test_photo_terms_crop_to_the_item_unless_asked_not_to():
    """Auto-crop is on by default, with or without the key in the request data."""
    from PIL import Image

    photo = Image.new("RGB", (300, 300), (248, 248, 246))
    photo.paste((200, 30, 40), (20, 20, 90, 120))  # a small red item off-centre
    cropped = image_terms({"image": photo})[0].image
    assert cropped is not photo and cropped.size != photo.size
    assert image_terms({"image": photo, "auto_crop": False})[0].image is photo

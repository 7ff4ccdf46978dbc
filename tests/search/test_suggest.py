"""Autocomplete on a known catalog: categories, synonyms, titles, typos, odd input."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(make_product):
    make_product("Red Sneaker", category="Sneaker", colour="red")
    make_product("Red Sneaker", category="Sneaker", colour="red")
    make_product("Blue Sneaker", category="Sneaker", colour="blue")
    make_product("Red Dress", category="Dress", colour="red")


def _suggest(client, q):
    r = client.get("/api/suggest/", {"q": q})
    assert r.status_code == 200, r.content
    return [(s["text"], s["kind"]) for s in r.json()["suggestions"]]


def test_a_prefix_completes_categories_then_titles(client, catalog):
    found = _suggest(client, "red sne")
    assert found[0] == ("red sneaker", "category")
    assert ("Red Sneaker", "title") not in found  # the same text, offered once
    assert _suggest(client, "sne")[0] == ("sneaker", "category")


def test_synonyms_are_offered(client, catalog):
    assert ("trainer", "synonym") in _suggest(client, "trai")


def test_a_typo_gets_the_nearest_word(client, catalog):
    assert _suggest(client, "snekaer") == [("sneaker", "word")]


@pytest.mark.parametrize("q", ["!!!", "'; DROP TABLE x; --", "a:* & !b | (c", "👟", "حذاء", "_%\\"])
def test_odd_input_is_answered(client, catalog, q):
    _suggest(client, q)


def test_empty_is_a_400(client, catalog):
    assert client.get("/api/suggest/", {"q": ""}).status_code == 400


def test_the_search_page_wires_the_box(client, catalog):
    page = client.get("/search/").content.decode()
    # shop.js reads the URL from the body and builds the box's <datalist> (the browser test
    # test_understood_page.py::test_the_search_box_offers_suggestions types into it).
    assert 'data-suggest-url="/api/v1/suggest/"' in page and "search/shop" in page

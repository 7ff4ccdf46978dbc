"""The keyword leg on small catalogs whose answers are known (no model needed)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from search.filters import CatalogFilters
from search.models import ProductDocument
from search.vectorstore import keyword
from shop import services
from shop.models import Product

pytestmark = pytest.mark.django_db


def _ids(groups, **filters) -> list[int]:
    hits = keyword.keyword_search(groups=groups, filters=CatalogFilters(**filters), limit=50)
    return [h.product_id for h in hits]


@pytest.fixture
def catalog(make_product):
    return {
        "red_sneaker": make_product("Red Sneaker", category="Sneaker", colour="red"),
        "blue_sneaker": make_product("Blue Sneaker", category="Sneaker", colour="blue"),
        "red_dress": make_product("Red Dress", category="Dress", colour="red", price="80.00"),
        "tshirt": make_product("White T-shirt", category="T-shirt", colour="white"),
        "shirt": make_product(
            "Oxford", category="Shirt", colour="white", description="cotton with buttons"
        ),
        "boot": make_product(
            "Chelsea", category="Ankle boot", colour="black", attributes={"material": "leather"}
        ),
    }


def test_documents_are_written_with_the_product(catalog):
    assert ProductDocument.objects.count() == len(catalog)


def test_more_query_words_matched_rank_first_and_plurals_stem(catalog):
    ids = _ids([["red"], ["sneakers"]])
    assert ids[0] == catalog["red_sneaker"].pk
    assert set(ids[1:]) == {catalog["blue_sneaker"].pk, catalog["red_dress"].pk}


def test_title_outranks_description_and_category_and_attributes_match(catalog):
    assert _ids([["buttons"]]) == [catalog["shirt"].pk]
    assert _ids([["leather"]]) == [catalog["boot"].pk]
    assert _ids([["ankle boots"]]) == [catalog["boot"].pk]


def test_shirt_does_not_match_t_shirts(catalog):
    assert _ids([["shirt"]]) == [catalog["shirt"].pk]
    assert _ids([["t-shirt"]]) == [catalog["tshirt"].pk]


def test_alternatives_in_a_group_are_ored(catalog):
    assert set(_ids([["trainer", "sneaker"]])) == {
        catalog["red_sneaker"].pk,
        catalog["blue_sneaker"].pk,
    }


def test_filters_apply_to_the_keyword_leg(catalog):
    assert _ids([["red"]], max_price=50) == [catalog["red_sneaker"].pk]


def test_an_edit_of_any_field_rewrites_the_document(catalog):
    product = Product.objects.get(pk=catalog["blue_sneaker"].pk)
    product.colour = "green"
    services.product_save(product=product, changed_fields=["colour"])
    assert _ids([["green"]]) == [product.pk]
    assert _ids([["blue"]]) == [product.pk]  # still in the title


def test_the_sweep_rewrites_stale_and_missing_documents(catalog):
    # A write around the catalog services (a raw update) leaves the document stale.
    Product.objects.filter(pk=catalog["tshirt"].pk).update(
        title="Striped Tee", updated_at=timezone.now()
    )
    ProductDocument.objects.filter(pk=catalog["shirt"].pk).delete()
    assert set(keyword.product_ids_stale(100)) == {catalog["tshirt"].pk, catalog["shirt"].pk}
    keyword.documents_refresh(keyword.product_ids_stale(100))
    assert keyword.product_ids_stale(100) == []
    assert _ids([["striped"]]) == [catalog["tshirt"].pk]


@pytest.mark.parametrize(
    "text", ["", "the of and", "'); DROP TABLE shop_product; --", "a & b | !c:*", "👟🔥", "حذاء"]
)
def test_odd_text_is_safe(catalog, text):
    assert isinstance(_ids([[text]]), list)
    assert Product.objects.count() == len(catalog)


def test_typo_tolerance_against_the_catalog_vocabulary(catalog):
    assert keyword.words_known(["Sneaker", "snekaer"]) == {"sneaker"}
    assert keyword.word_closest("sneker", min_similarity=0.3) == "sneaker"
    assert keyword.word_closest("xqzw", min_similarity=0.3) is None

"""Sort, totals and paging links of every search mode, on the six-pattern catalog (conftest
``catalog``): photos are random patterns, 'twin' copies 'a', prices 10..60, so the right
orders are known."""

from datetime import timedelta

import pytest
from django.utils import timezone

from shop.models import Product

pytestmark = pytest.mark.django_db

# Not the creation order, nor the price order: the order 'newest' must give.
NEWEST_FIRST = ["d", "twin", "b", "e", "c", "a"]


@pytest.fixture
def dated(catalog):
    now = timezone.now()
    for age, name in enumerate(NEWEST_FIRST):
        Product.objects.filter(pk=catalog[name].pk).update(created_at=now - timedelta(days=age))
    return catalog


def names(body: dict, catalog: dict) -> list[str]:
    by_id = {p.pk: name for name, p in catalog.items()}
    return [by_id[r["id"]] for r in body["results"]]


def similar(client, catalog, **params) -> dict:
    r = client.get(f"/api/v1/products/{catalog['a'].pk}/similar/", params)
    assert r.status_code == 200, r.content
    return r.json()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("price_asc", ["b", "c", "d", "e", "twin"]),
        ("price_desc", ["twin", "e", "d", "c", "b"]),
        ("newest", [n for n in NEWEST_FIRST if n != "a"]),
    ],
)
def test_every_sort_orders_the_relevant_set(client, dated, sort, expected):
    body = similar(client, dated, sort=sort)
    assert names(body, dated) == expected
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    assert (body["sort"], body["total"], body["total_exact"]) == (sort, 5, True)


def test_relevance_is_the_default_sort(client, catalog):
    body = similar(client, catalog)
    assert body["sort"] == "relevance"
    assert names(body, catalog)[0] == "twin"  # the same photo as 'a'


def test_a_sort_orders_only_the_first_candidates_and_pages_through_them(client, catalog, settings):
    settings.SEARCH_FUSION_CANDIDATES = 3
    relevant = names(similar(client, catalog, limit=3), catalog)
    prices = {name: p.price for name, p in catalog.items()}
    expected = sorted(relevant, key=prices.__getitem__)
    first = similar(client, catalog, sort="price_asc", limit=2)
    second = similar(client, catalog, sort="price_asc", limit=2, offset=2)
    assert names(first, catalog) + names(second, catalog) == expected
    assert "twin" in expected  # the most similar product is in the set, dearest as it is
    # Five products could be found: three were sorted, and the count says "more than 3".
    assert (first["total"], first["total_exact"]) == (3, False)
    assert first["has_more"] and not second["has_more"]
    assert second["next"] is None


def test_relevance_totals_are_a_lower_bound_until_the_end_is_reached(client, catalog, settings):
    settings.SEARCH_FUSION_CANDIDATES = 3
    pages = [similar(client, catalog, limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [(p["total"], p["total_exact"], p["has_more"]) for p in pages] == [
        (3, False, True),
        (4, False, True),
        (5, True, False),
    ]
    seen = [n for p in pages for n in names(p, catalog)]
    assert seen == names(similar(client, catalog, limit=10), catalog)


def test_paging_links_follow_get_searches(client, catalog):
    first = similar(client, catalog, limit=2, sort="price_desc")
    assert first["previous"] is None
    assert first["has_more"] is True
    r = client.get(first["next"])
    assert r.status_code == 200
    second = r.json()
    assert (second["offset"], names(second, catalog)) == (2, ["d", "c"])
    back = client.get(second["previous"]).json()
    assert names(back, catalog) == names(first, catalog)
    assert "offset=" not in second["previous"]  # the first page has no offset


def test_post_searches_page_by_posting_the_same_body_to_next(client, catalog):
    body = {"products": [{"product": catalog["a"].pk}], "limit": 2, "sort": "price_asc"}
    first = client.post("/api/v1/search/hybrid/", body, content_type="application/json").json()
    assert names(first, catalog) == ["b", "c"]
    assert first["next"].endswith("/api/v1/search/hybrid/?offset=2")
    second = client.post(first["next"], body, content_type="application/json").json()
    assert names(second, catalog) == ["d", "e"]
    assert (second["total"], second["total_exact"], second["has_more"]) == (5, True, True)


def test_photo_search_sorts_too(client, catalog):
    r = client.post(
        "/api/v1/search/image/",
        {"product": catalog["a"].pk, "sort": "price_desc"},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    assert names(r.json(), catalog) == ["twin", "e", "d", "c", "b"]


def test_text_search_sorts_the_fused_results(client, dated):
    r = client.get("/api/v1/search/text/", {"q": "patterns", "sort": "newest"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert names(body, dated) == NEWEST_FIRST
    assert (body["total"], body["total_exact"], body["has_more"]) == (6, True, False)


def test_a_price_only_query_sorts_within_its_bound(client, catalog):
    cheapest = client.get("/api/v1/search/text/", {"q": "under 35"}).json()
    assert names(cheapest, catalog) == ["a", "b", "c"]
    dearest = client.get("/api/v1/search/text/", {"q": "under 35", "sort": "price_desc"}).json()
    assert names(dearest, catalog) == ["c", "b", "a"]
    assert dearest["total"] == 3


def test_an_unknown_sort_is_a_400_naming_the_choices(client, catalog):
    r = client.get("/api/v1/search/text/", {"q": "patterns", "sort": "cheapest"})
    assert r.status_code == 400
    assert "sort" in r.json()["error"]
    assert "price_asc" in str(r.json()["detail"])


def test_a_multipart_photo_search_pages_through_its_next_link(client, catalog):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import encode, pattern

    def form():
        photo = SimpleUploadedFile("a.png", encode(pattern(1), "PNG"), content_type="image/png")
        return {"image": photo, "limit": 2, "sort": "price_asc", "auto_crop": "false"}

    first = client.post("/api/v1/search/image/", form()).json()
    second = client.post(first["next"], form()).json()
    assert names(first, catalog) + names(second, catalog) == ["a", "b", "c", "d"]
    assert second["previous"].endswith("/api/v1/search/image/")

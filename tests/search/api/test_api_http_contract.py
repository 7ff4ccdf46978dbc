"""What the API promises over HTTP besides its bodies: versioned paths and their deprecated
aliases, the look route's names, rate-limit headers a client can respect, and CORS for the
origins the settings allow (none by default)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.throttling import ScopedRateThrottle

from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_per_minute(monkeypatch):
    # ScopedRateThrottle copies the rates when DRF loads, so settings overrides miss it.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "2/min"})


def test_the_versioned_path_answers_without_deprecation(client, indexed):
    r = client.get("/api/v1/search/text/", {"q": "red"})
    assert r.status_code == 200
    assert "Deprecation" not in r


@pytest.mark.parametrize(
    ("alias", "successor"),
    [
        ("/api/search/text/?q=red", "/api/v1/search/text/"),
        ("/api/stats/", "/api/v1/stats/"),
        ("/api/products/", "/api/v1/products/"),
    ],
)
def test_an_unversioned_path_is_a_deprecated_alias(client, indexed, alias, successor):
    versioned = client.get(alias.replace("/api/", "/api/v1/", 1))
    r = client.get(alias)
    assert r.status_code == 200
    assert r.json() == versioned.json()  # one page each: no paging link names a path
    assert r["Deprecation"].startswith("@")
    assert r["Link"] == f'<{successor}>; rel="successor-version"'


def test_the_alias_of_a_product_route_names_its_own_successor(client, indexed):
    from shop.models import Product

    pk = Product.objects.order_by("pk").first().pk
    r = client.get(f"/api/products/{pk}/similar/")
    assert r.status_code == 200
    assert r["Link"] == f'</api/v1/products/{pk}/similar/>; rel="successor-version"'


def test_the_look_route_has_its_name_and_keeps_its_first_path(client, indexed):
    answers = {}
    for url in ("/api/v1/search/look/", "/api/search/look/", "/api/detect/"):
        photo = SimpleUploadedFile("look.png", png_bytes((220, 20, 30), size=(96, 96)))
        r = client.post(url, {"image": photo, "limit": 2})
        assert r.status_code == 200, (url, r.content)
        answers[url] = r.json()
        if url != "/api/v1/search/look/":
            assert r["Link"] == '</api/v1/search/look/>; rel="successor-version"'
    assert len({str(a) for a in answers.values()}) == 1
    assert client.post("/api/v1/detect/", {}).status_code == 404  # never versioned


def test_throttled_answers_carry_rate_limit_headers(client, indexed, two_per_minute):
    first = client.get("/api/v1/search/text/", {"q": "red"})
    second = client.get("/api/v1/search/text/", {"q": "red"})
    refused = client.get("/api/v1/search/text/", {"q": "red"})
    assert [r.status_code for r in (first, second, refused)] == [200, 200, 429]
    assert [r["RateLimit-Limit"] for r in (first, second, refused)] == ["2", "2", "2"]
    assert [r["RateLimit-Remaining"] for r in (first, second, refused)] == ["1", "0", "0"]
    assert 0 < int(first["RateLimit-Reset"]) <= 60
    assert 0 < int(refused["RateLimit-Reset"]) <= 60
    assert 0 < int(refused["Retry-After"]) <= 60


def test_photo_posts_count_against_the_same_budget(client, indexed, two_per_minute):
    from shop.models import Product

    pk = Product.objects.order_by("pk").first().pk
    body = {"product": pk}
    r = client.post("/api/v1/search/image/", body, content_type="application/json")
    assert (r.status_code, r["RateLimit-Remaining"]) == (200, "1")


def test_unthrottled_endpoints_announce_no_rate_limit(client, indexed):
    r = client.get("/api/v1/stats/")
    assert r.status_code == 200
    assert "RateLimit-Limit" not in r


def test_no_origin_is_allowed_by_default(client, indexed):
    r = client.get("/api/v1/search/text/", {"q": "red"}, HTTP_ORIGIN="https://shop.example")
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r


def test_an_allowed_origin_may_call_the_api_and_read_the_rate_limit(client, indexed, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    preflight = client.options(
        "/api/v1/search/hybrid/",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "content-type" in preflight["Access-Control-Allow-Headers"]
    r = client.get("/api/v1/search/text/", {"q": "red"}, HTTP_ORIGIN="https://shop.example")
    assert r["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "RateLimit-Remaining" in r["Access-Control-Expose-Headers"]
    other = client.get("/api/v1/search/text/", {"q": "red"}, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in other


def test_the_pages_never_answer_other_origins(client, indexed, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    r = client.get("/search/", {"q": "red"}, HTTP_ORIGIN="https://shop.example")
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r

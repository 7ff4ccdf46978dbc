"""The search API and the shopper search pages are rate limited per client and per mode: past
the limit, a 429 that says when to come back (JSON on the API, the page itself with a sentence
on the pages). The test settings raise the limit; these tests lower it again."""

import ast
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from search.services import indexing
from shop.models import Product, ProductImage
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch):
    """Set the throttle rates; ScopedRateThrottle copies them when DRF loads, so settings
    overrides miss it."""

    def _set(**rates: str) -> None:
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)

    return _set


@pytest.fixture
def two_per_minute(rates):
    rates(search="2/min")


def photo() -> SimpleUploadedFile:
    return SimpleUploadedFile("look.png", png_bytes((220, 20, 30), size=(96, 96)), "image/png")


def test_search_past_the_rate_limit_gets_429_with_retry_after(client, make_product, two_per_minute):
    make_product("Red", colours=[(220, 20, 30)])
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    for _ in range(2):
        assert client.get("/api/search/text/", {"q": "red"}).status_code == 200
    r = client.get("/api/search/text/", {"q": "red"})
    assert r.status_code == 429
    assert 0 < int(r["Retry-After"]) <= 60
    assert "error" in r.json()
    # Another client (address) has its own budget; the empty search page counts nothing.
    other = client.get("/api/search/text/", {"q": "red"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200
    assert client.get("/search/").status_code == 200


def test_a_new_x_forwarded_for_each_time_buys_no_new_budget(client, indexed, two_per_minute):
    answers = [
        client.get("/api/v1/search/text/", {"q": "red"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        for i in range(5)
    ]
    assert [r.status_code for r in answers] == [200, 200, 429, 429, 429]


def test_behind_a_proxy_the_address_it_saw_is_the_client(client, indexed, two_per_minute, settings):
    assert api_settings.NUM_PROXIES == django_settings.NUM_PROXIES == 0  # DRF has the setting
    settings.NUM_PROXIES = 1

    def search(forwarded: str) -> int:
        return client.get(
            "/api/v1/search/text/", {"q": "red"}, HTTP_X_FORWARDED_FOR=forwarded
        ).status_code

    # The client may prepend anything; the proxy appends the address it saw (rightmost).
    assert [search(f"198.51.100.{i}, 203.0.113.7") for i in range(3)] == [200, 200, 429]
    assert search("198.51.100.1, 203.0.113.8") == 200


def test_each_mode_has_its_own_budget(client, indexed, two_per_minute):
    for _ in range(2):
        assert client.get("/api/v1/search/text/", {"q": "red"}).status_code == 200
    assert client.get("/api/v1/search/text/", {"q": "red"}).status_code == 429
    # Text use left the other modes alone.
    pk = Product.objects.order_by("pk").first().pk
    image = client.post("/api/v1/search/image/", {"image": photo()})
    assert (image.status_code, image["RateLimit-Remaining"]) == (200, "1")
    hybrid = client.post(
        "/api/v1/search/hybrid/", {"products": [{"product": pk}]}, content_type="application/json"
    )
    assert (hybrid.status_code, hybrid["RateLimit-Remaining"]) == (200, "0")  # photo's budget
    assert client.post("/api/v1/search/image/", {"image": photo()}).status_code == 429
    assert client.post("/api/v1/search/look/", {"image": photo()}).status_code == 200
    assert client.post("/api/v1/describe/", {"image": photo()}).status_code == 200
    assert client.get(f"/api/v1/products/{pk}/similar/").status_code == 200
    assert client.get("/api/v1/suggest/", {"q": "re"}).status_code == 200


def test_a_mode_can_have_its_own_rate(client, indexed, rates):
    rates(search="2/min", search_photo="5/min")
    assert client.get("/api/v1/search/text/", {"q": "red"})["RateLimit-Limit"] == "2"
    assert client.post("/api/v1/search/image/", {"image": photo()})["RateLimit-Limit"] == "5"


def test_per_mode_rates_come_from_the_environment():
    env = {**os.environ, "SEARCH_THROTTLE_RATE": "7/min", "SEARCH_PHOTO_THROTTLE_RATE": "3/min"}
    code = "from config.settings import base; print(base.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = ast.literal_eval(out)
    assert found["search_photo"] == "3/min"
    assert found["search"] == found["search_text"] == found["search_suggest"] == "7/min"


def test_the_text_page_is_throttled_with_a_sentence_in_its_layout(client, indexed, two_per_minute):
    for _ in range(3):  # the empty search page counts nothing
        assert client.get("/search/").status_code == 200
    first = client.get("/search/", {"q": "red"})
    assert (first.status_code, first["RateLimit-Remaining"]) == (200, "1")
    assert client.get("/search/", {"q": "red"}).status_code == 200
    r = client.get("/search/", {"q": "red"})
    assert r.status_code == 429
    seconds = int(r["Retry-After"])
    assert 0 < seconds <= 60
    assert (r["RateLimit-Limit"], r["RateLimit-Remaining"]) == ("2", "0")
    body = r.content.decode()
    assert f"Too many searches from your connection; wait {seconds} seconds" in body
    assert 'role="alert"' in body and "Visual Shop" in body  # the page's layout and message
    assert "<select" in body  # the filters form is still there to try again later


def test_the_pages_and_the_api_share_a_mode_budget(client, indexed, two_per_minute):
    assert client.get("/api/v1/search/text/", {"q": "red"}).status_code == 200
    assert client.get("/search/", {"q": "red"}).status_code == 200
    assert client.get("/search/", {"q": "red"}).status_code == 429
    assert client.get("/api/v1/search/text/", {"q": "red"}).status_code == 429


def test_the_photo_page_counts_searches_not_the_empty_form(client, indexed, two_per_minute):
    for _ in range(3):
        assert client.get("/search/photo/").status_code == 200
    first = client.post("/search/photo/", {"image": photo()})
    assert first.status_code == 200
    key = first.context["photo_key"]
    assert client.get("/search/photo/", {"photo": key, "text": "blue"}).status_code == 200
    r = client.get("/search/photo/", {"photo": key})
    assert r.status_code == 429
    assert "Too many searches" in r.content.decode()
    # Photo use left the text search alone.
    assert client.get("/search/", {"q": "red"}).status_code == 200


@pytest.mark.parametrize(
    ("page", "send"),
    [
        ("/search/look/", lambda c, url: c.post(url, {"image": photo()})),
        ("/search/describe/", lambda c, url: c.post(url, {"image": photo()})),
        ("/search/similar/SLUG/", lambda c, url: c.get(url)),
    ],
)
def test_every_search_page_is_throttled(client, indexed, two_per_minute, page, send):
    product = Product.objects.order_by("pk").first()
    url = page.replace("SLUG", product.slug)
    assert [send(client, url).status_code for _ in range(3)] == [200, 200, 429]
    r = send(client, url)
    assert r.status_code == 429 and 0 < int(r["Retry-After"]) <= 60
    body = r.content.decode()
    assert "Too many searches from your connection" in body
    if "similar" in page:
        assert product.title in body  # "More like <product>" still says which product


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_with_redis_down_searches_go_on_uncounted(client, indexed, two_per_minute, settings):
    cache = dict(settings.CACHES["default"])
    cache["LOCATION"] = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CACHES = {"default": cache}
    answers = [client.get("/api/v1/search/text/", {"q": "red"}) for _ in range(4)]
    assert [r.status_code for r in answers] == [200] * 4
    assert all("RateLimit-Limit" not in r for r in answers)
    assert [client.get("/search/", {"q": "red"}).status_code for _ in range(4)] == [200] * 4

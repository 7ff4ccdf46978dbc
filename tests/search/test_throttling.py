"""The public search API is rate limited per client: past the limit, a 429 that says when to
come back. The test settings raise the limit; one test lowers it again."""

import pytest
from rest_framework.throttling import ScopedRateThrottle

from search.services import indexing
from shop.models import ProductImage

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_per_minute(monkeypatch):
    # ScopedRateThrottle copies the rates when DRF loads, so settings overrides miss it.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "2/min"})


def test_search_past_the_rate_limit_gets_429_with_retry_after(client, make_product, two_per_minute):
    make_product("Red", colours=[(220, 20, 30)])
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    for _ in range(2):
        assert client.get("/api/search/text/", {"q": "red"}).status_code == 200
    r = client.get("/api/search/text/", {"q": "red"})
    assert r.status_code == 429
    assert 0 < int(r["Retry-After"]) <= 60
    assert "error" in r.json()
    # Another client (address) has its own budget; the shop pages are not throttled.
    other = client.get("/api/search/text/", {"q": "red"}, REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200
    assert client.get("/").status_code == 200

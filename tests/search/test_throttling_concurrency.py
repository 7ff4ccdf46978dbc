"""The search limit holds under concurrency: many clients at once (real HTTP requests against a
threaded live server, and threads counting directly) get exactly the limit through, each slot
taken once. DRF's own throttle reads the history, then writes it back, so concurrent requests
counted the same slot (8 clients got 140 to 173 through a 120/min limit)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.throttling import ScopedRateThrottle

from search.api.throttling import rate_count

CLIENTS = 8


@pytest.fixture
def rates(monkeypatch):
    def _set(**rates: str) -> None:
        # ScopedRateThrottle copies the rates when DRF loads, so settings overrides miss it.
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)

    return _set


def _hammer(url: str, per_client: int) -> list[tuple[int, str | None]]:
    """``CLIENTS`` threads, released together, each sending ``per_client`` GETs; (status,
    RateLimit-Remaining) of every answer."""
    start = threading.Barrier(CLIENTS)

    def client() -> list[tuple[int, str | None]]:
        start.wait()
        answers = []
        for _ in range(per_client):
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    answers.append((r.status, r.headers.get("RateLimit-Remaining")))
            except urllib.error.HTTPError as r:
                answers.append((r.code, r.headers.get("RateLimit-Remaining")))
        return answers

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [a for answers in pool.map(lambda _: client(), range(CLIENTS)) for a in answers]


@pytest.mark.django_db(transaction=True)
def test_concurrent_api_clients_get_exactly_the_limit(live_server, rates):
    rates(search="30/min")
    answers = _hammer(f"{live_server.url}/api/v1/suggest/?q=re", per_client=10)
    assert Counter(status for status, _ in answers) == {200: 30, 429: 50}
    # Each slot was handed out once: the allowed answers say 29, 28, ... 0 left.
    remaining = sorted(int(left) for status, left in answers if status == 200)
    assert remaining == list(range(30))


@pytest.mark.django_db(transaction=True)
def test_concurrent_shoppers_get_exactly_the_limit_on_the_search_page(live_server, indexed, rates):
    rates(search="10/min")
    answers = _hammer(f"{live_server.url}/search/?q=red", per_client=4)
    assert Counter(status for status, _ in answers) == {200: 10, 429: 22}


@pytest.mark.django_db
def test_threads_counting_at_once_take_each_slot_once():
    ident = f"test-{uuid.uuid4().hex}"
    start = threading.Barrier(16)

    def count() -> list[bool]:
        start.wait()
        hits = [rate_count(scope="search_text", ident=ident, rate="25/min") for _ in range(5)]
        return [hit.allowed for hit in hits]

    with ThreadPoolExecutor(16) as pool:
        allowed = [a for results in pool.map(lambda _: count(), range(16)) for a in results]
    assert allowed.count(True) == 25
    assert allowed.count(False) == 80 - 25

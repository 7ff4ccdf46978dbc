"""A frozen Redis costs one socket timeout, not one per cache call (config/cache.py)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from django.conf import settings as django_settings

from config.cache import BreakerRedisCache


class BlackHole:
    """A TCP server that accepts connections and never answers: a Redis that is frozen
    (SIGSTOP, a partition that drops replies), not one that refuses connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def frozen_redis():
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.mark.django_db
def test_search_pays_for_a_frozen_redis_once_then_skips_it(client, settings, indexed, frozen_redis):
    cache = dict(settings.CACHES["default"])
    cache["LOCATION"] = f"redis://127.0.0.1:{frozen_redis.port}/0"
    cache["OPTIONS"] = {**cache["OPTIONS"], "BACKOFF_SECONDS": 60}
    settings.CACHES = {"default": cache}

    for query in ("red", "blue", "red shoes", "blue bags"):
        r = client.get("/api/search/text/", {"q": query})
        assert r.status_code == 200
        assert r.json()["results"], query
    # Without the breaker every cache call of every search opens a new connection and waits
    # for its timeout; with it, the first failure opens the breaker for the rest.
    assert len(frozen_redis.connections) == 1


def test_cache_uses_redis_again_once_the_backoff_has_passed():
    live = django_settings.CACHES["default"]
    backend = BreakerRedisCache(
        live["LOCATION"], {"OPTIONS": {**live["OPTIONS"], "BACKOFF_SECONDS": 0.3}}
    )
    backend.set("breaker-probe", "stored", 30)
    assert backend.get("breaker-probe") == "stored"

    backend.breaker.trip()  # as after a failed call
    assert backend.get("breaker-probe") is None  # skipped: a miss at once, not a wait
    backend.set("breaker-probe", "dropped", 30)  # writes are dropped while open

    time.sleep(0.4)
    assert backend.get("breaker-probe") == "stored"
    backend.delete("breaker-probe")

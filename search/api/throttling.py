"""Search rate limits: one budget per client and search mode, for the API and the shopper pages
alike, counted atomically in Redis.

- **Per mode**: text, photo (photo and hybrid searches), look, describe (describe and
  similarity), similar, suggest. Each has its rate (``search_<mode>`` in DRF's
  ``DEFAULT_THROTTLE_RATES``, from ``SEARCH_<MODE>_THROTTLE_RATE``); ``search`` is the default
  of a mode without one. Typing in the search box never blocks a photo search.
- **Per client**: a signed-in user by id, anyone else by ``config.proxies.client_address``
  (X-Forwarded-For only behind ``NUM_PROXIES`` trusted proxies), the sign-in lockout's
  address: a header the client writes itself buys no fresh budget.
- **Atomic**: a sliding window log (a sorted set per client and mode) trimmed, counted and
  extended by one Lua script on Redis's clock, so concurrent requests, in one process or many,
  cannot both take the last slot (DRF's own throttle reads and writes a cached list, and 8
  clients got 140 to 173 requests through a 120/min limit). Refused requests are not logged,
  so a client that keeps hammering gets its budget back when its old requests age out.
- **Fail open**: with Redis unreachable nothing is counted and searches go on (the cache's
  circuit breaker, ``config/cache.py``, is tripped so the next calls do not wait either).

Every counted answer says where the client stands in the IETF draft's ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` headers; a 429 adds ``Retry-After``. The API
answers 429 in JSON (DRF); a page answers with itself and a shopper's sentence
(``page_throttle``).
"""

from __future__ import annotations

import functools
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_redis import get_redis_connection
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.throttling import ScopedRateThrottle

from config.proxies import client_address

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = "search"
# KEYS[1]: one client's log for one mode. ARGV: window (ms), limit, a member unique to this
# request. Redis's clock, not each web process's: every process counts the same window.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local age = 0
if oldest[2] then age = now - tonumber(oldest[2]) end
return {allowed, count, age}
"""


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the oldest counted request leaves the window
    allowed: bool = True

    @property
    def retry_after(self) -> int:
        return max(1, self.reset)


def _rate_for(scope: str | None) -> str | None:
    # The class attribute, read per request: DRF copies the settings' rates into it once.
    if not scope:
        return None
    rates = ScopedRateThrottle.THROTTLE_RATES
    return rates.get(scope) or rates.get(DEFAULT_SCOPE)


def client_ident(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user-{user.pk}"
    return f"addr-{client_address(request)}"


def rate_count(*, scope: str, ident: str, rate: str) -> RateLimit | None:
    """Count one request of ``ident`` in ``scope`` against ``rate`` ("120/min"); None when
    nothing could be counted (Redis unreachable: the request goes through)."""
    limit, duration = ScopedRateThrottle().parse_rate(rate)  # DRF's syntax, and its errors
    cache = caches["default"]
    breaker = getattr(cache, "breaker", None)
    if breaker is not None and breaker.is_open():
        return None
    key = cache.make_key(f"throttle:{scope}:{ident}")
    try:
        connection = get_redis_connection("default")
        allowed, count, age_ms = connection.register_script(_SLIDING_WINDOW)(
            keys=[key], args=[duration * 1000, limit, uuid.uuid4().hex]
        )
    except (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError, OSError) as exc:
        if breaker is not None:
            breaker.trip()
        logger.warning("Throttle not counted, Redis unreachable: %s", exc)
        return None
    except RedisError:
        logger.exception("Throttle not counted")
        return None
    return RateLimit(
        limit=limit,
        remaining=max(0, limit - int(count)),
        reset=max(0, math.ceil(duration - int(age_ms) / 1000)),
        allowed=bool(allowed),
    )


def request_count(request: HttpRequest, scope: str | None) -> RateLimit | None:
    """Count ``request`` in its client's budget for ``scope``; None when it has no rate or
    nothing was counted."""
    rate = _rate_for(scope)
    if rate is None:
        return None
    return rate_count(scope=scope, ident=client_ident(request), rate=rate)


class ModeRateThrottle(ScopedRateThrottle):
    """DRF's per-scope throttle on the atomic window; remembers what it counted for the
    headers (``rate_limit_headers_add``)."""

    def allow_request(self, request, view) -> bool:
        counted = request_count(request, getattr(view, self.scope_attr, None))
        self.counted = counted
        if counted is None:
            return True
        request.rate_limit = counted
        return counted.allowed

    def wait(self) -> float | None:
        counted = getattr(self, "counted", None)
        return counted.retry_after if counted is not None and not counted.allowed else None


def rate_limit_headers_add(request, response):
    """The headers of what the throttle counted for ``request`` (429s included)."""
    limit = getattr(request, "rate_limit", None)
    if limit is not None:
        response["RateLimit-Limit"] = str(limit.limit)
        response["RateLimit-Remaining"] = str(limit.remaining)
        response["RateLimit-Reset"] = str(limit.reset)
    return response


def throttled_message(seconds: int) -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many searches from your connection; wait {seconds} {unit} and try again."


def page_throttle(
    scope: str,
    template: str,
    context: Callable[..., dict],
    *,
    when: Callable[[HttpRequest], bool] = lambda request: True,
) -> Callable:
    """Throttle an HTML view in ``scope`` (the API's budget for that mode). Requests for
    which ``when`` is false (an empty form) are not counted. A refused request gets its page,
    ``template`` with ``context(request, params, **view_kwargs)`` and the wait as its
    ``error``, as a 429 with ``Retry-After``: the layout and the form stay."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def throttled_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            counted = request_count(request, scope) if when(request) else None
            if counted is not None and not counted.allowed:
                params = request.POST if request.method == "POST" else request.GET
                page = context(request, params, **kwargs)
                page["error"] = throttled_message(counted.retry_after)
                response = render(request, template, page, status=429)
                response["Retry-After"] = str(counted.retry_after)
            else:
                response = view(request, *args, **kwargs)
            request.rate_limit = counted
            return rate_limit_headers_add(request, response)

        return throttled_view

    return decorate

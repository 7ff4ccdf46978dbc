"""Rate limits a client can see coming: ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (IETF draft "RateLimit header fields for HTTP") on every throttled answer,
and ``Retry-After`` on a 429 (DRF adds that one). A client that reads them slows down before it
is refused instead of retrying blind."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rest_framework.throttling import ScopedRateThrottle


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the oldest counted request leaves the window


class HeaderedScopedRateThrottle(ScopedRateThrottle):
    """DRF's per-scope throttle, remembering what it counted for the response headers."""

    def allow_request(self, request, view) -> bool:
        allowed = super().allow_request(request, view)
        # No rate for the scope, or no cache key: nothing was counted, nothing to announce.
        if getattr(self, "history", None) is not None and getattr(self, "now", None):
            counted = len(self.history)
            oldest = self.history[-1] if self.history else self.now
            request.rate_limit = RateLimit(
                limit=self.num_requests,
                remaining=max(0, self.num_requests - counted),
                reset=max(0, math.ceil(self.duration - (self.now - oldest))),
            )
        return allowed


def rate_limit_headers_add(request, response):
    """The headers of what the throttle counted for ``request`` (429s included)."""
    limit = getattr(request, "rate_limit", None)
    if limit is not None:
        response["RateLimit-Limit"] = str(limit.limit)
        response["RateLimit-Remaining"] = str(limit.remaining)
        response["RateLimit-Reset"] = str(limit.reset)
    return response

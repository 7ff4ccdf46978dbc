"""Who sent a request, for everything that counts per client (the sign-in lockout, the search
throttles): one definition, so that the two can never disagree about an address."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest | None) -> str:
    """The address the request came from; behind ``NUM_PROXIES`` proxies, the one the nearest
    trusted proxy saw (the rightmost entries of X-Forwarded-For are the trusted ones). With 0
    proxies the header is ignored: any client can write it."""
    if request is None:
        return "unknown"
    proxies = getattr(settings, "NUM_PROXIES", 0) or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "unknown")

"""Turn an unreachable database into a 503 that says so, instead of a 500 (or a debug page)."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger("shop")

MESSAGE = (
    "The catalog database is not reachable right now; nothing was changed. "
    "Try again in a moment (operators: check that PostgreSQL is running and DATABASE_URL)."
)
RETRY_AFTER_S = 5


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, (OperationalError, InterfaceError)):
            return None
        log.error("Database unavailable for %s %s: %s", request.method, request.path, exc)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"error": MESSAGE}, status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response


class RejectNulMiddleware:
    """A NUL byte in the query string is a 400 with a message: PostgreSQL refuses NUL in text,
    which would otherwise surface as a 500 DataError from any filter it reaches."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in k or "\x00" in v for k, vs in request.GET.lists() for v in [k, *vs]):
            message = "The query string contains a NUL byte (%00); remove it and try again."
            if request.path.startswith("/api/"):
                return JsonResponse({"error": message}, status=400)
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

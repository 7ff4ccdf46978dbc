"""Turn an unreachable database into a 503 that says so, instead of a 500 (or a debug page)."""

from __future__ import annotations

import logging

from django.conf import settings
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


def _refusal(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """The API's error shape (search/api/errors.py) on /api/, plain text on the pages."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestBodyLimitMiddleware:
    """A body larger than ``REQUEST_MAX_BODY_BYTES`` is a 413 that names the limit, judged by
    its Content-Length before a byte of it is read.

    Django enforces ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when it parses a form itself (and then
    as a 400); DRF's JSON parser reads the stream directly, so a 12 MB JSON body went through
    (issue 12). A body without Content-Length reads as empty under WSGI, so it cannot pass."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.REQUEST_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refusal(request, "The Content-Length header is not a number.", 400)
        if length > limit:
            return _refusal(
                request,
                f"The request body is {length:,} bytes; at most {limit:,} bytes "
                f"({limit / 2**20:.0f} MB) are accepted. Send a smaller photo (a photo as a "
                "data URL grows by a third: send big ones as a multipart file).",
                413,
            )
        return self.get_response(request)


class ApiNotFoundMiddleware:
    """A path under /api/ that matches no route answers the API's JSON 404, not the shop's
    HTML page: a client (or a generated one) reads every API answer as JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            message = (
                f"No API operation at {request.path}. The operations are listed at /api/schema/."
            )
            return _refusal(request, message, 404)
        return response

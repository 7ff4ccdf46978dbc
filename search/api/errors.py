"""Every API error is JSON: {"error": "<what to do>", "detail": ...}."""

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from search.embeddings import ModelLoadError
from search.services.query import SearchError
from shop.images import InvalidImage


def exception_handler(exc, context):
    if isinstance(exc, (SearchError, InvalidImage)):
        return Response({"error": str(exc)}, status=exc.status)
    if isinstance(exc, ModelLoadError):
        return Response({"error": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = response.data
        message = detail.get("detail") if isinstance(detail, dict) and "detail" in detail else None
        if message is None:
            message = "Invalid request: " + _flatten(detail)
        response.data = {"error": str(message), "detail": detail}
    return response


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)

"""Every API error is JSON: {"error": "<what to do>", "detail": ...}."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from search.errors import KNOWN_ERRORS, error_status


class ErrorSerializer(serializers.Serializer):
    """What every error answer looks like (the schema's ``Error``)."""

    error = serializers.CharField(help_text="What went wrong and what to do, for a person")
    detail = serializers.JSONField(
        required=False, help_text="Field errors or DRF's detail, when there are any"
    )


def exception_handler(exc, context):
    if isinstance(exc, KNOWN_ERRORS):
        return Response({"error": str(exc)}, status=error_status(exc))
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

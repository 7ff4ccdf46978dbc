"""OpenAPI schema hooks (SPECTACULAR_SETTINGS)."""

from config.urls import API_VERSION


def versioned_only(endpoints: list, **kwargs) -> list:
    """Keep the versioned paths: the unversioned ones are aliases of the same views."""
    return [e for e in endpoints if e[0].startswith(f"/api/{API_VERSION}/")]


def multipart_bodies_optional(result: dict, **kwargs) -> dict:
    """A request body offered as JSON and as a multipart form is declared optional.

    openapi-python-client (0.29) generates code that fails on import (``NameError: Unset``)
    for a *required* body with several content types (openapi-python-client issue #1451).
    Nothing is lost by leaving ``required`` out: a missing body is a documented 400 anyway.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody")
            if body and len(body.get("content", {})) > 1:
                body.pop("required", None)
    return result

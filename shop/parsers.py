"""The API's JSON parser (the default of every API view): a body nested deeper than
``REQUEST_MAX_JSON_DEPTH`` is a 400 with a message, never a RecursionError. The body's size
is bounded before it is read (config.middleware.RequestBodyLimitMiddleware)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth_exceeds(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels deep (iterative:
    the check itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.REQUEST_MAX_JSON_DEPTH
        message = (
            f"JSON parse error - the body is nested too deeply (at most {limit} levels, "
            "REQUEST_MAX_JSON_DEPTH). Send a flat JSON object."
        )
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(message) from None
        if json_depth_exceeds(data, limit):
            raise ParseError(message)
        return data

"""API paging with bounds: an unbounded ``limit`` or ``offset`` reached PostgreSQL as a bigint
overflow (500 DataError) for ``?limit=9223372036854775808``."""

from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 100
    max_offset = 1_000_000_000  # far past any catalog: an empty page, not an overflow

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), self.max_offset)

"""Catalog filters: a plain value built from a request; the vector store renders it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal


@dataclass(frozen=True)
class CatalogFilters:
    category_slug: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    colour: str | None = None
    # Set by query understanding ("not red", "without leather"), never from request data:
    # products of these colours, or whose keyword document matches these words, are left out
    # of both legs.
    exclude_colours: tuple[str, ...] = ()
    exclude_words: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, data: Mapping) -> CatalogFilters:
        """From validated request data (``FiltersSerializer``), whose keys are the field names,
        except ``category`` for the slug. Empty values mean "no filter"."""
        values = {
            f.name: data.get(_PARAM.get(f.name, f.name)) for f in fields(cls) if f.default is None
        }
        return cls(**{k: (None if v == "" else v) for k, v in values.items()})


_PARAM = {"category_slug": "category"}

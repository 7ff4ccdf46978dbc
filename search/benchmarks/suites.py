"""Query suites (``queries/*.json``): shoppers' phrasings, synonyms, shades, typos, category
requests, price phrases and negations, each split into a tuning part (to choose weights on)
and a held-out part (only ever reported).

Every query runs through the app's query service twice: as the shopper's text (understood,
keyword + vector legs fused) and as a bare vector query (the terms alone, as before), so the
table shows what the keyword leg and query understanding add. A result is relevant when it
has the suite's colour and category (any of a list), respects a price bound and avoids a
negated colour; P@k is divided by min(k, relevant products in the catalog).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from search.services.query import SearchRequest, Term, products_search
from search.services.understanding import CHEAP_FRACTION
from search.vectorstore import keyword
from shop.models import Product

QUERIES_DIR = Path(__file__).resolve().parent / "queries"
PARTS = ("tuning", "heldout")


@dataclass(frozen=True)
class Row:
    colour: str
    category: str
    category_slug: str
    price: Decimal


def suites_load(folder: Path = QUERIES_DIR) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _bounds(query: dict, slugs: dict[str, str]) -> tuple[Decimal | None, Decimal | None]:
    lo, hi = query.get("min_price"), query.get("max_price")
    if query.get("cheap"):
        cats = _categories(query)
        hi = keyword.price_quantile(
            category_slugs=[slugs[c] for c in cats if c in slugs], fraction=CHEAP_FRACTION
        )
    return (None if lo is None else Decimal(str(lo))), (None if hi is None else Decimal(str(hi)))


def _categories(query: dict) -> list[str]:
    cat = query.get("category")
    return [] if cat is None else [cat] if isinstance(cat, str) else list(cat)


def relevance(query: dict, slugs: dict[str, str]) -> Callable[[Row], bool]:
    """Whether a catalog row answers ``query`` (see the module docstring)."""
    cats, colour, avoid = set(_categories(query)), query.get("colour"), query.get("not_colour")
    lo, hi = _bounds(query, slugs)

    def relevant(row: Row) -> bool:
        return (
            (not cats or row.category in cats)
            and (colour is None or row.colour == colour)
            and (avoid is None or row.colour != avoid)
            and (lo is None or row.price >= lo)
            and (hi is None or row.price <= hi)
        )

    return relevant


def _top(text: str, k: int, *, understood: bool):
    request = SearchRequest(
        terms=[Term(kind="text", text=text)],
        limit=k,
        query=text if understood else None,
        understand_terms=understood,
    )
    return products_search(request)


def suites_evaluate(
    *,
    k: int = 10,
    tick: Callable[[int], None] | None = None,
    only: Collection[str] = (),
    parts: Sequence[str] = PARTS,
) -> dict[str, float]:
    """``{"<suite> <part> P@k": ..., "<suite> <part> P@k vector only": ...}`` and, for the price
    suite, the share of results within the bound and of queries whose phrase was understood;
    the share of queries flagged "no close match", out-of-domain (``no_match``) and in-domain.
    ``only`` names the suites to run (all when empty), ``parts`` their parts (tune on
    ``("tuning",)`` alone, report the held-out part once)."""
    rows = {
        p.id: Row(p.colour.lower(), p.category.name, p.category.slug, p.price)
        for p in Product.objects.select_related("category")
    }
    slugs = {r.category: r.category_slug for r in rows.values()}
    sums: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        sums.setdefault(name, []).append(value)

    for name, suite in suites_load().items():
        if only and name not in only:
            continue
        for part in parts:
            for query in suite[part]:
                fused = _top(query["q"], k, understood=True)
                flagged = float(fused.relevance is not None and not fused.relevance.close_match)
                if query.get("no_match"):
                    add(f"no-match {part} out-of-domain flagged", flagged)
                    continue
                add(f"no-match {part} in-domain flagged", flagged)
                relevant = relevance(query, slugs)
                total = sum(relevant(r) for r in rows.values())
                denominator = min(k, total) or 1
                hits = [rows[h.product.id] for h in fused.hits if h.product.id in rows]
                add(f"{name} {part} P@{k}", sum(map(relevant, hits)) / denominator)
                plain = _top(query["q"], k, understood=False)
                plain_hits = [rows[h.product.id] for h in plain.hits if h.product.id in rows]
                add(
                    f"{name} {part} P@{k} vector only", sum(map(relevant, plain_hits)) / denominator
                )
                if name == "price":
                    lo, hi = _bounds(query, slugs)
                    inside = [
                        (lo is None or r.price >= lo) and (hi is None or r.price <= hi)
                        for r in hits
                    ]
                    add(f"price {part} results within the bound", sum(inside) / (len(inside) or 1))
                    chips = [u.kind for u in fused.parsed.understood]
                    add(f"price {part} phrase shown as a chip", float("price" in chips))
                if tick:
                    tick(1)
    return {n: round(sum(v) / len(v), 4) for n, v in sums.items()}

"""Is the best result a close match? Decided relative to the catalog, per model.

Raw cosines mean different things per model and per modality (the demo model scores any
photo, a blank one included, between 0.97 and 1.0), so no fixed cut-off works. Instead each
model keeps the top similarities that in-catalog queries reach (product titles as text
queries, product photos as photo queries; ``EmbeddingModel.calibration``), and a query's
confidence is the share of those it matches or beats. A query is a close match unless it
falls below the ``SEARCH_CLOSE_MATCH_QUANTILE`` of in-catalog queries, so by construction about
that share of in-catalog queries is flagged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from search.models import EmbeddingModel

# Recalibrate when the catalog has grown or shrunk by more than this share since.
STALE_SHARE = 0.25
# In-catalog queries per kind. A quantile of 100 values moves by about 0.02 from one catalog
# to the next (the 5th lowest of 100); photo queries reuse stored vectors and cost one index
# lookup each, so they take more. Text queries must be embedded first: fewer.
SAMPLE = {"text": 100, "image": 500}


@dataclass(frozen=True)
class Relevance:
    close_match: bool
    confidence: float


def calibration_stale(model: EmbeddingModel, products: int) -> bool:
    """Missing, or taken when the catalog was more than ``STALE_SHARE`` smaller or larger."""
    stored = model.calibration or {}
    then = stored.get("products", 0)
    return not stored or abs(products - then) > STALE_SHARE * max(then, 1)


def calibration_store(model: EmbeddingModel, *, products: int, **kinds: Sequence[float]) -> None:
    model.calibration = {"products": products, **{k: sorted(v) for k, v in kinds.items()}}
    EmbeddingModel.objects.filter(pk=model.pk).update(calibration=model.calibration)


def relevance_of(top: float | None, values: Sequence[float]) -> Relevance:
    """Confidence = the share of in-catalog queries whose top similarity ``top`` matches."""
    if top is None or not values:
        return Relevance(False, 0.0)
    confidence = bisect_right(values, top) / len(values)
    return Relevance(confidence >= settings.SEARCH_CLOSE_MATCH_QUANTILE, round(confidence, 3))


def match_label(
    similarity: float, values: Sequence[float], *, keyword: bool = False, browsed: bool = False
) -> str:
    """What a result card says instead of a raw cosine: where this result's similarity falls
    among the best similarities that in-catalog queries reach (``values``, the calibration).

    ``keyword``: every word the query needs is in the product's own text. ``browsed``: listed because
    it meets the filters (a price-only query), nothing was compared.
    """
    if browsed:
        return "Matches your filters"
    share = bisect_right(values, similarity) / len(values) if values else 0.0
    if share >= 0.5:
        return "Strong match"
    if share >= settings.SEARCH_CLOSE_MATCH_QUANTILE:
        return "Good match"
    return "Matches your words" if keyword else "Weak match"


def hit_match_label(response, hit) -> str:
    """``match_label`` of one hit of a ``SearchResponse`` (text queries are judged against
    text calibration, anything with a photo or product against image calibration)."""
    kind = "text" if response.parsed is not None else "image"
    values = (response.model.calibration or {}).get(kind) or ()
    matched = tuple(hit.matched)
    keyword = "keyword" in matched and hit.all_words
    return match_label(hit.score, values, keyword=keyword, browsed=not matched)

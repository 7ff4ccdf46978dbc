"""The one query service behind both the HTML pages and the API.

A query is a list of weighted terms (text, an uploaded image, a catalog product). Each term
becomes a unit vector from the active model; the query vector is their weighted sum,
re-normalised. Negative weights push results away from a direction ("not leather").
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from django.conf import settings
from django.core.cache import cache
from PIL import Image

from search.embeddings import Encoder, ModelSpec
from search.embeddings.registry import get_encoder
from search.filters import CatalogFilters
from search.models import EmbeddingModel
from search.query_understanding import ParsedQuery
from search.selectors import active_embedding_model, image_vectors, products_image_vectors
from search.services import relevance as rel
from search.services.fusion import Fused, ranked, rrf
from search.services.relevance import Relevance
from search.services.understanding import (
    category_change,
    filters_understood,
    modifier_understood,
    query_understand,
)
from search.vectorstore import VectorHit, keyword, vector_store
from shop.models import Product


class SearchError(ValueError):
    """A query that cannot be answered as asked; the message tells the user what to change."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Term:
    kind: Literal["text", "image", "product"]
    weight: float = 1.0
    text: str = ""
    image: Image.Image | None = None
    product_id: int | None = None


@dataclass
class SearchRequest:
    terms: list[Term]
    filters: CatalogFilters = field(default_factory=CatalogFilters)
    limit: int = 24
    offset: int = 0
    min_score: float | None = None
    exclude_product_ids: tuple[int, ...] = ()
    # The shopper's own words (text search): read by query understanding and answered by
    # both legs, fused. None: the terms alone, vector leg only (photo, hybrid, similar).
    query: str | None = None
    # Read the positive text terms of a photo/product/hybrid query like a query ("this but
    # in navy" -> blue, "not leather" -> a negative term, "under 50" -> a filter).
    understand_terms: bool = True
    # One of SORTS. Relevance retrieval always comes first; another sort orders the first
    # SEARCH_FUSION_CANDIDATES relevant results (see ``_page_of``).
    sort: str = "relevance"
    # Set by understanding, never from request data: "this, but as a boot" ranks products of
    # these categories first (by similarity), then the rest; a boost, not a filter.
    boost_category_slugs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductHit:
    product: Product
    score: float
    rank: int
    image_id: int | None
    matched: tuple[str, ...] = ("vector",)
    # The keyword leg found every word the query needs in the product's text (not just
    # "sneakers" of "red sneakers"): what "Matches your words" on a card promises.
    all_words: bool = False

    @property
    def image(self):
        """The product image that matched best (falls back to the primary image)."""
        images = {img.id: img for img in self.product.images.all()}
        return images.get(self.image_id) or self.product.primary_image


@dataclass
class SearchResponse:
    hits: list[ProductHit]
    model: EmbeddingModel
    limit: int
    offset: int
    parsed: ParsedQuery | None = None
    relevance: Relevance | None = None
    # How many results the query has. With ``total_exact`` false it is a lower bound: more
    # relevant products exist than were retrieved (a page says "more than N").
    total: int = 0
    total_exact: bool = True
    has_more: bool = False
    sort: str = "relevance"

    @property
    def next_offset(self) -> int:
        return self.offset + self.limit

    @property
    def prev_offset(self) -> int:
        return max(0, self.offset - self.limit)


def require_active_model() -> EmbeddingModel:
    model = active_embedding_model()
    if model is None:
        raise SearchError(
            "The search index is empty: no product has been embedded yet. Add products, "
            "start a worker (see README) and try again.",
            status=503,
        )
    return model


def model_encoder(model: EmbeddingModel):
    return get_encoder(ModelSpec(model.name, model.pretrained))


def text_vector(model: EmbeddingModel, text: str, encoder: Encoder | None = None) -> np.ndarray:
    """A text's unit vector, cached in Redis per model (queries repeat a lot)."""
    return text_vectors(model, [text], encoder)[0]


def text_vectors(
    model: EmbeddingModel, texts: Sequence[str], encoder: Encoder | None = None
) -> np.ndarray:
    """Unit vectors of ``texts``: one cache round trip, and the misses embedded in one batch."""
    keys = ["qv:" + hashlib.sha256(f"{model.key}\0{t}".encode()).hexdigest() for t in texts]
    cached = cache.get_many(keys)
    missing = [i for i, key in enumerate(keys) if key not in cached]
    if missing:
        fresh = (encoder or model_encoder(model)).embed_texts([texts[i] for i in missing])
        new = {keys[i]: v.astype(np.float32).tobytes() for i, v in zip(missing, fresh, strict=True)}
        cache.set_many(new, settings.QUERY_CACHE_SECONDS)
        cached.update(new)
    return np.stack([np.frombuffer(cached[key], dtype=np.float32) for key in keys])


def image_vector(
    model: EmbeddingModel, image: Image.Image, encoder: Encoder | None = None
) -> np.ndarray:
    return (encoder or model_encoder(model)).embed_images([image])[0]


def product_vector(model: EmbeddingModel, product_id: int) -> np.ndarray:
    """A product's look: the mean of its image vectors, re-normalised."""
    if not Product.objects.filter(pk=product_id).exists():
        raise SearchError(f"Product {product_id} does not exist.", status=404)
    vectors = image_vectors(model=model, product_id=product_id)
    if len(vectors) == 0:
        raise SearchError(
            f"Product {product_id} has no indexed image yet; try again once indexing has run.",
            status=409,
        )
    return _unit(vectors.mean(axis=0))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise SearchError("The weighted terms cancel each other out; change the weights.")
    return (vector / norm).astype(np.float32)


def term_vector(model: EmbeddingModel, term: Term, encoder: Encoder | None = None) -> np.ndarray:
    if term.kind == "text":
        return text_vector(model, term.text, encoder)
    if term.kind == "image":
        return image_vector(model, term.image, encoder)
    return product_vector(model, term.product_id)


def query_vector(
    model: EmbeddingModel, terms: list[Term], encoder: Encoder | None = None
) -> np.ndarray:
    if not terms:
        raise SearchError("Give a text query, a photo or a product to search with.")
    if not any(t.weight > 0 for t in terms):
        raise SearchError("At least one term needs a positive weight.")
    total = sum(t.weight * term_vector(model, t, encoder) for t in terms)
    return _unit(total)


def products_search(request: SearchRequest, *, encoder: Encoder | None = None) -> SearchResponse:
    """``encoder``: what turns the terms into vectors (``embed_texts`` / ``embed_images``);
    default the active model's own encoder. Benchmarks pass a stand-in."""
    model = require_active_model()
    if request.query is not None:
        return text_search(model, request, encoder)
    if request.understand_terms:
        request = _terms_understood(request, model, encoder)
    vector = query_vector(model, request.terms, encoder)
    exclude = set(request.exclude_product_ids)
    exclude.update(t.product_id for t in request.terms if t.kind == "product")
    wanted = _candidates(request)
    raw = vector_store().nearest_images(
        model=model,
        vector=vector,
        filters=request.filters,
        limit=wanted + 1,  # one more than kept tells whether the count is exact
        exclude_product_ids=tuple(sorted(exclude)),
        min_similarity=request.min_score,
    )
    raw = _category_boosted(raw, request.boost_category_slugs)
    page = _page_of([h.product_id for h in raw], request, truncated=False)
    # The judgement is about the best result, not this page's (nor the min_score cut's).
    best = raw[:1] or vector_store().nearest_images(
        model=model, vector=vector, filters=request.filters, limit=1
    )
    kind = "image" if any(t.kind != "text" and t.weight > 0 for t in request.terms) else "text"
    judged = judge(model, kind, best[0].similarity if best else None, encoder)
    by_id = {h.product_id: h for h in raw}
    hits = _hydrate([by_id[pid] for pid in page.ids], request.offset)
    return page.response(hits, model, request, relevance=judged)


SORTS = ("relevance", "price_asc", "price_desc", "newest")


def _candidates(request: SearchRequest) -> int:
    """How many relevance-ranked products a query retrieves. By relevance: at least the
    requested window. Any other sort orders a fixed set, the first SEARCH_FUSION_CANDIDATES
    relevant results, so that its pages never change as the shopper pages on."""
    if request.sort not in SORTS:
        raise SearchError(f"Unknown sort '{request.sort}'. Known: {', '.join(SORTS)}.")
    if request.sort == "relevance":
        return max(request.offset + request.limit, settings.SEARCH_FUSION_CANDIDATES)
    return settings.SEARCH_FUSION_CANDIDATES


@dataclass(frozen=True)
class _Page:
    ids: list[int]
    total: int
    total_exact: bool
    has_more: bool

    def response(
        self,
        hits: list[ProductHit],
        model: EmbeddingModel,
        request: SearchRequest,
        parsed: ParsedQuery | None = None,
        relevance: Relevance | None = None,
    ) -> SearchResponse:
        return SearchResponse(
            hits,
            model,
            request.limit,
            request.offset,
            parsed,
            relevance,
            total=self.total,
            total_exact=self.total_exact,
            has_more=self.has_more,
            sort=request.sort,
        )


def _page_of(ids: list[int], request: SearchRequest, *, truncated: bool) -> _Page:
    """The requested page of ``ids`` (relevance order, possibly one past the candidate
    limit) under the request's sort. ``truncated``: relevant products exist past ``ids``."""
    wanted = _candidates(request)
    truncated = truncated or len(ids) > wanted
    ordered = _sorted(ids[:wanted], request.sort)
    window = request.offset + request.limit
    # By relevance the next page may reach past what was retrieved; a sorted set ends.
    more = window < len(ordered) or (truncated and request.sort == "relevance")
    return _Page(ordered[request.offset : window], len(ordered), not truncated, more)


def _sorted(ids: list[int], sort: str) -> list[int]:
    """``ids`` (relevance order) in ``sort`` order; equal keys keep their relevance order,
    so a sorted page is as stable as the relevance ranking it came from."""
    if sort == "relevance":
        return ids
    position = {pid: i for i, pid in enumerate(ids)}
    rows = Product.objects.filter(pk__in=ids).values_list("pk", "price", "created_at")
    if sort == "price_asc":
        keys = {pid: (price, position[pid]) for pid, price, _ in rows}
    elif sort == "price_desc":
        keys = {pid: (-price, position[pid]) for pid, price, _ in rows}
    else:  # newest
        keys = {pid: (-created.timestamp(), position[pid]) for pid, _, created in rows}
    return sorted(keys, key=keys.__getitem__)


def _terms_understood(
    request: SearchRequest, model: EmbeddingModel, encoder: Encoder | None
) -> SearchRequest:
    terms, filters = [], request.filters
    look = [t for t in request.terms if t.kind != "text" and t.weight > 0]
    changed_category, boost = False, request.boost_category_slugs
    for term in request.terms:
        parsed = modifier_understood(term.text) if term.kind == "text" and term.weight > 0 else None
        if parsed is None:
            terms.append(term)
            continue
        if look and category_change(parsed):
            # The look's own category would outvote the one asked for: the text carries the
            # look's colour with the new category, and the look keeps a share for its style.
            colour = look_colour(model, look, encoder)
            text = f"{colour} {parsed.vector_text}" if colour else parsed.vector_text
            terms.append(dataclasses.replace(term, text=text))
            changed_category = True
            boost += tuple(parsed.categories)
        elif parsed.vector_text:
            terms.append(dataclasses.replace(term, text=parsed.vector_text))
        terms += [
            dataclasses.replace(term, text=w, weight=-DEFAULT_NEGATIVE_WEIGHT)
            for w in [*parsed.negative_words, *parsed.exclude_colours]
        ]
        filters = filters_understood(filters, parsed)
    if changed_category:  # scaled once, however many modifiers name a category
        share, scaled = settings.SEARCH_CATEGORY_CHANGE_LOOK_SHARE, {id(t) for t in look}
        terms = [
            dataclasses.replace(t, weight=t.weight * share) if id(t) in scaled else t for t in terms
        ]
    return dataclasses.replace(
        request, terms=terms, filters=filters, boost_category_slugs=tuple(dict.fromkeys(boost))
    )


def _category_boosted(raw: list[VectorHit], slugs: Sequence[str]) -> list[VectorHit]:
    if not slugs or not raw:
        return raw
    boosted = set(
        Product.objects.filter(
            pk__in=[h.product_id for h in raw], category__slug__in=slugs
        ).values_list("pk", flat=True)
    )
    return [h for h in raw if h.product_id in boosted] + [
        h for h in raw if h.product_id not in boosted
    ]


def look_colour(model: EmbeddingModel, look: list[Term], encoder: Encoder | None = None) -> str:
    """The colour of the look a modifier changes: a catalog product's own colour, else the
    CLIP zero-shot colour of the look's photos."""
    from search.services.describe import COLOUR_PROMPTS, colour_vocabulary, zero_shot

    # (imported here: describe builds on this module's vectors)
    products = [t.product_id for t in look if t.kind == "product"]
    if products and len(products) == len(look):
        colours = set(Product.objects.filter(pk__in=products).values_list("colour", flat=True))
        if len(colours) == 1 and "" not in colours:
            return colours.pop().lower()
    labels = zero_shot(
        model, query_vector(model, look, encoder), colour_vocabulary(), COLOUR_PROMPTS, 1
    )
    return labels[0].name if labels else ""


def judge(
    model: EmbeddingModel, kind: str, top: float | None, encoder: Encoder | None = None
) -> Relevance:
    """Whether ``top`` (the best similarity of a ``kind`` query) is a close match for this
    model and catalog (``search.services.relevance``).

    Only a model never calibrated is calibrated here, by the query that finds it so (up to
    600 index lookups: a shopper should not wait for that twice); a stale calibration still
    answers until the periodic sweep renews it (``calibrate_if_stale``)."""
    values = (model.calibration or {}).get(kind)
    if not values:
        values = calibrate(model, encoder)[kind]
    return rel.relevance_of(top, values)


def calibrate_if_stale(model: EmbeddingModel) -> bool:
    """Calibrate ``model`` again when the catalog has changed size by more than
    ``relevance.STALE_SHARE`` since; True when it did."""
    if not rel.calibration_stale(model, Product.objects.count()):
        return False
    calibrate(model)
    return True


def calibrate(model: EmbeddingModel, encoder: Encoder | None = None) -> dict[str, list[float]]:
    """Top similarities of in-catalog queries: up to ``relevance.SAMPLE`` products spread over
    the catalog, their titles as text queries and their photos (stored vectors) as photo
    queries that may not find the product itself. Stored on the model."""
    products = list(Product.objects.order_by("id").values_list("id", "title"))

    def spread(n: int) -> list[tuple[int, str]]:
        return products[:: max(1, len(products) // n)][:n]

    store, none = vector_store(), CatalogFilters()
    tops: dict[str, list[float]] = {"text": [], "image": []}
    if titled := spread(rel.SAMPLE["text"]):
        for vector in text_vectors(model, [title for _, title in titled], encoder):
            found = store.nearest_images(model=model, vector=vector, filters=none, limit=1)
            tops["text"] += [h.similarity for h in found]
    sample = spread(rel.SAMPLE["image"])
    by_product = products_image_vectors(model=model, product_ids=[pid for pid, _ in sample])
    for product_id, _ in sample:
        vectors = by_product.get(product_id, ())
        if len(vectors):
            vector = _unit(vectors.mean(axis=0))
            found = store.nearest_images(
                model=model, vector=vector, filters=none, limit=1, exclude_product_ids=(product_id,)
            )
            tops["image"] += [h.similarity for h in found]
    rel.calibration_store(model, products=len(products), **tops)
    return {kind: sorted(values) for kind, values in tops.items()}


def _hydrate(raw: list[VectorHit], offset: int) -> list[ProductHit]:
    products = Product.objects.with_images().in_bulk([h.product_id for h in raw])
    return [
        ProductHit(products[h.product_id], round(h.similarity, 4), offset + i + 1, h.image_id)
        for i, h in enumerate(raw)
        if h.product_id in products
    ]


_WORD = re.compile(r"\w")
# Push a "without X" word's direction down without cancelling the query (the API's default).
DEFAULT_NEGATIVE_WEIGHT = 0.3


def text_search(
    model: EmbeddingModel, request: SearchRequest, encoder: Encoder | None = None
) -> SearchResponse:
    """The shopper's words: understood (prices -> filters, shades -> colours, synonyms ->
    categories, negations -> exclusions), then the keyword and vector legs, fused by
    reciprocal rank. ``score`` stays the raw cosine of the best image, for every hit."""
    parsed = query_understand(request.query)
    if parsed.is_empty and not _WORD.search(request.query):
        raise SearchError("Type what you are looking for, e.g. 'red sneakers under 50'.")
    if parsed.is_empty:
        # Only filler ("anything", "show me some"): the words as they are, to the vector leg,
        # as before query understanding; the keyword leg has nothing to match.
        parsed.vector_text = request.query
    filters = filters_understood(request.filters, parsed)
    exclude = tuple(sorted(set(request.exclude_product_ids)))
    pool = _candidates(request)
    if not parsed.vector_text:  # only a price phrase or a negation: browse within filters
        # Cheapest first is this query's relevance order; another sort orders its first
        # ``pool`` products like any other relevant set.
        ids = keyword.products_filtered(
            filters=filters, limit=pool + 1, offset=0, exclude_product_ids=exclude
        )
        page = _page_of(ids, request, truncated=False)
        hits = _hydrate_fused([Fused(pid, 0.0, ()) for pid in page.ids], {}, request.offset)
        # Every product listed meets what was asked (the bound): nothing to judge.
        judged = Relevance(bool(hits), 1.0 if hits else 0.0)
        return page.response(hits, model, request, parsed, judged)
    terms = [Term(kind="text", text=parsed.vector_text)]
    terms += [
        Term(kind="text", text=w, weight=-DEFAULT_NEGATIVE_WEIGHT) for w in parsed.negative_words
    ]
    vector = query_vector(model, terms, encoder)
    store = vector_store()
    # One more than kept per leg: a leg that returns it has more, and the count is a bound.
    vector_hits = store.nearest_images(
        model=model, vector=vector, filters=filters, limit=pool + 1, exclude_product_ids=exclude
    )
    keyword_hits = keyword.keyword_search(
        groups=parsed.groups, filters=filters, limit=pool + 1, exclude_product_ids=exclude
    )
    truncated = len(vector_hits) > pool or len(keyword_hits) > pool
    vector_hits, keyword_hits = vector_hits[:pool], keyword_hits[:pool]
    fused = rrf(
        {
            "vector": [(h.product_id, rank) for rank, h in enumerate(vector_hits, start=1)],
            "keyword": ranked([(h.product_id, (h.groups_matched, h.rank)) for h in keyword_hits]),
        },
        weights={
            "vector": settings.SEARCH_VECTOR_WEIGHT,
            "keyword": settings.SEARCH_KEYWORD_WEIGHT,
        },
        k=settings.SEARCH_RRF_K,
    )
    best = {h.product_id: (h.image_id, h.similarity) for h in vector_hits}
    if request.min_score is not None:
        # A keyword-only hit needs its cosine before the cut; only then is the page known.
        others = [f.product_id for f in fused if f.product_id not in best]
        best.update(store.image_similarities(model=model, vector=vector, product_ids=others))
        fused = [f for f in fused if best.get(f.product_id, (None, -1.0))[1] >= request.min_score]
    page = _page_of([f.product_id for f in fused], request, truncated=truncated)
    by_id = {f.product_id: f for f in fused}
    missing = [pid for pid in page.ids if pid not in best]
    best.update(store.image_similarities(model=model, vector=vector, product_ids=missing))
    required = len(parsed.groups) - len(parsed.context)  # "gym" of "gym bag" is optional
    whole = {
        h.product_id for h in keyword_hits if h.groups_matched >= min(required, keyword.MAX_GROUPS)
    }
    hits = _hydrate_fused([by_id[pid] for pid in page.ids], best, request.offset, whole)
    judged = judge(model, "text", vector_hits[0].similarity if vector_hits else None, encoder)
    matched = keyword_hits[0].groups_matched if keyword_hits else 0
    if required > len(parsed.intents) >= matched:
        # Perhaps only what it is for matched ("laptop" of "laptop charger", "yoga" of "yoga
        # mat"): the catalog may know the purpose, not the thing, so it is no evidence.
        matched = 0
    if matched >= min(required, keyword.MAX_GROUPS):
        # Every word of the query is in some product's own text: a close match whatever the
        # model thinks, and at least even odds.
        judged = Relevance(True, max(judged.confidence, 0.5))
    elif not matched:
        # Not one word the catalog knows ("laptop charger"): text similarities of a model
        # that never saw such words are no evidence of a match (measured: the demo model's
        # best similarity for nonsense sits inside the in-catalog range).
        judged = Relevance(False, min(judged.confidence, 0.1))
    return page.response(hits, model, request, parsed, judged)


def _hydrate_fused(
    fused: list[Fused],
    best: dict[int, tuple[int, float]],
    offset: int,
    all_words: Collection[int] = frozenset(),
) -> list[ProductHit]:
    products = Product.objects.with_images().in_bulk([f.product_id for f in fused])
    hits = []
    for f in fused:
        if f.product_id not in products:
            continue
        image_id, similarity = best.get(f.product_id, (None, 0.0))
        rank = offset + len(hits) + 1
        hits.append(
            ProductHit(
                products[f.product_id],
                round(similarity, 4),
                rank,
                image_id,
                f.matched,
                f.product_id in all_words,
            )
        )
    return hits

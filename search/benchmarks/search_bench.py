"""Latency and recall of the search service at shop scale (100,000 products by default).

Phase 1 measures the database side: a synthetic catalog with synthetic unit vectors, queried
through ``search.services.query.products_search`` with a stand-in encoder (its ``encoder``
argument) that turns each query into a vector instantly, so the timings are the service minus
CLIP. Recall@10 of the HNSW index is measured against exact search in numpy, with and without
filters, for all of a row's queries in one vectorised pass (so 1M vectors stay minutes).
Then the crossover of the vector store's two filtered-search strategies: the same queries
forced through the exact scan and through the HNSW graph, at filters from 0.1% to 85% of the
catalog, beside the strategy PostgreSQL's estimate picks (``SEARCH_EXACT_SCAN_MAX_PRODUCTS``).

Phase 2 times the real end-to-end path: the same service and index, with a real CLIP encoder
(``--model``/``--pretrained``, default the configured model) embedding each query.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from pgvector.psycopg import register_vector
from PIL import Image

from search.benchmarks import harness
from search.benchmarks.vectors import MODIFIER, StandInEncoder, VectorSource
from search.embeddings import ModelLoadError, ModelSpec
from search.embeddings.registry import get_encoder
from search.filters import CatalogFilters
from search.models import EmbeddingModel, ProductDocument
from search.services import query
from search.services.embedding_models import embedding_model_activate
from search.services.query import SearchRequest, Term
from search.vectorstore import keyword, vector_store
from search.vectorstore.pgvector import filtered_products_estimate, search_strategy
from shop.models import Category

N_CATEGORIES = 10
# Titles and colours a shopper's words can match, so the keyword leg has real work: every
# product is "<colour> <material> <garment> <n>", drawn at random.
COLOURS = ("red", "blue", "black", "white", "green", "grey", "pink", "brown", "navy", "beige")
MATERIALS = ("leather", "cotton", "wool", "denim", "linen", "silk", "suede", "canvas")
GARMENTS = (
    "sneaker", "boot", "sandal", "dress", "coat", "jacket", "shirt", "jumper", "trousers",
    "skirt", "bag", "scarf", "hoodie", "blouse", "jeans", "heels", "loafer", "parka", "tote",
    "cardigan",
)  # fmt: skip
PRICE_LOW, PRICE_HIGH = 5.0, 200.0
FILTERS = CatalogFilters(
    category_slug="category-3", min_price=Decimal(20), max_price=Decimal(80), in_stock=True
)


@dataclass
class Catalog:
    """What was loaded, kept in memory for exact search: row i is product i+1, image i+1."""

    vectors: np.ndarray
    category: np.ndarray  # 0-based category index
    price: np.ndarray
    in_stock: np.ndarray
    words: np.ndarray  # (n, 3): colour, material, garment indexes

    def title(self, i: int) -> tuple[str, str]:
        c, m, g = self.words[i]
        return COLOURS[c], f"{COLOURS[c].title()} {MATERIALS[m]} {GARMENTS[g]} {i + 1}"

    def mask(self, filters: CatalogFilters | None) -> np.ndarray:
        keep = np.ones(len(self.vectors), dtype=bool)
        if filters is None:
            return keep
        if filters.category_slug:
            keep &= self.category == int(filters.category_slug.rsplit("-", 1)[1])
        if filters.min_price is not None:
            keep &= self.price >= float(filters.min_price)
        if filters.max_price is not None:
            keep &= self.price <= float(filters.max_price)
        if filters.in_stock is not None:
            keep &= self.in_stock == filters.in_stock
        return keep

    def exact_tops(
        self, queries: np.ndarray, filters: CatalogFilters | None, k: int
    ) -> list[list[int]]:
        """Exact top-k product ids for every query (rows of ``queries``) in one pass over the
        catalog, in chunks of rows: one matrix product per chunk instead of one copy of the
        filtered catalog and one scan per query."""
        mask = self.mask(filters)
        queries = np.asarray(queries, dtype=np.float32).reshape(-1, self.vectors.shape[1])
        best_scores = np.empty((len(queries), 0), dtype=np.float32)
        best_rows = np.empty((len(queries), 0), dtype=np.int64)
        for start in range(0, len(self.vectors), 100_000):
            keep = np.flatnonzero(mask[start : start + 100_000]) + start
            if not len(keep):
                continue
            scores = np.concatenate([best_scores, queries @ self.vectors[keep].T], axis=1)
            rows = np.concatenate([best_rows, np.broadcast_to(keep, (len(queries), len(keep)))], 1)
            if scores.shape[1] > k:
                part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                scores = np.take_along_axis(scores, part, 1)
                rows = np.take_along_axis(rows, part, 1)
            best_scores, best_rows = scores, rows
        order = np.lexsort((best_rows, -best_scores), axis=1)  # score, then id, like SQL
        return (np.take_along_axis(best_rows, order, 1) + 1).tolist()


def run(opts: dict, write: Callable[[str], None]) -> dict:
    """The whole benchmark with the command's options; prints tables, returns the report."""
    opts["ef_search"] = opts["ef_search"] or [settings.HNSW_EF_SEARCH]
    call_command("migrate", verbosity=0)
    encoder = None if opts["no_e2e"] else real_encoder(opts["model"], opts["pretrained"])
    dim = encoder.dim if encoder else opts["dim"]
    source = VectorSource(dim, opts["seed"], uniform=opts["uniform"])
    started = time.perf_counter()
    maintenance = maintenance_sized(
        opts["products"], dim, opts.get("maintenance_work_mem"), opts.get("maintenance_workers")
    )
    opts["maintenance_used"] = maintenance
    model, catalog = load(opts["products"], opts["seed"], source, encoder, maintenance)
    load_s = time.perf_counter() - started
    with connection.cursor() as cur:
        # Latency depends on whether the HNSW graph fits in shared_buffers; say which.
        cur.execute(
            "SELECT pg_size_pretty(pg_relation_size(%s::regclass)), "
            "current_setting('shared_buffers')",
            [vector_store().index_names(model)[0]],
        )
        index_size, shared_buffers = cur.fetchone()
    write(
        f"Loaded and indexed {opts['products']:,} products in {load_s:.0f}s; HNSW index "
        f"{index_size}, PostgreSQL shared_buffers {shared_buffers}; built with "
        f"maintenance_work_mem {maintenance['work_mem_mb']:,} MB and "
        f"{maintenance['workers']} parallel maintenance workers."
    )

    results = phase_db(opts, model, source, catalog)
    rows = [
        [r["ef_search"], r["query"], r["filters"], r["p50_ms"], r["p95_ms"], r["recall@10"]]
        + [r["full_pages"]]
        for r in results
    ]
    write(
        "\nSearch service, database side (stand-in encoder), "
        f"{opts['products']:,} products, {dim}d, page {opts['limit']}, HNSW m "
        f"{settings.HNSW_M}, ef_construction {settings.HNSW_EF_CONSTRUCTION}; filters match "
        f"{int(catalog.mask(FILTERS).sum()):,} products:"
    )
    headers = ["ef_search", "query", "filters", "p50 ms", "p95 ms", "recall@10", "full pages"]
    write(harness.table(headers, rows))
    for ratio in fusion_cost(results):
        write(
            f"ef_search {ratio['ef_search']}, filters {ratio['filters']}: shopper text with both "
            f"legs fused p50 {ratio['ratio']:.2f}x the vector leg alone"
        )
    crossover = phase_crossover(opts, model, source, catalog) if opts["crossover_queries"] else []
    if crossover:
        write(
            f"\nFiltered-search strategies side by side (vector store, text-like vectors, "
            f"{opts['crossover_queries']} queries each, ef_search {settings.HNSW_EF_SEARCH}); "
            f"'picked' is what SEARCH_EXACT_SCAN_MAX_PRODUCTS="
            f"{settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS:,} (at 100k, scaled by the square root "
            f"of the catalog) chooses from PostgreSQL's estimate:"
        )
        write(
            harness.table(
                ["matching", "estimate", "picked", "strategy", "p50 ms", "p95 ms"]
                + ["recall@10", "full pages"],
                [
                    [r["matching_products"], r["estimate"], r["picked"], r["strategy"]]
                    + [r["p50_ms"], r["p95_ms"], r["recall@10"], r["full_pages"]]
                    for r in crossover
                ],
            )
        )
    e2e = []
    if encoder is not None:
        e2e = phase_e2e(opts, encoder)
        write(
            f"\nEnd to end with the real encoder {encoder.key} on {encoder.device} "
            f"({encoder.precision}):"
        )
        write(
            harness.table(
                ["query", "p50 ms", "p95 ms"],
                [[r["query"], r["p50_ms"], r["p95_ms"]] for r in e2e],
            )
        )
    return {
        "products": opts["products"],
        "dim": dim,
        "vectors": "uniform" if opts["uniform"] else "clustered",
        "limit": opts["limit"],
        "hnsw": {
            "m": settings.HNSW_M,
            "ef_construction": settings.HNSW_EF_CONSTRUCTION,
            "ef_search": opts["ef_search"],
        },
        "load_and_index_s": load_s,
        "hnsw_index_size": index_size,
        "shared_buffers": shared_buffers,
        "filters": str(FILTERS),
        "database_side": results,
        "fusion_cost": fusion_cost(results),
        "strategy_crossover": crossover,
        "maintenance": opts.get("maintenance_used"),
        "keyword_documents": ProductDocument.objects.count(),
        "end_to_end": {"encoder": encoder.key if encoder else None, "results": e2e},
    }


def real_encoder(name: str | None, pretrained: str | None):
    spec = ModelSpec(
        name or settings.CLIP_MODEL,
        settings.CLIP_PRETRAINED if pretrained is None else pretrained,
    )
    try:
        return get_encoder(spec)
    except ModelLoadError as exc:
        raise CommandError(f"{exc} (--pretrained '' = random weights, or --no-e2e)") from None


# --- loading ------------------------------------------------------------------------------


def maintenance_sized(n: int, dim: int, work_mem_mb: int | None, workers: int | None) -> dict:
    """``maintenance_work_mem`` and parallel workers for the HNSW build, sized from the
    machine unless given: room for the whole graph (a graph that does not fit is built many
    times slower), at most a quarter of the RAM; one worker per core but the leader's, within
    PostgreSQL's default pool of 8 background workers."""
    if work_mem_mb is None:
        # Per vector: the vector itself, level-0 neighbour slots (2m item pointers) and tuple
        # overhead, with a fifth spare: ~2.9 GB for 1M 512-d vectors at m 16.
        graph = n * (dim * 4 + 2 * settings.HNSW_M * 6 + 200) * 1.2
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        work_mem_mb = int(max(64 * 2**20, min(graph, ram / 4)) // 2**20)
    if workers is None:
        workers = max(0, min((os.cpu_count() or 1) - 1, 7))
    return {"work_mem_mb": work_mem_mb, "workers": workers}


def load(
    n: int, seed: int, source: VectorSource, encoder, maintenance: dict | None = None
) -> tuple[EmbeddingModel, Catalog]:
    maintenance = maintenance or maintenance_sized(n, source.dim, None, None)
    rng = np.random.default_rng(seed + 1)
    catalog = Catalog(
        vectors=np.empty((n, source.dim), dtype=np.float32),
        category=rng.integers(N_CATEGORIES, size=n),
        price=np.round(rng.uniform(PRICE_LOW, PRICE_HIGH, size=n), 2),
        in_stock=rng.random(n) > 0.15,
        words=np.stack(
            [rng.integers(len(v), size=n) for v in (COLOURS, MATERIALS, GARMENTS)], axis=1
        ),
    )
    for start in range(0, n, 10_000):  # in chunks: bounded temporary memory
        stop = min(n, start + 10_000)
        catalog.vectors[start:stop] = source.items(stop - start, rng)
    spec_name = encoder.spec.name if encoder else "bench-synthetic"
    spec_pretrained = encoder.spec.pretrained if encoder else ""
    # Named after the real encoder, so phase 2's query service loads that encoder for it.
    model = EmbeddingModel.objects.create(
        key=f"bench/{spec_name}/{spec_pretrained or 'random'}/{source.dim}d",
        name=spec_name,
        pretrained=spec_pretrained,
        dim=source.dim,
    )
    categories = [
        Category.objects.get_or_create(slug=f"category-{i}", defaults={"name": f"Category {i}"})[0]
        for i in range(N_CATEGORIES)
    ]
    _copy(catalog, model, [c.pk for c in categories])
    for start in range(1, n + 1, 50_000):  # the keyword leg's documents, as the sweep writes them
        keyword.documents_refresh(range(start, min(n, start + 49_999) + 1))
    with connection.cursor() as cur:
        # Built after loading (10x faster than growing it row by row), with room for the
        # whole graph in memory and a parallel build.
        cur.execute(f"SET maintenance_work_mem = '{int(maintenance['work_mem_mb'])}MB'")
        cur.execute(f"SET max_parallel_workers = {int(maintenance['workers'])}")
        cur.execute(f"SET max_parallel_maintenance_workers = {int(maintenance['workers'])}")
        vector_store().indexes_ensure(model, concurrently=False)  # nothing else writes here
        for table in (
            "shop_product",
            "shop_productimage",
            "search_imageembedding",
            "search_productdocument",
        ):
            cur.execute(f"ANALYZE {table}")
    embedding_model_activate(model)
    model.refresh_from_db()
    return model, catalog


def fusion_cost(results: list[dict]) -> list[dict]:
    """p50 of the fused shopper query over the vector leg alone, per ef_search and filters."""
    by = {(r["ef_search"], r["query"], r["filters"]): r for r in results}
    out = []
    for (ef, name, filters), r in by.items():
        if name == "shopper text, both legs fused":
            alone = by[(ef, "shopper text, vector leg only", filters)]
            out.append(
                {"ef_search": ef, "filters": filters, "ratio": r["p50_ms"] / alone["p50_ms"]}
            )
    return out


def _copy(catalog: Catalog, model: EmbeddingModel, category_ids: list[int]) -> None:
    now = timezone.now()
    n = len(catalog.vectors)
    with psycopg.connect(**connection.get_connection_params()) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY shop_product (id, title, slug, description, price, currency, "
                "category_id, colour, attributes, in_stock, created_at, updated_at) FROM STDIN"
            ) as copy:
                for i in range(n):
                    colour, title = catalog.title(i)
                    copy.write_row(
                        (i + 1, title, f"bench-{i + 1}", "", catalog.price[i],
                         "EUR", category_ids[catalog.category[i]], colour, "{}",
                         bool(catalog.in_stock[i]), now, now)
                    )  # fmt: skip
            with cur.copy(
                "COPY shop_productimage (id, product_id, image, width, height, alt_text, "
                "position, created_at) FROM STDIN"
            ) as copy:
                for i in range(n):
                    copy.write_row((i + 1, i + 1, f"bench/{i + 1}.png", 128, 128, "", 0, now))
            with cur.copy(
                "COPY search_imageembedding (image_id, model_id, embedding, created_at) "
                "FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int8", "vector", "timestamptz"])
                for i in range(n):
                    copy.write_row((i + 1, model.pk, catalog.vectors[i], now))
            for table in ("shop_product", "shop_productimage"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )


# --- phase 1: the database side -----------------------------------------------------------


def phase_db(opts: dict, model, source: VectorSource, catalog: Catalog) -> list[dict]:
    n, limit = opts["queries"], opts["limit"]
    texts = [f"benchmark query {i}" for i in range(n)]
    modifiers = [f"{MODIFIER} {i}" for i in range(n)]
    rng = np.random.default_rng(opts["seed"] + 2)
    photos = [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(n)]
    shopper = [f"{COLOURS[i % len(COLOURS)]} {GARMENTS[(i * 7) % len(GARMENTS)]}" for i in range(n)]
    kinds = {
        "text (cached vector)": lambda i: [Term("text", text=texts[i])],
        # The same words two ways: the vector leg alone, and as a shopper's query (understood,
        # keyword leg + vector leg, fused): the cost of the keyword leg, side by side.
        "shopper text, vector leg only": lambda i: [Term("text", text=shopper[i])],
        "shopper text, both legs fused": lambda i: [Term("text", text=shopper[i])],
        "photo": lambda i: [Term("image", image=photos[i])],
        "hybrid (photo 0.7 + text 0.3)": lambda i: [
            Term("image", image=photos[i], weight=0.7),
            Term("text", text=modifiers[i], weight=0.3),
        ],
    }
    stand_in = StandInEncoder(source, model.dim)
    results = []
    cache.clear()
    for text in texts + modifiers + shopper:
        query.text_vector(model, text, encoder=stand_in)  # into Redis: timed runs hit the cache
    for ef_search in opts["ef_search"]:
        with override_settings(HNSW_EF_SEARCH=ef_search):
            for name, terms_for in kinds.items():
                for filters in (None, FILTERS):
                    fused = name.endswith("both legs fused")
                    requests = [
                        SearchRequest(
                            terms=terms_for(i),
                            filters=filters or CatalogFilters(),
                            limit=limit,
                            query=shopper[i] if fused else None,
                        )
                        for i in range(n)
                    ]
                    row = _measure(requests, filters, model, catalog, stand_in)
                    results.append({"ef_search": ef_search, "query": name, **row})
    return results


def _measure(requests: list[SearchRequest], filters, model, catalog: Catalog, encoder) -> dict:
    limit = requests[0].limit
    for request in requests[:20]:  # warm the index pages and connections
        query.products_search(request, encoder=encoder)
    seconds, gots, full = [], [], 0
    for request in requests:
        started = time.perf_counter()
        response = query.products_search(request, encoder=encoder)
        seconds.append(time.perf_counter() - started)
        gots.append([h.product.pk for h in response.hits])
        full += len(gots[-1]) == limit
    recalls = []
    if requests[0].query is None:  # fused: not a nearest-neighbour list, so no recall
        vectors = np.stack([query.query_vector(model, r.terms, encoder=encoder) for r in requests])
        recalls = _recalls(gots, catalog.exact_tops(vectors, filters, min(10, limit)))
    return {
        "filters": "category+price+in stock" if filters else "none",
        "matching_products": int(catalog.mask(filters).sum()),
        **harness.percentiles_ms(seconds),
        "recall@10": round(float(np.mean(recalls)), 3) if recalls else "n/a",
        "full_pages": f"{full}/{len(requests)}",
    }


def _recalls(gots: list[list[int]], exacts: list[list[int]]) -> list[float]:
    return [
        len(set(got[: len(ex)]) & set(ex)) / len(ex)
        for got, ex in zip(gots, exacts, strict=True)
        if ex
    ]


def crossover_filters(n: int) -> list[CatalogFilters]:
    """Filters from ~0.1% to ~85% of the catalog: category 3 in stock (8.5%) narrowed by a
    price window, then the category alone and the stock flag alone."""
    span = PRICE_HIGH - PRICE_LOW
    narrowed = []
    for share in (0.001, 0.003, 0.01, 0.03):
        width = share / (0.1 * 0.85) * span
        narrowed.append(
            CatalogFilters(
                category_slug="category-3",
                min_price=Decimal(20),
                max_price=Decimal(str(round(20 + width, 2))),
                in_stock=True,
            )
        )
    return [
        *narrowed,
        CatalogFilters(category_slug="category-3", in_stock=True),
        CatalogFilters(category_slug="category-3"),
        CatalogFilters(in_stock=True),
    ]


def phase_crossover(opts: dict, model, source: VectorSource, catalog: Catalog) -> list[dict]:
    """Each filter through both strategies, forced by the threshold setting, same queries."""
    n, limit = opts["crossover_queries"], opts["limit"]
    vectors = source.text_like(n, np.random.default_rng(opts["seed"] + 4))
    store, results = vector_store(), []
    for filters in crossover_filters(len(catalog.vectors)):
        exact = catalog.exact_tops(vectors, filters, min(10, limit))
        estimate = filtered_products_estimate(filters)[0]
        graph = store.category_graph("search_imageembedding", model, filters)
        picked = search_strategy(filters, category_graph=graph) + (" (category)" if graph else "")
        for strategy, threshold in (("exact", 10**12), ("hnsw", 0)):
            with override_settings(SEARCH_EXACT_SCAN_MAX_PRODUCTS=threshold):
                for v in vectors[:5]:  # warm the pages this strategy reads
                    store.nearest_images(model=model, vector=v, filters=filters, limit=limit)
                seconds, gots = [], []
                for v in vectors:
                    started = time.perf_counter()
                    hits = store.nearest_images(model=model, vector=v, filters=filters, limit=limit)
                    seconds.append(time.perf_counter() - started)
                    gots.append([h.product_id for h in hits])
            matching = int(catalog.mask(filters).sum())
            results.append(
                {
                    "filters": str(filters),
                    "matching_products": matching,
                    "estimate": estimate,
                    "picked": picked,
                    "strategy": strategy,
                    **harness.percentiles_ms(seconds),
                    "recall@10": round(float(np.mean(_recalls(gots, exact))), 3),
                    "full_pages": f"{sum(len(g) == min(limit, matching) for g in gots)}/{n}",
                }
            )
    return results


# --- phase 2: end to end with the real encoder --------------------------------------------


def phase_e2e(opts: dict, encoder) -> list[dict]:
    """The query service as a shopper meets it: it loads the model's encoder itself."""
    n, limit = opts["e2e_queries"], opts["limit"]
    rng = np.random.default_rng(opts["seed"] + 3)
    photos = [
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)) for _ in range(n)
    ]
    texts = [f"a red summer dress number {i}" for i in range(n)]
    encoder.embed_texts(["warm-up"])
    encoder.embed_images(photos[:1])
    cache.clear()
    kinds = [
        ("text (encoder, not cached)", lambda i: [Term("text", text=texts[i])]),
        ("text (cached vector)", lambda i: [Term("text", text=texts[i])]),
        ("photo 128 px", lambda i: [Term("image", image=photos[i])]),
        (
            "hybrid (photo 0.7 + text 0.3)",
            lambda i: [
                Term("image", image=photos[i], weight=0.7),
                Term("text", text=texts[i], weight=0.3),
            ],
        ),
    ]
    results = []
    for name, terms_for in kinds:
        seconds = []
        for i in range(n):
            request = SearchRequest(terms=terms_for(i), limit=limit)
            started = time.perf_counter()
            query.products_search(request)
            seconds.append(time.perf_counter() - started)
        results.append({"query": name, **harness.percentiles_ms(seconds)})
    return results

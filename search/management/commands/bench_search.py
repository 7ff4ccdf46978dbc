"""Latency and recall of the search service at shop scale (100,000 products by default).

Phase 1 measures the database side: a synthetic catalog with synthetic unit vectors, queried
through ``search.services.query.products_search`` with a stand-in encoder that turns each
query into a vector instantly, so the timings are the service minus CLIP. Recall@10 of the
HNSW index is measured against exact search in numpy, with and without filters.

Phase 2 times the real end-to-end path: the same service and index, with a real CLIP encoder
(``--model``/``--pretrained``, default the configured model) embedding each query.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from unittest import mock

import numpy as np
import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from pgvector.psycopg import register_vector
from PIL import Image

from search import bench
from search.embeddings import ModelLoadError, ModelSpec, get_encoder
from search.models import EmbeddingModel
from search.selectors import CatalogFilters
from search.services import query
from search.services.models import embedding_model_activate, hnsw_indexes_ensure
from search.services.query import SearchRequest, Term
from shop.models import Category

MODIFIER = "modifier:"  # stand-in texts that modify a photo rather than describe a product
N_CATEGORIES = 10
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

    def mask(self, filters: CatalogFilters | None) -> np.ndarray:
        if filters is None:
            return np.ones(len(self.vectors), dtype=bool)
        index = int(filters.category_slug.rsplit("-", 1)[1])
        return (
            (self.category == index)
            & (self.price >= float(filters.min_price))
            & (self.price <= float(filters.max_price))
            & (self.in_stock == filters.in_stock)
        )

    def exact_top(self, vector: np.ndarray, filters: CatalogFilters | None, k: int) -> list[int]:
        rows = np.flatnonzero(self.mask(filters))
        scores = self.vectors[rows] @ vector
        top = rows[np.argsort(-scores)[:k]]
        return [int(r) + 1 for r in top]


class VectorSource:
    """CLIP-like synthetic unit vectors.

    Real CLIP vectors are not uniform on the sphere: they cluster by kind of product and vary
    along far fewer directions than their dimension. Uniform random 512-d vectors are the
    known worst case for any approximate index and would understate recall. Here: cluster
    centres plus a 32-d latent spread plus a little full-rank noise. Text-like queries carry
    a constant offset (CLIP's "modality gap") so they sit off the image manifold, as real
    text vectors do. ``uniform=True`` gives the worst case instead.
    """

    def __init__(self, dim: int, seed: int, *, uniform: bool = False) -> None:
        rng = np.random.default_rng(seed)
        self.dim, self.uniform = dim, uniform
        self.centres = _unit(rng.standard_normal((200, dim)))
        self.basis = rng.standard_normal((32, dim)) / np.sqrt(dim)  # rows of norm ~1
        self.common = _unit(rng.standard_normal(dim))
        self.gap = _unit(rng.standard_normal(dim))

    def items(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.uniform:
            return _unit(rng.standard_normal((n, self.dim)))
        centre = self.centres[rng.integers(len(self.centres), size=n)]
        latent = rng.standard_normal((n, 32)) @ self.basis / np.sqrt(32)
        noise = rng.standard_normal((n, self.dim)) / np.sqrt(self.dim)
        # Weights give CLIP-like statistics: mean cosine of two products ~0.4, ~0.8 within
        # a cluster.
        return _unit(1.0 * self.common + 1.0 * centre + 0.6 * latent + 0.25 * noise)

    def text_like(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return _unit(self.items(n, rng) + (0.0 if self.uniform else 0.7) * self.gap)

    def modifiers(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Texts that modify a photo ("in red", "longer"): one attribute direction of the
        latent space, plus the modality gap. A hybrid query adds one to a photo."""
        if self.uniform:
            return _unit(rng.standard_normal((n, self.dim)))
        axis = self.basis[rng.integers(len(self.basis), size=n)] * rng.choice([-1, 1], (n, 1))
        return _unit(_unit(axis) + 0.7 * self.gap)


class StandInEncoder:
    """Replaces CLIP in phase 1: a query's vector is a pure function of its text or pixels."""

    def __init__(self, source: VectorSource, dim: int) -> None:
        self.source, self.dim, self.batch_size = source, dim, 1

    def _rng(self, payload: bytes) -> np.random.Generator:
        return np.random.default_rng(int.from_bytes(hashlib.sha256(payload).digest()[:8]))

    def embed_texts(self, texts):
        return np.stack([self._text(t) for t in texts])

    def _text(self, text: str) -> np.ndarray:
        rng = self._rng(text.encode())
        if text.startswith(MODIFIER):
            return self.source.modifiers(1, rng)[0]
        return self.source.text_like(1, rng)[0]

    def embed_images(self, images):
        return np.stack([self.source.items(1, self._rng(im.tobytes()))[0] for im in images])


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Command(BaseCommand):
    help = (
        "Benchmark search at scale: p50/p95 latency of the search service for text (cached "
        "vector), photo and hybrid queries with and without filters, HNSW recall@10 against "
        "exact search, full pages under filters, and the real end-to-end path with a CLIP "
        "encoder. Always on a throwaway PostgreSQL+Redis started for the run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=100_000)
        parser.add_argument("--dim", type=int, default=512, help="without --model: vector size")
        parser.add_argument("--queries", type=int, default=200, help="per query type")
        parser.add_argument(
            "--ef-search",
            type=lambda v: [int(x) for x in v.split(",")],
            default=None,
            help="comma-separated hnsw.ef_search values to compare (default HNSW_EF_SEARCH)",
        )
        parser.add_argument("--limit", type=int, default=24, help="page size")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--uniform", action="store_true", help="uniform random vectors")
        parser.add_argument("--model", default=None, help="end-to-end encoder (CLIP_MODEL)")
        parser.add_argument("--pretrained", default=None, help="'' = random weights")
        parser.add_argument("--e2e-queries", type=int, default=20)
        parser.add_argument("--no-e2e", action="store_true", help="skip the real-encoder phase")
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args, **opts):
        if not bench.ensure_throwaway("bench_search"):
            return
        opts["ef_search"] = opts["ef_search"] or [settings.HNSW_EF_SEARCH]
        call_command("migrate", verbosity=0)
        encoder = None if opts["no_e2e"] else self._encoder(opts)
        dim = encoder.dim if encoder else opts["dim"]
        source = VectorSource(dim, opts["seed"], uniform=opts["uniform"])
        started = time.perf_counter()
        model, catalog = self._load(opts, source, encoder)
        load_s = time.perf_counter() - started
        with connection.cursor() as cur:
            # Latency depends on whether the HNSW graph fits in shared_buffers; say which.
            cur.execute(
                "SELECT pg_size_pretty(pg_relation_size(%s::regclass)), "
                "current_setting('shared_buffers')",
                [f"search_imageembedding_hnsw_{model.pk}"],
            )
            index_size, shared_buffers = cur.fetchone()
        self.stdout.write(
            f"Loaded and indexed {opts['products']:,} products in {load_s:.0f}s; HNSW index "
            f"{index_size}, PostgreSQL shared_buffers {shared_buffers}."
        )

        results = self._phase_db(opts, model, source, catalog)
        rows = [
            [r["ef_search"], r["query"], r["filters"], r["p50_ms"], r["p95_ms"], r["recall@10"]]
            + [r["full_pages"]]
            for r in results
        ]
        self.stdout.write(
            "\nSearch service, database side (stand-in encoder), "
            f"{opts['products']:,} products, {dim}d, page {opts['limit']}, HNSW m "
            f"{settings.HNSW_M}, ef_construction {settings.HNSW_EF_CONSTRUCTION}; filters match "
            f"{int(catalog.mask(FILTERS).sum()):,} products:"
        )
        headers = ["ef_search", "query", "filters", "p50 ms", "p95 ms", "recall@10", "full pages"]
        self.stdout.write(bench.table(headers, rows))
        e2e = []
        if encoder is not None:
            e2e = self._phase_e2e(opts, model, encoder)
            self.stdout.write(
                f"\nEnd to end with the real encoder {encoder.key} on {encoder.device} "
                f"({encoder.precision}):"
            )
            self.stdout.write(
                bench.table(
                    ["query", "p50 ms", "p95 ms"],
                    [[r["query"], r["p50_ms"], r["p95_ms"]] for r in e2e],
                )
            )
        bench.json_write(
            opts["json"],
            {
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
                "end_to_end": {"encoder": encoder.key if encoder else None, "results": e2e},
            },
        )

    def _encoder(self, opts: dict):
        spec = ModelSpec(
            opts["model"] or settings.CLIP_MODEL,
            settings.CLIP_PRETRAINED if opts["pretrained"] is None else opts["pretrained"],
        )
        try:
            return get_encoder(spec)
        except ModelLoadError as exc:
            raise CommandError(f"{exc} (--pretrained '' = random weights, or --no-e2e)") from None

    # --- loading --------------------------------------------------------------------------

    def _load(self, opts: dict, source: VectorSource, encoder) -> tuple[EmbeddingModel, Catalog]:
        n = opts["products"]
        rng = np.random.default_rng(opts["seed"] + 1)
        catalog = Catalog(
            vectors=np.empty((n, source.dim), dtype=np.float32),
            category=rng.integers(N_CATEGORIES, size=n),
            price=np.round(rng.uniform(PRICE_LOW, PRICE_HIGH, size=n), 2),
            in_stock=rng.random(n) > 0.15,
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
            Category.objects.get_or_create(
                slug=f"category-{i}", defaults={"name": f"Category {i}"}
            )[0]
            for i in range(N_CATEGORIES)
        ]
        self._copy(catalog, model, [c.pk for c in categories])
        with connection.cursor() as cur:
            # Built after loading (10x faster than growing it row by row), with room for the
            # whole graph in memory and a parallel build.
            cur.execute("SET maintenance_work_mem = '1GB'")
            cur.execute("SET max_parallel_maintenance_workers = 2")
            hnsw_indexes_ensure(model, concurrently=False)  # nothing else writes here
            for table in ("shop_product", "shop_productimage", "search_imageembedding"):
                cur.execute(f"ANALYZE {table}")
        embedding_model_activate(model)
        model.refresh_from_db()
        return model, catalog

    def _copy(self, catalog: Catalog, model: EmbeddingModel, category_ids: list[int]) -> None:
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
                        copy.write_row(
                            (i + 1, f"Product {i + 1}", f"bench-{i + 1}", "", catalog.price[i],
                             "EUR", category_ids[catalog.category[i]], "", "{}",
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

    # --- phase 1: the database side -------------------------------------------------------

    def _phase_db(self, opts: dict, model, source: VectorSource, catalog: Catalog) -> list[dict]:
        n, limit = opts["queries"], opts["limit"]
        texts = [f"benchmark query {i}" for i in range(n)]
        modifiers = [f"{MODIFIER} {i}" for i in range(n)]
        rng = np.random.default_rng(opts["seed"] + 2)
        photos = [
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(n)
        ]
        kinds = {
            "text (cached vector)": lambda i: [Term("text", text=texts[i])],
            "photo": lambda i: [Term("image", image=photos[i])],
            "hybrid (photo 0.7 + text 0.3)": lambda i: [
                Term("image", image=photos[i], weight=0.7),
                Term("text", text=modifiers[i], weight=0.3),
            ],
        }
        stand_in = StandInEncoder(source, model.dim)
        results = []
        with mock.patch.object(query, "model_encoder", lambda _model: stand_in):
            cache.clear()
            for text in texts + modifiers:
                query.text_vector(model, text)  # into Redis: the timed runs hit the cache
            for ef_search in opts["ef_search"]:
                with override_settings(HNSW_EF_SEARCH=ef_search):
                    for name, terms_for in kinds.items():
                        for filters in (None, FILTERS):
                            row = self._measure(name, terms_for, filters, n, limit, model, catalog)
                            results.append({"ef_search": ef_search, **row})
        return results

    def _measure(self, name, terms_for, filters, n, limit, model, catalog) -> dict:
        requests = [
            SearchRequest(terms=terms_for(i), filters=filters or CatalogFilters(), limit=limit)
            for i in range(n)
        ]
        for request in requests[: min(20, n)]:  # warm the index pages and connections
            query.products_search(request)
        seconds, recalls, full = [], [], 0
        for request in requests:
            started = time.perf_counter()
            response = query.products_search(request)
            seconds.append(time.perf_counter() - started)
            got = [h.product.pk for h in response.hits]
            full += len(got) == limit
            k = min(10, limit)
            exact = catalog.exact_top(query.query_vector(model, request.terms), filters, k)
            recalls.append(len(set(got[:k]) & set(exact)) / len(exact))
        matching = int(catalog.mask(filters).sum())
        return {
            "query": name,
            "filters": "category+price+in stock" if filters else "none",
            "matching_products": matching,
            **bench.percentiles_ms(seconds),
            "recall@10": round(float(np.mean(recalls)), 3),
            "full_pages": f"{full}/{n}",
        }

    # --- phase 2: end to end with the real encoder ----------------------------------------

    def _phase_e2e(self, opts: dict, model, encoder) -> list[dict]:
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
            results.append({"query": name, **bench.percentiles_ms(seconds)})
        return results

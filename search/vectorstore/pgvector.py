"""PostgreSQL + pgvector: the vector SQL, search parameters and HNSW DDL, in one place.

Vectors of every model share two tables (``search_imageembedding``, ``search_textembedding``)
whose column has no fixed dimension; each model gets a partial HNSW index per table on the
vector cast to its dimension, so models of different sizes coexist during a switch.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from search.filters import CatalogFilters
from search.models import EmbeddingModel
from search.vectorstore.base import VectorHit

_VECTOR_TABLES = ("search_imageembedding", "search_textembedding")
# Any constant: one build at a time, so a second worker never starts a duplicate build or
# mistakes a build in progress (not yet valid) for a failed one.
_BUILD_LOCK = 7_240_001


def filters_sql(filters: CatalogFilters) -> tuple[str, list]:
    """``filters`` as `` AND ...`` clauses on the product alias ``p``, plus their params."""
    clauses, params = [], []
    if filters.category_slug:
        clauses.append("p.category_id = (SELECT id FROM shop_category WHERE slug = %s)")
        params.append(filters.category_slug)
    if filters.min_price is not None:
        clauses.append("p.price >= %s")
        params.append(filters.min_price)
    if filters.max_price is not None:
        clauses.append("p.price <= %s")
        params.append(filters.max_price)
    if filters.in_stock is not None:
        clauses.append("p.in_stock = %s")
        params.append(filters.in_stock)
    if filters.colour:
        clauses.append("lower(p.colour) = lower(%s)")
        params.append(filters.colour)
    if filters.exclude_colours:
        clauses.append("NOT (lower(p.colour) = ANY(%s))")
        params.append([c.lower() for c in filters.exclude_colours])
    for word in filters.exclude_words:
        # The keyword document decides what "without leather" leaves out, on both legs.
        clauses.append(
            "NOT EXISTS (SELECT 1 FROM search_productdocument xd WHERE xd.product_id = p.id "
            "AND xd.document @@ plainto_tsquery('english', %s))"
        )
        params.append(word)
    return "".join(f" AND {c}" for c in clauses), params


def _category_clause(alias: str, category: int | None) -> str:
    """The vector rows' own copy of the category filter, as a literal: what lets PostgreSQL
    walk the category's partial graph (a parameter or a subquery cannot prove the index's
    predicate). The same rows either way: triggers keep the copy equal to the product's."""
    return f" AND {alias}.category_id = {int(category)}" if category is not None else ""


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


def search_params_set(cur, *, walk: bool = False) -> None:
    """Per-transaction HNSW settings for a query (``SET LOCAL``: inside ``atomic`` only).

    ``walk``: the strategy chose a category's own graph, so the planner may not swap it for
    filtering and sorting a few thousand rows: for the hundreds of candidates a service
    query asks for it plans the sort as cheaper, which at 300,000 products took 88 ms where
    the category's graph takes 19 (README "Benchmarks").
    """
    # Iterative scans let a filtered HNSW query keep walking the graph until the page is
    # full instead of returning whatever survived the filter in the first ef_search hits.
    cur.execute(f"SET LOCAL hnsw.ef_search = {int(settings.HNSW_EF_SEARCH)}")
    cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    if walk:
        cur.execute("SET LOCAL enable_sort = off")


def filtered_products_estimate(filters: CatalogFilters) -> tuple[int, int] | None:
    """PostgreSQL's own estimates of how many products pass ``filters`` and how many there
    are in all (None: no filter).

    Planning only (``EXPLAIN``, a fraction of a millisecond): a capped count would scan the
    whole table exactly when few products match. The category is resolved to its id first so
    the planner sees a constant instead of a subquery it can only average over.
    """
    if not filters_sql(filters)[0]:
        return None
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT id FROM shop_category WHERE slug = %s), "
            "(SELECT reltuples::bigint FROM pg_class WHERE oid = 'shop_product'::regclass)",
            [filters.category_slug or ""],
        )
        category_id, total = cur.fetchone()
        if filters.category_slug and category_id is None:
            return 0, max(int(total), 0)
    clause = " AND p.category_id = %s" if filters.category_slug else ""
    where, params = filters_sql(replace(filters, category_slug=None))
    matching = _planned_products(f"{clause}{where}", [category_id, *params] if clause else params)
    return matching, max(int(total), matching)  # reltuples is -1 before the first ANALYZE


def _planned_products(where: str, params: list) -> int:
    """The planner's row estimate for ``shop_product p`` under `` AND ...`` clauses."""
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM shop_product p WHERE true{where}", params)
        plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def category_products_estimate(category_id: int) -> int:
    """PostgreSQL's estimate of one category's products (planning only, as above)."""
    return _planned_products(" AND p.category_id = %s", [category_id])


def search_strategy(filters: CatalogFilters, *, category_graph: int | None = None) -> str:
    """``"exact"`` (score every filtered product, then sort) or ``"hnsw"`` (walk the graph).

    A selective filter leaves the HNSW iterative scan walking the graph for a page of
    survivors (cost ~ products / matching), while the exact scan costs ~ matching: so the
    crossover grows with the square root of the catalog. ``SEARCH_EXACT_SCAN_MAX_PRODUCTS``
    is the crossover measured at 100,000 products (README "Benchmarks"), scaled by
    sqrt(products / 100,000); 0 always walks the graph. ``category_graph``: the id of the
    filtered category when it has a graph of its own (``category_graph``), which is then the
    graph walked, so the crossover scales with that category's products instead.
    """
    setting = int(settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS)
    if setting <= 0:
        return "hnsw"
    estimate = filtered_products_estimate(filters)
    if estimate is None:
        return "hnsw"
    matching, total = estimate
    if category_graph is not None:
        total = max(category_products_estimate(category_graph), matching)
    return "exact" if matching <= setting * math.sqrt(total / 100_000) else "hnsw"


def category_id(slug: str | None) -> int | None:
    if not slug:
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT id FROM shop_category WHERE slug = %s", [slug])
        row = cur.fetchone()
    return row[0] if row else None


class PgVectorStore:
    def index_name(self, table: str, model: EmbeddingModel) -> str:
        return f"{table}_hnsw_{int(model.pk)}"

    def index_names(self, model: EmbeddingModel) -> list[str]:
        return [self.index_name(table, model) for table in _VECTOR_TABLES]

    def category_index_name(self, table: str, model: EmbeddingModel, category: int) -> str:
        return f"{self.index_name(table, model)}_c{int(category)}"

    def category_graph(
        self, table: str, model: EmbeddingModel, filters: CatalogFilters
    ) -> int | None:
        """The filtered category's id when it has a valid graph of its own in ``table``."""
        category = category_id(filters.category_slug)
        if category is None:
            return None
        with connection.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s AND i.indisvalid",
                [self.category_index_name(table, model, category)],
            )
            return category if cur.fetchone() else None

    def nearest_images_sql(
        self,
        *,
        model: EmbeddingModel,
        vector: np.ndarray,
        filters: CatalogFilters,
        exclude_product_ids: tuple[int, ...] = (),
        category_graph: int | None = None,
    ) -> tuple[str, list]:
        """Image hits nearest to ``vector`` (SQL + params, ending in a LIMIT placeholder);
        ``category_graph``: the filtered category's id when it has a graph to walk.

        ORDER BY is the bare distance expression the partial HNSW index is built on, with no
        tie-breaker column, or PostgreSQL would sort instead of walking the index.
        """
        dim = int(model.dim)
        where, params = filters_sql(filters)
        if exclude_product_ids:
            where += " AND NOT (p.id = ANY(%s))"
            params.append(list(exclude_product_ids))
        where += _category_clause("e", category_graph)
        qvec = _vector_literal(vector)
        sql = f"""
            SELECT i.product_id, e.image_id,
                   e.embedding::vector({dim}) <=> %s::vector({dim}) AS distance
            FROM search_imageembedding e
            JOIN shop_productimage i ON i.id = e.image_id
            JOIN shop_product p ON p.id = i.product_id
            WHERE e.model_id = {int(model.pk)}{where}
            ORDER BY e.embedding::vector({dim}) <=> %s::vector({dim})
            LIMIT %s
        """
        return sql, [qvec, *params, qvec]

    def nearest_images(
        self,
        *,
        model: EmbeddingModel,
        vector: np.ndarray,
        filters: CatalogFilters,
        limit: int,
        offset: int = 0,
        exclude_product_ids: tuple[int, ...] = (),
        min_similarity: float | None = None,
    ) -> list[VectorHit]:
        wanted = offset + limit

        def exact() -> list[VectorHit]:
            hits = self._nearest_images_exact(
                model=model,
                vector=vector,
                filters=filters,
                limit=wanted,
                exclude_product_ids=exclude_product_ids,
            )
            if min_similarity is not None:
                hits = [h for h in hits if h.similarity >= min_similarity]
            return hits[offset:wanted]

        graph = self.category_graph("search_imageembedding", model, filters)
        if search_strategy(filters, category_graph=graph) == "exact":
            return exact()
        sql, params = self.nearest_images_sql(
            model=model,
            vector=vector,
            filters=filters,
            exclude_product_ids=exclude_product_ids,
            category_graph=graph,
        )
        # Several images per product: over-fetch image hits and keep each product's best;
        # widen the window while a page is short and the index may still hold more.
        candidates = max(wanted * 3, 40)
        while True:
            with transaction.atomic(), connection.cursor() as cur:
                search_params_set(cur, walk=graph is not None)
                cur.execute(sql, [*params, candidates])
                rows = cur.fetchall()
            best: dict[int, tuple[int, float]] = {}
            for product_id, image_id, distance in rows:
                if product_id not in best or distance < best[product_id][1]:
                    best[product_id] = (image_id, distance)
            if len(best) >= wanted or len(rows) < candidates or candidates >= 50_000:
                break
            candidates *= 4
        if graph is not None and len(best) < wanted and len(rows) < candidates:
            # The walk stopped short (hnsw.max_scan_tuples) of a page the filter may still
            # fill: score the filtered products exactly rather than show a short page.
            return exact()
        hits = sorted(
            (VectorHit(pid, img, 1.0 - float(dist)) for pid, (img, dist) in best.items()),
            key=lambda h: (-h.similarity, h.product_id),
        )
        if min_similarity is not None:
            hits = [h for h in hits if h.similarity >= min_similarity]
        return hits[offset:wanted]

    def nearest_images_exact_sql(
        self,
        *,
        model: EmbeddingModel,
        vector: np.ndarray,
        filters: CatalogFilters,
        exclude_product_ids: tuple[int, ...] = (),
    ) -> tuple[str, list]:
        """Each filtered product's best image, scored exactly, nearest first, ties by product
        id (SQL + params, ending in a LIMIT placeholder).

        The filtered products are a MATERIALIZED CTE and the sort has tie-breakers, so the
        planner can neither walk the HNSW index nor push the filter under it.
        """
        dim = int(model.dim)
        where, params = filters_sql(filters)
        if exclude_product_ids:
            where += " AND NOT (p.id = ANY(%s))"
            params.append(list(exclude_product_ids))
        sql = f"""
            WITH f AS MATERIALIZED (SELECT p.id FROM shop_product p WHERE true{where})
            SELECT product_id, image_id, distance FROM (
                SELECT DISTINCT ON (i.product_id) i.product_id, e.image_id,
                       e.embedding::vector({dim}) <=> %s::vector({dim}) AS distance
                FROM f
                JOIN shop_productimage i ON i.product_id = f.id
                JOIN search_imageembedding e
                  ON e.image_id = i.id AND e.model_id = {int(model.pk)}
                ORDER BY i.product_id, distance, e.image_id
            ) best
            ORDER BY distance, product_id
            LIMIT %s
        """
        return sql, [*params, _vector_literal(vector)]

    def _nearest_images_exact(
        self,
        *,
        model: EmbeddingModel,
        vector: np.ndarray,
        filters: CatalogFilters,
        limit: int,
        exclude_product_ids: tuple[int, ...],
    ) -> list[VectorHit]:
        sql, params = self.nearest_images_exact_sql(
            model=model, vector=vector, filters=filters, exclude_product_ids=exclude_product_ids
        )
        with connection.cursor() as cur:
            cur.execute(sql, [*params, limit])
            rows = cur.fetchall()
        hits = [VectorHit(pid, img, 1.0 - float(dist)) for pid, img, dist in rows]
        # The same order as the graph path's (similarity as a float, then product id).
        return sorted(hits, key=lambda h: (-h.similarity, h.product_id))

    def image_similarities(
        self, *, model: EmbeddingModel, vector: np.ndarray, product_ids: list[int]
    ) -> dict[int, tuple[int, float]]:
        """product id -> (best image id, its cosine similarity to ``vector``), exactly, for
        a few products (hits of the keyword leg that the vector leg did not return)."""
        if not product_ids:
            return {}
        dim = int(model.dim)
        sql = f"""
            SELECT DISTINCT ON (i.product_id) i.product_id, e.image_id,
                   1 - (e.embedding::vector({dim}) <=> %s::vector({dim}))
            FROM search_imageembedding e JOIN shop_productimage i ON i.id = e.image_id
            WHERE e.model_id = {int(model.pk)} AND i.product_id = ANY(%s)
            ORDER BY i.product_id, 3 DESC, e.image_id
        """
        with connection.cursor() as cur:
            cur.execute(sql, [_vector_literal(vector), list(product_ids)])
            return {pid: (img, float(sim)) for pid, img, sim in cur.fetchall()}

    def nearest_texts(
        self, *, model: EmbeddingModel, vector: np.ndarray, filters: CatalogFilters, limit: int
    ) -> list[VectorHit]:
        dim = int(model.dim)
        where, params = filters_sql(filters)
        qvec = _vector_literal(vector)

        def exact() -> list[VectorHit]:
            sql = f"""
                WITH f AS MATERIALIZED (SELECT p.id FROM shop_product p WHERE true{where})
                SELECT t.product_id, 1 - (t.embedding::vector({dim}) <=> %s::vector({dim}))
                FROM f JOIN search_textembedding t
                  ON t.product_id = f.id AND t.model_id = {int(model.pk)}
                ORDER BY 2 DESC, t.product_id
                LIMIT %s
            """
            with connection.cursor() as cur:
                cur.execute(sql, [*params, qvec, limit])
                return [VectorHit(r[0], None, float(r[1])) for r in cur.fetchall()]

        graph = self.category_graph("search_textembedding", model, filters)
        if search_strategy(filters, category_graph=graph) == "exact":
            return exact()
        sql = f"""
            SELECT t.product_id, 1 - (t.embedding::vector({dim}) <=> %s::vector({dim}))
            FROM search_textembedding t JOIN shop_product p ON p.id = t.product_id
            WHERE t.model_id = {int(model.pk)}{where}{_category_clause("t", graph)}
            ORDER BY t.embedding::vector({dim}) <=> %s::vector({dim})
            LIMIT %s
        """
        with transaction.atomic(), connection.cursor() as cur:
            search_params_set(cur, walk=graph is not None)
            cur.execute(sql, [qvec, *params, qvec, limit])
            rows = cur.fetchall()
        if graph is not None and len(rows) < limit:
            return exact()  # the walk stopped short, as in nearest_images
        return [VectorHit(r[0], None, float(r[1])) for r in rows]

    def indexes_ensure(
        self, model: EmbeddingModel, *, concurrently: bool | None = None, wait: bool = True
    ) -> None:
        """One partial HNSW index per model and table, on the vector cast to its dimension,
        and one more per category with at least ``SEARCH_CATEGORY_GRAPH_MIN_VECTORS`` of the
        model's vectors in that table (``_category_clause``): a category filter then walks a
        graph of its own products, not the whole catalog's for the few that pass.

        Outside a transaction the build is CONCURRENTLY, so workers keep writing vectors
        meanwhile. A build that failed half-way leaves an invalid index, which is dropped and
        rebuilt. The server's ``maintenance_work_mem`` should hold the graph (pgvector says so
        in a NOTICE otherwise) or the build is many times slower. Cheap when all exist: the
        periodic sweep calls it for the active model, so a category that grows gets its graph,
        with ``wait`` false: while another build holds the lock it leaves this to a later sweep
        rather than hold up the queueing of new photos.
        """
        if concurrently is None:
            concurrently = not connection.in_atomic_block
        how = " CONCURRENTLY" if concurrently else ""
        least = int(settings.SEARCH_CATEGORY_GRAPH_MIN_VECTORS)
        with connection.cursor() as cur:
            if not concurrently:
                # Deferred FK checks from rows inserted earlier in this transaction block DDL.
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            # Inside a transaction a transaction-level lock: a failed build aborts the
            # transaction, and the lock must go with it rather than outlive it in the session.
            lock = "pg_advisory_lock" if concurrently else "pg_advisory_xact_lock"
            if not wait:
                cur.execute(f"SELECT {lock.replace('pg_', 'pg_try_', 1)}(%s)", [_BUILD_LOCK])
                if not cur.fetchone()[0]:
                    return
            else:
                cur.execute(f"SELECT {lock}(%s)", [_BUILD_LOCK])
            try:
                for table in _VECTOR_TABLES:
                    self._graph_ensure(cur, table, model, None, how)
                    if least <= 0:
                        continue
                    cur.execute(
                        f"SELECT category_id FROM {table} WHERE model_id = %s "
                        "AND category_id IS NOT NULL GROUP BY category_id HAVING count(*) >= %s",
                        [int(model.pk), least],
                    )
                    for (category,) in cur.fetchall():
                        self._graph_ensure(cur, table, model, category, how)
            finally:
                if concurrently:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [_BUILD_LOCK])

    def _graph_ensure(
        self, cur, table: str, model: EmbeddingModel, category: int | None, how: str
    ) -> None:
        if category is None:
            name, only = self.index_name(table, model), ""
        else:
            name = self.category_index_name(table, model, category)
            only = f" AND category_id = {int(category)}"
        cur.execute(
            "SELECT i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            [name],
        )
        found = cur.fetchone()
        if found and found[0]:
            return
        if found:
            cur.execute(f"DROP INDEX{how} IF EXISTS {name}")
        cur.execute(
            f"CREATE INDEX{how} {name} ON {table} "
            f"USING hnsw ((embedding::vector({int(model.dim)})) vector_cosine_ops) "
            f"WITH (m = {int(settings.HNSW_M)}, "
            f"ef_construction = {int(settings.HNSW_EF_CONSTRUCTION)}) "
            f"WHERE model_id = {int(model.pk)}{only}"
        )

    def indexes_drop(self, model: EmbeddingModel) -> None:
        # CONCURRENTLY outside a transaction, so searches on other models never wait.
        how = "" if connection.in_atomic_block else " CONCURRENTLY"
        with connection.cursor() as cur:
            cur.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname ~ %s",
                [rf"^search_(image|text)embedding_hnsw_{int(model.pk)}(_c[0-9]+)?$"],
            )
            for name in sorted({*self.index_names(model), *(r[0] for r in cur.fetchall())}):
                cur.execute(f"DROP INDEX{how} IF EXISTS {name}")

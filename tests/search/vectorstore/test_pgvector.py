"""Vector queries on vectors whose right answer is known (no model involved)."""

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection, transaction

from search.filters import CatalogFilters
from search.models import EmbeddingModel, ImageEmbedding
from search.vectorstore import vector_store
from search.vectorstore.pgvector import search_params_set
from shop.models import Category, Product, ProductImage

pytestmark = pytest.mark.django_db(transaction=True)
DIM = 16


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def model():
    m = EmbeddingModel.objects.create(key="synthetic", name="synthetic", dim=DIM, is_active=True)
    vector_store().indexes_ensure(m)
    return m


def add(model, title, vectors, *, category="tops", price="10", in_stock=True):
    cat, _ = Category.objects.get_or_create(slug=category, defaults={"name": category})
    p = Product.objects.create(
        title=title,
        slug=f"{title}-{Product.objects.count()}",
        price=Decimal(price),
        category=cat,
        in_stock=in_stock,
    )
    for pos, v in enumerate(vectors):
        img = ProductImage.objects.create(
            product=p, image=f"x/{title}-{pos}.png", position=pos, width=1, height=1
        )
        ImageEmbedding.objects.create(image=img, model=model, embedding=unit(v))
    return p


def basis(i, noise=0.0, rng=None):
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1
    if noise:
        v += rng.normal(0, noise, DIM).astype(np.float32)
    return v


def test_a_product_with_more_images_than_the_first_window_still_leaves_a_full_page(model):
    # 60 images of one product are the 60 nearest: the first window (40 image hits) holds
    # one product, so the query must widen until the page has its 3 products.
    rng = np.random.default_rng(3)
    crowd = add(model, "crowd", [basis(0, 0.05, rng) for _ in range(60)])
    near = add(model, "near", [basis(0) + 0.6 * basis(1)])
    far = add(model, "far", [basis(0) + 0.9 * basis(2)])
    hits = vector_store().nearest_images(
        model=model, vector=unit(basis(0)), filters=CatalogFilters(), limit=3
    )
    assert [h.product_id for h in hits] == [crowd.pk, near.pk, far.pk]


def test_product_ranks_by_its_best_image_and_appears_once(model):
    a = add(model, "a", [basis(0), basis(1)])
    b = add(model, "b", [basis(1) + 0.3 * basis(2)])
    c = add(model, "c", [basis(2)])
    hits = vector_store().nearest_images(
        model=model, vector=unit(basis(1)), filters=CatalogFilters(), limit=10
    )
    assert [h.product_id for h in hits] == [a.pk, b.pk, c.pk]
    assert hits[0].image_id == a.images.get(position=1).pk
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_filters_still_fill_the_page(model, settings):
    from django.test.utils import CaptureQueriesContext

    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = 0  # the graph path (30 matches would go exact)

    rng = np.random.default_rng(0)
    # 300 near-duplicates of the query that the filter excludes, 30 further away it keeps.
    for i in range(300):
        add(model, f"near{i}", [basis(0, 0.05, rng)], category="shoes")
    kept = [add(model, f"far{i}", [basis(0, 0.6, rng)], category="bags") for i in range(30)]
    filters = CatalogFilters(category_slug="bags")
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
        # On 330 rows the planner prefers an exact scan and a sort, where any filter fills the
        # page; with those priced out, the query walks the HNSW graph, where only the
        # iterative scan gets past the first ef_search (200) near-duplicates.
        cur.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off")
    try:
        with CaptureQueriesContext(connection) as queries:
            hits = vector_store().nearest_images(
                model=model, vector=unit(basis(0)), filters=filters, limit=20
            )
        sql, params = vector_store().nearest_images_sql(
            model=model, vector=unit(basis(0)), filters=filters
        )
        with connection.cursor() as cur:
            cur.execute("EXPLAIN " + sql, [*params, 60])
            plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort")
    assert f"search_imageembedding_hnsw_{model.pk}" in plan, plan
    assert len(hits) == 20
    assert {h.product_id for h in hits} <= {p.pk for p in kept}
    assert "SET LOCAL hnsw.iterative_scan = relaxed_order" in [q["sql"] for q in queries]


def test_price_and_stock_filters(model):
    cheap = add(model, "cheap", [basis(0)], price="5")
    add(model, "dear", [basis(0)], price="500")
    add(model, "gone", [basis(0)], price="6", in_stock=False)
    hits = vector_store().nearest_images(
        model=model,
        vector=unit(basis(0)),
        filters=CatalogFilters(max_price=Decimal("100"), in_stock=True),
        limit=10,
    )
    assert [h.product_id for h in hits] == [cheap.pk]


def test_paging_is_stable_and_disjoint(model):
    rng = np.random.default_rng(1)
    for i in range(50):
        add(model, f"p{i}", [basis(i % 3, 0.3, rng)])
    q = unit(basis(0))
    full = vector_store().nearest_images(model=model, vector=q, filters=CatalogFilters(), limit=30)
    pages = [
        vector_store().nearest_images(
            model=model, vector=q, filters=CatalogFilters(), limit=10, offset=o
        )
        for o in (0, 10, 20)
    ]
    assert [h.product_id for page in pages for h in page] == [h.product_id for h in full]
    sims = [h.similarity for h in full]
    assert sims == sorted(sims, reverse=True)


def test_min_score_and_exclusion(model):
    a = add(model, "a", [basis(0)])
    b = add(model, "b", [basis(0) + 0.2 * basis(1)])
    add(model, "c", [basis(5)])
    hits = vector_store().nearest_images(
        model=model,
        vector=unit(basis(0)),
        filters=CatalogFilters(),
        limit=10,
        min_similarity=0.5,
        exclude_product_ids=(a.pk,),
    )
    assert [h.product_id for h in hits] == [b.pk]


def test_vectors_of_another_model_are_never_compared(model):
    other = EmbeddingModel.objects.create(key="other", name="other", dim=DIM)
    vector_store().indexes_ensure(other)
    mine = add(model, "mine", [basis(3)])
    theirs = add(EmbeddingModel.objects.get(pk=other.pk), "theirs", [basis(0)])
    hits = vector_store().nearest_images(
        model=model, vector=unit(basis(0)), filters=CatalogFilters(), limit=10
    )
    assert [h.product_id for h in hits] == [mine.pk]
    assert theirs.pk not in [h.product_id for h in hits]


def test_search_query_uses_the_hnsw_index(model):
    rng = np.random.default_rng(2)
    cat = Category.objects.create(slug="bulk", name="bulk")
    products = Product.objects.bulk_create(
        [Product(title=f"b{i}", slug=f"b{i}", price=1, category=cat) for i in range(2000)]
    )
    images = ProductImage.objects.bulk_create(
        [ProductImage(product=p, image=f"x/{p.pk}.png", width=1, height=1) for p in products]
    )
    ImageEmbedding.objects.bulk_create(
        [ImageEmbedding(image=i, model=model, embedding=unit(rng.normal(size=DIM))) for i in images]
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
        sql, params = vector_store().nearest_images_sql(
            model=model, vector=unit(basis(0)), filters=CatalogFilters()
        )
        cur.execute("EXPLAIN " + sql, [*params, 24])
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert f"search_imageembedding_hnsw_{model.pk}" in plan, plan


# --- the per-query strategy: exact scan over filtered rows, or the HNSW graph ----------------

EXACT, GRAPH = 10**9, 0  # SEARCH_EXACT_SCAN_MAX_PRODUCTS forcing each strategy


@pytest.fixture
def catalog(model):
    """120 products in 3 categories, 1-3 images each, prices 1..120, every 4th out of stock,
    with their text vectors; returns (product -> image vectors, product -> text vector)."""
    from search.models import TextEmbedding

    rng = np.random.default_rng(7)
    images, texts = {}, {}
    for i in range(120):
        vectors = [rng.normal(size=DIM) for _ in range(1 + i % 3)]
        p = add(
            model, f"s{i}", vectors, category=f"c{i % 3}", price=str(i + 1), in_stock=i % 4 != 0
        )
        images[p.pk] = np.stack([unit(v) for v in vectors])
        texts[p.pk] = unit(rng.normal(size=DIM))
        TextEmbedding.objects.create(product=p, model=model, embedding=texts[p.pk], source_hash="x")
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return images, texts


def exact_answer(vectors_by_product, q, keep):
    """Product ids by best cosine similarity, ties by id: the right answer, in numpy."""
    scored = [(-float((v @ q).max()), pid) for pid, v in vectors_by_product.items() if keep(pid)]
    return [pid for _, pid in sorted(scored)]


FILTERED = CatalogFilters(category_slug="c1", max_price=Decimal("90"), in_stock=True)


def kept(pid):
    p = Product.objects.select_related("category").get(pk=pid)
    return p.category.slug == "c1" and p.price <= 90 and p.in_stock


@pytest.mark.parametrize("threshold", [EXACT, GRAPH], ids=["exact", "hnsw"])
def test_each_strategy_returns_exact_search_filtered_with_full_stable_pages(
    model, catalog, settings, threshold
):
    from django.test.utils import CaptureQueriesContext

    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = threshold
    images, texts = catalog
    rng = np.random.default_rng(8)
    for _ in range(5):
        q = unit(rng.normal(size=DIM))
        right = exact_answer(images, q, kept)
        assert len(right) > 15
        with CaptureQueriesContext(connection) as queries:
            pages = [
                vector_store().nearest_images(
                    model=model, vector=q, filters=FILTERED, limit=5, offset=o
                )
                for o in (0, 5, 10)
            ]
        assert [len(p) for p in pages] == [5, 5, 5]
        assert [h.product_id for p in pages for h in p] == right[:15]
        sims = [h.similarity for p in pages for h in p]
        assert sims == sorted(sims, reverse=True)
        best = pages[0][0]
        assert best.image_id is not None
        assert best.similarity == pytest.approx(
            float((images[best.product_id] @ q).max()), abs=1e-5
        )
        took_exact = any("AS MATERIALIZED" in x["sql"] for x in queries)
        assert took_exact == (threshold == EXACT)
        text_hits = vector_store().nearest_texts(model=model, vector=q, filters=FILTERED, limit=8)
        right_texts = exact_answer({pid: v[None] for pid, v in texts.items()}, q, kept)
        assert [h.product_id for h in text_hits] == right_texts[:8]


def test_the_estimate_picks_exact_for_few_matches_and_the_graph_for_many(model, catalog, settings):
    from search.vectorstore.pgvector import filtered_products_estimate, search_strategy

    few = CatalogFilters(category_slug="c1", max_price=Decimal("12"))  # 4 products
    many = CatalogFilters(in_stock=True)  # 90 products
    assert filtered_products_estimate(CatalogFilters()) is None
    assert filtered_products_estimate(CatalogFilters(category_slug="nowhere")) == (0, 120)
    (few_n, total), (many_n, _) = map(filtered_products_estimate, (few, many))
    assert (few_n < 20 < 60 < many_n) and total == 120
    # The setting is the crossover at 100,000 products, scaled by sqrt(products / 100,000):
    # 40 here at 120 products.
    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = round(40 / (120 / 100_000) ** 0.5)
    assert (search_strategy(few), search_strategy(many)) == ("exact", "hnsw")
    assert search_strategy(CatalogFilters()) == "hnsw"
    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = 40  # 1.4 at this size: the graph for both
    assert (search_strategy(few), search_strategy(many)) == ("hnsw", "hnsw")
    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = 0
    assert search_strategy(few) == "hnsw"


def test_exact_strategy_applies_exclusions_and_min_similarity(model, catalog, settings):
    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = EXACT
    images, _ = catalog
    q = unit(np.random.default_rng(9).normal(size=DIM))
    right = exact_answer(images, q, kept)
    hits = vector_store().nearest_images(
        model=model,
        vector=q,
        filters=FILTERED,
        limit=50,
        exclude_product_ids=(right[0],),
        min_similarity=0.2,
    )
    wanted = [pid for pid in right[1:] if float((images[pid] @ q).max()) >= 0.2]
    assert [h.product_id for h in hits] == wanted


# --- a graph per big category -------------------------------------------------------------


def vector_categories(product):
    """The category copies on the product's image and text vector rows."""
    from search.models import TextEmbedding

    images = ImageEmbedding.objects.filter(image__product=product).values_list(
        "category_id", flat=True
    )
    texts = TextEmbedding.objects.filter(product=product).values_list("category_id", flat=True)
    return set(images) | set(texts)


def test_vector_rows_follow_their_products_category(model):
    from search.models import TextEmbedding

    p = add(model, "moved", [basis(0), basis(1)], category="tops")
    TextEmbedding.objects.create(product=p, model=model, embedding=unit(basis(2)), source_hash="x")
    tops, shoes = Category.objects.get(slug="tops"), Category.objects.create(slug="shoes", name="s")
    assert vector_categories(p) == {tops.pk}

    p.category = shoes
    p.save()  # the admin's and the API's path
    assert vector_categories(p) == {shoes.pk}
    Product.objects.filter(pk=p.pk).update(category=tops)  # bulk import's path
    assert vector_categories(p) == {tops.pk}

    other = add(model, "other", [basis(3)], category="shoes")
    ProductImage.objects.filter(product=p).update(product=other)  # images moved over
    assert vector_categories(other) == {shoes.pk}


def category_graphs(model):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE %s",
            [f"search_%embedding_hnsw_{model.pk}_c%"],
        )
        return sorted(r[0] for r in cur.fetchall())


def test_a_big_category_gets_its_own_graph_which_a_filtered_search_walks(model, catalog, settings):
    from django.test.utils import CaptureQueriesContext

    images, texts = catalog  # 40 products a category, with 40, 80 and 120 images
    c1 = Category.objects.get(slug="c1").pk
    settings.SEARCH_CATEGORY_GRAPH_MIN_VECTORS = 121  # no category has this many
    vector_store().indexes_ensure(model)
    assert category_graphs(model) == []

    settings.SEARCH_CATEGORY_GRAPH_MIN_VECTORS = 40  # every category's images and texts
    vector_store().indexes_ensure(model)
    assert len(category_graphs(model)) == 6
    sql, params = vector_store().nearest_images_sql(
        model=model, vector=unit(basis(0)), filters=FILTERED, category_graph=c1
    )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
        cur.execute("EXPLAIN " + sql, [*params, 24])
        planned = "\n".join(r[0] for r in cur.fetchall())
    with transaction.atomic(), connection.cursor() as cur:
        search_params_set(cur, walk=True)  # what the strategy sets when it picks the graph
        cur.execute("EXPLAIN " + sql, [*params, 24])
        walked = "\n".join(r[0] for r in cur.fetchall())
    # 120 products: on its own the planner filters and sorts them; told to walk, it takes
    # the category's graph, not the whole catalog's.
    assert "_hnsw_" not in planned, planned
    assert f"search_imageembedding_hnsw_{model.pk}_c{c1}" in walked, walked

    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = GRAPH
    rng = np.random.default_rng(11)
    for _ in range(5):
        q = unit(rng.normal(size=DIM))
        with CaptureQueriesContext(connection) as queries:
            hits = vector_store().nearest_images(model=model, vector=q, filters=FILTERED, limit=8)
            text_hits = vector_store().nearest_texts(
                model=model, vector=q, filters=FILTERED, limit=8
            )
        assert [h.product_id for h in hits] == exact_answer(images, q, kept)[:8]
        right_texts = exact_answer({pid: v[None] for pid, v in texts.items()}, q, kept)
        assert [h.product_id for h in text_hits] == right_texts[:8]
        walked = [x["sql"] for x in queries if "ORDER BY" in x["sql"] and "<=>" in x["sql"]]
        assert all(f"category_id = {c1}" in x for x in walked) and len(walked) == 2

    vector_store().indexes_drop(model)
    assert category_graphs(model) == []


def test_the_crossover_with_a_category_graph_scales_with_the_category(model, catalog, settings):
    from search.vectorstore.pgvector import search_strategy

    # 13 of 120 products; of the 40 of c1. At 40 products the crossover is 40 x 0.02 = 0.8
    # and at 120 it is 1.4, so both say "graph" with the setting at 40: the one at 1,000
    # says "exact" for the catalog (13.9) and "graph" for the category (8.0).
    few = CatalogFilters(category_slug="c1", max_price=Decimal("40"))
    settings.SEARCH_EXACT_SCAN_MAX_PRODUCTS = 400
    c1 = Category.objects.get(slug="c1").pk
    assert search_strategy(few) == "exact"
    assert search_strategy(few, category_graph=c1) == "hnsw"


def test_the_sweep_gives_a_category_that_has_grown_its_graph(model, catalog, settings):
    from search.services.indexing import search_graphs_ensure

    settings.SEARCH_CATEGORY_GRAPH_MIN_VECTORS = 40
    assert category_graphs(model) == []
    search_graphs_ensure()
    assert len(category_graphs(model)) == 6


def test_the_sweep_leaves_a_graph_to_a_later_sweep_while_another_build_runs(
    model, catalog, settings
):
    import psycopg

    from search.services.indexing import search_graphs_ensure
    from search.vectorstore.pgvector import _BUILD_LOCK

    settings.SEARCH_CATEGORY_GRAPH_MIN_VECTORS = 40
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [_BUILD_LOCK])  # a build elsewhere
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '5s'")  # waiting would fail here, not hang
        try:
            search_graphs_ensure()  # returns instead of waiting for it
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")
        assert category_graphs(model) == []
        other.execute("SELECT pg_advisory_unlock(%s)", [_BUILD_LOCK])
    search_graphs_ensure()
    assert len(category_graphs(model)) == 6

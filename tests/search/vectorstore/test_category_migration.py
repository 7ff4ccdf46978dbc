"""Migration 0007 on a catalog that already has vectors and HNSW graphs: every vector row gets
its product's category, and the graphs it drops for the backfill are back afterwards."""

from decimal import Decimal

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = [("search", "0006_more_shopper_words")], [("search", "0007_embedding_category")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets[0]).apps


def hnsw_indexes():
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw' AND i.indisvalid"
        )
        return sorted(r[0] for r in cur.fetchall())


def test_existing_vectors_get_their_category_and_keep_their_graphs():
    apps = migrate(BEFORE)
    try:
        Category, Product = apps.get_model("shop", "Category"), apps.get_model("shop", "Product")
        Image = apps.get_model("shop", "ProductImage")
        Model = apps.get_model("search", "EmbeddingModel")
        ImageVector = apps.get_model("search", "ImageEmbedding")
        TextVector = apps.get_model("search", "TextEmbedding")
        model = Model.objects.create(key="m", name="m", dim=4, is_active=True)
        rng = np.random.default_rng(0)
        products = []
        for i, slug in enumerate(["tops", "shoes", "tops"]):
            category, _ = Category.objects.get_or_create(slug=slug, defaults={"name": slug})
            p = Product.objects.create(
                title=f"p{i}", slug=f"p{i}", price=Decimal(1), category=category
            )
            image = Image.objects.create(product=p, image=f"x/{i}.png", width=1, height=1)
            ImageVector.objects.create(image=image, model=model, embedding=rng.normal(size=4))
            TextVector.objects.create(
                product=p, model=model, embedding=rng.normal(size=4), source_hash="x"
            )
            products.append(p)
        with connection.cursor() as cur:
            for table in ("search_imageembedding", "search_textembedding"):
                cur.execute(
                    f"CREATE INDEX {table}_hnsw_{model.pk} ON {table} USING hnsw "
                    f"((embedding::vector(4)) vector_cosine_ops) WHERE model_id = {model.pk}"
                )
        graphs = hnsw_indexes()  # other tests' models' graphs too: the drop takes them all
        assert {
            f"{t}_hnsw_{model.pk}" for t in ("search_imageembedding", "search_textembedding")
        } <= set(graphs)

        migrate(AFTER)

        assert hnsw_indexes() == graphs
        with connection.cursor() as cur:
            cur.execute(
                "SELECT p.category_id, e.category_id FROM search_imageembedding e "
                "JOIN shop_productimage i ON i.id = e.image_id "
                "JOIN shop_product p ON p.id = i.product_id "
                "UNION ALL SELECT p.category_id, t.category_id FROM search_textembedding t "
                "JOIN shop_product p ON p.id = t.product_id"
            )
            pairs = cur.fetchall()
        assert len(pairs) == 6 and all(own == copy for own, copy in pairs), pairs
    finally:
        migrate(AFTER)  # whatever failed, the next test gets the full schema

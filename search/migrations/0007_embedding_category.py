"""Each vector row carries its product's category (``category_id``), kept by triggers, for the
per-category partial HNSW indexes of ``search.vectorstore.pgvector``.

Triggers rather than application code: vectors are written by bulk COPY, upserts and the
admin, and a category changes through the admin, the API and bulk import; a copy that one of
those paths forgot would silently drop products from a category's search. A vector row's copy
is read again on every write of the row (a re-embedding heals any stale one), under a share
lock on the product, so a category change racing a worker's insert cannot leave it stale.

The backfill rewrites every vector row. Row by row, each rewrite would also be inserted into
the models' HNSW graphs (about a millisecond a row), so the graphs are dropped first and
rebuilt in bulk after, from their own definitions.
"""

from django.db import migrations, models

TRIGGERS = """
CREATE FUNCTION search_image_vector_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- FOR SHARE: a category change committing meanwhile is waited for and read, and one
    -- starting meanwhile waits for this row to commit, so its own update reaches it.
    SELECT p.category_id INTO NEW.category_id FROM shop_productimage i
        JOIN shop_product p ON p.id = i.product_id WHERE i.id = NEW.image_id FOR SHARE;
    RETURN NEW;
END $$;
CREATE TRIGGER search_imageembedding_category BEFORE INSERT OR UPDATE
    ON search_imageembedding FOR EACH ROW EXECUTE FUNCTION search_image_vector_category();

CREATE FUNCTION search_text_vector_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT category_id INTO NEW.category_id FROM shop_product WHERE id = NEW.product_id
        FOR SHARE;
    RETURN NEW;
END $$;
CREATE TRIGGER search_textembedding_category BEFORE INSERT OR UPDATE
    ON search_textembedding FOR EACH ROW EXECUTE FUNCTION search_text_vector_category();

CREATE FUNCTION search_product_vector_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE search_imageembedding e SET category_id = NEW.category_id
        FROM shop_productimage i WHERE i.product_id = NEW.id AND e.image_id = i.id;
    UPDATE search_textembedding SET category_id = NEW.category_id WHERE product_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER shop_product_vector_category AFTER UPDATE OF category_id ON shop_product
    FOR EACH ROW WHEN (OLD.category_id IS DISTINCT FROM NEW.category_id)
    EXECUTE FUNCTION search_product_vector_category();

CREATE FUNCTION search_image_moved_category() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE search_imageembedding SET category_id =
        (SELECT category_id FROM shop_product WHERE id = NEW.product_id)
        WHERE image_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER shop_productimage_vector_category AFTER UPDATE OF product_id
    ON shop_productimage FOR EACH ROW WHEN (OLD.product_id IS DISTINCT FROM NEW.product_id)
    EXECUTE FUNCTION search_image_moved_category();
"""

BACKFILL = """
DO $$
DECLARE
    r record;
    graphs text[] := '{}';
    graph text;
BEGIN
    FOR r IN
        SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_am a ON a.oid = c.relam
        WHERE a.amname = 'hnsw'
          AND i.indrelid IN ('search_imageembedding'::regclass, 'search_textembedding'::regclass)
    LOOP
        graphs := graphs || r.definition;
        EXECUTE format('DROP INDEX %I', r.name);
    END LOOP;
    UPDATE search_imageembedding e SET category_id = p.category_id
        FROM shop_productimage i JOIN shop_product p ON p.id = i.product_id
        WHERE i.id = e.image_id;
    UPDATE search_textembedding t SET category_id = p.category_id
        FROM shop_product p WHERE p.id = t.product_id;
    FOREACH graph IN ARRAY graphs LOOP
        EXECUTE graph;
    END LOOP;
END $$;
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS shop_productimage_vector_category ON shop_productimage;
DROP TRIGGER IF EXISTS shop_product_vector_category ON shop_product;
DROP TRIGGER IF EXISTS search_textembedding_category ON search_textembedding;
DROP TRIGGER IF EXISTS search_imageembedding_category ON search_imageembedding;
DROP FUNCTION IF EXISTS search_image_moved_category();
DROP FUNCTION IF EXISTS search_product_vector_category();
DROP FUNCTION IF EXISTS search_text_vector_category();
DROP FUNCTION IF EXISTS search_image_vector_category();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0006_more_shopper_words"),
        ("shop", "0002_product_external_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="imageembedding",
            name="category_id",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="textembedding",
            name="category_id",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(BACKFILL + TRIGGERS, DROP_TRIGGERS),
    ]

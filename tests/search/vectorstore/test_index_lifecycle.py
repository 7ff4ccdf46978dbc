"""Each model's partial HNSW indexes: created for it, dropped with it, the others' kept."""

import pytest
from django.db import connection

from search.models import EmbeddingModel
from search.vectorstore import vector_store

pytestmark = pytest.mark.django_db(transaction=True)


def hnsw_indexes() -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%%USING hnsw%%'")
        return {row[0] for row in cur.fetchall()}


def test_dropping_a_models_indexes_keeps_the_other_models(transactional_db):
    store = vector_store()
    kept = EmbeddingModel.objects.create(key="kept", name="kept", dim=8, is_active=True)
    gone = EmbeddingModel.objects.create(key="gone", name="gone", dim=16)
    store.indexes_ensure(kept)
    store.indexes_ensure(gone)
    names = {m: set(store.index_names(m)) for m in (kept, gone)}
    assert names[gone] == {
        f"search_imageembedding_hnsw_{gone.pk}",
        f"search_textembedding_hnsw_{gone.pk}",
    }
    assert names[kept] | names[gone] <= hnsw_indexes()
    store.indexes_drop(gone)
    assert not names[gone] & hnsw_indexes()
    assert names[kept] <= hnsw_indexes()

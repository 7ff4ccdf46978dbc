"""Switching CLIP models (64 -> 96 dimensions) without downtime, then dropping the old one.

Search reads the active model only; a newly configured model is indexed by a real worker
process while search keeps answering from the old one, and takes over once it covers
every image.
"""

import time

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from search.models import EmbeddingModel, ImageEmbedding, TextEmbedding
from search.services import indexing
from search.services.embedding_models import configured_embedding_model
from search.services.query import SearchRequest, Term, products_search, text_vector
from search.vectorstore import vector_store
from shop.models import ProductImage
from tests.factories import save_random_tiny
from tests.workers import celery_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

B_CONFIG = "shop-clip-tiny-96"
QUERY = SearchRequest(terms=[Term("text", text="a red summer dress")], limit=10)


@pytest.fixture(scope="session")
def model_b_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-96"
    save_random_tiny(folder, B_CONFIG, seed=1)
    return folder


def _catalog(make_product, n: int) -> None:
    # Collected and dropped: the tests decide who embeds (inline or a worker).
    with indexing.embeddings_requests_collected():
        for i in range(n):
            make_product(f"Item {i}", colours=[((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])


def _index_inline() -> None:
    call_command("index_catalog", verbosity=0)


def _configure_b(settings, model_b_dir) -> None:
    settings.CLIP_MODEL = B_CONFIG
    settings.CLIP_PRETRAINED = f"local-dir:{model_b_dir}"


def _hits(response) -> list[tuple[int, float]]:
    return [(h.product.pk, h.score) for h in response.hits]


def _hnsw_indexes(model: EmbeddingModel) -> set[str]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE %s", [f"%_hnsw_{model.pk}"]
        )
        return {row[0] for row in cur.fetchall()}


def _exact_scores(model: EmbeddingModel, text: str, product_ids: list[int]) -> list[float]:
    """Cosine of the query text and each product's image, both from ``model``, in numpy."""
    query = text_vector(model, text)
    vectors = dict(
        ImageEmbedding.objects.filter(model=model, image__product_id__in=product_ids).values_list(
            "image__product_id", "embedding"
        )
    )
    return [
        round(float(np.dot(query, np.asarray(vectors[p], dtype=np.float32))), 4)
        for p in product_ids
    ]


@pytest.mark.integration
def test_worker_reindexes_with_new_model_while_search_answers_from_old(
    make_product, settings, model_b_dir, tmp_path
):
    _catalog(make_product, 40)
    _index_inline()
    model_a = EmbeddingModel.objects.get(is_active=True)
    assert model_a.dim == 64
    before = products_search(QUERY)
    assert before.model == model_a and len(before.hits) == QUERY.limit

    _configure_b(settings, model_b_dir)
    model_b = configured_embedding_model()
    assert model_b.dim == 96 and not model_b.is_active
    # No index while B fills (writes skip HNSW upkeep); built in bulk just before the switch.
    assert _hnsw_indexes(model_b) == set()
    n_images = ProductImage.objects.count()

    with celery_worker(log_path=tmp_path / "worker.log"):  # started with model B's settings
        # First half only, so the catalog is deterministically part-way re-indexed.
        indexing.pending_sweep(limit=n_images // 2)
        wait_for(
            lambda: ImageEmbedding.objects.filter(model=model_b).count() == n_images // 2,
            message="the worker to embed half the catalog with model B",
        )
        model_b.refresh_from_db()
        assert not model_b.is_active
        during = products_search(QUERY)
        assert during.model == model_a
        assert _hits(during) == _hits(before), "B's vectors must not leak into A's results"

        call_command("index_catalog", enqueue=True, verbosity=0)  # the rest
        answered_by = []
        deadline = time.monotonic() + 60
        while not EmbeddingModel.objects.filter(pk=model_b.pk, is_active=True).exists():
            assert time.monotonic() < deadline, "model B never became active"
            response = products_search(QUERY)
            assert len(response.hits) == QUERY.limit  # full pages throughout
            answered_by.append(response.model.key)
            time.sleep(0.02)
    assert set(answered_by) <= {model_a.key, model_b.key}

    after = products_search(QUERY)
    assert after.model.pk == model_b.pk and len(after.hits) == QUERY.limit
    assert ImageEmbedding.objects.filter(model=model_b).count() == n_images
    assert _hnsw_indexes(model_b) == {
        f"search_imageembedding_hnsw_{model_b.pk}",
        f"search_textembedding_hnsw_{model_b.pk}",
    }
    # Each answer compares the query text and the images within one model only.
    ids = [pk for pk, _ in _hits(before)]
    assert [s for _, s in _hits(before)] == _exact_scores(model_a, QUERY.terms[0].text, ids)
    ids = [pk for pk, _ in _hits(after)]
    assert [s for _, s in _hits(after)] == _exact_scores(model_b, QUERY.terms[0].text, ids)
    assert len(text_vector(model_b, QUERY.terms[0].text)) == 96  # not A's cached vector


def test_drop_model_vectors_drops_inactive_and_refuses_active(
    make_product, settings, model_b_dir, capsys
):
    _catalog(make_product, 6)
    _index_inline()
    model_a = EmbeddingModel.objects.get(is_active=True)
    _configure_b(settings, model_b_dir)
    _index_inline()  # B covers everything: search switches to it
    model_b = EmbeddingModel.objects.get(is_active=True)
    assert model_b.pk != model_a.pk and _hnsw_indexes(model_a)

    with pytest.raises(CommandError, match="active model"):
        call_command("drop_model_vectors", str(model_b.pk))
    call_command("drop_model_vectors", "--inactive")
    out = capsys.readouterr().out
    assert f"Dropped {model_a.key} (64d): 6 image and 6 text vectors" in out
    assert not EmbeddingModel.objects.filter(pk=model_a.pk).exists()
    assert _hnsw_indexes(model_a) == set()
    assert ImageEmbedding.objects.filter(model=model_b).count() == 6
    assert TextEmbedding.objects.filter(model=model_b).count() == 6
    assert products_search(QUERY).model.pk == model_b.pk


def test_drop_model_vectors_skips_the_configured_model(make_product, settings, model_b_dir):
    _catalog(make_product, 2)
    _index_inline()
    _configure_b(settings, model_b_dir)
    model_b = configured_embedding_model()  # configured, inactive, being indexed
    call_command("drop_model_vectors", str(model_b.pk), verbosity=0)
    assert EmbeddingModel.objects.filter(pk=model_b.pk).exists()
    call_command("drop_model_vectors", str(model_b.pk), force=True, verbosity=0)
    assert not EmbeddingModel.objects.filter(pk=model_b.pk).exists()


def test_an_invalid_hnsw_index_is_rebuilt(make_product):
    """A CONCURRENTLY build that died half-way leaves an invalid index the planner ignores."""
    _catalog(make_product, 2)
    _index_inline()
    model = EmbeddingModel.objects.get(is_active=True)
    name = f"search_imageembedding_hnsw_{model.pk}"

    def valid() -> bool:
        with connection.cursor() as cur:
            cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [name])
            return cur.fetchone()[0]

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    assert not valid()
    vector_store().indexes_ensure(model)
    assert valid()


def test_a_process_keeps_at_most_the_configured_number_of_models(
    settings, tiny_model_dir, model_b_dir, tmp_path
):
    from search.embeddings.clip import ModelSpec
    from search.embeddings.registry import clear_encoders, get_encoder, loaded_encoders

    settings.CLIP_MAX_LOADED_MODELS = 2
    third_dir = tmp_path / "tiny-seed-2"
    save_random_tiny(third_dir, seed=2)
    a = ModelSpec("tiny", f"local-dir:{tiny_model_dir}")
    b = ModelSpec("tiny-96", f"local-dir:{model_b_dir}")
    c = ModelSpec("tiny-2", f"local-dir:{third_dir}")
    clear_encoders()
    try:
        first_a = get_encoder(a)
        get_encoder(b)
        assert get_encoder(a) is first_a, "a loaded model is reused, not reloaded"
        get_encoder(c)  # b is now the least recently used
        assert loaded_encoders() == [a, c]
        assert get_encoder(a) is first_a
        assert get_encoder(b) is not None and loaded_encoders() == [a, b]
        assert get_encoder(a) is first_a
        # The model the old one was evicted for still embeds, with its own dimension.
        assert get_encoder(b).embed_texts(["a red dress"]).shape == (1, 96)
    finally:
        clear_encoders()


def test_warm_up_pushes_one_full_batch_through_the_configured_encoder(monkeypatch):
    from search.embeddings.registry import get_encoder
    from search.services.embedding_models import encoder_warm_up

    encoder = get_encoder()
    batches = []
    embed_images = encoder.embed_images
    monkeypatch.setattr(
        encoder, "embed_images", lambda imgs: batches.append(imgs) or embed_images(imgs)
    )
    assert encoder_warm_up() is encoder
    assert [len(b) for b in batches] == [encoder.batch_size]
    assert {b.size for b in batches[0]} == {(224, 224)}


def test_dropping_a_model_someone_else_dropped_meanwhile_reports_nothing_dropped():
    from search.services.embedding_models import embedding_model_drop

    stale = EmbeddingModel.objects.create(key="gone", name="gone", dim=8)
    EmbeddingModel.objects.filter(pk=stale.pk).delete()
    assert embedding_model_drop(stale) == {"images": 0, "texts": 0}

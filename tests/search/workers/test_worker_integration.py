"""A real broker (Redis) and a real worker process write vectors to PostgreSQL."""

import pytest
from django.conf import settings

from search.models import ImageEmbedding, TextEmbedding
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_saved_product_is_embedded_by_a_worker_process(make_product, tmp_path):
    product = make_product("Worker-made", colours=[(200, 0, 0), (0, 0, 200)])
    # The product was committed; its tasks are already waiting in Redis on the embeddings queue.
    with celery_worker(settings.EMBEDDING_QUEUE, log_path=tmp_path / "worker.log") as proc:
        wait_for(
            lambda: (
                ImageEmbedding.objects.filter(image__product=product).count() == 2
                and TextEmbedding.objects.filter(product=product).exists()
            ),
            message="the worker to embed 2 images and the product text",
        )
        assert proc.poll() is None
    log = (tmp_path / "worker.log").read_text()
    assert "search.tasks.embed_images" in log and "succeeded" in log, log[-3000:]
    assert ImageEmbedding.objects.count() == 2


def test_default_queue_worker_does_not_take_embedding_work(make_product, tmp_path):
    from search.tasks import sweep_pending

    make_product("Queued", colours=[(0, 200, 0)])
    with celery_worker("default", log_path=tmp_path / "default.log"):
        result = sweep_pending.delay()  # the sweep itself runs on the default queue
        assert result.get(timeout=60)["images"] == 1
    assert ImageEmbedding.objects.count() == 0  # embedding tasks wait for an embeddings worker
    with celery_worker(settings.EMBEDDING_QUEUE, log_path=tmp_path / "emb.log"):
        wait_for(lambda: ImageEmbedding.objects.count() == 1, message="embedding")

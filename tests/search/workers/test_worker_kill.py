"""kill -9 a worker mid-batch: the batch it held comes back and every image ends up embedded once.

Tasks are acknowledged late (after the work) and the worker prefetches one message, so the
batch a killed worker was on stays unacknowledged in Redis; once BROKER_VISIBILITY_TIMEOUT
has passed, the next worker to start puts it back on the queue.
"""

import json
import os
import signal
import time

import pytest
import redis
from django.db.models import Count

from search.models import ImageEmbedding
from search.services.indexing import embeddings_enqueue
from shop.models import ProductImage
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VISIBILITY_S = 3


def _catalog(make_product, n_products: int) -> list[int]:
    from search.services.indexing import embeddings_requests_collected

    # Collected and dropped: the test queues the batches itself, after the worker is up.
    with embeddings_requests_collected():
        for i in range(n_products):
            make_product(f"Item {i}", colours=[(i * 5 % 256, 90, 200 - i * 3 % 200)])
    return list(ProductImage.objects.order_by("id").values_list("id", flat=True))


def test_killed_worker_batch_is_redelivered_and_embedded_once(make_product, settings, tmp_path):
    settings.CLIP_BATCH_SIZE = 2  # small batches: a kill lands inside one, not between runs
    image_ids = _catalog(make_product, 60)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    env = {"BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_S)}

    with celery_worker(log_path=tmp_path / "first.log", **env) as first:
        # The worker loads the model when it starts (worker_process_init), not in the first task.
        wait_for(
            lambda: b"warmed up" in (tmp_path / "first.log").read_bytes(),
            message="the worker to load and warm up the model",
        )
        embeddings_enqueue(image_ids, [])
        # Kill while the worker holds a batch it has logged receiving, not in the instant
        # between acknowledging one batch and fetching the next (nothing would be held then).
        wait_for(
            lambda: (
                0 < ImageEmbedding.objects.count() < len(image_ids)
                and _holding_logged_task(broker, tmp_path / "first.log")
            ),
            interval=0.01,
            message="the worker to be inside a batch after the first ones landed",
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    done_at_kill = ImageEmbedding.objects.count()
    assert done_at_kill < len(image_ids)
    # The batch the worker held is neither lost nor done: it waits, unacknowledged, in Redis.
    unacked = broker.hkeys("unacked")
    assert len(unacked) == 1, unacked
    held_task = _task_id(broker.hget("unacked", unacked[0]))
    assert f"[{held_task}]" in (tmp_path / "first.log").read_text()

    time.sleep(VISIBILITY_S)
    with celery_worker(log_path=tmp_path / "second.log", **env):
        wait_for(
            lambda: ImageEmbedding.objects.count() == len(image_ids),
            timeout=60,
            message="every image to be embedded after the restart",
        )
        wait_for(lambda: broker.hlen("unacked") == 0, timeout=20, message="all acks")
    second_log = (tmp_path / "second.log").read_text()
    assert f"[{held_task}]" in second_log, "the held batch was redelivered to the new worker"
    per_image = ImageEmbedding.objects.values("image_id").annotate(n=Count("id"))
    assert sorted(row["image_id"] for row in per_image) == image_ids
    assert {row["n"] for row in per_image} == {1}
    assert broker.llen(settings.EMBEDDING_QUEUE) == 0


def _holding_logged_task(broker: redis.Redis, log_path) -> bool:
    held = broker.hvals("unacked")
    return len(held) == 1 and f"[{_task_id(held[0])}]" in log_path.read_text()


def _task_id(raw: bytes) -> str:
    message, _exchange, _routing_key = json.loads(raw)
    return message["headers"]["id"]

"""Embedding tasks in a real worker: a transient error is retried with backoff and the batch
lands once; a task past ``CELERY_TASK_TIME_LIMIT`` is killed and its images are not lost.

The failures are real ones, not patched in: the database refuses the worker's logins for a
while (a restarting database), or a table lock held by the test keeps a batch waiting past the
time limit (a stuck write).
"""

import os
import re
import signal
import subprocess
import sys

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from search.models import ImageEmbedding
from search.services.indexing import embeddings_enqueue, embeddings_requests_collected
from search.tasks import sweep_pending
from shop.models import ProductImage
from tests.workers import ROOT, celery_worker, wait_for, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROLE = "flaky_worker"


def _catalog(make_product, n: int) -> list[int]:
    # Collected and dropped: each test queues the batch itself, once its worker is ready.
    with embeddings_requests_collected():
        for i in range(n):
            make_product(f"Retry {i}", colours=[(40 * i % 256, 120, 200)])
    return list(ProductImage.objects.order_by("id").values_list("id", flat=True))


def _embedded_once(image_ids: list[int]) -> None:
    per_image = ImageEmbedding.objects.values("image_id").annotate(n=Count("id"))
    assert sorted(row["image_id"] for row in per_image) == image_ids
    assert {row["n"] for row in per_image} == {1}


@pytest.fixture
def worker_role():
    """A login role of the worker's own, so the test can refuse its logins and keep its own."""
    with connection.cursor() as c:
        c.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER")
    db = connection.settings_dict
    yield f"postgres://{ROLE}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with connection.cursor() as c:
        c.execute(f"ALTER ROLE {ROLE} LOGIN")
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [ROLE]
        )
        c.execute(f"DROP ROLE {ROLE}")


def _logins(allowed: bool) -> None:
    with connection.cursor() as c:
        c.execute(f"ALTER ROLE {ROLE} {'LOGIN' if allowed else 'NOLOGIN'}")


def test_transient_database_error_is_retried_with_backoff_and_lands_once(
    make_product, tmp_path, worker_role
):
    image_ids = _catalog(make_product, 3)
    log_path = tmp_path / "worker.log"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with celery_worker(log_path=log_path, DATABASE_URL=worker_role):
        wait_for(lambda: b"warmed up" in log_path.read_bytes(), message="the model warm-up")
        _logins(False)  # the database "restarts": new connections are refused
        try:
            assert embeddings_enqueue(image_ids, [])
            retries = re.compile(
                r"search\.tasks\.embed_images\[([\w-]+)\] retry: Retry in (\d+)s: OperationalError"
            )
            found = wait_for(
                lambda: len(retries.findall(log_path.read_text())) >= 2 and retries,
                timeout=60,
                message="two retries of the failing batch",
            )
            assert ImageEmbedding.objects.count() == 0
        finally:
            _logins(True)
        wait_for(
            lambda: ImageEmbedding.objects.count() == len(image_ids),
            timeout=120,
            message="the retried batch to land",
        )
        wait_for(lambda: broker.hlen("unacked") == 0, timeout=20, message="the final ack")
    text = log_path.read_text()
    attempts = found.findall(text)
    # The same task (one id) was retried, each time after a countdown from the backoff.
    assert len({task_id for task_id, _ in attempts}) == 1, attempts
    task_id = attempts[0][0]
    assert re.search(rf"embed_images\[{task_id}\] succeeded in [\d.]+s: {len(image_ids)}", text)
    assert all(0 <= int(s) <= 2 ** (k + 1) for k, (_, s) in enumerate(attempts)), attempts
    _embedded_once(image_ids)
    assert broker.llen(settings.EMBEDDING_QUEUE) == 0  # no copy of the batch left to run again


@pytest.fixture
def prefork_worker(tmp_path):
    """A prefork worker (the solo pool has no time limits), one child, 8 s task time limit
    (a warmed-up child embeds two images well within it, even on a loaded 2-core machine)."""
    log_path = tmp_path / "prefork.log"
    cmd = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork"]
    cmd += ["-c", "1", "-Q", settings.EMBEDDING_QUEUE, "--without-gossip", "--without-mingle"]
    cmd += ["--loglevel", "INFO", "-n", f"limit-{os.getpid()}@%h"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=worker_env(CELERY_TASK_TIME_LIMIT="8"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_task_past_the_time_limit_is_killed_and_its_images_are_not_lost(
    make_product, prefork_worker
):
    proc, log_path = prefork_worker
    image_ids = _catalog(make_product, 2)
    wait_for(lambda: b"warmed up" in log_path.read_bytes(), timeout=120, message="the warm-up")
    with transaction.atomic(), connection.cursor() as c:
        # A stuck write: the batch's first query waits on this lock, past the time limit.
        c.execute("LOCK TABLE search_imageembedding IN ACCESS EXCLUSIVE MODE")
        assert embeddings_enqueue(image_ids, [])
        killed = re.compile(r"Hard time limit \(8s?\) exceeded for search\.tasks\.embed_images")
        wait_for(
            lambda: killed.search(log_path.read_text()),
            timeout=60,
            message="the time limit to kill the task",
        )
    assert proc.poll() is None, "the worker survives its child"
    # Celery acknowledges a task killed by the time limit (task_acks_on_failure_or_timeout),
    # so its message is gone (unless the dying child's interrupted query raised a retry):
    # the images are not lost because "pending" is derived from missing vectors. Sweep, as
    # beat would, whenever the worker has a warmed-up child and nothing queued; a child that
    # is still loading the model could itself exceed this test's limit.
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def embedded_after_sweeps() -> bool:
        if ImageEmbedding.objects.count() == len(image_ids):
            return True
        text = log_path.read_text()
        warm_child = text.count("warmed up") > text.count("exited with 'signal 9")
        idle = not broker.llen(settings.EMBEDDING_QUEUE) and not broker.hlen("unacked")
        if warm_child and idle:
            sweep_pending()
        return False

    wait_for(embedded_after_sweeps, timeout=180, interval=2, message="the sweep to recover")
    _embedded_once(image_ids)

"""Take the Celery broker and result backend down for one test, the way the app sees it.

The Celery app reads its configuration live from Django's settings (``CELERY_*``), so the
settings are what must change; but the app also caches a connection pool, a producer pool and
a result backend built from the URLs it saw first. Both are dropped here, before the outage and
after it, so the code under test really talks to a port where nothing listens, and then really
talks to the live Redis again.
"""

from __future__ import annotations

import json
import socket
from contextlib import contextmanager

from django.conf import settings
from django.test import override_settings


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_celery_connections() -> None:
    from config.celery_app import app

    app._pool = None  # the pools themselves stay in kombu's registry, keyed by URL
    app.amqp._producer_pool = None
    app._local.__dict__.pop("backend", None)


@contextmanager
def broker_down():
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    from config.celery_app import app

    with override_settings(CELERY_BROKER_URL=dead, CELERY_RESULT_BACKEND=dead):
        _reset_celery_connections()
        assert app.conf.broker_url == dead and app.conf.result_backend == dead
        try:
            yield dead
        finally:
            _reset_celery_connections()
    assert app.conf.broker_url == settings.CELERY_BROKER_URL


def queued_batches(queue: str, task: str = "search.tasks.embed_images") -> list[list[int]]:
    """The id batches of the ``task`` messages waiting on ``queue`` (live broker)."""
    import base64

    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    batches = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == task:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            batches.append(args[0])
    return batches


def queued_image_ids(queue: str, task: str = "search.tasks.embed_images") -> set[int]:
    return {i for batch in queued_batches(queue, task) for i in batch}


def run_queued(queue: str, *, image_ids=(), product_ids=()) -> int:
    """Do what a worker would: take the queued embedding messages that carry any of these ids
    off the live broker and run their tasks here. Returns how many messages ran."""
    import base64

    import redis
    from celery import current_app

    import search.tasks  # noqa: F401  (registers the tasks, as a worker's autodiscovery does)

    wanted = {
        "search.tasks.embed_images": set(image_ids),
        "search.tasks.embed_product_texts": set(product_ids),
    }
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    ran = 0
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        name = message["headers"]["task"]
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        if name in wanted and wanted[name] & set(args[0]):
            client.lrem(queue, 1, raw)
            current_app.tasks[name].apply(args=args, kwargs=kwargs).get()
            ran += 1
    return ran

"""Celery tasks: take ids, call a service. Routed to the embeddings queue in settings."""

import logging
import threading
from concurrent.futures.process import BrokenProcessPool

from celery import current_app, shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import InterfaceError, OperationalError

from clip_train.main import train
from clip_train.options import TrainOptions
from search import training_data
from search.services import indexing
from search.services.embedding_models import encoder_warm_up

log = logging.getLogger("search.warmup")

# Transient failures worth retrying with backoff (1 s, 2 s, ... capped at 300 s, jittered):
# storage or network hiccups, a database that restarts or drops the connection, and a decode
# process that died (killed, out of memory; the retry gets a fresh pool). The vectors are
# upserts, so a retried or redelivered batch never duplicates anything; the cap stays well
# below BROKER_VISIBILITY_TIMEOUT so a waiting retry is not also redelivered.
TRANSIENT_ERRORS = (ConnectionError, OSError, OperationalError, InterfaceError, BrokenProcessPool)


def _embedding_task(name: str):
    """A retried, late-acked task under ``name`` (the name services publish it by)."""
    return shared_task(
        name=name,
        acks_late=True,
        autoretry_for=TRANSIENT_ERRORS,
        retry_backoff=True,
        retry_backoff_max=300,
        max_retries=8,
    )


@_embedding_task(indexing.EMBED_IMAGES_TASK)
def embed_images(image_ids: list[int]) -> int:
    return indexing.images_embed(image_ids=image_ids)


@_embedding_task(indexing.EMBED_TEXTS_TASK)
def embed_product_texts(product_ids: list[int]) -> int:
    return indexing.product_texts_embed(product_ids=product_ids)


@shared_task
def sweep_pending() -> dict[str, int]:
    queued = indexing.pending_sweep()
    indexing.search_graphs_ensure()
    return queued


@shared_task(bind=True, acks_late=False)
def train_clip(self, options: dict) -> dict:
    """Train or fine-tune CLIP (``clip_train.options.TrainOptions`` fields) and save.

    Long-running and not idempotent in cost, so it is never retried automatically; the result
    says where the model is and which settings select it.
    """
    opts = TrainOptions(**{"progress": False, **options})
    if not opts.command:
        opts.command = f"celery task search.tasks.train_clip({options!r})"
    result = train(opts, sources=training_data.SOURCES)
    return {
        "out": str(result.out),
        "env": result.env,
        "metrics": result.metrics,
        "duration_s": round(result.duration_s, 1),
    }


@worker_process_init.connect
def _warm_up_encoder(**kwargs) -> None:
    """Load the CLIP model as each embedding worker process starts (prefork child or solo).

    Only workers consuming the embeddings queue: the default-queue worker never embeds.
    In a thread: prefork gives a child 4 s to report alive, less than a model load; a task
    that arrives meanwhile waits on the encoder cache's lock instead of loading a second copy.
    Connected here, not in config/celery_app.py, so that the Celery app knows no app code.
    """
    consumed = set(current_app.amqp.queues.consume_from)  # the -Q selection, inherited
    if settings.CLIP_WARMUP and settings.EMBEDDING_QUEUE in consumed:
        threading.Thread(target=_warm_up, name="clip-warm-up", daemon=True).start()


def _warm_up() -> None:
    try:
        encoder_warm_up()
    except Exception:  # a worker without the model still sweeps; tasks report the real error
        log.exception("CLIP warm-up failed; tasks will try to load the model themselves")

import logging
import os
import threading

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger("search.warmup")


@worker_process_init.connect
def _warm_up_encoder(**kwargs) -> None:
    """Load the CLIP model as each embedding worker process starts (prefork child or solo).

    Only workers consuming the embeddings queue: the default-queue worker never embeds.
    In a thread: prefork gives a child 4 s to report alive, less than a model load; a task
    that arrives meanwhile waits on the encoder cache's lock instead of loading a second copy.
    """
    from django.conf import settings

    consumed = set(app.amqp.queues.consume_from)  # the -Q selection, inherited by children
    if settings.CLIP_WARMUP and settings.EMBEDDING_QUEUE in consumed:
        threading.Thread(target=_warm_up, name="clip-warm-up", daemon=True).start()


def _warm_up() -> None:
    from search.services.embedding_models import encoder_warm_up

    try:
        encoder_warm_up()
    except Exception:  # a worker without the model still sweeps; tasks report the real error
        log.exception("CLIP warm-up failed; tasks will try to load the model themselves")

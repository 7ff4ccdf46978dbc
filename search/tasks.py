"""Celery tasks: take ids, call a service. Routed to the embeddings queue in settings."""

from celery import shared_task

from search.services import indexing


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(ConnectionError, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def embed_images(self, image_ids: list[int]) -> int:
    return indexing.images_embed(image_ids=image_ids)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(ConnectionError, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def embed_product_texts(self, product_ids: list[int]) -> int:
    return indexing.product_texts_embed(product_ids=product_ids)


@shared_task
def sweep_pending() -> dict[str, int]:
    return indexing.pending_sweep()

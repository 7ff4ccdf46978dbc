"""Which CLIP model's vectors are written (the configured one) and read (the active one)."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone
from PIL import Image

from search.embeddings import Encoder
from search.embeddings.registry import configured_spec, get_encoder
from search.models import EmbeddingModel
from search.selectors import image_ids_pending
from search.services import decoding
from search.vectorstore import vector_store

log = logging.getLogger(__name__)


def embedding_model_for(encoder: Encoder) -> EmbeddingModel:
    """The row for ``encoder``'s model, created on first use.

    The very first model of an installation becomes active at once, with its HNSW indexes,
    since search reads it while it fills. Later ones wait for
    ``embedding_model_activate_if_covered`` so that search never reads a half-indexed model;
    their indexes are built in bulk just before the switch (see ``embedding_model_activate``).
    """
    row = EmbeddingModel.objects.filter(key=encoder.key).first()
    if row is not None:
        return row
    with transaction.atomic():
        # Serialise creators so two workers cannot both decide they are first.
        EmbeddingModel.objects.select_for_update().filter(is_active=True).exists()
        row, created = EmbeddingModel.objects.get_or_create(
            key=encoder.key,
            defaults={
                "name": encoder.spec.name,
                "pretrained": encoder.spec.pretrained,
                "dim": encoder.dim,
            },
        )
        if created and not EmbeddingModel.objects.filter(is_active=True).exists():
            row.is_active = True
            row.activated_at = timezone.now()
            row.save(update_fields=["is_active", "activated_at"])
    if created and row.is_active:
        vector_store().indexes_ensure(row)
    return row


def configured_embedding_model() -> EmbeddingModel:
    """The configured model's row. The model itself is loaded only to create a missing row
    (its dimension is needed), so the sweep on a CPU worker never loads CLIP."""
    spec = configured_spec()
    row = EmbeddingModel.objects.filter(key=spec.key).first()
    return row if row is not None else embedding_model_for(get_encoder(spec))


def embedding_model_activate(model: EmbeddingModel) -> None:
    """Switch search to ``model``, building its HNSW indexes first if they are missing.

    Built here, once the vectors are all written, rather than grown row by row during the
    re-index: a bulk build is many times faster and the re-index writes skip HNSW upkeep.
    """
    vector_store().indexes_ensure(model)
    with transaction.atomic():
        EmbeddingModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        EmbeddingModel.objects.filter(pk=model.pk).update(
            is_active=True, activated_at=timezone.now()
        )
    log.info("search now answers from model %s", model.key)


def embedding_model_activate_if_covered(model: EmbeddingModel) -> bool:
    """Switch search to ``model`` once every image has a vector from it."""
    if model.is_active:
        return True
    if image_ids_pending(model=model, limit=1):
        return False
    embedding_model_activate(model)
    model.refresh_from_db()
    return True


def encoder_warm_up() -> Encoder:
    """Load the configured encoder, push one full dummy batch through it and start the
    indexing pipeline's decode processes.

    Called when a worker process starts: loading ViT-B-32 takes seconds, the first batch
    pays for memory allocation (and CUDA kernel selection on a GPU) and each decode process
    imports torch; better before the first task than inside it.
    """
    started = time.perf_counter()
    encoder = get_encoder()
    side = 224
    encoder.embed_images([Image.new("RGB", (side, side), "white")] * encoder.batch_size)
    encoder.embed_texts(["warm-up"])
    decoders = decoding.decode_pool_warm(encoder)
    log.info(
        "CLIP model %s warmed up on %s (%s) in %.1fs, %s",
        encoder.key,
        encoder.device,
        encoder.precision,
        time.perf_counter() - started,
        f"{decoders} decode processes" if decoders else "decoding in threads",
    )
    return encoder


class ModelInUse(ValueError):
    """The model cannot be dropped: search reads it."""


def embedding_model_drop(model: EmbeddingModel) -> dict[str, int]:
    """Remove an inactive model for good: its HNSW indexes, its vectors, its row.

    Indexes go first (CONCURRENTLY outside a transaction, so searches on other models never
    wait for the lock); then rows, under a lock on the model row that re-checks it is still
    inactive. If the model is configured again later it starts from scratch, new indexes
    included.
    """
    if model.is_active:
        raise ModelInUse(f"{model.key} is the active model; switch search to another first.")
    vector_store().indexes_drop(model)
    with transaction.atomic():
        row = EmbeddingModel.objects.select_for_update().filter(pk=model.pk).first()
        if row is None:
            return {"images": 0, "texts": 0}
        if row.is_active:
            raise ModelInUse(f"{model.key} became active meanwhile; not dropped.")
        # No signals or cascades hang off vectors, so each delete is one DELETE statement.
        images, _ = row.image_embeddings.all().delete()
        texts, _ = row.text_embeddings.all().delete()
        row.delete()
    log.info("dropped model %s: %s image and %s text vectors", model.key, images, texts)
    return {"images": images, "texts": texts}

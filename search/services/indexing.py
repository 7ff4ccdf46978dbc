"""Writes vectors: scheduling after commit, the batched embed step, and the sweep."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from pgvector.psycopg.vector import VectorBinaryDumper

from search.embeddings import Encoder
from search.embeddings.registry import configured_spec, get_encoder
from search.models import EmbeddingModel, ImageEmbedding, TextEmbedding
from search.selectors import active_embedding_model, image_ids_pending, product_ids_text_pending
from search.services import decoding
from search.services.embedding_models import (
    configured_embedding_model,
    embedding_model_activate_if_covered,
    embedding_model_for,
)
from search.services.query import calibrate_if_stale
from search.vectorstore import keyword, vector_store
from shop.models import Product, ProductImage

log = logging.getLogger(__name__)

EMBED_IMAGES_TASK = "search.tasks.embed_images"
EMBED_TEXTS_TASK = "search.tasks.embed_product_texts"


def embeddings_request(*, image_ids: Iterable[int] = (), product_ids: Iterable[int] = ()) -> None:
    """Queue embedding work once the current transaction commits.

    A rolled-back save schedules nothing; a broker that is down loses nothing either, because
    "pending" is derived from missing vectors and the periodic sweep finds them.
    """
    image_ids, product_ids = sorted(set(image_ids)), sorted(set(product_ids))
    if not (image_ids or product_ids):
        return
    collected = getattr(_collecting, "requests", None)
    if collected is not None:
        transaction.on_commit(lambda: collected.add(image_ids, product_ids))
    else:
        transaction.on_commit(lambda: embeddings_enqueue(image_ids, product_ids))


@dataclass
class EmbeddingRequests:
    """Ids whose writes committed inside ``embeddings_requests_collected``."""

    image_ids: set[int] = field(default_factory=set)
    product_ids: set[int] = field(default_factory=set)

    def add(self, image_ids: Iterable[int], product_ids: Iterable[int]) -> None:
        self.image_ids.update(image_ids)
        self.product_ids.update(product_ids)

    def enqueue(self) -> None:
        """Queue everything collected, in full batches, and start collecting afresh."""
        embeddings_enqueue(sorted(self.image_ids), sorted(self.product_ids))
        self.image_ids.clear()
        self.product_ids.clear()


_collecting = threading.local()


@contextmanager
def embeddings_requests_collected() -> Iterator[EmbeddingRequests]:
    """Gather the embedding requests of many writes instead of queueing each on its own.

    A bulk import saves thousands of products one by one; queued as they commit, each would
    become a task of one image, which wastes a GPU worker's batches. Inside this block only
    the ids of writes that commit are collected (``on_commit`` still drops rolled-back
    savepoints); the caller then queues them in full batches (``enqueue()``) or embeds them
    inline. Whatever is left uncollected is still found by the sweep.
    """
    outer = getattr(_collecting, "requests", None)
    if outer is not None:  # nested: share the outer collection
        yield outer
        return
    _collecting.requests = EmbeddingRequests()
    try:
        yield _collecting.requests
    finally:
        _collecting.requests = None


def embeddings_enqueue(image_ids: list[int], product_ids: list[int]) -> bool:
    """Publish the embedding tasks in batches; with the broker down, log and leave it to the sweep.

    Returns whether every task was published (False: the broker was unreachable).

    Fails fast (well under a second, tests/search/services/test_indexing.py): one broker connection attempt with
    a short connect timeout (``CELERY_BROKER_TRANSPORT_OPTIONS``), no publish retry, and
    ``ignore_result``: nobody reads these results, so publishing never touches the result
    backend (Redis would first subscribe to the result channel, retrying 20 times, 1 s apart).
    """
    batch = settings.CLIP_BATCH_SIZE
    # By name: the task module imports this one (tasks call services), so importing it here
    # would be a circle; the routes in settings key on the same names.
    publish = {"ignore_result": True, "retry": False}
    try:
        for i in range(0, len(image_ids), batch):
            current_app.send_task(EMBED_IMAGES_TASK, (image_ids[i : i + batch],), **publish)
        for i in range(0, len(product_ids), batch):
            current_app.send_task(EMBED_TEXTS_TASK, (product_ids[i : i + batch],), **publish)
    except Exception as exc:  # kombu raises many types when Redis is unreachable
        log.warning("broker unavailable, %s images left for the sweep: %s", len(image_ids), exc)
        return False
    return True


def image_embeddings_invalidate(*, image_ids: Sequence[int]) -> None:
    """An image's file changed: drop its vectors (all models) and queue it again."""
    ImageEmbedding.objects.filter(image_id__in=image_ids).delete()
    embeddings_request(image_ids=image_ids)


def text_embeddings_invalidate(*, product_ids: Sequence[int]) -> None:
    TextEmbedding.objects.filter(product_id__in=product_ids).delete()
    embeddings_request(product_ids=product_ids)


@dataclass
class Reindexing:
    """What ``products_reindex`` did: whose vectors it dropped and whether the work was queued."""

    model_key: str
    product_ids: list[int]
    image_ids: list[int]
    # None until the transaction commits (then the tasks are published); False when the
    # broker was unreachable: the work is pending all the same and the sweep queues it.
    queued: bool | None = None


def products_reindex(*, product_ids: Iterable[int]) -> Reindexing:
    """Embed these products' images and texts again with the configured model.

    Their vectors from that model are dropped, which makes them pending: the state the sweep
    reads from the database, so nothing depends on the broker taking the tasks published after
    commit. Vectors of other models are kept (during a model switch search still reads the
    old one, and workers only write the configured one). Does not load CLIP: a model with no
    row yet has no vectors to drop.
    """
    spec = configured_spec()
    product_ids = sorted(
        set(Product.objects.filter(id__in=product_ids).values_list("id", flat=True))
    )
    image_ids = list(
        ProductImage.objects.filter(product_id__in=product_ids)
        .order_by("id")
        .values_list("id", flat=True)
    )
    model = EmbeddingModel.objects.filter(key=spec.key).first()
    if model is not None:
        ImageEmbedding.objects.filter(model=model, image_id__in=image_ids).delete()
        TextEmbedding.objects.filter(model=model, product_id__in=product_ids).delete()
    done = Reindexing(model_key=spec.key, product_ids=product_ids, image_ids=image_ids)

    def publish() -> None:
        done.queued = embeddings_enqueue(image_ids, product_ids)

    if product_ids:
        transaction.on_commit(publish)
    return done


def images_embed(*, image_ids: Sequence[int], encoder: Encoder | None = None) -> int:
    """Embed the given images with ``encoder`` (default: configured model); returns count written.

    Idempotent: an image that already has a vector from this model is skipped, and the write
    is an upsert on (image, model), so a redelivered task never duplicates a vector.
    """
    encoder = encoder or get_encoder()
    model = embedding_model_for(encoder)
    done = set(
        ImageEmbedding.objects.filter(model=model, image_id__in=image_ids).values_list(
            "image_id", flat=True
        )
    )
    images = list(ProductImage.objects.filter(id__in=image_ids).exclude(id__in=done).order_by("id"))
    if not images:
        return 0
    size = encoder.batch_size
    chunks = [images[i : i + size] for i in range(0, len(images), size)]
    names = [[img.image.name for img in chunk] for chunk in chunks]
    writes: list[Future] = []
    with _Writer() as writer:
        # The next batch decodes while the model runs on this one and the writer stores the
        # one before: no more than two batches of pixels are held, whatever the number of ids.
        for chunk, decoded in zip(chunks, decoding.decoded_batches(encoder, names), strict=True):
            ok = []
            for img, (pixels, error) in zip(chunk, decoded, strict=True):
                if error is None:
                    ok.append((img, pixels))
                else:
                    log.error("image %s (%s) cannot be embedded: %s", img.pk, img.image.name, error)
            if ok:
                vectors = encoder.embed_pixels([px for _, px in ok])
                writes.append(writer.write(model, [img for img, _ in ok], vectors))
    written = sum(w.result() for w in writes)
    embedding_model_activate_if_covered(model)
    return written


class _Writer:
    """Writes a batch's vectors while the model computes the next one.

    A thread of its own (with its own database connection, closed at the end) when running
    in autocommit, as workers do; inline inside a transaction, whose uncommitted rows another
    connection could not see. One write in flight at most: errors surface at the next batch.
    """

    def __enter__(self) -> _Writer:
        self._thread = (
            None if transaction.get_connection().in_atomic_block else ThreadPoolExecutor(1)
        )
        self._last: Future | None = None
        return self

    def write(self, model: EmbeddingModel, images: list[ProductImage], vectors) -> Future:
        if self._last is not None:
            self._last.result()
        if self._thread is None:
            done: Future = Future()
            done.set_result(_write_image_vectors(model, images, vectors))
            return done
        self._last = self._thread.submit(_write_image_vectors, model, images, vectors)
        return self._last

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._thread.submit(connection.close)  # runs in the writer thread: its connection
            self._thread.shutdown(wait=True)


def _write_image_vectors(model: EmbeddingModel, images: list[ProductImage], vectors) -> int:
    """Upsert one batch's vectors on (image, model): re-running a batch replaces, never adds.

    For the active model one multi-row INSERT (its HNSW index is updated row by row, whatever
    the statement). For a model being re-indexed, which has no index yet (built once on
    activation), a binary COPY into a staging table and one INSERT ... ON CONFLICT from it:
    no per-row parameters or text rendering of 512 floats.
    """
    pairs = list(zip(images, vectors, strict=True))  # a short batch fails before any write
    if not model.is_active:
        return _copy_image_vectors(model, pairs)
    rows = [ImageEmbedding(image=img, model=model, embedding=vec) for img, vec in pairs]
    ImageEmbedding.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["image", "model"],
        update_fields=["embedding"],
    )
    return len(rows)


_INT8_OID = 20  # built in; the vector type's oid differs per database, so it is looked up


def _copy_image_vectors(model: EmbeddingModel, pairs: list[tuple[ProductImage, object]]) -> int:
    if not pairs:
        return 0
    with transaction.atomic(), connection.cursor() as cur:
        # A session's temp table, emptied per batch; ON COMMIT would not empty it inside an
        # outer transaction (the inline writer), so TRUNCATE does.
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _image_vectors_copy (image_id bigint, embedding vector)"
        )
        cur.execute("TRUNCATE _image_vectors_copy")
        cur.execute("SELECT 'vector'::regtype::oid")
        oid = cur.fetchone()[0]
        raw = cur.cursor  # psycopg's own cursor: COPY, and a binary dumper for this cursor only
        raw.adapters.register_dumper(np.ndarray, type("", (VectorBinaryDumper,), {"oid": oid}))
        with raw.copy("COPY _image_vectors_copy FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types([_INT8_OID, oid])
            for image, vector in pairs:
                copy.write_row((image.pk, np.asarray(vector, dtype=np.float32)))
        cur.execute(
            "INSERT INTO search_imageembedding (image_id, model_id, embedding, created_at) "
            "SELECT image_id, %s, embedding, now() FROM _image_vectors_copy "
            "ON CONFLICT (image_id, model_id) DO UPDATE SET embedding = EXCLUDED.embedding",
            [model.pk],
        )
        return cur.rowcount


def text_source(product: Product) -> str:
    return product.embedding_text


def product_texts_embed(*, product_ids: Sequence[int], encoder: Encoder | None = None) -> int:
    encoder = encoder or get_encoder()
    model = embedding_model_for(encoder)
    products = list(Product.objects.filter(id__in=product_ids).order_by("id"))
    todo = []
    current = dict(
        TextEmbedding.objects.filter(model=model, product_id__in=product_ids).values_list(
            "product_id", "source_hash"
        )
    )
    for product in products:
        digest = hashlib.sha256(text_source(product).encode()).hexdigest()
        if current.get(product.pk) != digest:
            todo.append((product, digest))
    if not todo:
        return 0
    vectors = encoder.embed_texts([text_source(p) for p, _ in todo])
    TextEmbedding.objects.bulk_create(
        [
            TextEmbedding(product=p, model=model, embedding=v, source_hash=d)
            for (p, d), v in zip(todo, vectors, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["product", "model"],
        update_fields=["embedding", "source_hash"],
    )
    return len(todo)


def pending_sweep(*, limit: int | None = None, enqueue: bool = True) -> dict[str, int]:
    """Find everything the configured model has not embedded and queue it (or embed inline)."""
    model = configured_embedding_model()
    limit = limit or settings.EMBEDDING_SWEEP_BATCH
    image_ids = image_ids_pending(model=model, limit=limit)
    product_ids = product_ids_text_pending(model=model, limit=limit)
    if enqueue:
        embeddings_enqueue(image_ids, product_ids)
    else:
        images_embed(image_ids=image_ids)
        product_texts_embed(product_ids=product_ids)
    embedding_model_activate_if_covered(model)
    # Keyword documents missing or older than their product (a write around the services).
    documents = keyword.documents_refresh(keyword.product_ids_stale(limit))
    if documents:
        log.info("sweep: rewrote %d keyword documents", documents)
    active = active_embedding_model()
    try:
        if active is not None and calibrate_if_stale(active):
            log.info("sweep: recalibrated close-match figures of %s", active.key)
    except Exception:  # the model cannot load here: searches keep the old figures, next sweep
        log.exception("sweep: close-match calibration of %s failed", active.key)
    return {"images": len(image_ids), "products": len(product_ids)}


def search_graphs_ensure() -> None:
    """The active model's missing HNSW graphs built (a category grown past
    SEARCH_CATEGORY_GRAPH_MIN_VECTORS gets its own): by the periodic sweep's worker, never in
    a request, and left to the next sweep while another build holds the lock."""
    active = active_embedding_model()
    if active is None:
        return
    try:
        vector_store().indexes_ensure(active, wait=False)
    except Exception:  # searches keep the graphs they have; the next sweep tries again
        log.exception("sweep: building the search graphs of %s failed", active.key)

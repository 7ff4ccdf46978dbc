"""Indexing: after-commit scheduling, batched embedding, idempotency, model identity, sweep."""

import logging
import time

import numpy as np
import pytest
from django.db import transaction

from search.models import EmbeddingModel, ImageEmbedding, TextEmbedding
from search.selectors import image_ids_pending
from search.services import indexing
from search.services.embedding_models import configured_embedding_model
from shop.models import ProductImage
from tests.outage import broker_down, queued_batches, queued_image_ids

pytestmark = pytest.mark.django_db


def test_new_images_are_pending_until_embedded(make_product):
    product = make_product("Red thing", colours=[(220, 20, 20), (20, 20, 220)])
    model = configured_embedding_model()
    ids = list(product.images.values_list("id", flat=True))
    assert image_ids_pending(model=model) == ids

    assert indexing.images_embed(image_ids=ids) == 2
    assert image_ids_pending(model=model) == []
    vectors = np.array([np.asarray(e.embedding) for e in ImageEmbedding.objects.all()])
    assert vectors.shape == (2, model.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_embedding_twice_writes_nothing_new(make_product):
    product = make_product(colours=[(1, 2, 3)])
    ids = list(product.images.values_list("id", flat=True))
    indexing.images_embed(image_ids=ids)
    first = [(pk, v.tolist()) for pk, v in ImageEmbedding.objects.values_list("id", "embedding")]
    assert indexing.images_embed(image_ids=ids) == 0
    again = [(pk, v.tolist()) for pk, v in ImageEmbedding.objects.values_list("id", "embedding")]
    assert again == first


def test_vectors_carry_the_identity_of_their_model(make_product, settings, tmp_path):
    from tests.factories import save_random_tiny

    product = make_product(colours=[(1, 2, 3)])
    ids = list(product.images.values_list("id", flat=True))
    indexing.images_embed(image_ids=ids)
    other = tmp_path / "other"
    save_random_tiny(other)
    # Same config, different weights file content -> a different model identity.
    from safetensors.torch import load_file, save_file

    weights = load_file(other / "open_clip_model.safetensors")
    weights["logit_scale"] = weights["logit_scale"] + 1
    save_file(weights, other / "open_clip_model.safetensors")
    settings.CLIP_PRETRAINED = f"local-dir:{other}"
    indexing.images_embed(image_ids=ids)
    assert EmbeddingModel.objects.count() == 2
    assert ImageEmbedding.objects.count() == 2
    assert set(ImageEmbedding.objects.values_list("model__key", flat=True)) == set(
        EmbeddingModel.objects.values_list("key", flat=True)
    )


def test_product_text_is_embedded_and_refreshed_on_change(make_product):
    product = make_product("Blue coat", description="Warm wool coat")
    indexing.product_texts_embed(product_ids=[product.pk])
    first = TextEmbedding.objects.get(product=product)
    product.description = "Light summer coat"
    product.save()
    assert indexing.product_texts_embed(product_ids=[product.pk]) == 1
    second = TextEmbedding.objects.get(product=product)
    assert first.source_hash != second.source_hash
    assert TextEmbedding.objects.count() == 1


def test_rolled_back_save_schedules_nothing(make_product, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                make_product("Ghost")
                raise RuntimeError("rollback")
        except RuntimeError:
            pass
    assert callbacks == []
    assert not ProductImage.objects.exists()


def test_save_succeeds_when_broker_is_down_and_sweep_picks_it_up(
    make_product, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    from django.conf import settings

    from search import tasks

    monkeypatch.setattr(logging.getLogger("search"), "propagate", True)  # to caplog
    with broker_down(), caplog.at_level(logging.WARNING, logger="search"):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            product = make_product("Saved anyway")
        elapsed = time.monotonic() - started
    assert callbacks, "the save must have tried to publish its embedding task"
    assert "broker unavailable, 1 images left for the sweep" in caplog.text
    assert elapsed < 1.0, f"the save waited {elapsed:.1f} s on a dead broker"
    assert product.pk and product.images.count() == 1
    image_id = product.images.get().pk
    model = configured_embedding_model()
    assert image_ids_pending(model=model) == [image_id]
    assert image_id not in queued_image_ids(settings.EMBEDDING_QUEUE)

    # The broker is back: the sweep finds the image and queues it on the live Redis ...
    assert indexing.pending_sweep()["images"] == 1
    batch = next(b for b in queued_batches(settings.EMBEDDING_QUEUE) if image_id in b)
    # ... and what a worker runs for that message writes its vector.
    assert tasks.embed_images.apply(args=[batch]).get() == 1
    assert image_ids_pending(model=model) == []
    assert ImageEmbedding.objects.filter(image_id=image_id).exists()


def test_unreadable_image_file_does_not_block_the_batch(make_product):
    good = make_product("Good", colours=[(10, 200, 10)])
    bad = make_product("Bad", colours=[(10, 10, 200)])
    bad_image = bad.images.get()
    with open(bad_image.image.path, "wb") as f:
        f.write(b"not an image")
    ids = list(ProductImage.objects.values_list("id", flat=True))
    assert indexing.images_embed(image_ids=ids) == 1
    assert ImageEmbedding.objects.get().image.product == good


def test_a_batch_with_fewer_vectors_than_images_writes_nothing():
    """A model answering short must fail the batch, not store vectors against the wrong images."""
    images = [ProductImage(), ProductImage()]
    with pytest.raises(ValueError, match=r"zip\(\)"):
        indexing._write_image_vectors(EmbeddingModel(), images, [np.zeros(4, dtype=np.float32)])
    assert not ImageEmbedding.objects.exists()


@pytest.mark.parametrize("active", [False, True], ids=["copy (model not active)", "insert"])
def test_vector_writes_upsert_and_read_back_equal(make_product, active):
    """Both write paths: every vector lands once, equal to what was written; writing the batch
    again (a redelivered task) replaces the vectors instead of adding or failing."""
    model = EmbeddingModel.objects.create(key=f"writes-{active}", name="w", dim=8, is_active=active)
    product = make_product(colours=[(1, 2, 3), (4, 5, 6), (7, 8, 9)])
    images = list(product.images.order_by("id"))
    rng = np.random.default_rng(3)
    first = rng.normal(size=(3, 8)).astype(np.float32)
    assert indexing._write_image_vectors(model, images, first) == 3
    again = rng.normal(size=(3, 8)).astype(np.float32)
    assert indexing._write_image_vectors(model, images[1:], again[1:]) == 2
    stored = {
        e.image_id: np.asarray(e.embedding)
        for e in ImageEmbedding.objects.filter(model=model).order_by("image_id")
    }
    assert sorted(stored) == [i.pk for i in images]
    assert ImageEmbedding.objects.filter(model=model).count() == 3
    assert np.array_equal(stored[images[0].pk], first[0])
    assert np.array_equal(stored[images[1].pk], again[1])
    assert np.array_equal(stored[images[2].pk], again[2])

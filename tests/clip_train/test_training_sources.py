"""Training from the shop's own catalog (database + media files), and as a Celery task run by
a real worker process (what a GPU worker does)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from clip_train.main import train
from clip_train.options import TrainOptions
from search.embeddings.clip import ClipEncoder, ModelSpec
from search.training_data import SOURCES, product_captions
from shop.demo.catalog import demo_catalog_build
from tests.workers import celery_worker


@pytest.mark.django_db
def test_training_on_the_catalog_holds_out_whole_products(tmp_path):
    demo_catalog_build(count=40, seed=3, split="t10k")
    run = train(
        TrainOptions(
            source="catalog",
            model="shop-clip-tiny",
            epochs=4,
            batch_size=12,
            lr=2e-3,
            warmup=2,
            val_count=4,
            seed=1,
            out=str(tmp_path / "catalog-model"),
            progress=False,
        ),
        sources=SOURCES,
    )
    record = json.loads((run.out / "TRAINING.json").read_text())
    assert (record["train_items"], record["val_items"]) == (36, 4)
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    encoder = ClipEncoder(ModelSpec("catalog-model", f"local-dir:{run.out}"), device="cpu")
    vectors = encoder.embed_texts(["a red dress", "a blue bag"])
    assert vectors.shape == (2, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)


def test_catalog_captions():
    product = SimpleNamespace(
        title="Red Dress",
        description="A red dress from our everyday collection.",
        colour="red",
        category_id=1,
        category=SimpleNamespace(name="Dress"),
        embedding_text="Red Dress. A red dress from our everyday collection.",
    )
    caps = product_captions(product)
    assert "Red Dress" in caps and "a photo of a red dress" in caps
    assert "red dress" in caps and "A red dress from our everyday collection." in caps
    assert len(caps) == len(set(caps))


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_training_task(tmp_path):
    from search.tasks import train_clip

    out = tmp_path / "worker-model"
    options = dict(
        model="shop-clip-tiny", train_count=60, val_count=20, epochs=1, batch_size=30, out=str(out)
    )
    with celery_worker(log_path=tmp_path / "worker.log"):
        result = train_clip.delay(options).get(timeout=180)
    assert result["out"] == str(out)
    assert result["env"]["CLIP_PRETRAINED"] == f"local-dir:{out.resolve()}"
    record = json.loads((out / "TRAINING.json").read_text())
    assert record["command"].startswith("celery task search.tasks.train_clip(")
    assert record["final"]["train_loss"] == pytest.approx(result["metrics"]["train_loss"])

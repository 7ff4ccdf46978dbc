"""Images/s of the batched indexing pipeline against the textbook one-at-a-time loop."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from search.benchmarks import harness
from search.embeddings import ClipEncoder, ModelLoadError, ModelSpec
from search.embeddings.clip import import_torch
from search.models import ImageEmbedding
from search.services import indexing
from search.services.embedding_models import embedding_model_for
from shop.demo.catalog import demo_catalog_build
from shop.images import open_image
from shop.models import ProductImage


def run(opts: dict, write: Callable[[str], None]) -> dict:
    """Seeds demo photos, times both loops, deletes the photo files; returns the report."""
    seeded: list[str] = []
    try:
        call_command("migrate", verbosity=0)
        seeded = _seed(opts["images"], opts["size"])
        return (_measure_feed if opts.get("feed_only") else _measure)(opts, write)
    finally:
        for name in seeded:  # the database goes away at exit; the photo files would not
            default_storage.delete(name)


def _image_ids(count: int) -> list[int]:
    ids = list(ProductImage.objects.order_by("id").values_list("id", flat=True)[:count])
    if len(ids) < count:
        raise CommandError(f"only {len(ids)} demo images could be created")
    return ids


def _measure_feed(opts: dict, write: Callable[[str], None]) -> dict:
    """Decode + preprocess to model-ready pixels, no model: what feeds a GPU, timed on CPU.

    One thread one image at a time (the single-image rate), then the pipeline's decode pool;
    both for the reference float32 preprocessing and the pipeline's uint8 pixels.
    """
    images = list(ProductImage.objects.filter(id__in=_image_ids(opts["images"])).order_by("id"))
    encoder = _encoder(opts)
    workers = settings.CLIP_DECODE_WORKERS
    cores = os.cpu_count() or 1

    def reference(image: ProductImage):
        with default_storage.open(image.image.name, "rb") as f:
            return encoder.preprocess_images([open_image(f.read())])[0]

    rows, report = [], {"images": len(images), "cores": cores, "decode_workers": workers}
    for label, prepare, stack in [
        ("float32 reference", reference, lambda px: import_torch()[0].stack(px)),
        ("uint8 pipeline", lambda img: indexing.image_prepare(encoder, img), np.stack),
    ]:
        started = time.perf_counter()
        stack([prepare(img) for img in images])
        single = len(images) / (time.perf_counter() - started)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pixels = list(pool.map(prepare, images))
        stack(pixels)
        pooled = len(images) / (time.perf_counter() - started)
        rows.append([label, round(single, 1), round(pooled, 1), round(pooled / single, 2)])
        report[label] = {"single_thread_images_per_s": single, "pool_images_per_s": pooled}
    write(
        f"Feed only ({encoder.key}, {opts['size']} px photos, {len(images)} images, "
        f"{workers} decode threads, {cores} cores):"
    )
    write(harness.table(["preprocessing", "1 thread img/s", "pool img/s", "pool / 1"], rows))
    return report


def _encoder(opts: dict) -> ClipEncoder:
    spec = ModelSpec(
        opts["model"] or settings.CLIP_MODEL,
        settings.CLIP_PRETRAINED if opts["pretrained"] is None else opts["pretrained"],
    )
    try:
        return ClipEncoder(
            spec,
            device=opts["device"] or settings.CLIP_DEVICE,
            batch_size=opts["batch_size"] or settings.CLIP_BATCH_SIZE,
            cache_dir=settings.CLIP_CACHE_DIR,
        )
    except ModelLoadError as exc:
        raise CommandError(f"{exc} (--pretrained '' benchmarks random weights)") from None


def _measure(opts: dict, write: Callable[[str], None]) -> dict:
    ids = _image_ids(opts["images"])
    encoder = _encoder(opts)
    model = embedding_model_for(encoder)
    torch, _ = import_torch()
    write(
        f"Model {encoder.key} ({encoder.dim}d) on {encoder.device} {encoder.precision}, "
        f"batch {encoder.batch_size}, decode workers {settings.CLIP_DECODE_WORKERS}, "
        f"torch threads {torch.get_num_threads()}; {len(ids)} images."
    )
    _clear(model, ids)
    indexing.images_embed(image_ids=ids[: encoder.batch_size], encoder=encoder)  # warm-up
    _clear(model, ids)

    naive_ids = ids[: opts["naive_images"] or len(ids)]
    started = time.perf_counter()
    _naive(encoder, model, naive_ids)
    naive_s = time.perf_counter() - started
    _clear(model, ids)

    started = time.perf_counter()
    written = indexing.images_embed(image_ids=ids, encoder=encoder)
    batched_s = time.perf_counter() - started
    if written != len(ids):
        raise CommandError(f"batched pipeline wrote {written} of {len(ids)} vectors")

    naive_rate = len(naive_ids) / naive_s
    batched_rate = len(ids) / batched_s
    rows = [
        ["naive (one at a time)", len(naive_ids), round(naive_s, 2), naive_rate],
        ["batched pipeline", len(ids), round(batched_s, 2), batched_rate],
    ]
    write(harness.table(["pipeline", "images", "seconds", "images/s"], rows))
    speedup = batched_rate / naive_rate
    write(f"Speed-up: {speedup:.1f}x")
    return {
        "model": encoder.key,
        "dim": encoder.dim,
        "device": encoder.device,
        "precision": encoder.precision,
        "gpu": torch.cuda.get_device_name() if encoder.device == "cuda" else None,
        "batch_size": encoder.batch_size,
        "decode_workers": settings.CLIP_DECODE_WORKERS,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "image_side_px": opts["size"],
        "naive": {"images": len(naive_ids), "seconds": naive_s, "images_per_s": naive_rate},
        "batched": {"images": len(ids), "seconds": batched_s, "images_per_s": batched_rate},
        "speedup": speedup,
    }


def _seed(count: int, size: int) -> list[str]:
    """Demo products up to ``count`` images; returns the names of the files it wrote."""
    before = set(ProductImage.objects.values_list("id", flat=True))
    if len(before) < count:
        # Collected and dropped: nothing is queued, the benchmark embeds them itself.
        with indexing.embeddings_requests_collected():
            demo_catalog_build(count=count, size=size)
    return list(ProductImage.objects.exclude(id__in=before).values_list("image", flat=True))


def _clear(model, ids: list[int]) -> None:
    ImageEmbedding.objects.filter(model=model, image_id__in=ids).delete()


def _naive(encoder: ClipEncoder, model, ids: list[int]) -> None:
    """The textbook loop: one image read, decoded, preprocessed, embedded, inserted."""
    for image_id in ids:
        image = ProductImage.objects.get(pk=image_id)
        with default_storage.open(image.image.name, "rb") as f:
            pil = open_image(f.read())
        vector = encoder.embed_pixels(encoder.preprocess_images([pil]))[0]
        ImageEmbedding.objects.create(image=image, model=model, embedding=vector)

"""Images/s of the batched indexing pipeline against the textbook one-at-a-time loop."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from search.benchmarks import harness
from search.embeddings import ClipEncoder, ModelLoadError, ModelSpec
from search.embeddings.clip import import_torch
from search.models import ImageEmbedding
from search.services import decoding, indexing
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
        decoding.decode_pool_shutdown()  # the benchmark's own processes
        for name in seeded:  # the database goes away at exit; the photo files would not
            default_storage.delete(name)


def _image_ids(count: int) -> list[int]:
    ids = list(ProductImage.objects.order_by("id").values_list("id", flat=True)[:count])
    if len(ids) < count:
        raise CommandError(f"only {len(ids)} demo images could be created")
    return ids


def _measure_feed(opts: dict, write: Callable[[str], None]) -> dict:
    """Decode + preprocess to device-ready batches, no model: what feeds a GPU, timed on CPU.

    One image at a time in one thread (the single-image rate; the open_clip float32
    reference, then the pipeline's uint8 pixels), then the pipeline's own feed
    (``decoding.decoded_batches`` + ``device_batch``) with a pool of threads and a pool of
    processes, same workers. Rounds alternate the rows, so a noisy machine slows all alike;
    the median round is reported.
    """
    images = list(ProductImage.objects.filter(id__in=_image_ids(opts["images"])).order_by("id"))
    names = [img.image.name for img in images]
    encoder = _encoder(opts)
    workers = opts.get("decode_workers") or settings.CLIP_DECODE_WORKERS
    batches = [names[i : i + encoder.batch_size] for i in range(0, len(names), encoder.batch_size)]
    cores = os.cpu_count() or 1
    torch, _ = import_torch()

    def reference() -> None:
        for batch in batches:
            torch.stack([encoder.preprocess_images([_open(n)])[0] for n in batch])

    def one_at_a_time() -> None:
        for batch in batches:
            encoder.device_batch([encoder.preprocess_image(_open(n)) for n in batch])

    def pooled(kind: str) -> Callable[[], None]:
        def feed() -> None:
            with _decode_settings(kind, workers):
                for decoded in decoding.decoded_batches(encoder, batches):
                    encoder.device_batch([pixels for pixels, _ in decoded])

        return feed

    with _decode_settings("processes", workers):
        started = time.perf_counter()
        processes = decoding.decode_pool_warm(encoder)
        start_up = time.perf_counter() - started
    if processes != workers:
        raise CommandError(f"{processes} decode processes started, {workers} expected")
    runs = {
        "one at a time, float32 reference": (1, reference),
        "one at a time, uint8 pipeline": (1, one_at_a_time),
        "thread pool, uint8 pipeline": (workers, pooled("threads")),
        "process pool, uint8 pipeline": (workers, pooled("processes")),
    }
    rates: dict[str, list[float]] = {label: [] for label in runs}
    rounds = opts.get("rounds") or 3
    for _ in range(rounds):
        for label, (_, feed) in runs.items():
            started = time.perf_counter()
            feed()
            rates[label].append(len(names) / (time.perf_counter() - started))
    single = float(np.median(rates["one at a time, uint8 pipeline"]))
    report = {
        "images": len(names),
        "image_side_px": opts["size"],
        "model": encoder.key,
        "batch_size": encoder.batch_size,
        "cores": cores,
        "decode_workers": workers,
        "rounds": rounds,
        "process_pool_start_s": start_up,
        "target_images_per_s": 0.8 * cores * single,
    }
    rows = []
    for label, (n, _) in runs.items():
        rate = float(np.median(rates[label]))
        rows.append([label, n, round(rate, 1), round(rate / single, 2)])
        report[label] = {"workers": n, "images_per_s": rate, "rounds": rates[label]}
    write(
        f"Feed only ({encoder.key}, {opts['size']} px photos, {len(names)} images, batch "
        f"{encoder.batch_size}, {cores} cores; median of {rounds} alternating rounds):"
    )
    write(harness.table(["decode + preprocess", "workers", "images/s", "vs one at a time"], rows))
    write(
        f"Process pool start-up ({workers} processes, once per worker process): {start_up:.1f} s. "
        f"Target 0.8 x {cores} cores x one at a time: {report['target_images_per_s']:.1f} images/s."
    )
    return report


def _open(name: str):
    with default_storage.open(name, "rb") as f:
        return open_image(f.read())


def _decode_settings(kind: str, workers: int):
    return override_settings(CLIP_DECODE_POOL=kind, CLIP_DECODE_WORKERS=workers)


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
    """The naive loop, then the batched pipeline with each decode pool, on the same images."""
    ids = _image_ids(opts["images"])
    encoder = _encoder(opts)
    model = embedding_model_for(encoder)
    torch, _ = import_torch()
    workers = opts.get("decode_workers") or settings.CLIP_DECODE_WORKERS
    pools = (
        ["threads", "processes"]
        if opts.get("decode_pool") in (None, "both")
        else [opts["decode_pool"]]
    )
    write(
        f"Model {encoder.key} ({encoder.dim}d) on {encoder.device} {encoder.precision}, "
        f"batch {encoder.batch_size}, {workers} decode workers, "
        f"torch threads {torch.get_num_threads()}; {len(ids)} images."
    )
    for kind in pools:  # warm-up: the model, the buffers, and each pool's workers
        with _decode_settings(kind, workers):
            decoding.decode_pool_warm(encoder)
            indexing.images_embed(image_ids=ids[: encoder.batch_size], encoder=encoder)
        _clear(model, ids)

    naive_ids = ids[: opts["naive_images"] or len(ids)]
    seconds: dict[str, list[float]] = {kind: [] for kind in ["naive", *pools]}
    busy: dict[str, list[float]] = {kind: [] for kind in pools}  # GPU %, where there is one
    rounds = opts.get("rounds") or 1
    for _ in range(rounds):  # alternating, so a noisy machine slows every row alike
        _clear(model, ids)
        started = time.perf_counter()
        _naive(encoder, model, naive_ids)
        seconds["naive"].append(time.perf_counter() - started)
        for kind in pools:
            _clear(model, ids)
            with _decode_settings(kind, workers), harness.GpuBusy() as sampled:
                started = time.perf_counter()
                written = indexing.images_embed(image_ids=ids, encoder=encoder)
                seconds[kind].append(time.perf_counter() - started)
            busy[kind].extend(sampled.samples)
            if written != len(ids):
                raise CommandError(f"batched pipeline wrote {written} of {len(ids)} vectors")
    naive_s = float(np.median(seconds["naive"]))
    naive_rate = len(naive_ids) / naive_s
    rows = [["naive (one at a time)", "-", len(naive_ids), round(naive_s, 2), naive_rate, 1.0, "-"]]
    batched, speedup = {}, {}
    for kind in pools:
        median = float(np.median(seconds[kind]))
        rate = len(ids) / median
        gpu_busy = round(float(np.mean(busy[kind])), 1) if busy[kind] else None
        batched[kind] = {
            "images": len(ids),
            "seconds": median,
            "images_per_s": rate,
            "gpu_busy_percent": gpu_busy,
        }
        speedup[kind] = rate / naive_rate
        rows.append(
            [
                "batched pipeline",
                kind,
                len(ids),
                round(median, 2),
                rate,
                speedup[kind],
                "n/a (no GPU)" if gpu_busy is None else f"{gpu_busy}%",
            ]
        )
    if rounds > 1:
        write(f"Median of {rounds} alternating rounds.")
    headers = ["pipeline", "decode", "images", "seconds", "images/s", "speed-up", "GPU busy"]
    write(harness.table(headers, rows))
    return {
        "model": encoder.key,
        "dim": encoder.dim,
        "device": encoder.device,
        "precision": encoder.precision,
        "gpu": torch.cuda.get_device_name() if encoder.device == "cuda" else None,
        "batch_size": encoder.batch_size,
        "decode_workers": workers,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "image_side_px": opts["size"],
        "rounds": rounds,
        "naive": {"images": len(naive_ids), "seconds": naive_s, "images_per_s": naive_rate},
        "batched": batched,
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

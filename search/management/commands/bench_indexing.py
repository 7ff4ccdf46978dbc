"""Images/s of the batched indexing pipeline against the textbook one-at-a-time loop."""

from __future__ import annotations

import platform
import time
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from search import bench
from search.embeddings import ClipEncoder, ModelLoadError, ModelSpec
from search.embeddings.clip import import_torch
from search.images import open_image
from search.models import ImageEmbedding
from search.services import indexing
from search.services.models import embedding_model_for
from shop.models import ProductImage


class Command(BaseCommand):
    help = (
        "Benchmark indexing: the batched pipeline (search.services.indexing.images_embed) vs a "
        "naive loop (open one image, preprocess, embed one, insert one row), same model, same "
        "images: demo catalog photos in a throwaway PostgreSQL+Redis started for the run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=512)
        parser.add_argument("--size", type=int, default=128, help="demo photo side, pixels")
        parser.add_argument("--model", default=None, help="default: CLIP_MODEL")
        parser.add_argument(
            "--pretrained",
            default=None,
            help="default: CLIP_PRETRAINED; '' = random weights (same compute, nothing to load)",
        )
        parser.add_argument("--device", default=None, help="auto, cpu, cuda (default CLIP_DEVICE)")
        parser.add_argument("--batch-size", type=int, default=None, help="default CLIP_BATCH_SIZE")
        parser.add_argument(
            "--naive-images",
            type=int,
            default=None,
            help="time the naive loop on the first N images only (it is slow on big models)",
        )
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args, **opts):
        if not bench.ensure_throwaway("bench_indexing"):
            return
        seeded: list[str] = []
        try:
            call_command("migrate", verbosity=0)
            seeded = self._seed(opts["images"], opts["size"])
            self._run(opts)
        finally:
            for name in seeded:  # the database goes away at exit; the photo files would not
                default_storage.delete(name)

    def _run(self, opts: dict) -> None:
        ids = list(
            ProductImage.objects.order_by("id").values_list("id", flat=True)[: opts["images"]]
        )
        if len(ids) < opts["images"]:
            raise CommandError(f"only {len(ids)} demo images could be created")
        spec = ModelSpec(
            opts["model"] or settings.CLIP_MODEL,
            settings.CLIP_PRETRAINED if opts["pretrained"] is None else opts["pretrained"],
        )
        try:
            encoder = ClipEncoder(
                spec,
                device=opts["device"] or settings.CLIP_DEVICE,
                batch_size=opts["batch_size"] or settings.CLIP_BATCH_SIZE,
                cache_dir=settings.CLIP_CACHE_DIR,
            )
        except ModelLoadError as exc:
            raise CommandError(f"{exc} (--pretrained '' benchmarks random weights)") from None
        model = embedding_model_for(encoder)
        torch, _ = import_torch()
        self.stdout.write(
            f"Model {encoder.key} ({encoder.dim}d) on {encoder.device} {encoder.precision}, "
            f"batch {encoder.batch_size}, decode workers {settings.CLIP_DECODE_WORKERS}, "
            f"torch threads {torch.get_num_threads()}; {len(ids)} images."
        )
        self._clear(model, ids)
        indexing.images_embed(image_ids=ids[: encoder.batch_size], encoder=encoder)  # warm-up
        self._clear(model, ids)

        naive_ids = ids[: opts["naive_images"] or len(ids)]
        started = time.perf_counter()
        self._naive(encoder, model, naive_ids)
        naive_s = time.perf_counter() - started
        self._clear(model, ids)

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
        self.stdout.write(bench.table(["pipeline", "images", "seconds", "images/s"], rows))
        speedup = batched_rate / naive_rate
        self.stdout.write(f"Speed-up: {speedup:.1f}x")
        bench.json_write(
            opts["json"],
            {
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
            },
        )

    def _seed(self, count: int, size: int) -> list[str]:
        """Demo products up to ``count`` images; returns the names of the files it wrote."""
        from shop.demo.catalog import demo_catalog_build

        before = set(ProductImage.objects.values_list("id", flat=True))
        if len(before) < count:
            # Collected and dropped: nothing is queued, the benchmark embeds them itself.
            with indexing.embeddings_requests_collected():
                demo_catalog_build(count=count, size=size)
        return list(ProductImage.objects.exclude(id__in=before).values_list("image", flat=True))

    @staticmethod
    def _clear(model, ids: list[int]) -> None:
        ImageEmbedding.objects.filter(model=model, image_id__in=ids).delete()

    @staticmethod
    def _naive(encoder: ClipEncoder, model, ids: list[int]) -> None:
        """The textbook loop: one image read, decoded, preprocessed, embedded, inserted."""
        for image_id in ids:
            image = ProductImage.objects.get(pk=image_id)
            with default_storage.open(image.image.name, "rb") as f:
                pil = open_image(f.read())
            vector = encoder.embed_pixels(encoder.preprocess_images([pil]))[0]
            ImageEmbedding.objects.create(image=image, model=model, embedding=vector)

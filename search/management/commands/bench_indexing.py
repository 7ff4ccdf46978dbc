"""``bench_indexing``: arguments only; the benchmark is ``search.benchmarks.indexing_bench``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from search.benchmarks import harness, indexing_bench


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
        parser.add_argument(
            "--feed-only",
            action="store_true",
            help="time decode + preprocess to device-ready batches only (no model, no writes): "
            "one image at a time, then a thread pool and a process pool",
        )
        parser.add_argument(
            "--decode-workers", type=int, default=None, help="default CLIP_DECODE_WORKERS"
        )
        parser.add_argument(
            "--decode-pool",
            choices=["threads", "processes", "both"],
            default="both",
            help="the batched pipeline's decode pool(s), side by side (feed-only times both)",
        )
        parser.add_argument(
            "--rounds",
            type=int,
            default=None,
            help="alternating rounds of every row, median kept (default 3 feed-only, else 1)",
        )
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args, **opts):
        if harness.ensure_throwaway("bench_indexing"):
            harness.json_write(opts["json"], indexing_bench.run(opts, self.stdout.write))

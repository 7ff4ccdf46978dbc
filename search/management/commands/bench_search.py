"""``bench_search``: arguments only; the benchmark is ``search.benchmarks.search_bench``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand

from search.benchmarks import harness, search_bench


class Command(BaseCommand):
    help = (
        "Benchmark search at scale: p50/p95 latency of the search service for text (cached "
        "vector), photo and hybrid queries with and without filters, HNSW recall@10 against "
        "exact search, full pages under filters, and the real end-to-end path with a CLIP "
        "encoder. Always on a throwaway PostgreSQL+Redis started for the run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=100_000)
        parser.add_argument("--dim", type=int, default=512, help="without --model: vector size")
        parser.add_argument("--queries", type=int, default=200, help="per query type")
        parser.add_argument(
            "--ef-search",
            type=lambda v: [int(x) for x in v.split(",")],
            default=None,
            help="comma-separated hnsw.ef_search values to compare (default HNSW_EF_SEARCH)",
        )
        parser.add_argument("--limit", type=int, default=24, help="page size")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--uniform", action="store_true", help="uniform random vectors")
        parser.add_argument("--model", default=None, help="end-to-end encoder (CLIP_MODEL)")
        parser.add_argument("--pretrained", default=None, help="'' = random weights")
        parser.add_argument("--e2e-queries", type=int, default=20)
        parser.add_argument("--no-e2e", action="store_true", help="skip the real-encoder phase")
        parser.add_argument(
            "--crossover-queries",
            type=int,
            default=30,
            help="queries per filter and strategy in the exact-vs-HNSW table (0: skip it)",
        )
        parser.add_argument(
            "--maintenance-work-mem",
            type=int,
            default=None,
            help="MB for the HNSW build (default: the graph's size, at most a quarter of RAM)",
        )
        parser.add_argument(
            "--maintenance-workers",
            type=int,
            default=None,
            help="parallel HNSW build workers (default: cores - 1, at most 7)",
        )
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args, **opts):
        if harness.ensure_throwaway("bench_search"):
            harness.json_write(opts["json"], search_bench.run(opts, self.stdout.write))

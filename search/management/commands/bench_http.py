"""``bench_http``: arguments only; the benchmark is ``search.benchmarks.http_bench``."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand

from search.benchmarks import harness, http_bench


class Command(BaseCommand):
    help = (
        "Load-test the shop over HTTP on loopback: requests/s and p50/p95/p99 for cached text, "
        "unique text, photo, product page and more-like-this at N concurrent clients, served "
        "by gunicorn as the run command serves it and by the development server, side by side "
        "in one run. Always on a throwaway PostgreSQL+Redis with a seeded demo catalog."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=8)
        parser.add_argument("--seconds", type=float, default=8.0, help="per scenario and server")
        parser.add_argument("--products", type=int, default=300)
        parser.add_argument(
            "--workers", type=int, default=None, help="gunicorn workers (default: as run.sh)"
        )
        parser.add_argument(
            "--servers",
            type=lambda v: v.split(","),
            default=["gunicorn", "runserver"],
            help="comma-separated: gunicorn, runserver",
        )
        parser.add_argument("--json", type=Path, default=None)

    def handle(self, *args, **opts):
        if not harness.ensure_throwaway("bench_http"):
            return
        cores = os.cpu_count() or 2
        payload = http_bench.run(
            servers=opts["servers"],
            clients=opts["clients"],
            seconds=opts["seconds"],
            products=opts["products"],
            workers=opts["workers"] or min(cores, 4),
        )
        self.stdout.write(http_bench.report(payload))
        harness.json_write(opts["json"], payload)

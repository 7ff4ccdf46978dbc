"""The benchmark commands run end to end (tiny sizes: these check they work, not speed)."""

import io
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from search.models import ImageEmbedding
from shop.models import ProductImage

pytestmark = pytest.mark.django_db(transaction=True)  # the benchmarks COPY on a 2nd connection


def test_bench_indexing_compares_batched_and_naive(tmp_path):
    out = io.StringIO()
    report = tmp_path / "indexing.json"
    call_command(
        "bench_indexing",
        images=16,
        model="shop-clip-tiny",
        pretrained="",
        batch_size=8,
        decode_workers=2,
        json=report,
        stdout=out,
    )
    result = json.loads(report.read_text())
    assert result["naive"]["images"] == 16
    for pool in ("threads", "processes"):  # side by side in one run
        assert result["batched"][pool]["images"] == 16
        assert result["speedup"][pool] > 0
        assert f"| batched pipeline      | {pool}" in out.getvalue()
        assert result["batched"][pool]["gpu_busy_percent"] is None  # a CPU: nothing sampled
    assert "n/a (no GPU)" in out.getvalue()
    assert result["precision"] == "fp32"
    assert ImageEmbedding.objects.count() == 16
    names = list(ProductImage.objects.values_list("image", flat=True))
    assert names and not any(default_storage.exists(n) for n in names)  # photos cleaned up


def test_bench_indexing_feed_only_times_preprocessing_without_the_model(tmp_path):
    out = io.StringIO()
    report = tmp_path / "feed.json"
    call_command(
        "bench_indexing",
        images=12,
        model="shop-clip-tiny",
        pretrained="",
        feed_only=True,
        decode_workers=2,
        rounds=1,
        json=report,
        stdout=out,
    )
    result = json.loads(report.read_text())
    assert result["images"] == 12 and result["rounds"] == 1
    rows = [
        "one at a time, float32 reference",
        "one at a time, uint8 pipeline",
        "thread pool, uint8 pipeline",
        "process pool, uint8 pipeline",
    ]
    for row in rows:
        assert result[row]["images_per_s"] > 0
        assert f"| {row}" in out.getvalue()
    assert result["process pool, uint8 pipeline"]["workers"] == 2
    assert result["process_pool_start_s"] > 0 and result["target_images_per_s"] > 0
    assert ImageEmbedding.objects.count() == 0  # nothing embedded or written


def test_bench_search_reports_latency_recall_and_full_pages(tmp_path):
    out = io.StringIO()
    report = tmp_path / "search.json"
    call_command(
        "bench_search",
        products=1000,
        queries=5,
        limit=10,
        model="shop-clip-tiny",
        pretrained="",
        e2e_queries=2,
        crossover_queries=3,
        maintenance_work_mem=96,
        maintenance_workers=1,
        json=report,
        stdout=out,
    )
    result = json.loads(report.read_text())
    assert result["dim"] == 64 and len(result["database_side"]) == 10
    assert result["maintenance"] == {"work_mem_mb": 96, "workers": 1}
    assert "maintenance_work_mem 96 MB and 1 parallel" in out.getvalue()
    # Both strategies for every filter, on the same queries, each exact on this catalog.
    crossover = result["strategy_crossover"]
    assert [r["strategy"] for r in crossover] == ["exact", "hnsw"] * 7
    assert all(r["picked"] in ("exact", "hnsw") and r["estimate"] >= 0 for r in crossover)
    assert all(r["full_pages"] == "3/3" for r in crossover), crossover
    assert all(r["recall@10"] == 1.0 for r in crossover if r["strategy"] == "exact"), crossover
    assert "Filtered-search strategies side by side" in out.getvalue()
    for row in result["database_side"]:
        assert row["full_pages"] == "5/5", row  # filters keep ~26 of 1,000
        if row["query"] == "shopper text, both legs fused":
            assert row["recall@10"] == "n/a", row  # fused: not a nearest-neighbour list
        else:
            assert row["recall@10"] >= 0.9, row
    # The keyword leg had documents to search, and its cost is reported beside the vector leg.
    assert [c["filters"] for c in result["fusion_cost"]] == ["none", "category+price+in stock"]
    assert all(c["ratio"] > 0 for c in result["fusion_cost"])
    assert result["keyword_documents"] == 1000
    assert "both legs fused p50" in out.getvalue()
    assert [r["query"] for r in result["end_to_end"]["results"]][0] == "text (encoder, not cached)"
    assert "recall@10" in out.getvalue()


def test_exact_tops_in_one_pass_equal_scoring_each_query_alone():
    """The vectorised recall baseline: same ids, same order (score, then id) as a loop."""
    from decimal import Decimal

    from search.benchmarks.search_bench import Catalog
    from search.benchmarks.vectors import unit
    from search.filters import CatalogFilters

    rng = np.random.default_rng(0)
    n = 250_000  # more than one chunk of rows
    catalog = Catalog(
        vectors=unit(rng.normal(size=(n, 8))),
        category=rng.integers(10, size=n),
        price=rng.uniform(5, 200, size=n),
        in_stock=rng.random(n) > 0.15,
        words=np.zeros((n, 3), dtype=int),
    )
    catalog.vectors[7] = catalog.vectors[3]  # a tie: the lower id first
    queries = np.concatenate([catalog.vectors[3:4], unit(rng.normal(size=(4, 8)))])
    narrow = CatalogFilters(category_slug="category-3", max_price=Decimal(30), in_stock=True)
    for filters in (None, narrow):
        mask = catalog.mask(filters)
        tops = catalog.exact_tops(queries, filters, 10)
        for q, top in zip(queries, tops, strict=True):
            rows = np.flatnonzero(mask)
            scores = catalog.vectors[rows] @ q
            alone = sorted(zip(-scores, rows, strict=True))[:10]
            assert top == [int(r) + 1 for _, r in alone]
    assert catalog.exact_tops(queries[:1], None, 2)[0] == [4, 8]


def test_gpu_busy_samples_while_the_block_runs_and_keeps_what_the_gpu_answers():
    import threading
    import time

    from search.benchmarks.harness import GpuBusy

    answers = iter([50.0, None, 100.0] + [None] * 10_000)
    lock = threading.Lock()

    def read():
        with lock:
            return next(answers)

    with GpuBusy(read, interval=0.001) as busy:
        deadline = time.monotonic() + 10
        while len(busy.samples) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
    count = len(busy.samples)
    assert busy.samples == [50.0, 100.0] and busy.mean == 75.0  # the unanswered one skipped
    threading.Event().wait(0.02)
    assert len(busy.samples) == count  # stopped with the block
    with GpuBusy(lambda: None, interval=0.001) as idle:
        threading.Event().wait(0.01)
    assert idle.mean is None

"""The benchmark commands run end to end (tiny sizes: these check they work, not speed)."""

import io
import json

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
        json=report,
        stdout=out,
    )
    result = json.loads(report.read_text())
    assert result["batched"]["images"] == result["naive"]["images"] == 16
    assert result["speedup"] > 0 and result["precision"] == "fp32"
    assert "| batched pipeline" in out.getvalue() and "Speed-up:" in out.getvalue()
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
        json=report,
        stdout=out,
    )
    result = json.loads(report.read_text())
    assert result["images"] == 12
    for path in ("float32 reference", "uint8 pipeline"):
        assert result[path]["single_thread_images_per_s"] > 0
        assert result[path]["pool_images_per_s"] > 0
        assert f"| {path}" in out.getvalue()
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
        json=report,
        stdout=out,
    )
    result = json.loads(report.read_text())
    assert result["dim"] == 64 and len(result["database_side"]) == 10
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

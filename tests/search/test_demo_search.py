"""Semantic rankings with the bundled demo model on held-out photos (Fashion-MNIST t10k).

The catalog holds two products per (colour, category) pair, so the right answers are known:
"a red sneaker" must find the red sneakers, a blue dress photo + "red" must find red dresses.
"""

import pytest

from search.api.serializers import default_text_weight
from search.benchmarks.quality import evaluate, text_query
from search.services.describe import image_describe
from search.services.query import SearchRequest, Term, products_search

pytestmark = pytest.mark.django_db

QUERIES = [
    ("red", "Sneaker"),
    ("blue", "Bag"),
    ("green", "Dress"),
    ("black", "Ankle boot"),
    ("yellow", "T-shirt"),
    ("pink", "Sandal"),
    ("white", "Coat"),
    ("purple", "Trousers"),
]


def top(terms, k=2, exclude=()):
    hits = products_search(SearchRequest(terms=terms, limit=k, exclude_product_ids=exclude)).hits
    return [(h.product.colour, h.product.category.name) for h in hits]


def test_demo_model_rankings(demo_catalog):
    """One catalog build, four modes; thresholds sit far above the untrained model's ~0."""
    text_hits = sum(
        top([Term(kind="text", text=text_query(colour, category))], k=1) == [(colour, category)]
        for colour, category in QUERIES
    )
    assert text_hits >= 7, f"text: {text_hits}/8 queries found colour + category first"

    same_category = []
    for colour, category in QUERIES:
        found = top([Term(kind="product", product_id=demo_catalog[(colour, category)].pk)], k=5)
        same_category.append(sum(c == category for _, c in found) / 5)
    assert sum(same_category) / len(same_category) >= 0.75, same_category

    w = default_text_weight()
    recoloured = []
    for colour, category in QUERIES:
        p = demo_catalog[(colour, category)]
        target = "red" if colour != "red" else "blue"
        terms = [
            Term(kind="product", product_id=p.pk, weight=1 - w),
            Term(kind="text", text=target, weight=w),
        ]
        recoloured.append(top(terms, k=1)[0])
    assert (
        sum(
            c == ("red" if q[0] != "red" else "blue")
            for (c, _), q in zip(recoloured, QUERIES, strict=True)
        )
        >= 7
    )
    assert sum(r[1] == q[1] for r, q in zip(recoloured, QUERIES, strict=True)) >= 6, recoloured

    described = [image_describe(product_id=demo_catalog[q].pk, top=3) for q in QUERIES]
    assert sum(d.categories[0].name == q[1] for d, q in zip(described, QUERIES, strict=True)) >= 6
    assert sum(d.colours[0].name == q[0] for d, q in zip(described, QUERIES, strict=True)) >= 6


def test_evaluation_on_a_small_catalog(demo_catalog):
    # Near the full evaluation's figures and far above the untrained floor (README "Measured
    # quality": 0.92 / 0.87 / 0.83 trained, ~0.0 / ~0.3 / ~0.0 untrained).
    figures = evaluate(k=2, photo_queries=30, recall_k=10, hybrid_weights=(0.5,))
    assert figures["text P@2 (colour+category)"] >= 0.85
    assert figures["photo P@2 (same category)"] >= 0.8
    assert figures["hybrid P@2 image 0.5 / text 0.5"] >= 0.7
    assert figures["more like this P@2 (same category)"] >= 0.8
    assert figures["describe: category top-1"] >= 0.8
    assert figures["describe: colour top-1"] >= 0.75
    # Both right products in the top 10 for every query (measured 1.0); a random ranking
    # finds about 10/220 of them.
    assert figures["text recall@10"] >= 0.95

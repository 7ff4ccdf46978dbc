"""The evaluation asks about every category and colour equally."""

from collections import Counter

from clip_train.fashion import CATEGORIES, load_split, sample_items
from search.benchmarks.quality import Item, query_items


def _catalog(count: int) -> list[Item]:
    _, labels = load_split("t10k")
    items = sample_items(labels, count, 0, balanced=True)  # cycles through the categories
    return [Item(n, it.colour, CATEGORIES[it.label][0]) for n, it in enumerate(items)]


def test_photo_queries_cover_every_category_and_colour_evenly():
    items = _catalog(1100)  # 10 per (colour, category) pair
    queries = query_items(items, 200)
    assert len(queries) == len(set(queries)) == 200
    per_category = Counter(q.category for q in queries)
    per_colour = Counter(q.colour for q in queries)
    assert len(per_category) == 10 and len(per_colour) == 11
    assert max(per_category.values()) - min(per_category.values()) <= 6
    assert max(per_colour.values()) - min(per_colour.values()) <= 6
    # Every pair is asked once before any is asked twice.
    assert len({(q.colour, q.category) for q in queries[:110]}) == 110


def test_query_items_is_deterministic_and_bounded():
    items = _catalog(220)
    assert query_items(items, 30) == query_items(items, 30)
    assert len(query_items(items, 10_000)) == len(items)

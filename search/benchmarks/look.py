"""Shop the look, measured: same-category P@10 of shoppers' photos (``scenes``) before (the
whole photo, ``auto_crop`` off) and after (auto-crop / per detected item), plus detection
recall and precision at IoU 0.5. Queries are held-out catalog items (the demo catalog is the
Fashion-MNIST t10k split); every search goes through the query service, excluding the
pictured products themselves. ``evaluate_search --look`` prints the table for a tuning seed
and a held-out seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from search.benchmarks import scenes
from search.benchmarks.quality import Item, Metric, _catalog, query_items
from search.query_terms import image_terms
from search.services.look import item_crops
from search.services.query import SearchRequest, Term, products_search
from shop.images import crop_fraction
from shop.models import Product

BACKGROUNDS = ("studio", "grey", "dark", "textured")
TUNING_SEED, HELD_OUT_SEED = 0, 1


def _categories(terms: list[Term], k: int, exclude: tuple[int, ...], by_id) -> list[str]:
    hits = products_search(SearchRequest(terms=terms, limit=k, exclude_product_ids=exclude)).hits
    return [by_id[h.product.id].category for h in hits if h.product.id in by_id]


def _precision(found: list[str], category: str, k: int) -> float:
    return sum(c == category for c in found) / k


def look_evaluate(
    *,
    seed: int,
    queries: int = 60,
    collages: int = 30,
    k: int = 10,
    tick: Callable[[int], None] = lambda n: None,
) -> dict[str, float]:
    items, _ = _catalog()
    by_id = {i.id: i for i in items}
    slugs = dict(Product.objects.filter(id__in=by_id).values_list("id", "slug"))
    chosen = query_items(items, queries, seed=seed)
    rng = np.random.default_rng(seed)
    m: dict[str, Metric] = {}

    def add(name: str, value: float) -> None:
        m.setdefault(name, Metric(name)).values.append(value)

    def search(photo: Image.Image, auto_crop: bool, exclude: tuple[int, ...]) -> list[str]:
        terms = image_terms({"image": photo, "auto_crop": auto_crop})
        return _categories(terms, k, exclude, by_id)

    for kind in scenes.DEGRADATIONS:
        for q in chosen:
            photo = scenes.degraded(slugs[q.id], kind, rng)
            add(f"{kind}: whole photo", _precision(search(photo, False, (q.id,)), q.category, k))
            add(f"{kind}: auto-crop", _precision(search(photo, True, (q.id,)), q.category, k))
            tick(1)

    for c in range(collages):
        n = int(rng.integers(2, 5))
        look: list[Item] = [chosen[i] for i in rng.choice(len(chosen), n, replace=False)]
        layout, bg = scenes.LAYOUTS[c % 3], BACKGROUNDS[c % len(BACKGROUNDS)]
        photo, truth = scenes.collage([slugs[i.id] for i in look], layout, rng, bg)
        exclude = tuple(i.id for i in look)
        whole = search(photo, False, exclude)
        detected = item_crops(photo, 8)
        matched = set()
        for item, box in zip(look, truth, strict=True):
            add("collage: whole photo", _precision(whole, item.category, k))
            manual = crop_fraction(photo, box)
            add(
                "collage: exact box (manual crop)",
                _precision(search(manual, True, exclude), item.category, k),
            )
            best = max(
                range(len(detected)),
                key=lambda j: scenes.iou(box, detected[j][0].box),
                default=None,
            )
            if best is None or scenes.iou(box, detected[best][0].box) < 0.5:
                add("collage: per detected item", 0.0)
                add("detection recall @ IoU 0.5", 0.0)
                continue
            matched.add(best)
            crop_terms = [Term(kind="image", image=detected[best][1])]
            add(
                "collage: per detected item",
                _precision(_categories(crop_terms, k, exclude, by_id), item.category, k),
            )
            add("detection recall @ IoU 0.5", 1.0)
        for j in range(len(detected)):
            add("detection precision @ IoU 0.5", float(j in matched))
        tick(1)
    return {name: round(metric.mean, 3) for name, metric in m.items()}


def look_table(reports: dict[str, dict[str, float]]) -> str:
    """Metrics as rows, one column per seed label (tuning, held-out), Markdown."""
    labels = list(reports)
    names = list(reports[labels[0]])
    width = max(len(n) for n in names)
    lines = [
        f"| {'same-category P@10 / detection'.ljust(width)} | "
        + " | ".join(f"{lb:>9}" for lb in labels)
        + " |",
        f"|{'-' * (width + 2)}|" + "|".join("-" * 11 for _ in labels) + "|",
    ]
    for n in names:
        lines.append(
            f"| {n.ljust(width)} | " + " | ".join(f"{reports[lb][n]:9.3f}" for lb in labels) + " |"
        )
    return "\n".join(lines)

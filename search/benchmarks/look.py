"""Shop the look, measured: same-category P@10 of shoppers' photos (``scenes``) before (the
whole photo, ``auto_crop`` off) and after (auto-crop / per detected item), with same-colour
P@10 next to it for single-item photos, plus detection recall and precision at IoU 0.5.
Queries are held-out catalog items (the demo catalog is the Fashion-MNIST t10k split); every
search goes through the query service, excluding the pictured products themselves.
``evaluate_search --look`` prints the table for a tuning seed and a held-out seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from django.test import override_settings
from PIL import Image

from search.benchmarks import scenes
from search.benchmarks.quality import Item, Metric, _catalog, query_items
from search.detection import get_detector
from search.detection.foreground import rgb_on_white, segment
from search.detection.normalise import item_on_canvas
from search.detection.tuning import match
from search.query_terms import image_terms
from search.services.look import item_crops
from search.services.query import SearchRequest, Term, products_search
from shop.images import crop_fraction
from shop.models import Product

BACKGROUNDS = ("studio", "grey", "dark", "textured")
TUNING_SEED, HELD_OUT_SEED = 0, 1


def _found(terms: list[Term], k: int, exclude: tuple[int, ...], by_id) -> list[Item]:
    hits = products_search(SearchRequest(terms=terms, limit=k, exclude_product_ids=exclude)).hits
    return [by_id[h.product.id] for h in hits if h.product.id in by_id]


def _precision(found: list[Item], wanted: Item, k: int, same: str = "category") -> float:
    """P@k: the share of the top k with the ``wanted`` item's category (or colour)."""
    return sum(getattr(f, same) == getattr(wanted, same) for f in found) / k


def look_evaluate(
    *,
    seed: int,
    queries: int = 60,
    collages: int = 30,
    busy: int = 30,
    k: int = 10,
    detectors: Sequence[str] = ("foreground",),
    degradations: bool = True,
    tick: Callable[[int], None] = lambda n: None,
) -> dict[str, float]:
    """Rows of the table for one seed, for each of ``detectors`` (``DETECTOR`` values):
    single-item photos auto-cropped; collages (tiles apart) and busy scenes (touching or
    overlapping items, textured backgrounds): recall and precision at IoU 0.5 (one-to-one
    matching), same-category P@10 per detected item, milliseconds per photo. "exact box"
    rows use the true boxes: the manual crop auto-cropped (the configured detector), and the
    box cut out of the photo as a detected one is. Each single-photo row has a ", same
    colour" row after it: P@10 by colour instead of category."""
    items, _ = _catalog()
    by_id = {i.id: i for i in items}
    slugs = dict(Product.objects.filter(id__in=by_id).values_list("id", "slug"))
    chosen = query_items(items, queries, seed=seed)
    rng = np.random.default_rng(seed)
    m: dict[str, Metric] = {}

    def add(name: str, value: float) -> None:
        m.setdefault(name, Metric(name)).values.append(value)

    def search(photo: Image.Image, auto_crop: bool, exclude: tuple[int, ...]) -> list[Item]:
        terms = image_terms({"image": photo, "auto_crop": auto_crop})
        return _found(terms, k, exclude, by_id)

    def single(row: str, found: list[Item], q: Item) -> None:
        add(row, _precision(found, q, k))
        add(f"{row}, same colour", _precision(found, q, k, "colour"))

    for kind in scenes.DEGRADATIONS if degradations else ():
        for q in chosen:
            photo = scenes.degraded(slugs[q.id], kind, rng)
            single(f"{kind}: whole photo", search(photo, False, (q.id,)), q)
            for name in detectors:
                with override_settings(DETECTOR=name):
                    single(f"{kind}: auto-crop ({name})", search(photo, True, (q.id,)), q)
            tick(1)

    def scene(kind: str, photo: Image.Image, truth: list, look: list[Item]) -> None:
        exclude = tuple(i.id for i in look)
        whole = search(photo, False, exclude)
        fg = segment(photo)
        rgb = rgb_on_white(photo)
        for item, box in zip(look, truth, strict=True):
            add(f"{kind}: whole photo", _precision(whole, item, k))
            manual = crop_fraction(photo, box)
            add(
                f"{kind}: exact box (manual crop)",
                _precision(search(manual, True, exclude), item, k),
            )
            cut = [Term(kind="image", image=item_on_canvas(rgb, fg, box))]
            add(f"{kind}: exact box, cut out", _precision(_found(cut, k, exclude, by_id), item, k))
        for name in detectors:
            started = time.perf_counter()
            get_detector(name).detect(photo)
            add(f"detection ms per photo ({name})", 1000 * (time.perf_counter() - started))
            with override_settings(DETECTOR=name):
                detected = item_crops(photo, 8)
            matched = match(truth, [d.box for d, _ in detected])
            for i, item in enumerate(look):
                add(f"{kind}: recall @ IoU 0.5 ({name})", float(i in matched))
                if i not in matched:
                    add(f"{kind}: per detected item ({name})", 0.0)
                    continue
                crop_terms = [Term(kind="image", image=detected[matched[i]][1])]
                add(
                    f"{kind}: per detected item ({name})",
                    _precision(_found(crop_terms, k, exclude, by_id), item, k),
                )
            used = set(matched.values())
            for j in range(len(detected)):
                add(f"{kind}: precision @ IoU 0.5 ({name})", float(j in used))
        tick(1)

    def pick() -> list[Item]:
        n = int(rng.integers(2, 5))
        return [chosen[i] for i in rng.choice(len(chosen), n, replace=False)]

    for c in range(collages):
        look = pick()
        layout, bg = scenes.LAYOUTS[c % 3], BACKGROUNDS[c % len(BACKGROUNDS)]
        photo, truth = scenes.collage([slugs[i.id] for i in look], layout, rng, bg)
        scene("collage", photo, truth, look)
    for b in range(busy):
        look = pick()
        photo, truth = scenes.busy([slugs[i.id] for i in look], rng, b)
        scene("busy", photo, truth, look)
    return {name: round(metric.mean, 3) for name, metric in sorted(m.items(), key=_row_order)}


def _row_order(entry: tuple[str, Metric]) -> int:
    """Single photos as measured, then per scene kind: search rows before detection rows
    (each detector's together), timings last (``sorted`` keeps insertion order in a tie)."""
    name = entry[0]
    if name.startswith("detection ms"):
        return 9
    if not name.startswith(("collage", "busy")):
        return 0
    kind = 1 if name.startswith("collage") else 5
    return kind + (1 if "@ IoU" in name else 0)


def look_table(reports: dict[str, dict[str, float]]) -> str:
    """Metrics as rows, one column per seed label (tuning, held-out), Markdown."""
    labels = list(reports)
    names = list(reports[labels[0]])
    width = max(len(n) for n in names)
    lines = [
        f"| {'P@10 (same category, or colour) / detection'.ljust(width)} | "
        + " | ".join(f"{lb:>9}" for lb in labels)
        + " |",
        f"|{'-' * (width + 2)}|" + "|".join("-" * 11 for _ in labels) + "|",
    ]
    for n in names:
        lines.append(
            f"| {n.ljust(width)} | " + " | ".join(f"{reports[lb][n]:9.3f}" for lb in labels) + " |"
        )
    return "\n".join(lines)

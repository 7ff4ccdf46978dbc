"""Search quality, measured through the app's own query service on a labelled catalog.

Relevance comes from the catalog's own labels (Product.colour, Product.category): the demo
catalog built by ``seed_demo --balanced`` has the same number of items for every
(colour, category) pair, so every query has a known set of right answers. ``compare`` indexes
the catalog with each model in turn and evaluates it (the ``evaluate_search`` command).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image
from tqdm import tqdm

from clip_train.fashion import CATEGORIES, PALETTE
from search.benchmarks.suites import PARTS, suites_evaluate
from search.embeddings import ModelSpec
from search.embeddings.registry import get_encoder
from search.selectors import image_ids_pending, product_ids_text_pending
from search.services.describe import image_describe
from search.services.embedding_models import embedding_model_activate, embedding_model_for
from search.services.indexing import images_embed, product_texts_embed
from search.services.query import SearchRequest, Term, products_search
from shop.demo.catalog import demo_catalog_build
from shop.images import open_image
from shop.models import Product

HYBRID_IMAGE_WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Metric:
    name: str
    values: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else float("nan")


@dataclass(frozen=True)
class Item:
    id: int
    colour: str
    category: str  # display name, e.g. "Ankle boot"


def _catalog() -> tuple[list[Item], Counter]:
    rows = Product.objects.select_related("category").order_by("id")
    items = [Item(p.id, p.colour.lower(), p.category.name) for p in rows if p.colour]
    return items, Counter((i.colour, i.category) for i in items)


def _top(terms: list[Term], k: int, exclude: tuple[int, ...] = ()) -> list[int]:
    result = products_search(SearchRequest(terms=terms, limit=k, exclude_product_ids=exclude))
    return [h.product.id for h in result.hits]


def _photo(product_id: int):
    image = Product.objects.get(pk=product_id).images.order_by("position", "id").first()
    with default_storage.open(image.image.name, "rb") as f:
        return open_image(f.read())


def query_items(items: list[Item], count: int, seed: int = 0) -> list[Item]:
    """``count`` items taking turns over the (colour, category) pairs, so every category and
    colour is asked about equally (a stride over the catalog can hit a few categories only:
    the demo catalog cycles through them)."""
    groups: dict[tuple[str, str], list[Item]] = {}
    for item in items:
        groups.setdefault((item.colour, item.category), []).append(item)
    keys = sorted(groups)
    rng = random.Random(seed)
    chosen: list[Item] = []
    for turn in range(max((len(g) for g in groups.values()), default=0)):
        rng.shuffle(keys)  # which pairs get one more query when count is not a multiple
        chosen += [groups[key][turn] for key in keys if turn < len(groups[key])]
        if len(chosen) >= count:
            break
    return chosen[:count]


# Photos no fashion catalog answers (scikit-image's sample photos, a dev requirement), split
# once: tuning decides the no-match rule, held-out is only reported.
OUT_OF_DOMAIN_PHOTOS = {
    "tuning": ("coffee", "astronaut", "rocket", "camera", "coins", "brick", "grass"),
    "held-out": ("chelsea", "cat", "moon", "horse", "clock", "page", "gravel", "text"),
}


def out_of_domain_photos(split: str) -> list[Image.Image]:
    """The split's sample photos, plus a blank and a noise photo (tuning only)."""
    import numpy as np

    try:
        import skimage.data
    except ImportError:  # a dev requirement: without it the table has no out-of-domain rows
        return []

    photos = [
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for name in OUT_OF_DOMAIN_PHOTOS[split]
    ]
    if split == "tuning":
        rng = np.random.default_rng(0)
        photos += [
            Image.new("RGB", (256, 256), (250, 250, 250)),
            Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)),
        ]
    return photos


def _photo_flagged(photo: Image.Image, exclude: tuple[int, ...] = ()) -> float:
    """1.0 when a photo query comes back as "no close match"."""
    result = products_search(
        SearchRequest(terms=[Term(kind="image", image=photo)], limit=1, exclude_product_ids=exclude)
    )
    return float(result.relevance is not None and not result.relevance.close_match)


def text_query(colour: str, category: str) -> str:
    return f"a {colour} {category.lower()}"


def evaluate(
    *,
    k: int = 10,
    photo_queries: int = 200,
    recall_k: int = 50,
    hybrid_weights: Iterable[float] = HYBRID_IMAGE_WEIGHTS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Mean precision/recall figures for the active model over the current catalog."""
    items, counts = _catalog()
    by_id = {i.id: i for i in items}
    tick = progress or (lambda n: None)
    m: dict[str, Metric] = {}

    def add(name: str, value: float) -> None:
        m.setdefault(name, Metric(name)).values.append(value)

    # Text -> products: every colour + category pair present in the catalog.
    for (colour, category), total in sorted(counts.items()):
        top = _top([Term(kind="text", text=text_query(colour, category))], max(k, recall_k))
        hits = [by_id[p] for p in top if p in by_id]
        rel = [h.colour == colour and h.category == category for h in hits]
        add(f"text P@{k} (colour+category)", sum(rel[:k]) / min(k, total))
        add(f"text recall@{recall_k}", sum(rel[:recall_k]) / total)
        add(f"text P@{k} (category only)", sum(h.category == category for h in hits[:k]) / k)
        tick(1)

    # Photo -> products, and "this but in {colour}" hybrids, from query items spread evenly
    # over the (colour, category) pairs.
    queries = query_items(items, photo_queries)
    colours = sorted({i.colour for i in items})
    categories = sorted({i.category for i in items})
    weights = tuple(hybrid_weights)
    for n, q in enumerate(queries):
        photo = _photo(q.id)
        top = [by_id[p] for p in _top([Term(kind="image", image=photo)], k, (q.id,)) if p in by_id]
        add(f"photo P@{k} (same category)", sum(h.category == q.category for h in top) / k)
        add(f"photo P@{k} (same colour)", sum(h.colour == q.colour for h in top) / k)
        add("photo no-match: in-domain photos flagged", _photo_flagged(photo, (q.id,)))
        # "More like this" starts from the catalog product (its stored vectors), not a photo.
        similar = _top([Term(kind="product", product_id=q.id)], k, (q.id,))
        add(
            f"more like this P@{k} (same category)",
            sum(by_id[p].category == q.category for p in similar if p in by_id) / k,
        )
        described = image_describe(image=photo, top=1)
        add("describe: category top-1", float(described.categories[0].name == q.category))
        add("describe: colour top-1", float(described.colours[0].name.lower() == q.colour))
        target = colours[(colours.index(q.colour) + 1 + n % (len(colours) - 1)) % len(colours)]
        total = counts[(target, q.category)]
        for w in weights:
            terms = [
                Term(kind="image", image=photo, weight=w),
                Term(kind="text", text=target, weight=1 - w),
            ]
            hits = [by_id[p] for p in _top(terms, k, (q.id,)) if p in by_id]
            good = sum(h.category == q.category and h.colour == target for h in hits)
            add(
                f"hybrid P@{k} image {w:.1f} / text {1 - w:.1f}",
                good / min(k, total) if total else 0.0,
            )
        # "This, but as a {category}": another kind of product in the photo's colour, at the
        # API's default photo/text split.
        others = [c for c in categories if c != q.category]
        changed = others[n % len(others)]
        total = counts[(q.colour, changed)]
        text_weight = settings.SEARCH_HYBRID_TEXT_WEIGHT
        terms = [
            Term(kind="image", image=photo, weight=1 - text_weight),
            Term(kind="text", text=f"as a {changed.lower()}", weight=text_weight),
        ]
        hits = [by_id[p] for p in _top(terms, k, (q.id,)) if p in by_id]
        good = sum(h.category == changed and h.colour == q.colour for h in hits)
        add(
            f"this but as a category P@{k} (new category, same colour)",
            good / min(k, total) if total else 0.0,
        )
        tick(1)
    for split in OUT_OF_DOMAIN_PHOTOS:
        for photo in out_of_domain_photos(split):
            add(f"photo no-match: out-of-domain photos flagged ({split})", _photo_flagged(photo))
    return {name: round(metric.mean, 4) for name, metric in m.items()}


# --- comparing models on one catalog --------------------------------------------------------


def catalog_ensure(*, per_pair: int, seed: int) -> int:
    """A balanced held-out demo catalog (Fashion-MNIST t10k): ``per_pair`` products for every
    (colour, category) pair, built unless the database holds that many already."""
    count = per_pair * len(CATEGORIES) * len(PALETTE)
    if Product.objects.count() < count:
        with tqdm(total=count, desc="catalog (t10k)", unit="p") as bar:
            demo_catalog_build(
                count=count, seed=seed, split="t10k", balanced=True, progress=bar.update
            )
    return Product.objects.count()


def index_with(spec: ModelSpec) -> None:
    """Embed the whole catalog with ``spec`` and make it the model search answers from."""
    encoder = get_encoder(spec)
    model = embedding_model_for(encoder)
    pending = image_ids_pending(model=model)
    for i in tqdm(range(0, len(pending), 256), desc=f"index {spec.name}", unit="batch"):
        images_embed(image_ids=pending[i : i + 256], encoder=encoder)
    product_texts_embed(product_ids=product_ids_text_pending(model=model), encoder=encoder)
    embedding_model_activate(model)


def compare(
    specs: Sequence[tuple[str, ModelSpec]],
    *,
    k: int,
    photo_queries: int,
    suites: bool = True,
    suite_names: Collection[str] = (),
    suite_parts: Sequence[str] = PARTS,
) -> dict:
    """Index with each labelled model in turn and evaluate it on the current catalog (and
    the query suites, ``search/benchmarks/queries``: those named, all when none are)."""
    report = {"catalog_products": Product.objects.count(), "k": k, "models": {}}
    for label, spec in specs:
        started = time.perf_counter()
        index_with(spec)
        with tqdm(total=None, desc=f"queries ({label})", unit="q") as bar:
            metrics = evaluate(k=k, photo_queries=photo_queries, progress=bar.update)
            if suites:
                metrics.update(
                    suites_evaluate(k=k, tick=bar.update, only=suite_names, parts=suite_parts)
                )
        report["models"][label] = {
            "model": spec.name,
            "weights": spec.pretrained,
            "seconds": round(time.perf_counter() - started, 1),
            **metrics,
        }
    return report


def report_table(report: dict) -> str:
    """The metrics of every model side by side, as a Markdown table."""
    labels = list(report["models"])
    names = [n for n in report["models"][labels[0]] if n not in ("model", "weights", "seconds")]
    width = max(len(n) for n in names)
    lines = [
        f"\nCatalog: {report['catalog_products']} held-out products (Fashion-MNIST t10k)\n",
        f"| {'metric'.ljust(width)} | " + " | ".join(f"{lbl:>9}" for lbl in labels) + " |",
        f"|{'-' * (width + 2)}|" + "|".join("-" * 11 for _ in labels) + "|",
    ]
    for n in names:
        vals = " | ".join(f"{report['models'][lbl][n]:9.3f}" for lbl in labels)
        lines.append(f"| {n.ljust(width)} | {vals} |")
    return "\n".join(lines)

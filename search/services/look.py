"""Shop the look: every item the detector finds in a photo, each with its own results.

Each detected box is cut out as the catalog would show it (``item_on_canvas``: squared, the
background matted onto the studio colour) and searched through the one query service, with
the request's filters. The category guess is CLIP zero-shot over the catalog's categories
(``describe.zero_shot``), on the very vector the item is searched with.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings
from PIL import Image

from search.detection import Detection, get_detector
from search.detection.foreground import rgb_on_white, segment
from search.detection.normalise import item_on_canvas
from search.services.describe import CATEGORY_PROMPTS, zero_shot
from search.services.query import (
    SearchRequest,
    SearchResponse,
    Term,
    image_vector,
    model_encoder,
    products_search,
    require_active_model,
)
from shop.models import Category


@dataclass
class LookItem:
    detection: Detection
    results: SearchResponse

    @property
    def box(self) -> list[float]:
        return list(self.detection.box)


@dataclass
class Look:
    items: list[LookItem]

    @property
    def message(self) -> str:
        return "" if self.items else "No item found in this photo: try a photo of the product."


def item_crops(image: Image.Image, max_items: int) -> list[tuple[Detection, Image.Image]]:
    """(detection, the item as a catalog shot) for each detected item, largest first."""
    fg = segment(image)
    detector = get_detector()
    boxes = fg.boxes if detector.name == "foreground" else detector.detect(image)
    rgb = rgb_on_white(image)
    boxes = sorted(boxes, key=lambda d: -d.area)[:max_items]
    return [(d, item_on_canvas(rgb, fg, d.box)) for d in boxes]


def look_search(
    image: Image.Image, *, request: SearchRequest | None = None, max_items: int | None = None
) -> Look:
    """Detect, then search each item (its crop, normalised): ``request`` gives the filters,
    limit and any other terms (a text modifier), the item's photo term is added to them."""
    request = request or SearchRequest(terms=[], limit=10)
    model = require_active_model()
    encoder = model_encoder(model)
    categories = list(Category.objects.values_list("name", flat=True))
    items = []
    for detection, crop in item_crops(image, max_items or settings.DETECTOR_MAX_ITEMS):
        vector = image_vector(model, crop, encoder)
        labels = zero_shot(model, vector, categories, CATEGORY_PROMPTS, top=1)
        if labels:
            # Shape confidence times how sure CLIP is of the category.
            detection = detection.labelled(
                labels[0].name, (detection.confidence * (0.5 + 0.5 * labels[0].score))
            )
        photo = Term(
            kind="image", image=crop, weight=1.0 - sum(max(t.weight, 0.0) for t in request.terms)
        )
        one = replace(request, terms=[photo, *request.terms])
        items.append(LookItem(detection, products_search(one, encoder=encoder)))
    return Look(items)

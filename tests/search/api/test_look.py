"""POST /api/v1/search/look/ with words: "this, but in red" steers every item's search as it
steers photo search (the same ``query_terms.modifier_terms``).

Known answers: the held-out demo catalog (10 categories x red, orange, yellow) and the
trained demo model; the look is a collage of its own products (search/benchmarks/scenes.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from search.benchmarks import scenes
from tests.factories import data_url, encode

pytestmark = pytest.mark.django_db
URL = "/api/v1/search/look/"


def look(client, photo: Image.Image, **body) -> dict:
    r = client.post(URL, {"image": data_url(photo), **body}, "application/json")
    assert r.status_code == 200, r.content
    return r.json()


def test_this_but_in_red_steers_every_item_of_the_look(client, small_demo_catalog):
    """A yellow outfit: each item finds itself; "red" finds the red one of its category."""
    by = {(p.colour, p.category.name): p for p in small_demo_catalog}
    outfit = [by["yellow", c] for c in ("Trousers", "Sneaker", "Bag")]
    photo, truth = scenes.collage([p.slug for p in outfit], "row", np.random.default_rng(1))

    def tops(**body) -> list[dict]:
        items = look(client, photo, limit=3, **body)["items"]
        assert len(items) == 3
        at = [max(items, key=lambda i: scenes.iou(box, tuple(i["box"]))) for box in truth]
        return [item["results"] for item in at]

    for product, results in zip(outfit, tops(), strict=True):
        assert results[0]["id"] == product.pk
    for product, results in zip(outfit, tops(text="red", text_weight=0.3), strict=True):
        assert results[0]["id"] == by["red", product.category.name].pk
    for results in tops(text="red", text_weight=0.6):
        assert [h["colour"] for h in results] == ["red"] * 3
    # A file upload takes the same words.
    upload = SimpleUploadedFile("look.png", encode(photo, "PNG"))
    r = client.post(URL, {"image": upload, "limit": 3, "text": "red", "text_weight": "0.6"})
    assert r.status_code == 200
    assert all(h["colour"] == "red" for i in r.json()["items"] for h in i["results"])

"""Shop the look on real services: detection, auto-crop of query photos, POST /api/detect/.

Known answers come from the trained demo model and held-out catalog items put into photos
(search/benchmarks/scenes.py): a collage of three catalog items, an item small and
off-centre on a dark background.
"""

import base64

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from search.benchmarks import scenes
from search.detection import Detector, get_detector, query_photo
from search.detection.foreground import ForegroundDetector
from tests.factories import data_url, encode, pattern

pytestmark = pytest.mark.django_db


def small_on_dark(slug: str, at=(24, 150)) -> Image.Image:
    """The item at half size, near a corner of a larger dark photo."""
    canvas = Image.new("RGB", (256, 256), (30, 30, 30))
    return scenes.paste(canvas, scenes.cutout(slug).resize((64, 64)), at)


@pytest.mark.parametrize("layout", scenes.LAYOUTS)
@pytest.mark.parametrize("bg", ["studio", "grey", "dark", "textured"])
def test_detector_gives_one_box_per_item_of_a_collage(layout, bg):
    slugs = ["t10k-0-red", "t10k-1-blue", "t10k-2-green", "t10k-3-yellow"]
    photo, truth = scenes.collage(slugs[:3], layout, np.random.default_rng(3), bg)
    found = get_detector().detect(photo)
    assert len(found) == 3
    for box in truth:
        assert max(scenes.iou(box, d.box) for d in found) >= 0.5


def test_detector_is_pluggable_and_finds_nothing_in_noise_or_a_blank_page(settings):
    settings.DETECTOR = "search.detection.foreground.ForegroundDetector"
    detector = get_detector()
    assert isinstance(detector, Detector) and isinstance(detector, ForegroundDetector)
    assert detector.detect(pattern(1)) == []
    assert detector.detect(Image.new("RGB", (300, 200), "white")) == []
    settings.DETECTOR = "shop.models.Product"
    with pytest.raises(TypeError):
        get_detector()


def test_a_catalog_shot_is_searched_as_it_is(small_demo_catalog):
    """auto_crop leaves a studio photo of one item alone (its vector is the indexed one)."""
    photo = scenes.paste(
        Image.new("RGB", (128, 128), (248, 248, 246)),
        scenes.cutout(small_demo_catalog[0].slug),
        (0, 0),
    )
    assert query_photo(photo) is photo


def test_each_item_of_a_collage_gets_its_own_box_and_its_product_first(client, small_demo_catalog):
    products = [small_demo_catalog[i] for i in (0, 11, 22)]  # three categories and colours
    photo, truth = scenes.collage([p.slug for p in products], "row", np.random.default_rng(1))
    r = client.post("/api/detect/", {"image": data_url(photo), "limit": 5}, "application/json")
    assert r.status_code == 200, r.json()
    items = r.json()["items"]
    assert len(items) == 3
    for product, box in zip(products, truth, strict=True):
        item = max(items, key=lambda i: scenes.iou(box, tuple(i["box"])))
        assert scenes.iou(box, tuple(item["box"])) >= 0.5
        assert item["results"][0]["id"] == product.pk
        assert 0 < item["confidence"] <= 1 and item["category"]


def test_small_off_centre_item_on_dark_background_needs_the_auto_crop(client, small_demo_catalog):
    def top(product, **extra):
        photo = small_on_dark(product.slug)
        upload = SimpleUploadedFile("q.png", encode(photo, "PNG"))
        r = client.post("/api/search/image/", {"image": upload, "limit": 3, **extra})
        assert r.status_code == 200
        return r.json()["results"][0]["id"]

    cropped = [top(p) == p.pk for p in small_demo_catalog]
    whole = [top(p, auto_crop="false") == p.pk for p in small_demo_catalog]
    assert sum(cropped) >= 0.8 * len(cropped)  # 25 of 30: the rest lost detail at half size
    assert sum(whole) <= 0.3 * len(whole)


def test_a_photo_without_items_answers_an_empty_list_and_a_message(client, small_demo_catalog):
    blank = SimpleUploadedFile("blank.png", encode(Image.new("RGB", (200, 120), "white"), "PNG"))
    r = client.post("/api/detect/", {"image": blank})
    assert r.status_code == 200
    assert r.json()["items"] == [] and r.json()["message"]


def test_max_items_keeps_the_largest(client, small_demo_catalog):
    slugs = [p.slug for p in small_demo_catalog[:4]]
    photo, _ = scenes.collage(slugs, "grid", np.random.default_rng(2))
    r = client.post("/api/detect/", {"image": data_url(photo), "max_items": 2}, "application/json")
    assert r.status_code == 200
    areas = [i["box"][2] * i["box"][3] for i in r.json()["items"]]
    assert len(areas) == 2 and areas == sorted(areas, reverse=True)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"image": "not a data url"},
        {"image": "data:image/png;base64,!!!"},
        {"image": "data:image/png;base64," + base64.b64encode(b"not an image").decode()},
        {"image": data_url(pattern(1)), "max_items": 0},
        {"image": data_url(pattern(1)), "limit": "many"},
        {"image": data_url(pattern(1)), "category": "no-such-category"},
    ],
)
def test_bad_input_to_detect_is_a_400(client, small_demo_catalog, payload):
    r = client.post("/api/detect/", payload, "application/json")
    assert r.status_code == 400
    assert r.json()["error"]

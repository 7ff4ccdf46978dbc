"""The page modes in a real browser: upload, drag & drop, region selection, hybrid slider,
more like this. Known answers come from identical pixels (the catalog fixture in tests/conftest.py)."""

import base64

import pytest
from PIL import Image

from tests.factories import encode, pattern

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def first_result_id(page) -> int:
    page.wait_for_selector("#results .result-card")
    return int(page.locator("#results .result-card").first.get_attribute("data-product-id"))


def test_upload_select_region_and_search(live_server, page, screenshot, catalog, tmp_path):  # noqa: F811
    scene = Image.new("RGB", (256, 128))
    scene.paste(pattern(4).resize((128, 128), Image.Resampling.NEAREST), (0, 0))
    scene.paste(pattern(2).resize((128, 128), Image.Resampling.NEAREST), (128, 0))
    path = tmp_path / "scene.png"
    scene.save(path)

    page.goto(live_server.url + "/search/photo/")
    assert not page.is_visible("#preview"), "no empty preview (broken image) before a photo"
    page.set_input_files("#image-input", str(path))
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    box = page.locator("#preview").bounding_box()
    # Drag over the right half (product b's pattern), a little inside its edges.
    page.mouse.move(box["x"] + box["width"] * 0.52, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    crop = page.input_value("#crop")
    assert crop and float(crop.split(",")[0]) > 0.5
    screenshot("photo-region-selected")
    page.click("#photo-submit")
    assert first_result_id(page) == catalog["b"].pk
    screenshot("photo-search-results")


def test_drag_and_drop_a_photo(live_server, page, catalog):  # noqa: F811
    page.goto(live_server.url + "/search/photo/")
    b64 = base64.b64encode(encode(pattern(3), "PNG")).decode()
    page.evaluate(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
            const drop = document.getElementById("drop");
            drop.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
            drop.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }""",
        b64,
    )
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    page.click("#photo-submit")
    assert first_result_id(page) == catalog["c"].pk


def test_more_like_this_and_hybrid_slider(live_server, page, screenshot, catalog):  # noqa: F811
    page.goto(live_server.url + catalog["a"].get_absolute_url())
    page.wait_for_selector("#similar .result-card")
    shown = [
        int(x)
        for x in page.locator("#similar .result-card").evaluate_all(
            "cards => cards.map(c => c.dataset.productId)"
        )
    ]
    assert catalog["a"].pk not in shown and shown[0] == catalog["twin"].pk
    screenshot("more-like-this")

    page.fill("#hybrid-text", "red")
    page.locator("#hybrid-weight").evaluate(
        "el => { el.value = '0.4'; el.dispatchEvent(new Event('input', { bubbles: true })); }"
    )
    # Said in words, the same control as the photo page's.
    assert page.locator("#hybrid-weight-out").inner_text() == "Look and words equally (words 40%)"
    page.click("#hybrid-form button[type=submit]")
    page.wait_for_url("**/search/similar/**text_weight=0.4**")
    assert page.locator("#results .result-card").count() == 5
    assert catalog["a"].pk not in [
        int(x)
        for x in page.locator("#results .result-card").evaluate_all(
            "cards => cards.map(c => c.dataset.productId)"
        )
    ]


def test_describe_a_photo_page(live_server, page, screenshot, small_demo_catalog, tmp_path):  # noqa: F811
    """Ten categories, three colours, the trained demo model: the photo of the red sneaker is
    described as a red sneaker, and the best-matching description is a red sneaker's."""
    red_sneaker = next(
        p for p in small_demo_catalog if (p.colour, p.category.name) == ("red", "Sneaker")
    )
    path = tmp_path / "q.png"
    path.write_bytes(red_sneaker.images.get().image.read())
    page.goto(live_server.url + "/search/describe/")
    page.set_input_files("#describe-input", str(path))
    page.click("#describe-form button[type=submit]")
    page.wait_for_selector("#suggestion")
    assert page.locator("#suggestion").inner_text() == "Looks like: red sneaker"
    descriptions = page.locator("#description ol").last.locator("li")
    assert descriptions.count() == 5
    assert descriptions.first.locator("a").inner_text() == red_sneaker.title
    screenshot("describe")

"""The product admin in Chromium at desktop (1366 px) and phone (390 px) widths: axe-core
finds nothing critical or serious on the change list and the change form, the index coverage
sits below the "Add product" button and on the screen, CLIP's Apply says what it will
replace, re-indexing from the change form."""

import pytest

from search.services.describe import image_describe
from shop.images import open_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


def log_in(page, live_server, admin_user) -> None:
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", "password")  # pytest-django's admin_user
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_change_list_is_accessible_and_its_coverage_readable(
    live_server, page, screenshot, axe, admin_user, small_demo_catalog, make_product
):
    make_product("Not embedded yet", category="Sneaker")  # one image pending of 31
    log_in(page, live_server, admin_user)
    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(live_server.url + "/admin/shop/product/")
        thumbnails = page.locator("#result_list .field-thumbnail a img")
        assert thumbnails.count() == 31
        assert thumbnails.first.get_attribute("alt") == "Not embedded yet"
        coverage = page.locator(".index-coverage")
        assert "30 of 31 images indexed (96%) · 1 pending" in coverage.inner_text()
        add = page.locator(".object-tools .addlink").bounding_box()
        box = coverage.bounding_box()
        assert not overlaps(add, box), f"{width_name}: coverage under 'Add product'"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{width_name}: off screen"
        assert coverage.evaluate("e => e.scrollWidth <= e.clientWidth"), "text overflows"
        screenshot(f"admin-product-list-{width_name}")
        assert axe(page) == [], width_name


def test_change_form_apply_replaces_a_filled_field_after_saying_so(
    live_server, page, screenshot, axe, admin_user, small_demo_catalog, tmp_path
):
    photo_of = small_demo_catalog[0]
    with photo_of.primary_image.image.open("rb") as f:
        raw = f.read()
    path = tmp_path / "new-photo.png"
    path.write_bytes(raw)
    # The known answer: what the describe service says of this photo (the page asks the API).
    described = image_describe(image=open_image(raw), top=1)
    category, colour = described.categories[0].name, described.colours[0].name
    # A product of that category whose colour field is filled with another colour.
    product = next(
        p for p in small_demo_catalog if p.category.name == category and p.colour != colour
    )
    log_in(page, live_server, admin_user)
    change = f"{live_server.url}/admin/shop/product/{product.pk}/change/"

    for width_name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.goto(change)
        assert page.input_value("#id_colour") == product.colour
        page.set_input_files("#id_images-1-image", str(path))
        plan = page.locator(".clip-suggestion .clip-plan")
        plan.wait_for()
        assert plan.inner_text() == (
            f"Apply replaces colour “{product.colour}” with “{colour}”. "
            f"Unchanged: category is already {category}."
        )
        assert page.input_value("#id_colour") == product.colour  # nothing without a click
        apply = page.locator(".clip-suggestion .clip-apply").bounding_box()
        assert apply["x"] + apply["width"] <= width, f"{width_name}: Apply is off the screen"
        screenshot(f"admin-product-form-suggestion-{width_name}")
        assert axe(page) == [], width_name

    # Editing a field updates what Apply says it will replace.
    other = next(p.category for p in small_demo_catalog if p.category.name != category)
    page.select_option("#id_category", label=other.name)
    assert plan.inner_text() == (
        f"Apply replaces category “{other.name}” with “{category}” and replaces colour "
        f"“{product.colour}” with “{colour}”."
    )
    page.click(".clip-suggestion .clip-apply")
    status = page.locator(".clip-suggestion")
    assert status.inner_text() == (
        f"Applied: category {category} (was {other.name}), colour {colour} "
        f"(was {product.colour}). Save to keep it."
    )
    assert page.input_value("#id_colour") == colour
    assert page.locator("#id_category option:checked").inner_text() == category
    # The same photo again: the fields hold the suggestion, so there is nothing to apply.
    page.set_input_files("#id_images-1-image", [])
    page.set_input_files("#id_images-1-image", str(path))
    page.wait_for_function(
        "() => document.querySelector('.clip-suggestion .clip-plan')?.textContent.startsWith('Nothing')"
    )
    assert plan.inner_text() == (
        f"Nothing to apply: category is already {category}; colour is already {colour}."
    )
    assert page.locator(".clip-suggestion .clip-apply").count() == 0


def test_change_form_reindex_button(
    live_server, page, screenshot, axe, admin_user, small_demo_catalog
):
    product = small_demo_catalog[0]
    log_in(page, live_server, admin_user)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/shop/product/{product.pk}/change/")
    assert page.locator("#index-state").inner_text().startswith("Search index: Indexed")
    # With an edit not saved yet, the button asks first; declining keeps the page as it is.
    page.fill("#id_title", "Edited, not saved")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("#reindex-button")
    assert asked and "unsaved changes" in asked[0]
    assert page.input_value("#id_title") == "Edited, not saved"
    assert page.locator(".messagelist").count() == 0  # nothing was posted
    page.reload()
    assert page.input_value("#id_title") == product.title
    page.click("#reindex-button")
    message = page.locator(".messagelist li.success")
    assert message.inner_text().startswith("Queued 1 product (1 image, 1 product text)")
    assert page.locator("#index-state").inner_text().startswith("Search index: Pending")
    screenshot("admin-product-form-reindexed")
    assert axe(page) == []


def test_the_other_admin_pages_have_no_blocking_axe_findings(
    live_server, page, axe, admin_user, indexed
):
    """The breadcrumbs' links were told from their text by colour alone on every admin page
    (axe "link-in-text-block"); the shop's admin stylesheet underlines them."""
    page.goto(live_server.url + "/admin/login/")
    found = {"login": axe(page)}
    log_in(page, live_server, admin_user)
    pages = ["/admin/", "/admin/search/embeddingmodel/", "/admin/search/synonym/"]
    pages += ["/admin/search/synonym/add/", "/admin/shop/category/", "/admin/shop/product/add/"]
    for url in pages:
        for width_name, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(live_server.url + url)
            found[f"{url} {width_name}"] = axe(page)
    assert (
        page.locator(".breadcrumbs a").first.evaluate("a => getComputedStyle(a).textDecorationLine")
        == "underline"
    )
    assert {name: v for name, v in found.items() if v} == {}

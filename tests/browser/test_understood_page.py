"""The shopper sees what the query was understood as, removes a part, and is told when
nothing close was found; the search box suggests as they type."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


SHADES = {"red": "crimson", "blue": "navy", "white": "ivory", "green": "olive", "brown": "tan"}
SHADES |= {"grey": "charcoal", "yellow": "mustard", "orange": "coral", "pink": "magenta"}
SHADES |= {"purple": "violet", "black": "jet"}


def test_chips_remove_a_part_and_no_match_is_said(
    live_server, page, screenshot, small_demo_catalog
):
    sneaker = next(p for p in small_demo_catalog if p.category.name == "Sneaker")
    shade = SHADES[sneaker.colour]
    page.goto(live_server.url + "/search/")
    page.fill("input[name=q]", f"{shade} trainers under 200")
    page.click("button[type=submit]")
    page.wait_for_selector("#understood")
    chips = page.locator("#understood .chip").all_inner_texts()
    assert [c.rstrip(" ×") for c in chips] == [
        "under €200",
        f"colour: {shade} ({sneaker.colour})",
        "category: Sneaker",
    ]
    first = page.locator("#results .result-card").first.get_attribute("data-product-id")
    assert first == str(sneaker.pk)
    assert page.locator("#no-close-match").count() == 0
    assert screenshot("understood-chips").stat().st_size > 0

    page.click("#understood .chip-price a")  # the price chip's ×
    page.wait_for_selector("#understood")
    assert page.input_value("input[name=q]") == f"{shade} trainers"
    assert len(page.locator("#understood .chip").all_inner_texts()) == 2

    page.fill("input[name=q]", "laptop charger")
    page.click("button[type=submit]")
    page.wait_for_selector("#no-close-match")
    assert "No close matches" in page.locator("#no-close-match").inner_text()
    assert screenshot("no-close-match").stat().st_size > 0


def test_the_search_box_offers_suggestions(live_server, page, small_demo_catalog):
    page.goto(live_server.url + "/search/")
    page.fill("input[name=q]", "sne")
    page.wait_for_function(
        "() => document.querySelectorAll('datalist option').length > 0", timeout=5000
    )
    options = page.locator("datalist option").evaluate_all("os => os.map(o => o.value)")
    assert options[0] == "sneaker"

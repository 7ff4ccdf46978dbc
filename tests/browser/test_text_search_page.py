import pytest

from search.services import indexing
from shop.models import ProductImage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_shopper_types_a_query_and_sees_ranked_cards(live_server, page, screenshot, make_product):
    for i, colour in enumerate([(200, 0, 0), (0, 0, 200), (0, 160, 0), (240, 200, 0)]):
        make_product(f"Product {i}", price=f"{10 + i}.00", colours=[colour])
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))

    page.goto(live_server.url + "/")
    page.fill("input[name=q]", "red sneakers")
    page.click("button[type=submit]")
    page.wait_for_selector(".result-card")
    cards = page.locator("#results .result-card")
    assert cards.count() == 4
    ranks = page.locator("#results .score").all_inner_texts()
    assert [r.split(" ")[0] for r in ranks] == ["#1", "#2", "#3", "#4"]
    assert page.locator("#results .result-card img").first.evaluate("img => img.naturalWidth") > 0
    assert screenshot("text-search").stat().st_size > 0

    cards.first.click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text().startswith("Product")

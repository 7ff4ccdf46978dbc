import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_shopper_types_a_query_and_sees_ranked_cards(
    live_server,
    page,
    screenshot,
    small_demo_catalog,  # noqa: F811
):
    """Trained demo model, one product per colour and category: the one described ranks first."""
    red_sneaker = next(
        p for p in small_demo_catalog if (p.colour, p.category.name) == ("red", "Sneaker")
    )
    page.goto(live_server.url + "/")
    page.fill("input[name=q]", "a red sneaker")
    page.click("button[type=submit]")
    page.wait_for_selector(".result-card")
    cards = page.locator("#results .result-card")
    assert cards.first.get_attribute("data-product-id") == str(red_sneaker.pk)
    assert cards.count() == min(len(small_demo_catalog), 24)  # a full first page
    # A match label and a stock badge on every card; the raw cosine stays in the API.
    labels = page.locator("#results .match").all_inner_texts()
    assert len(labels) == cards.count() and labels[0] in ("Strong match", "Good match")
    assert page.locator("#results .stock").count() == cards.count()
    assert "cosine" not in page.content()
    assert page.locator("#results .result-card img").first.evaluate("img => img.naturalWidth") > 0
    assert screenshot("text-search").stat().st_size > 0

    cards.first.click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == red_sneaker.title

"""Intent queries ranked end to end, through the query service with the trained demo model, on
30 held-out products (10 categories x 3 colours): the categories an intent lists come first,
the ones it lists first before the others."""

import pytest

from search.services.query import SearchRequest, Term, products_search

pytestmark = pytest.mark.django_db


def search(text: str, k: int = 10):
    request = SearchRequest(
        terms=[Term(kind="text", text=text)], limit=k, query=text, understand_terms=True
    )
    return products_search(request)


def categories(text: str, k: int = 10) -> list[str]:
    return [h.product.category.name for h in search(text, k).hits]


def test_intents_rank_what_they_are_for_first(small_demo_catalog):
    # Coats and pullovers answer "warm" and "winter", ankle boots only "winter".
    found = categories("something warm for winter", k=9)
    assert set(found[:6]) == {"Coat", "Pullover"}, found
    assert found[6:] == ["Ankle boot"] * 3, found
    assert categories("need a bag for my laptop", k=3) == ["Bag"] * 3
    assert set(categories("something for the beach", k=9)) == {"Sandal", "T-shirt", "Dress"}


def test_a_product_named_wins_over_an_intent(small_demo_catalog):
    assert categories("gym bag", k=3) == ["Bag"] * 3
    assert categories("winter boots", k=3) == ["Ankle boot"] * 3


def test_an_intent_alone_is_no_evidence_of_a_close_match(small_demo_catalog):
    # "Laptop" says what a bag is for; a laptop charger is still not in a fashion shop.
    assert not search("laptop charger").relevance.close_match
    assert search("something warm for winter").relevance.close_match
    # "Gym" only says what the bag is for: the bags are close matches.
    assert search("gym bag").relevance.close_match


def test_everyday_garment_and_colour_words_find_their_products(small_demo_catalog):
    """Words from the seeded lists (migration 0006) that the demo model never saw."""
    assert categories("windbreaker", k=3) == ["Coat"] * 3
    assert categories("espadrilles", k=3) == ["Sandal"] * 3
    assert categories("turtleneck", k=3) == ["Pullover"] * 3
    hits = search("oxblood duffel", k=1).hits  # red, orange and yellow here
    assert (hits[0].product.category.name, hits[0].product.colour) == ("Bag", "red")


def test_only_products_with_every_word_are_said_to_match_the_words(small_demo_catalog):
    """'Matches your words' on a card: the product's text has every word the query needs. A
    yellow sneaker matches 'sneakers' of 'red sneakers', not the query."""
    response = search("red sneakers", k=30)
    whole = {(h.product.colour, h.product.category.name) for h in response.hits if h.all_words}
    assert whole == {("red", "Sneaker")}
    partial = [h for h in response.hits if "keyword" in h.matched and not h.all_words]
    assert {h.product.category.name for h in partial} >= {"Sneaker"}


def test_a_typo_fix_keeps_the_first_letter(small_demo_catalog):
    """'snekers' is a sneaker; 'racket' is not a misspelt 'jacket' (the shop sells none)."""
    assert categories("red snekers", k=1) == ["Sneaker"]
    response = search("tennis racket")
    assert not response.relevance.close_match
    assert "jacket" not in (response.parsed.did_you_mean or "")

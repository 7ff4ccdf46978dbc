"""Query understanding, pure: a hand-made lexicon shaped like the demo catalog's."""

from __future__ import annotations

from decimal import Decimal

import pytest

from search.query_understanding import Lexicon, key, parse_query, query_without
from search.synonyms import synonym_expansions, synonym_loop


class Row:
    def __init__(self, term: str, targets: str, two_way: bool = False) -> None:
        self.term, self.two_way = term, two_way
        self.target_list = [t.strip() for t in targets.split(",")]


SYNONYMS = [
    Row("trainer", "sneaker"),
    Row("shoe", "sneaker"),
    Row("jean", "trousers"),
    Row("navy", "blue"),
    Row("crimson", "red"),
    Row("top", "t-shirt, shirt, pullover"),
    Row("gray", "grey", two_way=True),
]
CATEGORIES = {
    "sneaker": "Sneaker",
    "trousers": "Trousers",
    "tshirt": "T-shirt",
    "shirt": "Shirt",
    "pullover": "Pullover",
    "ankle-boot": "Ankle boot",
    "dress": "Dress",
}


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    categories = {}
    for slug, name in CATEGORIES.items():
        for form in (name, slug, slug.replace("-", " ")):
            categories[key(form)] = slug
    return Lexicon(
        colours=frozenset({"red", "blue", "grey", "white", "black"}),
        categories=categories,
        category_names=CATEGORIES,
        synonyms={key(t): frozenset(v) for t, v in synonym_expansions(SYNONYMS).items()},
    )


def test_canonical_query(lexicon):
    p = parse_query("red sneakers", lexicon)
    assert (p.colours, p.categories, p.vector_text) == (["red"], ["sneaker"], "red sneaker")
    assert [u.label for u in p.understood] == ["colour: red", "category: Sneaker"]
    assert p.groups == [["red"], ["Sneaker", "sneakers"]]


@pytest.mark.parametrize(
    ("query", "colour", "category"),
    [
        ("navy trainers", "blue", "sneaker"),
        ("crimson jeans", "red", "trousers"),
        ("gray ankle boots", "grey", "ankle-boot"),
        ("I want to buy some red T-shirts", "red", "tshirt"),
        ("do you have blue dresses?", "blue", "dress"),
    ],
)
def test_shades_synonyms_and_filler(lexicon, query, colour, category):
    p = parse_query(query, lexicon)
    assert p.colours == [colour] and p.categories == [category]
    assert p.vector_text.split()[0] == colour


def test_a_word_meaning_several_categories_boosts_them_all(lexicon):
    p = parse_query("white tops", lexicon)
    assert p.categories == ["pullover", "shirt", "tshirt"]
    assert p.understood[1].label == "category: Pullover / Shirt / T-shirt"


@pytest.mark.parametrize(
    ("query", "lo", "hi"),
    [
        ("red sneakers under €50", None, "50"),
        ("sneakers less than 80 euros", None, "80"),
        ("dress between 20 and 40", "20", "40"),
        ("dress from $40 to 20", "20", "40"),
        ("coat over 100", "100", None),
        ("bag below 19.99€", None, "19.99"),
    ],
)
def test_price_phrases_become_bounds(lexicon, query, lo, hi):
    p = parse_query(query, lexicon)
    assert p.min_price == (Decimal(lo) if lo else None)
    assert p.max_price == (Decimal(hi) if hi else None)
    assert p.understood[0].kind == "price"
    assert not any(ch.isdigit() for ch in p.vector_text)


def test_cheap_is_understood_and_resolved_later(lexicon):
    p = parse_query("cheap sneakers", lexicon)
    assert p.cheap and p.max_price is None and p.vector_text == "sneaker"


def test_negations(lexicon):
    p = parse_query("sneakers not red", lexicon)
    assert p.exclude_colours == ["red"] and p.colours == [] and p.vector_text == "sneaker"
    p = parse_query("ankle boots without leather", lexicon)
    assert p.negative_words == ["leather"] and p.categories == ["ankle-boot"]
    assert [u.label for u in p.understood] == ["category: Ankle boot", "not leather"]


def test_only_a_price_or_only_filler(lexicon):
    p = parse_query("under 30", lexicon)
    assert not p.has_terms and not p.is_empty and p.max_price == 30
    assert parse_query("I want to buy", lexicon).is_empty
    assert parse_query("?!.,", lexicon).is_empty


def test_spelling_corrections_are_read_and_offered(lexicon):
    p = parse_query("red snekers", lexicon, spell=lambda words: {"snekers": "sneaker"})
    assert p.categories == ["sneaker"] and p.did_you_mean == "red sneaker"
    assert p.query == "red snekers"


@pytest.mark.parametrize(
    "query",
    [
        "x" * 10_000,
        "red " * 2_500,
        "'); DROP TABLE shop_product; -- (.*)+ [a-z] %_",
        "👟🔥 red 👠",
        "حذاء أحمر",
        "under under under 5 between and",
        "not",
        "999999999999999999 under 12345678901234",
    ],
)
def test_odd_input_never_raises(lexicon, query):
    p = parse_query(query, lexicon)
    assert len(p.groups) <= 48


def test_chip_removal_drops_only_that_part():
    assert query_without("red sneakers under €50", "under €50") == "red sneakers"
    assert query_without("Red sneakers", "red") == "sneakers"


def test_synonym_loops_are_found():
    assert synonym_loop(Row("sneaker", "trainer"), SYNONYMS) == ["sneaker", "trainer", "sneaker"]
    assert synonym_loop(Row("a", "a"), []) == ["a", "a"]
    assert synonym_loop(Row("kicks", "sneaker"), SYNONYMS) is None
    assert synonym_loop(Row("grey", "silver", two_way=True), SYNONYMS) is None
    # Chains: a -> b -> c, then c -> a closes the loop.
    chain = [Row("a", "b"), Row("b", "c")]
    assert synonym_loop(Row("c", "a"), chain) == ["c", "a", "b", "c"]


def test_expansion_survives_a_saved_loop():
    assert synonym_expansions([Row("a", "b"), Row("b", "a")]) == {"a": {"b"}, "b": {"a"}}

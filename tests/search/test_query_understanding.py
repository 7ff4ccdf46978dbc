"""Query understanding, pure: a hand-made lexicon shaped like the demo catalog's."""

from __future__ import annotations

from decimal import Decimal

import pytest

from search.query_understanding import Lexicon, key, parse_query, query_without
from search.synonyms import synonym_expansions, synonym_loop


class Row:
    def __init__(self, term: str, targets: str, two_way: bool = False, intent: bool = False):
        self.term, self.two_way, self.intent = term, two_way, intent
        self.target_list = [t.strip() for t in targets.split(",")]


SYNONYMS = [
    Row("trainer", "sneaker"),
    Row("shoe", "sneaker"),
    Row("jean", "trousers"),
    Row("navy", "blue"),
    Row("crimson", "red"),
    Row("top", "t-shirt, shirt, pullover"),
    Row("gray", "grey", two_way=True),
    Row("boot", "ankle boot"),
    Row("hot pink", "pink"),
    # intents: what it is for, the likeliest category first
    Row("winter", "coat, pullover, ankle boot", intent=True),
    Row("warm", "coat, pullover", intent=True),
    Row("beach", "sandal, t-shirt, dress", intent=True),
    Row("hot", "t-shirt, sandal, dress", intent=True),
    Row("laptop", "bag", intent=True),
    Row("carry", "bag", intent=True),
    Row("running", "sneaker", intent=True),
    Row("gym", "sneaker, t-shirt, trousers", intent=True),
    Row("work", "shirt, trousers, dress", intent=True),
    Row("black tie", "dress, shirt", intent=True),
]
CATEGORIES = {
    "sneaker": "Sneaker",
    "trousers": "Trousers",
    "tshirt": "T-shirt",
    "shirt": "Shirt",
    "pullover": "Pullover",
    "ankle-boot": "Ankle boot",
    "dress": "Dress",
    "coat": "Coat",
    "sandal": "Sandal",
    "bag": "Bag",
}


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    categories = {}
    for slug, name in CATEGORIES.items():
        for form in (name, slug, slug.replace("-", " ")):
            categories[key(form)] = slug
    return Lexicon(
        colours=frozenset({"red", "blue", "grey", "white", "black", "pink"}),
        categories=categories,
        category_names=CATEGORIES,
        synonyms={key(t): tuple(v) for t, v in synonym_expansions(SYNONYMS).items()},
        intents=frozenset(key(r.term) for r in SYNONYMS if r.intent),
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
    # In the synonym's order: the first is what the vector leg looks for.
    assert p.categories == ["tshirt", "shirt", "pullover"]
    assert p.understood[1].label == "category: T-shirt / Shirt / Pullover"
    assert p.vector_text == "white t-shirt"
    assert p.groups[1] == ["Pullover", "Shirt", "T-shirt", "tops"]


def test_an_intent_boosts_what_it_is_for(lexicon):
    p = parse_query("something warm for winter", lexicon)
    assert p.categories == ["coat", "pullover", "ankle-boot"]
    # Coats and pullovers answer both words, so the keyword leg ranks them above boots.
    assert p.groups == [["Coat", "Pullover", "warm"], ["Ankle boot", "Coat", "Pullover", "winter"]]
    assert p.vector_text == "coat coat" and p.ignored == ["something", "for"]
    assert [(u.kind, u.label, u.span) for u in p.understood] == [
        ("category", "warm: Coat / Pullover", "warm"),
        ("category", "winter: Coat / Pullover / Ankle boot", "winter"),
    ]
    assert not p.colours and p.min_price is p.max_price is None
    assert p.intents == ["warm", "winter"] and p.context == []


@pytest.mark.parametrize(
    ("query", "categories"),
    [
        ("something to carry my laptop", ["bag"]),
        ("need a bag for my laptop", ["bag"]),
        ("shoes for running", ["sneaker"]),
        ("something for the beach", ["sandal", "tshirt", "dress"]),
        ("outfit for a hot day", ["tshirt", "sandal", "dress"]),
        ("what to wear to work", ["shirt", "trousers", "dress"]),
        ("Black tie", ["dress", "shirt"]),
        ("keep me warm", ["coat", "pullover"]),
    ],
)
def test_intent_phrases(lexicon, query, categories):
    p = parse_query(query, lexicon)
    assert p.categories == categories and not p.colours, p
    assert all(u.kind == "category" for u in p.understood)


@pytest.mark.parametrize(
    ("query", "categories", "plain"),
    [
        # The product named wins over an intent that shares nothing with it ...
        ("gym bag", ["bag"], ["gym"]),
        ("a coat for work", ["coat"], ["work"]),
        ("white trainers for the beach", ["sneaker"], ["beach"]),
        # ... and narrows one that does.
        ("winter boots", ["ankle-boot"], []),
        ("tops for the gym", ["tshirt", "shirt", "pullover"], []),
    ],
)
def test_a_product_named_wins_over_an_intent(lexicon, query, categories, plain):
    p = parse_query(query, lexicon)
    assert p.categories == categories, p
    # An intent that does not apply stays a keyword (a "Gym bag" title ranks first), with no
    # chip, and the vector leg looks for the product alone.
    assert [g for g in p.groups if len(g) == 1 and g[0] in plain] == [[w] for w in plain]
    assert p.context == plain and not set(p.intents) & set(plain)
    assert not {u.span for u in p.understood} & set(plain)
    assert not any(w in p.vector_text for w in plain)


def test_an_intent_narrowed_by_the_product_keeps_its_word(lexicon):
    p = parse_query("winter boots", lexicon)
    assert p.groups == [["Ankle boot", "winter"], ["Ankle boot", "boots"]]
    assert [u.label for u in p.understood] == ["winter: Ankle boot", "category: Ankle boot"]
    assert p.vector_text == "ankle boot ankle boot"
    p = parse_query("tops for the gym", lexicon)
    assert p.groups[1] == ["T-shirt", "gym"]


def test_intent_words_inside_a_shade_or_a_colour_phrase(lexicon):
    p = parse_query("hot pink dress", lexicon)  # a shade, not hot weather
    assert (p.colours, p.categories) == (["pink"], ["dress"])
    p = parse_query("black tie", lexicon)  # an occasion, not the colour black
    assert p.colours == [] and p.categories == ["dress", "shirt"]


def test_a_negated_intent_is_a_negative_word(lexicon):
    p = parse_query("dresses not for the beach", lexicon)
    assert p.categories == ["dress"] and p.negative_words == ["beach"]


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
    assert synonym_expansions([Row("a", "b"), Row("b", "a")]) == {"a": ["b"], "b": ["a"]}


def test_expansion_keeps_the_order_targets_were_written_in():
    rows = [Row("winter", "coat, pullover, ankle boot"), Row("jumper", "pullover", two_way=True)]
    assert synonym_expansions(rows)["winter"] == ["coat", "pullover", "ankle boot", "jumper"]


def test_an_intent_is_one_way():
    from django.core.exceptions import ValidationError

    from search.models import Synonym

    with pytest.raises(ValidationError, match="one-way"):
        Synonym(term="winter", targets="coat", two_way=True, intent=True).clean()

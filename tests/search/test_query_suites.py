"""The evaluation's query suites are well-formed data, and relevance means what they say."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clip_train.fashion import CATEGORIES, PALETTE
from search.benchmarks.suites import PARTS, Row, relevance, suites_load

NAMES = {name for name, _, _ in CATEGORIES}


def test_every_suite_has_a_tuning_and_a_held_out_part_that_never_overlap():
    suites = suites_load()
    assert {"synonyms", "shades", "typos", "category", "price", "phrasings"} <= set(suites)
    for name, suite in suites.items():
        tuning, heldout = ({q["q"].lower() for q in suite[p]} for p in PARTS)
        assert tuning and heldout, name
        assert not tuning & heldout, (name, tuning & heldout)
        for query in suite["tuning"] + suite["heldout"]:
            cats = query.get("category")
            cats = [cats] if isinstance(cats, str) else cats or []
            assert set(cats) <= NAMES, query
            assert query.get("colour", "red") in PALETTE, query


def test_held_out_shades_and_synonyms_are_not_the_tuning_ones():
    suites = suites_load()
    for name in ("shades", "synonyms"):
        first = {q["q"].split()[0 if name == "shades" else 1] for q in suites[name]["tuning"]}
        held = {q["q"].split()[0 if name == "shades" else 1] for q in suites[name]["heldout"]}
        assert not first & held, name


@pytest.mark.parametrize(
    ("query", "row", "expected"),
    [
        ({"colour": "red", "category": "Bag"}, ("red", "Bag", "10"), True),
        ({"colour": "red", "category": "Bag"}, ("blue", "Bag", "10"), False),
        ({"category": ["Shirt", "T-shirt"]}, ("blue", "T-shirt", "10"), True),
        ({"category": "Bag", "max_price": 50}, ("red", "Bag", "50.01"), False),
        ({"category": "Bag", "min_price": 50}, ("red", "Bag", "50"), True),
        ({"category": "Bag", "not_colour": "red"}, ("red", "Bag", "10"), False),
    ],
)
def test_relevance(query, row, expected):
    colour, category, price = row
    assert relevance(query, {})(Row(colour, category, "x", Decimal(price))) is expected

"""'This, but ...' modifiers are read like queries: a shade is its colour, a negation and a
price phrase hold, and text that needs no reading goes to the model as typed."""

from __future__ import annotations

import pytest

from search.services import indexing
from shop.models import ProductImage

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(make_product):
    made = [
        make_product(f"{c} {cat}", category=cat, colour=c, price=p, colours=[rgb])
        for c, rgb in (("red", (210, 30, 40)), ("blue", (30, 80, 200)))
        for cat, p in (("Sneaker", "40"), ("Dress", "90"))
    ]
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    return made


def _similar(client, product, **body):
    r = client.post(
        "/api/search/image/",
        {"product": product.pk, "text_weight": 0.5, **body},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    return r.json()["results"]


def test_a_shade_is_its_catalog_colour(client, catalog):
    navy = _similar(client, catalog[0], text="navy")
    blue = _similar(client, catalog[0], text="blue")
    assert [h["id"] for h in navy] == [h["id"] for h in blue]
    assert [h["score"] for h in navy] == [h["score"] for h in blue]


def test_a_negated_colour_and_a_price_phrase_hold(client, catalog):
    assert all(h["colour"] != "red" for h in _similar(client, catalog[1], text="not red"))
    assert all(float(h["price"]) <= 50 for h in _similar(client, catalog[1], text="under 50"))


def test_plain_words_go_to_the_model_as_typed(client, catalog):
    from search.services.understanding import modifier_understood

    assert modifier_understood("a red sneaker") is None
    assert modifier_understood("stripes") is None
    assert modifier_understood("in navy").vector_text == "blue"


def test_a_category_alone_is_a_change_of_category():
    from search.query_understanding import ParsedQuery
    from search.services.understanding import category_change

    assert category_change(ParsedQuery(query="as a boot", categories=["ankle-boot"]))
    assert not category_change(
        ParsedQuery(query="a red boot", categories=["ankle-boot"], colours=["red"])
    )
    assert not category_change(ParsedQuery(query="stripes"))


@pytest.mark.parametrize("product_index", range(0, 30, 4))
def test_this_but_as_another_category_keeps_the_looks_colour(
    client, small_demo_catalog, product_index
):
    # 30 products, one per (colour, category) pair: for a photo of a (colour, A) product,
    # "as a B" has exactly one right answer, the (colour, B) product.
    look = small_demo_catalog[product_index]
    wanted = next(
        p
        for p in small_demo_catalog
        if p.colour == look.colour and p.category_id != look.category_id
    )
    image = look.images.first().image
    with image.open("rb") as f:
        r = client.post(
            "/api/search/image/",
            {"image": f, "text": f"as a {wanted.category.name.lower()}", "limit": 3},
        )
    assert r.status_code == 200, r.content
    top = [h["id"] for h in r.json()["results"]]
    assert wanted.pk in top, (look.colour, look.category.name, wanted.category.name, r.json())


def test_a_looks_colour_comes_from_its_photos_when_it_mixes_a_product_and_a_photo(
    small_demo_catalog,
):
    # A product alone lends its own colour; a photo in the look must be looked at, however
    # faint the product's share, or "this, but as a boot" keeps the wrong colour.
    from PIL import Image

    from search.services.query import Term, look_colour, require_active_model

    model = require_active_model()
    product = small_demo_catalog[0]
    other = next(p for p in small_demo_catalog if p.colour != product.colour)
    with other.images.first().image.open("rb") as f:
        photo = Image.open(f).convert("RGB")
    alone = look_colour(model, [Term(kind="image", image=photo)])
    mixed = look_colour(
        model,
        [Term(kind="product", product_id=product.pk, weight=0.01), Term(kind="image", image=photo)],
    )
    assert alone == other.colour.lower()
    assert mixed == alone
    assert (
        look_colour(model, [Term(kind="product", product_id=product.pk)]) == product.colour.lower()
    )


def test_a_product_alone_lends_its_catalog_colour_not_what_its_photo_looks_like(
    small_demo_catalog, make_product
):
    # A shop's own colour name wins over the model's reading of the photo: a "green" product
    # whose photo the model reads as blue stays green for "this, but as a boot".
    from PIL import Image

    from search.services.query import Term, look_colour, require_active_model

    model = require_active_model()
    product = make_product("Green tee", colour="green", colours=[(30, 80, 200)])
    image = product.images.get()
    indexing.images_embed(image_ids=[image.pk])
    with image.image.open("rb") as f:
        photo = Image.open(f).convert("RGB")
    assert look_colour(model, [Term(kind="image", image=photo)]) != "green"
    assert look_colour(model, [Term(kind="product", product_id=product.pk)]) == "green"


def test_a_change_of_category_is_a_boost_not_a_filter(client, small_demo_catalog):
    # "As a sneaker" puts the catalog's 3 sneakers first; the page goes on with the nearest
    # other products, each once.
    look = next(p for p in small_demo_catalog if p.category.slug != "sneaker")
    with look.images.first().image.open("rb") as f:
        r = client.post("/api/search/image/", {"image": f, "text": "as a sneaker", "limit": 10})
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    categories = [h["category"] for h in results]
    assert categories[:3] == ["sneaker"] * 3 and "sneaker" not in categories[3:]
    assert len(results) == 10 and len({h["id"] for h in results}) == 10

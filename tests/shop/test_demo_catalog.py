"""The Fashion-MNIST demo catalog: deterministic, colourised, balanced, idempotent."""

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from clip_train.fashion import BACKGROUND, CATEGORIES, PALETTE, colourise, load_split, sample_items
from shop.demo.catalog import demo_catalog_build
from shop.models import Product


@pytest.fixture(scope="module")
def t10k():
    return load_split("t10k")


def test_splits_are_the_real_dataset(t10k):
    images, labels = t10k
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert sorted(Counter(labels.tolist()).values()) == [1000] * 10


@pytest.mark.parametrize("colour", ["red", "blue", "black", "white"])
def test_colourised_item_has_its_colour_on_a_light_background(t10k, colour):
    images, labels = t10k
    gray = images[int(np.flatnonzero(labels == 7)[0])]  # a sneaker
    photo = np.asarray(colourise(gray, colour, size=96)).astype(int)
    assert photo.shape == (96, 96, 3)
    corner = photo[:4, :4].reshape(-1, 3)
    assert np.abs(corner - BACKGROUND).max() <= 3
    ink = np.asarray(Image.fromarray(gray).resize((96, 96), Image.Resampling.BICUBIC))
    item = photo[ink > 220].mean(axis=0)  # solid parts of the garment
    assert np.abs(item - np.array(PALETTE[colour])).max() < 30, (colour, item)


def test_sampling_is_deterministic_and_balanced(t10k):
    _, labels = t10k
    a = sample_items(labels, 220, seed=3, balanced=True)
    assert a == sample_items(labels, 220, seed=3, balanced=True)
    assert a != sample_items(labels, 220, seed=4, balanced=True)
    pairs = Counter((i.colour, i.label) for i in a)
    assert len(pairs) == len(PALETTE) * len(CATEGORIES) and set(pairs.values()) == {2}
    assert all(labels[i.index] == i.label for i in a)
    assert len({i.index for i in a}) == 220


@pytest.mark.django_db
def test_build_creates_products_once(t10k):
    assert demo_catalog_build(count=30, seed=1) == 30
    assert demo_catalog_build(count=30, seed=1) == 0  # re-running adds nothing twice
    p = Product.objects.select_related("category").first()
    assert p.title == f"{p.colour.capitalize()} {p.category.name}"
    assert p.colour in PALETTE and p.images.count() == 1
    assert p.images.get().width == 128 and p.price > 0

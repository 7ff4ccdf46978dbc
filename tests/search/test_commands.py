"""The management commands users run, run as commands: their output and their effect."""

import io

import pytest
from django.core.management import CommandError, call_command

from shop.models import Category, Product

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_clip_check_prints_the_loaded_model(settings, tiny_model_dir):
    out = run("clip_check")
    assert f"CLIP model 'shop-clip-tiny' weights 'local-dir:{tiny_model_dir}'" in out
    assert "64 dims on cpu" in out and "identity " in out


def test_clip_check_fails_with_advice_when_weights_are_missing(settings, tmp_path):
    settings.CLIP_PRETRAINED = f"local-dir:{tmp_path / 'nothing-here'}"
    with pytest.raises(CommandError) as failed:
        run("clip_check")
    assert "shop-clip-tiny" in str(failed.value) and "nothing-here" in str(failed.value)


def test_seed_demo_creates_the_catalog_once(settings):
    out = run("seed_demo", "--count", "20", "--seed", "3", "--size", "32", verbosity=0)
    assert "Created 20 products (20 in total)." in out
    assert Product.objects.count() == 20
    assert Category.objects.count() == 10  # Fashion-MNIST's ten classes
    product = Product.objects.select_related("category").first()
    image = product.images.get()
    assert (image.width, image.height) == (32, 32)
    assert product.colour and product.colour in product.title.lower()
    # Idempotent, and --if-empty does nothing on a catalog that has products.
    assert "Created 0 products (20 in total)." in run(
        "seed_demo", "--count", "20", "--seed", "3", "--size", "32", verbosity=0
    )
    assert "Catalog already has 20 products; not seeding." in run(
        "seed_demo", "--if-empty", verbosity=0
    )
    assert Product.objects.count() == 20

"""Shared fixtures, and the throwaway PostgreSQL + Redis + media folder of a test run.

App modules are imported inside the fixtures: this file loads before Django is set up.
"""

from __future__ import annotations

import atexit
import importlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import environ
import pytest

from config import devservices
from tests.factories import (
    DEMO_MODEL_DIR,
    TINY_CONFIG,
    encode,
    pattern,
    png_bytes,
    save_random_tiny,
)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Start a fresh PostgreSQL + Redis (``config.devservices``) unless DATABASE_URL is set,
    and a media folder unless MEDIA_ROOT is set; both are removed at exit.

    The variables are exported, so the worker processes tests start (``tests/workers.py``)
    use the same services. pytest-django has already imported the settings (before any
    conftest loads; importing them starts nothing), so they are pointed at the services too.
    """
    started: dict[str, str] = {}
    if "DATABASE_URL" not in os.environ:
        started = devservices.start_ephemeral().environment()
    if "MEDIA_ROOT" in os.environ:
        started.pop("MEDIA_ROOT", None)
    elif "MEDIA_ROOT" not in started:
        media = tempfile.mkdtemp(prefix="shop-media-")
        atexit.register(shutil.rmtree, media, True)
        started["MEDIA_ROOT"] = media
    os.environ.update(started)
    _point_settings_at(started)


def _point_settings_at(variables: dict[str, str]) -> None:
    """What ``config/settings/base.py`` derives from these variables, for loaded settings."""
    from django.conf import settings

    if "DATABASE_URL" in variables:
        # In place: Django's connection handler holds this very dict.
        settings.DATABASES["default"].update(environ.Env.db_url_config(variables["DATABASE_URL"]))
    if "REDIS_URL" in variables:
        redis = settings.REDIS_URL = variables["REDIS_URL"]
        settings.CACHES["default"]["LOCATION"] = redis
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            if name not in os.environ:
                setattr(settings, name, redis)
    if "MEDIA_ROOT" in variables:
        settings.MEDIA_ROOT = Path(variables["MEDIA_ROOT"])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_random_tiny(folder)
    return folder


@pytest.fixture(autouse=True)
def clip_tiny(settings, tiny_model_dir):
    """Every test embeds with the tiny model, loaded through the users' loading path."""
    settings.CLIP_MODEL = TINY_CONFIG
    settings.CLIP_PRETRAINED = f"local-dir:{tiny_model_dir}"
    settings.CLIP_BATCH_SIZE = 8
    return settings


@pytest.fixture(autouse=True)
def _seeded_synonyms(request, _django_db_marker):
    """The synonyms a fresh installation has (data migrations 0003 and 0005), in every
    database test.

    Transactional tests (live server, workers) flush every table when they end, data-migration
    rows included, so a later test would otherwise see a shop with no synonyms at all.
    """
    uses_db = request.node.get_closest_marker("django_db") or {
        "db",
        "transactional_db",
        "live_server",
    } & set(request.fixturenames)
    if uses_db:
        from django.apps import apps

        from search.models import Synonym

        if not Synonym.objects.exists():
            for migration in ("0003_synonyms", "0005_synonym_intents"):
                importlib.import_module(f"search.migrations.{migration}").seed(apps, None)
    yield


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def make_product(db):
    from decimal import Decimal

    from shop import services

    counter = iter(range(10_000))

    def _make(title="Thing", *, category="misc", price="10.00", colours=((200, 30, 30),), **kw):
        cat = services.category_get_or_create(name=category)
        files = [(f"img{next(counter)}.png", io.BytesIO(png_bytes(c))) for c in colours]
        return services.product_create(
            title=title, price=Decimal(price), category=cat, images=files, **kw
        )

    return _make


@pytest.fixture
def indexed(make_product):
    """A red product and a blue one, embedded: an index to search for input tests."""
    from search.services import indexing
    from shop.models import ProductImage

    make_product("Red", category="shoes", colours=[(220, 20, 30)])
    make_product("Blue", category="bags", colours=[(20, 40, 220)])
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))


# Catalogs whose right answers are known, shared by the search, page and browser tests.


@pytest.fixture
def catalog(db):
    """Six products, each with its own random-pattern photo; product 'twin' copies 'a'."""
    from decimal import Decimal

    from search.services import indexing
    from shop import services
    from shop.models import ProductImage

    cat = services.category_get_or_create(name="Patterns")
    made = {}
    for name, seed, price in [
        ("a", 1, "10"),
        ("b", 2, "20"),
        ("c", 3, "30"),
        ("d", 4, "40"),
        ("e", 5, "50"),
        ("twin", 1, "60"),
    ]:
        made[name] = services.product_create(
            title=name,
            price=Decimal(price),
            category=cat,
            images=[(f"{name}.png", io.BytesIO(encode(pattern(seed), "PNG")))],
        )
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    return made


@pytest.fixture
def small_demo_catalog(settings):
    """30 held-out Fashion-MNIST products, 10 categories x 3 colours, with the trained demo
    model: the right category and colour of each product's photo are known."""
    from search.services import indexing
    from shop.demo.catalog import demo_catalog_build
    from shop.models import Product, ProductImage

    settings.CLIP_MODEL = "shop-clip-demo"
    settings.CLIP_PRETRAINED = f"local-dir:{DEMO_MODEL_DIR}"
    demo_catalog_build(count=30, seed=7, split="t10k", balanced=True)
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    indexing.product_texts_embed(product_ids=list(Product.objects.values_list("id", flat=True)))
    return list(Product.objects.select_related("category").order_by("pk"))


@pytest.fixture
def demo_catalog(settings):
    """220 held-out products, two per (colour, category) pair, with the trained demo model."""
    from search.services import indexing
    from shop.demo.catalog import demo_catalog_build
    from shop.models import Product, ProductImage

    settings.CLIP_MODEL = "shop-clip-demo"
    settings.CLIP_PRETRAINED = f"local-dir:{DEMO_MODEL_DIR}"
    demo_catalog_build(count=220, seed=7, split="t10k", balanced=True)
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    indexing.product_texts_embed(product_ids=list(Product.objects.values_list("id", flat=True)))
    return {(p.colour, p.category.name): p for p in Product.objects.select_related("category")}

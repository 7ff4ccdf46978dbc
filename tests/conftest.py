"""Shared fixtures, and the throwaway PostgreSQL + Redis + media folder of a test run."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import environ
import pytest
from PIL import Image

from config import devservices

TINY_CONFIG = "shop-clip-tiny"


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


def _save_random_tiny(folder: Path, config: str = TINY_CONFIG, seed: int = 0) -> None:
    """A random open_clip model of ``config`` saved as a 'local-dir' folder (seeded)."""
    from search.embeddings.clip import import_torch

    torch, open_clip = import_torch()
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model(config)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = open_clip.get_model_config(config)
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": {}})
    )
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        folder / "open_clip_model.safetensors",
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny"
    _save_random_tiny(folder)
    return folder


@pytest.fixture(autouse=True)
def clip_tiny(settings, tiny_model_dir):
    """Every test embeds with the tiny model, loaded through the users' loading path."""
    settings.CLIP_MODEL = TINY_CONFIG
    settings.CLIP_PRETRAINED = f"local-dir:{tiny_model_dir}"
    settings.CLIP_BATCH_SIZE = 8
    return settings


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


def png_bytes(colour=(200, 30, 30), size=(64, 64), mode="RGB", fmt="PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt, **save)
    return buf.getvalue()


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

"""Shared fixtures. The test settings have already started a fresh PostgreSQL + Redis."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

TINY_CONFIG = "shop-clip-tiny"


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

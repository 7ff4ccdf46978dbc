"""The shopper's query photo, kept for a while so a search can be refined without re-uploading.

A photo search page keeps the photo under an unguessable key in the cache (Redis), never in
the catalog's media: refining the region, the words, the weights, the filters or the page
sends the key instead of the file. The photo is stored losslessly (PNG) after decoding, so the
first search and every refinement see the very same pixels. It expires after
``QUERY_PHOTO_SECONDS``; with the cache down the first search still works and a refinement
asks for the photo again.
"""

from __future__ import annotations

import io
import re
import secrets

from django.core.cache import cache
from PIL import Image

QUERY_PHOTO_SECONDS = 3600
# CLIP sees 224 px; a 20% region of a 1280 px photo is still larger than that.
MAX_SIDE = 1280
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _cache_key(key: str) -> str:
    return "query-photo:" + key


def query_photo_encode(image: Image.Image) -> bytes:
    """The photo as stored and searched: at most ``MAX_SIDE`` per side, PNG (lossless)."""
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=1)  # fast: the bytes live an hour at most
    return buf.getvalue()


def query_photo_keep(*, image: Image.Image) -> tuple[str, bytes]:
    """Store the photo under a fresh key; returns (key, the stored PNG bytes)."""
    data = query_photo_encode(image)
    key = secrets.token_urlsafe(18)
    cache.set(_cache_key(key), data, QUERY_PHOTO_SECONDS)
    return key, data


def query_photo_get(*, key: str) -> bytes | None:
    """The stored PNG bytes, or None when the key is malformed, unknown or expired."""
    if not isinstance(key, str) or not _KEY.match(key):
        return None
    data = cache.get(_cache_key(key))
    if data is not None:
        cache.touch(_cache_key(key), QUERY_PHOTO_SECONDS)  # kept while the shopper refines
    return data

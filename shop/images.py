"""Decoding images from untrusted bytes: one place that knows PIL's sharp edges."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from typing import IO

import numpy as np
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

# Above this many pixels PIL would decompress gigabytes for a small file (a "bomb").
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_DATA_URL = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,(?P<data>.+)$", re.DOTALL)


class InvalidImage(ValueError):
    """The bytes are not a usable image; ``str()`` is a message for the person who sent them."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def max_upload_bytes() -> int:
    return settings.SEARCH_MAX_UPLOAD_BYTES


def open_image(source: IO[bytes] | bytes) -> Image.Image:
    """Decode an image fully, upright (EXIF), first frame, in RGB/RGBA/L; or raise InvalidImage."""
    data = source if isinstance(source, bytes) else source.read(max_upload_bytes() + 1)
    if not data:
        raise InvalidImage(
            "The uploaded file is empty (0 bytes). Choose a JPEG, PNG, WebP or GIF photo."
        )
    if len(data) > max_upload_bytes():
        raise InvalidImage(
            f"The image is larger than {max_upload_bytes() // (1024 * 1024)} MB. Upload a smaller photo.",
            status=413,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise Image.DecompressionBombError("too many pixels")
            image.seek(0)  # animated GIF/WebP: the first frame
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(
            f"The image has too many pixels (limit {MAX_PIXELS:,}). Resize it and try again."
        ) from None
    except UnidentifiedImageError:
        raise InvalidImage(
            "The file is not an image we can read. Upload a JPEG, PNG, WebP or GIF photo."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(
            f"The image is damaged or truncated ({exc}). Upload the photo again."
        ) from None
    return normalise_mode(ImageOps.exif_transpose(image))


def normalise_mode(image: Image.Image) -> Image.Image:
    """Bring odd modes (CMYK, 16-bit, palette, I;16) to RGB, RGBA or L."""
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    if image.mode in ("P", "PA", "LA") or "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit greyscale: map 0..65535 onto 0..255 instead of clipping everything to white.
        arr = np.asarray(image, dtype=np.float32)
        scale = 255.0 / 65535.0 if float(arr.max(initial=0)) > 255 else 1.0
        return Image.fromarray((arr * scale).clip(0, 255).astype("uint8"), "L")
    return image.convert("RGB")


def decode_data_url(value: str) -> bytes:
    match = _DATA_URL.match(value.strip())
    if not match:
        raise InvalidImage("The image must be a base64 data URL like 'data:image/jpeg;base64,...'.")
    try:
        return base64.b64decode(match.group("data"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(
            "The data URL's base64 payload is invalid. Encode the file again."
        ) from None


def crop_fraction(image: Image.Image, box: tuple[float, float, float, float] | None) -> Image.Image:
    """Crop to ``(x, y, w, h)`` given as fractions of the upright image (a shopper's selection)."""
    if box is None:
        return image
    x, y, w, h = box
    left, top = round(x * image.width), round(y * image.height)
    right = max(left + 1, round((x + w) * image.width))
    bottom = max(top + 1, round((y + h) * image.height))
    return image.crop((left, top, min(right, image.width), min(bottom, image.height)))

"""Decoding images from untrusted bytes: one place that knows PIL's sharp edges."""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
import warnings
from typing import IO

import numpy as np
from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

# Above this many pixels PIL would decompress gigabytes for a small file (a "bomb").
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# What a shop photo can be, read from the header before any pixel is decoded: each side, and
# the long side over the short one (a 6000 x 60 banner is fine; 1,000,000 x 8 is an attack).
MAX_SIDE = 12_000
MAX_ASPECT = 100
# The decoded image is never larger than this per side (nor, when the photo is larger, smaller
# than half of it): JPEG decodes at a reduced scale (draft: 8000 x 6000 is decoded as
# 2000 x 1500, 9 MB, not 144 MB), anything else is reduced right after decoding (and held to
# IMAGE_MAX_FULL_DECODE_PIXELS before). CLIP looks at 224 px, the page shows 320 px, and a
# shopper's crop of a tenth of the photo still has 200 px.
MAX_DECODED_SIDE = 2048
# The formats a shop photo can be; PIL registers forty more (PSD, DDS, BLP, SPIDER, AVIF...)
# whose decoders are not for untrusted bytes. "MPO" is how PIL names many phone JPEGs.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_OPENED_AS = frozenset(FORMATS) | {"MPO"}
ALLOWED = "JPEG, PNG, WebP, GIF, BMP or TIFF"
# Only JPEG decodes at a reduced scale; PIL decodes the others whole before they can be
# shrunk, so their pixel count is held to settings.IMAGE_MAX_FULL_DECODE_PIXELS instead (a
# 200 KB flat 7000 x 7000 PNG would cost 200 MB and seconds).
_REDUCED_DECODE = frozenset({"JPEG", "MPO"})
_SHOWN_AS = {"WEBP": "WebP"}

_DATA_URL = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,(?P<data>.+)$", re.DOTALL)


class InvalidImage(ValueError):
    """The bytes are not a usable image; ``str()`` is a message for the person who sent them."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def max_upload_bytes() -> int:
    return settings.SEARCH_MAX_UPLOAD_BYTES


def _other_format(prefix: bytes) -> str | None:
    """The name of a format PIL knows but we refuse, judged by its magic bytes only."""
    Image.init()
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        try:
            if name not in _OPENED_AS and accept and accept(prefix):
                return name
        except Exception:  # an accept function is a prefix test; never let it matter
            continue
    return None


_ALLOWED_SIZES = (
    f"Photos up to {MAX_SIDE:,} pixels per side, {MAX_PIXELS:,} pixels in all and an "
    f"aspect ratio of at most {MAX_ASPECT}:1 are accepted."
)


def check_dimensions(width: int, height: int, *, fmt: str = "JPEG") -> None:
    """Refuse, from the header alone, sizes no shop photo has, or that ``fmt`` cannot decode
    in memory proportional to the output; the message says what is allowed."""
    allowed = _ALLOWED_SIZES
    if width < 1 or height < 1:
        raise InvalidImage(f"The image claims {width} x {height} pixels. {allowed}")
    if width * height > MAX_PIXELS:
        raise InvalidImage(
            f"The image has too many pixels ({width:,} x {height:,}; limit {MAX_PIXELS:,}). "
            f"Resize it and try again. {allowed}"
        )
    if max(width, height) > MAX_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidImage(
            f"The image is {width:,} x {height:,} pixels, too long or too narrow. {allowed}"
        )
    full = settings.IMAGE_MAX_FULL_DECODE_PIXELS
    if fmt not in _REDUCED_DECODE and width * height > full:
        shown = _SHOWN_AS.get(fmt, fmt)
        raise InvalidImage(
            f"The image has too many pixels for a {shown} ({width:,} x {height:,}; "
            f"{shown} images are accepted up to {full:,} pixels, JPEG up to {MAX_PIXELS:,}). "
            "Resize it or save it as JPEG and try again."
        )


def open_image(source: IO[bytes] | bytes) -> Image.Image:
    """Decode an image upright (EXIF), first frame, in RGB/RGBA/L, at most ``MAX_DECODED_SIDE``
    per side; or raise InvalidImage (400; 413 too many bytes; 415 a format we do not take)."""
    data = source if isinstance(source, bytes) else source.read(max_upload_bytes() + 1)
    if not data:
        raise InvalidImage(f"The uploaded file is empty (0 bytes). Choose a {ALLOWED} photo.")
    if len(data) > max_upload_bytes():
        raise InvalidImage(
            f"The image is larger than {max_upload_bytes() // (1024 * 1024)} MB. Upload a smaller photo.",
            status=413,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            fmt = image.format
            check_dimensions(image.width, image.height, fmt=fmt)
            image.seek(0)  # animated GIF/WebP: the first frame
            if fmt in _REDUCED_DECODE:  # decode at 1/2, 1/4 or 1/8 scale straight away
                # the smallest JPEG scale whose long side is still >= half the cap
                scale = MAX_DECODED_SIDE / 2 / max(image.size)
                if scale < 1:
                    image.draft(
                        image.mode, (round(image.width * scale), round(image.height * scale))
                    )
            image.load()
            # Upright before shrinking: a TIFF's orientation is a tag of the file, which the
            # shrunk copy no longer has; in place, so an unrotated photo is not copied.
            ImageOps.exif_transpose(image, in_place=True)
            image = normalise_mode(_shrink(image))
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(
            f"The image has too many pixels (limit {MAX_PIXELS:,}). Resize it and try again. "
            + _ALLOWED_SIZES
        ) from None
    except UnidentifiedImageError:
        other = _other_format(data[:16])
        if other:
            raise InvalidImage(
                f"{other} images are not accepted. Upload a {ALLOWED} photo.", status=415
            ) from None
        raise InvalidImage(
            f"The file is not an image we can read. Upload a {ALLOWED} photo."
        ) from None
    except MemoryError:
        raise InvalidImage("The image is too large to decode. Upload a smaller photo.") from None
    except Exception as exc:  # noqa: BLE001 - any decoder or EXIF failure is the file's fault
        raise InvalidImage(
            f"The image is damaged or truncated ({type(exc).__name__}: {str(exc)[:200]}). "
            "Upload the photo again."
        ) from None
    image.format = fmt
    return image


# Modes whose pixels can be averaged: a palette index or a 1-bit pixel cannot (and 16-bit is
# not supported by reduce()); those take one byte (two) a pixel, so thumbnail() is cheap there.
_AVERAGEABLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F"})


def _shrink(image: Image.Image) -> Image.Image:
    """At most ``MAX_DECODED_SIDE`` per side and more than half of it. A box average by a whole
    factor is one pass with no intermediate: a 4000 x 4000 PNG decoded and shrunk in 0.4 s and
    +75 MB (RGB) or +137 MB (RGBA), where thumbnail()'s bicubic took 0.6 s / +108 MB and
    1.2 s / +169 MB."""
    side = max(image.size)
    if side <= MAX_DECODED_SIDE:
        return image
    if image.mode in _AVERAGEABLE:
        return image.reduce(math.ceil(side / MAX_DECODED_SIDE))
    image.thumbnail((MAX_DECODED_SIDE, MAX_DECODED_SIDE), reducing_gap=2.0)
    return image


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

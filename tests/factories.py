"""Test data builders, in one module: images (plain, patterned, odd and hostile files made
in memory), products, catalogs with known answers, and small CLIP models saved to disk."""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from search.embeddings.clip import import_torch


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def data_url(image: Image.Image) -> str:
    """The photo as a PNG data URL, as JSON clients send it."""
    return "data:image/png;base64," + base64.b64encode(encode(image, "PNG")).decode()


def red_square(size=(64, 64)) -> Image.Image:
    return Image.new("RGB", size, (220, 20, 30))


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (40, 40), (0, 200, 200, 0)), "JPEG")


def png16() -> bytes:
    return encode(Image.new("I;16", (40, 40), 40000), "PNG")


def rgba_png() -> bytes:
    im = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    im.paste((200, 0, 0, 255), (10, 10, 30, 30))
    return encode(im, "PNG")


def palette_png_transparent() -> bytes:
    im = Image.new("P", (40, 40), 0)
    im.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    im.paste(1, (10, 10, 30, 30))
    return encode(im, "PNG", transparency=0)


def greyscale_png() -> bytes:
    return encode(Image.new("L", (40, 40), 90), "PNG")


def exif_rotated_jpeg(image: Image.Image) -> bytes:
    """``image`` stored rotated 90° with EXIF orientation 6, so viewers show it upright."""
    stored = image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", exif=exif.tobytes(), quality=95)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 40), c) for c in [(200, 0, 0), (0, 0, 200), (0, 200, 0)]]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp() -> bytes:
    return encode(red_square(), "WEBP")


def one_pixel() -> bytes:
    return encode(Image.new("RGB", (1, 1), (10, 10, 10)), "PNG")


def panorama() -> bytes:
    return encode(Image.new("RGB", (6000, 60), (0, 120, 200)), "JPEG")


def truncated_jpeg() -> bytes:
    data = encode(Image.effect_noise((200, 200), 50).convert("RGB"), "JPEG")
    return data[: len(data) // 2]


def _png(ihdr: bytes, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bomb_png(width=20000, height=20000) -> bytes:
    """A valid PNG header claiming 20000x20000 pixels, with a tiny payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1))  # one row; the decoder would want 20000
    return _png(ihdr, idat)


@functools.cache  # compressing 196 MB of rows takes a second; tests share the bytes
def png_flat_rgba(width=7000, height=7000) -> bytes:
    """A complete, valid PNG of one RGBA colour: 200 KB for 7000 x 7000, which PIL decodes
    whole into 196 MB (PNG has no reduced-scale decode)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    row = b"\x00" + bytes((200, 30, 40, 255)) * width  # filter byte, then the pixels
    deflate = zlib.compressobj()
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    return _png(ihdr, idat)


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TEXT = b"hello, this is not an image\n"


TINY_CONFIG = "shop-clip-tiny"
DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "search/embeddings/weights/shop-clip-demo"


def png_bytes(colour=(200, 30, 30), size=(64, 64), mode="RGB", fmt="PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt, **save)
    return buf.getvalue()


def pattern(seed: int, size=64) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "RGB")


def save_random_tiny(folder: Path, config: str = TINY_CONFIG, seed: int = 0) -> None:
    """A random open_clip model of ``config`` saved as a 'local-dir' folder (seeded)."""
    torch, open_clip = import_torch()
    from safetensors.torch import save_file  # loads torch: only after import_torch()

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


# Hostile files, written by hand: headers of formats PIL can open but a shop does not take
# (each used to be a 500 from a decoder bug), and headers of allowed formats claiming sizes
# no photo has (each used to cost seconds and hundreds of MB).


def psd_truncated() -> bytes:
    """A PSD header (3 channels, 64 x 64, 8 bit RGB), empty sections and no pixels."""
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 64, 64, 8, 3) + struct.pack(">IIIH", 0, 0, 0, 0)


def dds_huge(width=1_507_344, height=8) -> bytes:
    """A 633-byte-class DDS claiming 1,507,344 x 8 pixels, uncompressed RGB, with no pixels."""
    pixel_format = struct.pack("<IIIIIIII", 32, 0x40, 0, 24, 0xFF0000, 0xFF00, 0xFF, 0)
    header = struct.pack("<IIIIIII", 124, 0x1007, height, width, 0, 0, 0) + b"\0" * 44
    return b"DDS " + header + pixel_format + struct.pack("<IIIII", 0x1000, 0, 0, 0, 0) + b"\0" * 500


def blp_broken() -> bytes:
    """A BLP2 header with an encoding PIL's decoder does not know: BLPFormatError."""
    return b"BLP2" + struct.pack("<IBBBB", 1, 9, 8, 8, 0) + struct.pack("<II", 64, 64) + b"\0" * 256


def spider_truncated() -> bytes:
    """A SPIDER header (big-endian floats: 64 slices... of a 64 x 64 image) and no data."""
    values = [1.0, 64.0, 0.0, 0.0, 64.0] + [0.0] * 7 + [256.0, 0.0, 256.0, 64.0 * 4] + [0.0] * 11
    values[4] = 1.0  # iform: 2D image
    values[11] = 64.0  # nsam
    values[12] = 1.0  # labrec
    values[21] = 256.0  # labbyt
    values[22] = 256.0  # lenbyt
    return struct.pack(">27f", *values)


def avif_header() -> bytes:
    """An ISO-BMFF "ftyp avif" box and no image: a RuntimeError from the AVIF decoder."""
    return struct.pack(">I", 24) + b"ftypavif" + struct.pack(">I", 0) + b"avifmif1" + b"\0" * 64


def webp_bad_exif() -> bytes:
    """A valid WebP whose EXIF block is garbage: SyntaxError from ``ImageOps.exif_transpose``."""
    return encode(red_square(), "WEBP", exif=b"Exif\x00\x00XX")


def png_huge_strip(width=1_000_000, height=8) -> bytes:
    """A small, valid PNG of 1,000,000 x 8 white pixels (about 8 KB)."""
    return bomb_png(width, height)

"""Bad input gets a clear 4xx, the server keeps serving, nothing is left on disk; odd but
valid images work."""

import base64
import os
import tempfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from shop.images import open_image
from tests import factories as im

pytestmark = pytest.mark.django_db

IMAGE_API = "/api/search/image/"


def upload(client, data: bytes, name="photo.png", **extra):
    return client.post(IMAGE_API, {"image": SimpleUploadedFile(name, data), **extra})


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


@pytest.fixture
def private_tmp(tmp_path, settings, monkeypatch):
    """A temp folder only this test writes to: Django's upload spooling and anything that asks
    ``tempfile`` go there, so "nothing left on disk" is not disturbed by other processes."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def temp_files(folder) -> set[str]:
    return set(os.listdir(folder))


@pytest.mark.parametrize(
    "payload, status, fragment",
    [
        (im.TEXT, 400, "not an image"),
        (im.PDF, 400, "not an image"),
        (im.SVG, 400, "not an image"),
        (b"", 400, "empty"),
        (im.truncated_jpeg(), 400, "damaged or truncated"),
        (im.bomb_png(), 400, "too many pixels"),
    ],
    ids=["text", "pdf", "svg", "zero-bytes", "truncated-jpeg", "decompression-bomb"],
)
def test_bad_uploads_get_a_clear_error(client, indexed, payload, status, fragment, private_tmp):
    before = temp_files(private_tmp)
    r = upload(client, payload)
    assert r.status_code == status, r.content
    assert fragment in r.json()["error"]
    assert temp_files(private_tmp) == before == set()
    assert client.get("/api/search/text/", {"q": "still serving"}).status_code == 200


def test_file_over_the_limit_is_413_and_not_kept(
    client, indexed, settings, private_tmp, monkeypatch
):
    from django.core.files import uploadedfile

    spooled = []
    real = uploadedfile.tempfile.NamedTemporaryFile

    def spy(*args, **kwargs):
        f = real(*args, **kwargs)
        spooled.append(f.name)
        return f

    monkeypatch.setattr(uploadedfile.tempfile, "NamedTemporaryFile", spy)
    settings.SEARCH_MAX_UPLOAD_BYTES = 50_000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10_000  # force Django to spool it to a temp file
    big = im.encode(Image.effect_noise((400, 400), 80).convert("RGB"), "PNG")
    assert len(big) > 50_000
    r = upload(client, big)
    assert r.status_code == 413
    assert "larger than" in r.json()["error"]
    assert spooled and all(os.path.dirname(n) == str(private_tmp) for n in spooled)
    assert temp_files(private_tmp) == set()  # the spooled upload is gone


def test_invalid_data_url(client, indexed):
    for bad in [
        "data:image/png;base64,@@@not-base64@@@",
        "http://example.com/x.png",
        "data:text/plain;base64,aGk=",
    ]:
        r = client.post(IMAGE_API, {"image": bad}, content_type="application/json")
        assert r.status_code == 400, bad
        assert "data URL" in r.json()["error"] or "base64" in r.json()["error"]


def test_malformed_json(client, indexed):
    r = client.post(IMAGE_API, '{"image": ', content_type="application/json")
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"text_weight": 1.5}, "text_weight"),
        ({"text_weight": -0.1}, "text_weight"),
        ({"crop": "0.5,0.5,0.9,0.9"}, "crop"),
        ({"crop": "a,b,c,d"}, "crop"),
        ({"category": "unknown-cat"}, "Unknown category"),
    ],
)
def test_wrong_parameters(client, indexed, body, fragment):
    r = client.post(
        IMAGE_API,
        {"image": data_url(im.encode(im.red_square(), "PNG")), **body},
        content_type="application/json",
    )
    assert r.status_code == 400
    assert fragment in r.json()["error"]


def test_hybrid_weights_out_of_range_and_all_negative(client, indexed):
    r = client.post("/api/search/hybrid/", {"text": {"red": 3.0}}, content_type="application/json")
    assert r.status_code == 400 and "text" in r.json()["error"]
    r = client.post("/api/search/hybrid/", {"text": {"red": -1.0}}, content_type="application/json")
    assert r.status_code == 400 and "positive weight" in r.json()["error"]
    r = client.post("/api/search/hybrid/", {}, content_type="application/json")
    assert r.status_code == 400


def test_unknown_product_is_404(client, indexed):
    assert client.get("/api/products/999999/similar/").status_code == 404
    r = client.post(IMAGE_API, {"product": 999999}, content_type="application/json")
    assert r.status_code == 404 and "does not exist" in r.json()["error"]
    r = client.post("/api/describe/", {"product": 999999}, content_type="application/json")
    assert r.status_code == 404


def test_pages_show_errors_too(client, indexed):
    r = client.post("/search/photo/", {"image": SimpleUploadedFile("x.txt", im.TEXT)})
    assert r.status_code == 400
    assert "not an image" in r.content.decode()
    r = client.get("/search/", {"q": "x", "category": "nope"})
    assert r.status_code == 400 and "Unknown category" in r.content.decode()


ODD_BUT_VALID = {
    "cmyk-jpeg": im.cmyk_jpeg,
    "png-16bit": im.png16,
    "rgba-png": im.rgba_png,
    "palette-png-transparent": im.palette_png_transparent,
    "greyscale": im.greyscale_png,
    "animated-gif": im.animated_gif,
    "webp": im.webp,
    "1x1": im.one_pixel,
    "panorama": im.panorama,
}


@pytest.mark.parametrize("name", ODD_BUT_VALID)
def test_odd_images_work(client, indexed, name):
    r = upload(client, ODD_BUT_VALID[name](), name=f"{name}.img")
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == 2


def test_decoded_modes_are_usable():
    assert open_image(im.cmyk_jpeg()).mode == "RGB"
    grey16 = open_image(im.png16())
    assert grey16.mode == "L" and 100 < np.asarray(grey16).mean() < 255
    rgba = open_image(im.palette_png_transparent())
    assert rgba.mode == "RGBA" and rgba.getpixel((0, 0))[3] == 0
    gif = open_image(im.animated_gif())
    assert gif.convert("RGB").getpixel((5, 5)) == (200, 0, 0)  # the first frame


def test_exif_rotated_photo_is_searched_upright():
    upright = Image.new("RGB", (60, 30), (255, 255, 255))
    upright.paste((200, 0, 0), (0, 0, 30, 30))  # red on the left when upright
    decoded = open_image(im.exif_rotated_jpeg(upright))
    assert decoded.size == (60, 30)
    r, g, b = decoded.getpixel((5, 15))
    assert r > 150 and g < 80


def test_photo_just_under_the_limit_stays_in_memory(client, indexed, settings, private_tmp):
    """Django spools an upload to disk when the whole request body passes
    FILE_UPLOAD_MAX_MEMORY_SIZE, so that allows for the multipart framing around the photo."""
    import io

    from django.core.files import uploadedfile

    buf = io.BytesIO()
    Image.new("RGB", (1870, 1868), (200, 30, 30)).save(buf, "BMP")  # ~10.48 MB, uncompressed
    # Padded to 100 bytes under the limit (BMP readers ignore what follows the pixels).
    photo = buf.getvalue().ljust(settings.SEARCH_MAX_UPLOAD_BYTES - 100, b"\0")
    spooled = []
    real = uploadedfile.tempfile.NamedTemporaryFile
    uploadedfile.tempfile.NamedTemporaryFile = lambda *a, **k: spooled.append(1) or real(*a, **k)
    try:
        r = upload(client, photo, name="big.bmp", text="red", text_weight="0.3")
    finally:
        uploadedfile.tempfile.NamedTemporaryFile = real
    assert r.status_code == 200, r.content[:500]
    assert spooled == [] and temp_files(private_tmp) == set()

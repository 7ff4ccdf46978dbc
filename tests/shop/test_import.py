"""Bulk import: CSV and JSON Lines, bad rows reported while good ones import, re-runs."""

import csv
import functools
import io
import json
import threading
from decimal import Decimal
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from django.core.management import call_command

from search.models import ImageEmbedding, TextEmbedding
from search.services import indexing
from shop.models import Product, ProductImage
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, colour in [("red.png", (200, 0, 0)), ("blue.png", (0, 0, 200))]:
        (folder / name).write_bytes(png_bytes(colour))
    (folder / "green.jpg").write_bytes(png_bytes((0, 200, 0), fmt="JPEG"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return folder


def _write_csv(path, rows):
    header = ["sku", "title", "description", "price", "currency", "category", "colour"]
    header += ["attributes", "in_stock", "images"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _import(path, **options):
    out = io.StringIO()
    call_command("import_catalog", str(path), stdout=out, verbosity=0, **options)
    return out.getvalue()


CSV_ROWS = [
    # line 2: two images, attributes, out of stock
    ["SKU-1", "Red dress", "Silk", "49.90", "eur", "Dresses", "red", '{"size": "M"}', "no",
     "photos/red.png|photos/blue.png"],
    # line 3: no sku -> hash key
    ["", "Green shirt", "", "19", "", "Shirts", "green", "", "", "photos/green.jpg"],
    ["SKU-3", "", "no title", "10", "", "Shirts", "", "", "", "photos/red.png"],  # line 4
    ["SKU-4", "Cheap?", "", "abc", "", "Shirts", "", "", "", "photos/red.png"],  # line 5
    ["SKU-5", "Broken", "", "5", "", "Shirts", "", "", "", "photos/broken.jpg"],  # line 6
    ["SKU-6", "Missing", "", "5", "", "Shirts", "", "", "", "photos/nope.png"],  # line 7
    ["SKU-7", "Bad attrs", "", "5", "", "Shirts", "", "{size", "", "photos/red.png"],  # line 8
    ["SKU-8", "Blue hat", "", "7.5", "USD", "Hats", "blue", "{}", "yes", "photos/blue.png"],
]  # fmt: skip


def test_csv_imports_good_rows_and_reports_bad_ones(tmp_path, photos):
    path = _write_csv(tmp_path / "catalog.csv", CSV_ROWS)
    report = tmp_path / "report.csv"
    out = _import(path, report=report)

    assert Product.objects.count() == 3
    dress = Product.objects.get(external_id="SKU-1")
    assert dress.title == "Red dress" and dress.price == Decimal("49.90")
    assert dress.currency == "EUR" and dress.category.name == "Dresses"
    assert dress.attributes == {"size": "M"} and dress.in_stock is False
    assert [img.position for img in dress.images.all()] == [0, 1]
    shirt = Product.objects.get(title="Green shirt")
    assert shirt.external_id.startswith("auto:") and shirt.in_stock is True

    assert "line 4: title: missing" in out
    assert "line 5: price: 'abc' is not a number" in out
    assert "line 6: image 'photos/broken.jpg'" in out
    assert "line 7: image 'photos/nope.png': no such file" in out
    assert "line 8: attributes: not valid JSON" in out
    assert "Imported 3 products (4 images); 0 already imported; 5 rows rejected." in out
    with report.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["line"]) for r in rows] == [4, 5, 6, 7, 8]
    assert "broken.jpg" in rows[2]["reason"]


def test_jsonl_imports_typed_values_and_reports_bad_lines(tmp_path, photos):
    path = tmp_path / "catalog.jsonl"
    lines = [
        json.dumps(
            {
                "sku": 1001,
                "title": "Blue coat",
                "price": 120,
                "category": "Coats",
                "attributes": {"material": "wool"},
                "in_stock": False,
                "images": [str(photos / "blue.png"), "photos/green.jpg"],
            }
        ),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"title": "No images", "price": 1, "category": "Coats", "images": []}),
        json.dumps({"title": "Red scarf", "price": "9.99", "category": "Scarves",
                    "images": "photos/red.png"}),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    out = _import(path)

    coat = Product.objects.get(external_id="1001")
    assert coat.attributes == {"material": "wool"} and coat.in_stock is False
    assert coat.images.count() == 2
    assert Product.objects.filter(title="Red scarf", price=Decimal("9.99")).exists()
    assert "line 3: invalid JSON" in out
    assert "line 4: each line must be a JSON object" in out
    assert "line 5: images: at least one image path or URL is needed" in out
    assert "Imported 2 products (3 images); 0 already imported; 3 rows rejected." in out


def test_rerun_creates_nothing_new(tmp_path, photos):
    path = _write_csv(tmp_path / "catalog.csv", CSV_ROWS)
    _import(path)
    before = (Product.objects.count(), ProductImage.objects.count())
    out = _import(path)
    assert (Product.objects.count(), ProductImage.objects.count()) == before
    assert "Imported 0 products (0 images); 3 already imported; 5 rows rejected." in out


def test_images_are_downloaded_over_http(tmp_path, photos):
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(photos))
    handler.log_message = lambda *a, **k: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        path = _write_csv(
            tmp_path / "remote.csv",
            [
                ["R1", "Remote", "", "3", "", "Web", "", "", "", f"{base}/red.png"],
                ["R2", "Gone", "", "3", "", "Web", "", "", "", f"{base}/missing.png"],
            ],
        )
        out = _import(path)
    finally:
        server.shutdown()
    assert Product.objects.get(external_id="R1").images.get().image.name.endswith(".png")
    assert "line 3: image" in out and "HTTP 404" in out


@pytest.mark.django_db(transaction=True)
def test_import_queues_full_batches_after_commit(tmp_path, photos, settings):
    rows = [
        [f"Q{i}", f"Item {i}", "", "1", "", "Bulk", "", "", "", "photos/red.png"] for i in range(20)
    ]
    path = _write_csv(tmp_path / "bulk.csv", rows)
    with mock.patch.object(indexing, "embeddings_enqueue") as enqueue:
        _import(path, chunk_size=50)
    # One call for the whole chunk, not one task per product.
    assert enqueue.call_count == 1
    image_ids, product_ids = enqueue.call_args.args
    assert image_ids == sorted(ProductImage.objects.values_list("id", flat=True))
    assert product_ids == sorted(Product.objects.values_list("id", flat=True))


def test_index_option_embeds_inline(tmp_path, photos):
    path = _write_csv(tmp_path / "catalog.csv", CSV_ROWS)
    out = _import(path, index=True)
    assert "Embedded inline." in out
    assert ImageEmbedding.objects.count() == ProductImage.objects.count() == 4
    assert TextEmbedding.objects.count() == Product.objects.count() == 3


def test_images_root_resolves_relative_paths_and_jsonl_report_lists_bad_lines(tmp_path, photos):
    # The file lives elsewhere: relative image paths start from --images-root, not its folder.
    elsewhere = tmp_path / "exports"
    elsewhere.mkdir()
    path = elsewhere / "catalog.jsonl"
    rows = [
        {"sku": "R1", "title": "Red cap", "price": 5, "category": "Hats", "images": "red.png"},
        {"sku": "R2", "title": "No such", "price": 5, "category": "Hats", "images": "nope.png"},
        {"sku": "R3", "title": "", "price": 5, "category": "Hats", "images": "blue.png"},
        {"sku": "R4", "title": "Blue cap", "price": 6, "category": "Hats", "images": ["blue.png"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = tmp_path / "rejected.csv"

    without_root = _import(path)
    assert "Imported 0 products" in without_root  # red.png is not next to the file

    out = _import(path, images_root=photos, report=report)
    assert "Imported 2 products (2 images); 0 already imported; 2 rows rejected." in out
    cap = Product.objects.get(external_id="R1")
    assert cap.images.get().image.read() == (photos / "red.png").read_bytes()
    assert Product.objects.filter(external_id="R4").exists()
    with report.open() as f:
        rejected = list(csv.DictReader(f))
    assert [int(r["line"]) for r in rejected] == [2, 3]
    assert "nope.png" in rejected[0]["reason"] and "title" in rejected[1]["reason"]

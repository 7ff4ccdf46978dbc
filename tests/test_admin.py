"""Adding a product with a photo in the admin: saved, queued for indexing, CLIP suggests."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from search.services import indexing
from shop.models import Category, Product, ProductImage
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def test_admin_add_product_with_image(
    admin_client, make_product, django_capture_on_commit_callbacks
):
    make_product("Existing", category="Shoes")  # an index exists, so CLIP can suggest
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    category = Category.objects.get(slug="shoes")
    form = {
        "title": "Admin boot",
        "slug": "admin-boot",
        "description": "",
        "price": "12.00",
        "currency": "EUR",
        "category": category.pk,
        "colour": "",
        "attributes": "{}",
        "in_stock": "on",
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "0",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
        "images-0-image": SimpleUploadedFile("b.png", png_bytes()),
        "images-0-alt_text": "",
        "images-0-position": "0",
    }
    with django_capture_on_commit_callbacks() as callbacks:
        r = admin_client.post("/admin/shop/product/add/", form, follow=True)
    assert r.status_code == 200
    product = Product.objects.get(slug="admin-boot")
    assert product.images.count() == 1
    assert callbacks, "indexing must be requested after commit"
    assert any("CLIP suggests" in str(m) for m in r.context["messages"])


def test_admin_pages_render_with_thumbnails(admin_client, make_product):
    p = make_product("Listed")
    r = admin_client.get("/admin/shop/product/")
    assert r.status_code == 200 and "<img" in r.content.decode()
    r = admin_client.get(f"/admin/shop/product/{p.pk}/change/")
    assert r.status_code == 200 and "/api/describe/" in r.content.decode()

"""Adding a product with a photo in the admin: saved, queued for indexing, CLIP suggests."""

import io

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from search.models import ImageEmbedding, TextEmbedding
from search.services import indexing
from search.services.embedding_models import configured_embedding_model
from search.services.query import image_vector
from shop.models import Category, Product, ProductImage
from tests.factories import png_bytes
from tests.outage import run_queued

QUEUE = settings.EMBEDDING_QUEUE

pytestmark = pytest.mark.django_db


def _product_form(category, title, images=(), new_image=None):
    """The admin change form's fields: the existing ``images`` kept, ``new_image`` added."""
    form = {
        "title": title,
        "slug": "admin-boot",
        "description": "",
        "price": "12.00",
        "currency": "EUR",
        "category": category.pk,
        "colour": "",
        "attributes": "{}",
        "in_stock": "on",
        "images-TOTAL_FORMS": str(len(images) + (new_image is not None)),
        "images-INITIAL_FORMS": str(len(images)),
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
    }
    for i, image in enumerate(images):
        form |= {
            f"images-{i}-id": str(image.pk),
            f"images-{i}-product": str(image.product_id),
            f"images-{i}-alt_text": "",
            f"images-{i}-position": str(image.position),
        }
    if new_image is not None:
        i = len(images)
        form |= {
            f"images-{i}-image": new_image,
            f"images-{i}-alt_text": "",
            f"images-{i}-position": str(i),
        }
    return form


def test_admin_add_product_with_image(
    admin_client, make_product, django_capture_on_commit_callbacks
):
    make_product("Existing", category="Shoes")  # an index exists, so CLIP can suggest
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))
    category = Category.objects.get(slug="shoes")
    photo = png_bytes((20, 30, 220))
    form = _product_form(category, "Admin boot", new_image=SimpleUploadedFile("b.png", photo))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = admin_client.post("/admin/shop/product/add/", form, follow=True)
    assert r.status_code == 200
    product = Product.objects.get(slug="admin-boot")
    image = product.images.get()
    assert callbacks, "indexing must be requested after commit"
    assert run_queued(QUEUE, image_ids=[image.pk], product_ids=[product.pk]) == 2
    # The queued tasks ran: the new photo's vector is the encoder's vector of that photo.
    stored = ImageEmbedding.objects.get(image=image)
    model = configured_embedding_model()
    expected = image_vector(model, Image.open(io.BytesIO(photo)))
    assert np.allclose(np.asarray(stored.embedding), expected, atol=1e-4)
    assert TextEmbedding.objects.filter(product=product).exists()
    suggestions = [str(m) for m in r.context["messages"] if "CLIP suggests" in str(m)]
    assert suggestions and "Shoes" in suggestions[0]  # the only category there is


def test_admin_edits_are_embedded_again(
    admin_client, make_product, django_capture_on_commit_callbacks
):
    category = Category.objects.create(name="Shoes", slug="shoes")
    form = _product_form(category, "Admin boot", new_image=SimpleUploadedFile("b.png", png_bytes()))
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/shop/product/add/", form)
    product = Product.objects.get(slug="admin-boot")
    run_queued(
        QUEUE, image_ids=product.images.values_list("pk", flat=True), product_ids=[product.pk]
    )
    first_hash = TextEmbedding.objects.get(product=product).source_hash
    first_image = product.images.get()
    url = f"/admin/shop/product/{product.pk}/change/"

    renamed = _product_form(category, "Admin hiking boot", images=[first_image])
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(url, renamed)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert run_queued(QUEUE, product_ids=[product.pk]) == 1
    assert TextEmbedding.objects.get(product=product).source_hash != first_hash

    added = _product_form(
        category,
        "Admin hiking boot",
        images=[first_image],
        new_image=SimpleUploadedFile("c.png", png_bytes((10, 200, 10))),
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(url, added)
    assert r.status_code == 302, r.content.decode()[:2000]
    assert product.images.count() == 2
    new_image = product.images.exclude(pk=first_image.pk).get()
    assert run_queued(QUEUE, image_ids=[new_image.pk]) == 1
    assert ImageEmbedding.objects.filter(image__product=product).count() == 2


def test_admin_pages_render_with_thumbnails(admin_client, make_product):
    p = make_product("Listed")
    r = admin_client.get("/admin/shop/product/")
    assert r.status_code == 200 and "<img" in r.content.decode()
    r = admin_client.get(f"/admin/shop/product/{p.pk}/change/")
    assert r.status_code == 200 and "/api/describe/" in r.content.decode()

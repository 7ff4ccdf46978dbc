"""POST /api/products/{id}/images/: staff add a photo to a product; it is stored and indexed."""

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from search.models import ImageEmbedding
from tests.factories import png_bytes
from tests.outage import run_queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_auth(django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=staff).key}"}


def test_staff_add_an_image_and_it_is_embedded(
    client, make_product, staff_auth, django_capture_on_commit_callbacks
):
    product = make_product("Boot", colours=[(200, 0, 0)])
    photo = png_bytes((0, 0, 200), size=(40, 30))
    url = f"/api/products/{product.pk}/images/"
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(url, {"image": SimpleUploadedFile("side.png", photo)}, **staff_auth)
    assert r.status_code == 201, r.content
    body = r.json()
    image = product.images.get(pk=body["id"])
    assert (image.width, image.height) == (40, 30)
    assert image.image.read() == photo
    assert product.images.count() == 2
    assert run_queued(settings.EMBEDDING_QUEUE, image_ids=[image.pk]) == 1
    assert ImageEmbedding.objects.filter(image=image).exists()


def test_add_image_refuses_anonymous_users_bad_files_and_unknown_products(
    client, make_product, staff_auth
):
    product = make_product("Boot")
    url = f"/api/products/{product.pk}/images/"
    upload = SimpleUploadedFile("a.png", png_bytes())
    assert client.post(url, {"image": upload}).status_code in (401, 403)
    r = client.post(url, {"image": SimpleUploadedFile("a.png", b"not an image")}, **staff_auth)
    assert r.status_code == 400
    r = client.post(
        "/api/products/999999/images/",
        {"image": SimpleUploadedFile("a.png", png_bytes())},
        **staff_auth,
    )
    assert r.status_code == 404
    assert product.images.count() == 1

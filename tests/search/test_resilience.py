"""A stopped Redis or a missing model: the user gets a clear answer, nothing is lost."""

import time

import pytest

from search.models import EmbeddingModel
from search.services import indexing
from shop.models import Product, ProductImage
from tests.outage import broker_down, queued_batches, queued_image_ids

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def indexed(make_product):
    make_product("Red", colours=[(220, 20, 30)])
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("id", flat=True)))


def test_search_keeps_answering_when_redis_is_down(client, settings, indexed):
    cache = dict(settings.CACHES["default"])
    cache["LOCATION"] = DEAD_REDIS
    settings.CACHES = {"default": cache}
    r = client.get("/api/search/text/", {"q": "red"})
    assert r.status_code == 200
    assert len(r.json()["results"]) == 1


def test_api_product_create_succeeds_when_broker_is_down(
    client, django_user_model, django_capture_on_commit_callbacks
):
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.authtoken.models import Token

    from search import tasks
    from search.models import ImageEmbedding
    from tests.factories import png_bytes

    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    auth = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=staff).key}"}
    with broker_down():
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            r = client.post(
                "/api/products/",
                {
                    "title": "Saved",
                    "price": "9",
                    "category": "Misc",
                    "images": [SimpleUploadedFile("a.png", png_bytes())],
                },
                **auth,
            )
        elapsed = time.monotonic() - started
    assert r.status_code == 201, r.content
    assert callbacks, "the save must have tried to publish its embedding task"
    assert elapsed < 1.0, f"the API call waited {elapsed:.1f} s on a dead broker"
    image = Product.objects.get(pk=r.json()["id"]).images.get()
    assert image.pk not in queued_image_ids(settings.EMBEDDING_QUEUE)

    # The broker is back: the sweep queues the image and the queued task embeds it.
    assert indexing.pending_sweep()["images"] == 1
    batch = next(b for b in queued_batches(settings.EMBEDDING_QUEUE) if image.pk in b)
    tasks.embed_images.apply(args=[batch]).get()
    assert ImageEmbedding.objects.filter(image=image).exists()


def test_missing_model_weights_give_a_503_that_says_what_to_do(client, indexed):
    EmbeddingModel.objects.update(is_active=False)
    EmbeddingModel.objects.create(
        key="gone",
        name="shop-clip-tiny",
        pretrained="local-dir:/nonexistent/weights",
        dim=64,
        is_active=True,
    )
    r = client.get("/api/search/text/", {"q": "red"})
    assert r.status_code == 503
    message = r.json()["error"]
    assert "shop-clip-tiny" in message and "local-dir" in message
    page = client.get("/search/", {"q": "red"})
    assert page.status_code == 503 and "Could not load CLIP model" in page.content.decode()
    assert client.get("/").status_code == 200  # the shop itself keeps serving


@pytest.mark.django_db(transaction=True)
def test_database_down_gives_a_503_that_says_so_and_service_resumes(client, indexed):
    from django.db import connection

    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there: a stopped PostgreSQL
    try:
        api = client.get("/api/search/text/", {"q": "red"})
        page = client.get("/search/", {"q": "red"})
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    assert api.status_code == 503
    assert "database is not reachable" in api.json()["error"]
    assert api["Retry-After"] == "5"
    assert page.status_code == 503 and b"database is not reachable" in page.content
    again = client.get("/api/search/text/", {"q": "red"})
    assert again.status_code == 200 and len(again.json()["results"]) == 1

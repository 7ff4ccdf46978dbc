"""The product admin: adding a product with a photo (saved, queued, CLIP suggests), index
coverage wording, and re-indexing from the list and the change form."""

import io

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from search.models import ImageEmbedding, TextEmbedding
from search.selectors import image_ids_pending
from search.services import indexing
from search.services.embedding_models import configured_embedding_model
from search.services.query import image_vector
from shop.models import Category, Product, ProductImage
from tests.factories import png_bytes
from tests.outage import broker_down, queued_image_ids, run_queued

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
    # The thumbnail links to the product: its alt text names the link (empty: an unnamed link).
    assert r.status_code == 200 and 'alt="Listed">' in r.content.decode()
    r = admin_client.get(f"/admin/shop/product/{p.pk}/change/")
    page = r.content.decode()
    # The form's script (a static file, CSP) reads CLIP's describe endpoint from the page.
    assert r.status_code == 200 and 'data-describe-url="/api/v1/describe/"' in page
    assert "search/admin/product_form" in page
    # The inline's inputs are named for screen readers: field and row (the head is not a label).
    for name in ("Image (image 1)", "Alt text (image 1)", "Delete (image 1)", "Image (image 2)"):
        assert f'aria-label="{name}"' in page, name
    assert 'aria-label="Position (new image)"' in page  # the "Add another" template row


# Coverage wording: a pending image is never rounded away.


def test_coverage_rounds_down_and_names_what_is_pending():
    from search.admin import coverage_text

    assert coverage_text(300, 301, "images") == "300 of 301 images indexed (99%) · 1 pending"
    assert coverage_text(301, 301, "images") == "301 of 301 images indexed"
    assert coverage_text(0, 0, "images") == "0 of 0 images indexed"
    assert coverage_text(29_990, 30_000) == "29,990 of 30,000 (99%) · 10 pending"


def test_product_list_and_model_list_show_one_pending_image_of_201(admin_client, make_product):
    """201 images, 200 embedded: 99.5% used to read "(100%)"; now the pending one is said."""
    done = make_product("Many photos", colours=[(i, 40, 200 - i) for i in range(200)])
    make_product("Not yet embedded")
    indexing.images_embed(image_ids=list(done.images.values_list("pk", flat=True)))
    key = configured_embedding_model().key

    page = admin_client.get("/admin/shop/product/").content.decode()
    assert "200 of 201 images indexed (99%) · 1 pending" in page
    assert "(100%)" not in page
    assert f"<code>{key}</code>" in page  # the long key is set apart, so it may wrap
    models = admin_client.get("/admin/search/embeddingmodel/").content.decode()
    assert "200 of 201 (99%) · 1 pending" in models


# Re-indexing from the admin: the action on the list and the button on the change form.


def _embedded(make_product, *titles):
    products = [make_product(t, colours=[(30 * i, 90, 200 - 30 * i)]) for i, t in enumerate(titles)]
    ids = [p.pk for p in products]
    indexing.images_embed(image_ids=list(ProductImage.objects.values_list("pk", flat=True)))
    indexing.product_texts_embed(product_ids=ids)
    # Creating them queued their embedding (transactional tests commit): take those messages
    # off the broker (a no-op run, all is embedded), so only what the re-index queues is left.
    run_queued(QUEUE, image_ids=ProductImage.objects.values_list("pk", flat=True), product_ids=ids)
    assert not set(ProductImage.objects.values_list("pk", flat=True)) & queued_image_ids(QUEUE)
    return products


def _reindex_action(client, products):
    return client.post(
        "/admin/shop/product/",
        {"action": "reindex_selected", "_selected_action": [p.pk for p in products]},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db(transaction=True)  # the action's transaction commits: tasks publish
def test_reindex_action_drops_the_configured_models_vectors_and_queues_them(
    admin_client, make_product
):
    from search.models import EmbeddingModel

    chosen, kept = _embedded(make_product, "Chosen", "Kept")
    image = chosen.images.get()
    model = configured_embedding_model()
    before = np.asarray(ImageEmbedding.objects.get(image=image, model=model).embedding)
    # A second model's vector (a switch in progress) is not the configured model's to drop.
    other = EmbeddingModel.objects.create(key="other-model", name="other", dim=4)
    ImageEmbedding.objects.create(image=image, model=other, embedding=[1, 0, 0, 0])

    r = _reindex_action(admin_client, [chosen])

    assert r.status_code == 200
    assert _messages(r) == [
        f"Queued 1 product (1 image, 1 product text) for re-indexing with {model.key}: "
        "pending until an embedding worker has written their new vectors."
    ]
    assert not ImageEmbedding.objects.filter(image=image, model=model).exists()
    assert not TextEmbedding.objects.filter(product=chosen, model=model).exists()
    assert ImageEmbedding.objects.filter(image=image, model=other).exists()
    assert ImageEmbedding.objects.filter(image__product=kept, model=model).exists()
    assert TextEmbedding.objects.filter(product=kept, model=model).exists()
    assert image.pk in queued_image_ids(QUEUE)
    assert "pending" in r.content.decode()  # the list's Indexed column says so at once

    # What a worker runs for the queued messages writes the vectors again, the same ones.
    assert run_queued(QUEUE, image_ids=[image.pk], product_ids=[chosen.pk]) == 2
    after = np.asarray(ImageEmbedding.objects.get(image=image, model=model).embedding)
    assert np.allclose(before, after, atol=1e-5)
    assert TextEmbedding.objects.filter(product=chosen, model=model).exists()


@pytest.mark.django_db(transaction=True)
def test_reindex_with_the_broker_down_loses_nothing_and_says_so(admin_client, make_product):
    products = _embedded(make_product, "One", "Two")
    model = configured_embedding_model()
    image_ids = sorted(ProductImage.objects.values_list("pk", flat=True))

    with broker_down():
        r = _reindex_action(admin_client, products)

    [message] = _messages(r)
    assert message.startswith(
        f"Re-indexing 2 products (2 images, 2 product texts) with {model.key}"
    )
    assert "the task queue is unreachable, so nothing was queued now. Nothing is lost" in message
    assert "the periodic sweep (every 60 s) queues them once the queue is back" in message
    assert r.context["messages"]._loaded_messages[0].level_tag == "warning"
    assert not set(image_ids) & queued_image_ids(QUEUE)
    assert image_ids_pending(model=model) == image_ids  # the mark is in the database

    # The broker is back: the sweep queues them and the worker's task embeds them.
    assert indexing.pending_sweep()["images"] == 2
    assert run_queued(QUEUE, image_ids=image_ids, product_ids=[p.pk for p in products]) == 2
    assert image_ids_pending(model=model) == []


@pytest.mark.django_db(transaction=True)
def test_reindex_button_on_the_change_form(admin_client, client, django_user_model, make_product):
    from django.contrib.auth.models import Permission

    [product] = _embedded(make_product, "Buttoned")
    image = product.images.get()
    change = f"/admin/shop/product/{product.pk}/change/"
    reindex = f"/admin/shop/product/{product.pk}/reindex/"
    page = admin_client.get(change).content.decode()
    assert f'action="{reindex}"' in page and ">Re-index</button>" in page
    assert "Search index: Indexed: every image has a vector" in page

    assert admin_client.get(reindex).status_code == 405  # a GET changes nothing
    assert ImageEmbedding.objects.filter(image=image).exists()
    r = admin_client.post(reindex)
    assert r.status_code == 302 and r.url == change
    assert not ImageEmbedding.objects.filter(image=image).exists()
    assert image.pk in queued_image_ids(QUEUE)
    r = admin_client.get(change)
    assert _messages(r)[0].startswith("Queued 1 product (1 image, 1 product text)")
    assert "Search index: Pending: an image has no vector yet" in r.content.decode()

    # A staff member who may only view products gets no button and cannot post to it.
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_product"))
    client.force_login(viewer)
    assert ">Re-index</button>" not in client.get(change).content.decode()
    assert client.post(reindex).status_code == 403
    assert "reindex_selected" not in client.get("/admin/shop/product/").content.decode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_reindexed_products_are_embedded_again_by_a_worker_process(
    admin_client, make_product, tmp_path
):
    from tests.workers import celery_worker, wait_for

    products = _embedded(make_product, "Worker one", "Worker two")
    model = configured_embedding_model()
    before = dict(ImageEmbedding.objects.filter(model=model).values_list("image_id", "embedding"))
    r = _reindex_action(admin_client, products)
    assert _messages(r)[0].startswith("Queued 2 products (2 images, 2 product texts)")
    assert not ImageEmbedding.objects.filter(model=model).exists()

    with celery_worker(QUEUE, log_path=tmp_path / "worker.log") as proc:
        wait_for(
            lambda: (
                ImageEmbedding.objects.filter(model=model).count() == 2
                and TextEmbedding.objects.filter(model=model).count() == 2
            ),
            message="the worker to embed the 2 re-indexed images and texts again",
        )
        assert proc.poll() is None
    after = dict(ImageEmbedding.objects.filter(model=model).values_list("image_id", "embedding"))
    assert after.keys() == before.keys()
    for image_id, vector in after.items():
        assert np.allclose(np.asarray(vector), np.asarray(before[image_id]), atol=1e-5)
    assert image_ids_pending(model=model) == []

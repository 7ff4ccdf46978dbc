"""Index coverage per model (selector), and the admin pages that show it without N+1."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from search.models import EmbeddingModel
from search.selectors import embedding_coverage
from search.services import indexing
from search.services.embedding_models import configured_embedding_model
from shop.models import Product, ProductImage
from tests.factories import save_random_tiny

pytestmark = pytest.mark.django_db


def _two_models(make_product, settings, tmp_path):
    """A covers everything; B (configured now) has embedded one image and no text."""
    for i in range(3):
        make_product(f"P{i}", colours=[(i * 60, 10, 10), (10, i * 60, 10)])
    ids = list(ProductImage.objects.order_by("id").values_list("id", flat=True))
    indexing.images_embed(image_ids=ids)
    indexing.product_texts_embed(product_ids=list(Product.objects.values_list("id", flat=True)))
    folder = tmp_path / "b"
    save_random_tiny(folder, "shop-clip-tiny-96", seed=2)
    settings.CLIP_PRETRAINED = f"local-dir:{folder}"
    settings.CLIP_MODEL = "shop-clip-tiny-96"
    indexing.images_embed(image_ids=ids[:1])
    return EmbeddingModel.objects.get(is_active=True), configured_embedding_model()


def test_coverage_per_model(make_product, settings, tmp_path):
    model_a, model_b = _two_models(make_product, settings, tmp_path)
    rows = {c.model.pk: c for c in embedding_coverage()}
    a, b = rows[model_a.pk], rows[model_b.pk]
    assert (a.images_embedded, a.images_total, a.texts_embedded, a.texts_total) == (6, 6, 3, 3)
    assert a.is_active and a.is_complete
    assert (b.images_embedded, b.images_total, b.texts_embedded, b.texts_total) == (1, 6, 0, 3)
    assert not b.is_active and not b.is_complete and round(b.images_ratio, 2) == 0.17
    assert list(rows) == [model_a.pk, model_b.pk]  # active first


def test_embedding_model_admin_shows_coverage(admin_client, make_product, settings, tmp_path):
    model_a, model_b = _two_models(make_product, settings, tmp_path)
    page = admin_client.get("/admin/search/embeddingmodel/").content.decode()
    assert model_a.key in page and model_b.key in page
    # Rounded down, with the pending count: 1 of 6 is 16%, never rounded up.
    assert ">6 of 6<" in page and ">1 of 6 (16%) · 5 pending<" in page
    assert _switch_to(admin_client, model_b) == [
        f"{model_b.key} has not embedded every image yet (1 of 6 images indexed (16%) · 5 "
        "pending); search switches once it covers them all."
    ]
    assert EmbeddingModel.objects.get(is_active=True) == model_a
    # The model search answers from already covers everything: said so, no warning.
    assert _switch_to(admin_client, model_a) == [f"Search now answers from {model_a.key}."]


def _switch_to(admin_client, model: EmbeddingModel) -> list[str]:
    """The admin's "switch search to this model" action on ``model``: its messages."""
    response = admin_client.post(
        "/admin/search/embeddingmodel/",
        {"action": "activate_if_covered", "_selected_action": [model.pk]},
        follow=True,
    )
    return [str(m) for m in response.context["messages"]]


def test_product_changelist_shows_index_state_in_constant_queries(admin_client, make_product):
    indexed = make_product("Indexed one")
    indexing.images_embed(image_ids=list(indexed.images.values_list("id", flat=True)))
    make_product("Waiting one")

    def listing() -> tuple[str, int]:
        with CaptureQueriesContext(connection) as queries:
            body = admin_client.get("/admin/shop/product/").content.decode()
        return body, len(queries)

    page, few = listing()
    assert "✓" in page and "pending" in page
    assert "1 of 2 images indexed (50%) · 1 pending" in page
    for i in range(8):
        make_product(f"More {i}")
    page, many = listing()
    assert page.count("pending") >= 9
    assert many == few, "the changelist must not query per product"

"""The close-match signal, relative to the catalog: with the trained demo model, in-catalog
queries are close matches and words no product has are not."""

from __future__ import annotations

import pytest

from search.selectors import active_embedding_model
from search.services.relevance import relevance_of

pytestmark = pytest.mark.django_db


def test_confidence_is_the_share_of_in_catalog_queries_matched(settings):
    settings.SEARCH_CLOSE_MATCH_QUANTILE = 0.25
    values = [0.1, 0.2, 0.3, 0.4]
    assert relevance_of(0.35, values).confidence == 0.75
    assert relevance_of(0.05, values).close_match is False
    assert relevance_of(0.2, values).close_match is True
    assert relevance_of(None, values).close_match is False


def test_text_queries(client, small_demo_catalog):
    def judged(q):
        body = client.get("/api/search/text/", {"q": q}).json()
        return body["close_match"], body["confidence"]

    for product in small_demo_catalog[:10]:
        close, confidence = judged(f"{product.colour} {product.category.name.lower()}s")
        assert close and 0.5 <= confidence <= 1.0
    for q in ("laptop charger", "qwxz", "garden hose"):
        close, confidence = judged(q)
        assert not close and confidence <= 0.1
    # Calibrated once for the model and stored with it.
    calibration = active_embedding_model().calibration
    assert calibration["products"] == 30 and len(calibration["text"]) == 30


def test_photo_of_a_catalog_product_is_a_close_match(client, small_demo_catalog):
    import base64

    product = small_demo_catalog[3]
    photo = base64.b64encode(product.images.get().image.read()).decode()
    r = client.post(
        "/api/search/image/",
        {"image": f"data:image/png;base64,{photo}"},
        content_type="application/json",
    )
    body = r.json()
    assert r.status_code == 200 and body["close_match"] is True and body["confidence"] > 0.5


def test_the_page_says_no_close_match(client, small_demo_catalog):
    page = client.get("/search/", {"q": "laptop charger"}).content.decode()
    assert 'id="no-close-match"' in page and "laptop charger" in page
    page = client.get("/search/", {"q": "red sneakers"}).content.decode()
    assert 'id="no-close-match"' not in page


def test_photo_calibration_samples_more_of_the_catalog_than_text(demo_catalog):
    # A 5% quantile read from 100 photos is their 5th lowest: it moves from one catalog to the
    # next by more than the 5% itself. Photos cost an index lookup each, so up to 500 are read.
    from search.services.query import calibrate
    from shop.models import Product

    tops = calibrate(active_embedding_model())
    assert len(tops["image"]) == Product.objects.count() == 220
    assert len(tops["text"]) == 100
    assert tops["image"] == sorted(tops["image"]) and len(set(tops["image"])) > 100


def test_a_stale_calibration_answers_until_the_sweep_renews_it(client, small_demo_catalog):
    # Recalibrating takes up to 600 index lookups: no shopper's query waits for it; the
    # periodic sweep does it once the catalog has changed size by more than a quarter.
    from search.models import EmbeddingModel
    from search.services import indexing

    client.get("/api/search/text/", {"q": "red dress"})  # never calibrated: calibrated here
    model = active_embedding_model()
    stale = {**model.calibration, "products": 10}  # taken when the catalog had 10 products
    EmbeddingModel.objects.filter(pk=model.pk).update(calibration=stale)
    assert client.get("/api/search/text/", {"q": "red dress"}).status_code == 200
    assert active_embedding_model().calibration == stale
    indexing.pending_sweep(enqueue=False)
    assert active_embedding_model().calibration["products"] == 30
    current = {**active_embedding_model().calibration, "text": [0.5]}
    EmbeddingModel.objects.filter(pk=model.pk).update(calibration=current)
    indexing.pending_sweep(enqueue=False)  # current: left as it is
    assert active_embedding_model().calibration == current

"""The shopper pages without a browser: the kept query photo (refine and page without
re-uploading), shopper messages instead of field errors, match labels instead of scores."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from search.services.query_photos import query_photo_get, query_photo_keep
from search.services.relevance import match_label
from tests.factories import encode, pattern

pytestmark = pytest.mark.django_db


def _ids(html: str) -> list[int]:
    results = html[html.index('id="results"') :]
    return [int(x) for x in re.findall(r'data-product-id="(\d+)"', results)]


def _key(html: str) -> str:
    return re.search(r'name="photo" value="([^"]+)"', html).group(1)


def test_a_photo_search_is_refined_and_paged_without_uploading_again(client, catalog):
    r = client.post(
        "/search/photo/", {"image": SimpleUploadedFile("q.png", encode(pattern(2), "PNG"))}
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert _ids(html)[0] == catalog["b"].pk
    key = _key(html)

    # The same photo by its key, a page of two: the next page continues the ranking.
    first = client.get("/search/photo/", {"photo": key, "limit": 2}).content.decode()
    assert _ids(first) == _ids(html)[:2]
    next_url = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert f"photo={key}" in next_url and "offset=2" in next_url
    second = client.get("/search/photo/" + next_url).content.decode()
    assert _ids(second) == _ids(html)[2:4]
    assert 'id="prev-page"' in second

    # Refining (a region, words, a filter) by POST with the key and no file.
    r = client.post(
        "/search/photo/", {"photo": key, "crop": "0,0,0.5,0.5", "text": "red", "max_price": "35"}
    )
    assert r.status_code == 200, r.content.decode()[:500]
    refined = r.content.decode()
    assert "Send exactly one of" not in refined and 'role="alert"' not in refined
    prices = {catalog[n].pk: catalog[n].price for n in catalog}
    assert _ids(refined) and all(prices[i] <= 35 for i in _ids(refined))
    assert _key(refined) == key


def test_photo_messages_say_what_to_do(client, catalog):
    r = client.post("/search/photo/", {"text": "red"})
    assert r.status_code == 400
    html = r.content.decode()
    assert "Choose a photo to search with" in html and "Send exactly one" not in html
    r = client.get("/search/photo/", {"photo": "A" * 24})
    assert r.status_code == 410 and "choose it again" in r.content.decode()
    r = client.post("/search/describe/", {})
    assert r.status_code == 400 and "Choose a photo to describe" in r.content.decode()


def test_text_messages_and_cards_speak_to_shoppers(client, catalog):
    r = client.get("/search/", {"q": "  "})
    assert r.status_code == 400
    html = r.content.decode()
    assert "Type what you are looking for" in html and "may not be blank" not in html
    r = client.get("/search/", {"q": "pattern", "min_price": "30", "max_price": "10"})
    assert "The lowest price is above the highest" in r.content.decode()

    html = client.get("/search/", {"q": "pattern"}).content.decode()
    assert "cosine" not in html and not re.search(r"#1 · ", html)
    assert re.search(r'class="match">(Strong|Good|Weak) match|Matches your words<', html)
    assert 'class="stock in">In stock' in html
    assert "<h1>Results for “pattern”</h1>" in html and "<title>“pattern”" in html


def test_query_photo_is_kept_losslessly_outside_the_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image = pattern(7).convert("RGB")
    key, data = query_photo_keep(image=image)
    assert query_photo_get(key=key) == data
    assert list(Image.open(__import__("io").BytesIO(data)).getdata()) == list(image.getdata())
    assert not any(tmp_path.iterdir())
    assert query_photo_get(key="../../etc/passwd") is None
    assert query_photo_get(key="x" * 30) is None  # well-formed, never stored


@pytest.mark.parametrize(
    "similarity, keyword, browsed, label",
    [
        (0.9, False, False, "Strong match"),
        (0.3, False, False, "Good match"),
        (0.1, False, False, "Weak match"),
        (0.1, True, False, "Matches your words"),
        (0.0, False, True, "Matches your filters"),
    ],
)
def test_match_label_places_a_result_among_in_catalog_queries(
    settings, similarity, keyword, browsed, label
):
    settings.SEARCH_CLOSE_MATCH_QUANTILE = 0.1
    values = [0.2 + 0.05 * i for i in range(12)]  # 0.2 .. 0.75: 0.3 reaches 3 of 12, 0.9 all
    assert match_label(similarity, values, keyword=keyword, browsed=browsed) == label


def test_shopper_message_says_what_to_do_not_which_field():
    from search.services.shopper_messages import CHOOSE_PHOTO, shopper_message

    assert shopper_message({"non_field_errors": ["Send exactly one of 'image' or 'product'."]}) == (
        CHOOSE_PHOTO
    )
    said = shopper_message(
        {"q": ["This field may not be blank."], "category": ["Unknown category 'x'. Known: a."]}
    )
    assert said.startswith("Type what you are looking for") and "“x”: choose one" in said
    assert "q:" not in said and "This field" not in said
    # Both prices wrong: said once.
    both = {"min_price": ["A valid number is required."], "max_price": ["Bad."]}
    assert shopper_message(both) == "Prices are amounts of 0 or more, like 25 or 49.90."

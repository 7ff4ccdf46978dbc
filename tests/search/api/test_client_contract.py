"""The API contract as an integrator meets it: a Python client generated from the live schema
(``openapi-python-client``, pinned in requirements-dev.txt) calls every operation against the
test server and gets typed answers, errors included. The README's "Client example" is taken
from these calls.

Known answers come from the six-pattern catalog (tests/conftest.py ``catalog``): 'twin' has
the same photo as 'a', prices are 10..60."""

import base64
import importlib
import io
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from tests.factories import encode, pattern, png_bytes

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "shop_api_client"
# No post-generation hooks (ruff format would run on the generated tree): the client is
# generated offline into a temporary directory and imported from there.
CONFIG = f"""\
project_name_override: shop-api-client
package_name_override: {PACKAGE}
post_hooks: []
"""


@pytest.fixture(scope="module")
def generated(schema_file, tmp_path_factory):
    """The client package, generated from the schema the running server serves."""
    root = tmp_path_factory.mktemp("client")
    (root / "config.yaml").write_text(CONFIG)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(schema_file),
            "--config",
            str(root / "config.yaml"),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def api(generated, live_server):
    """The generated package's modules, and a public and a staff client."""
    from types import SimpleNamespace

    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    token = Token.objects.create(user=staff)
    imp = importlib.import_module
    return SimpleNamespace(
        search=imp(f"{PACKAGE}.api.search"),
        products=imp(f"{PACKAGE}.api.products"),
        index=imp(f"{PACKAGE}.api.index"),
        models=imp(f"{PACKAGE}.models"),
        types=imp(f"{PACKAGE}.types"),
        client=generated.Client(base_url=live_server.url, raise_on_unexpected_status=True),
        staff=generated.AuthenticatedClient(
            base_url=live_server.url, token=token.key, prefix="Token"
        ),
    )


def op(api, tag: str, name: str):
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")


def photo_url(seed: int) -> str:
    return "data:image/png;base64," + base64.b64encode(encode(pattern(seed), "PNG")).decode()


def photo_file(api, seed: int):
    return api.types.File(
        payload=io.BytesIO(encode(pattern(seed), "PNG")),
        file_name="look.png",
        mime_type="image/png",
    )


def ids(output) -> list[int]:
    return [card.id for card in output.results]


def assert_error(response, status: int, api) -> None:
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, api.models.Error)
    assert response.parsed.error


def test_text_search(api, catalog):
    search_text = op(api, "search", "search_text")
    sort = api.models.SearchTextSort.PRICE_ASC
    r = search_text.sync_detailed(client=api.client, q="patterns", sort=sort)
    assert r.status_code == 200
    out = r.parsed
    assert isinstance(out, api.models.SearchOutput)
    assert isinstance(out.results[0], api.models.ProductCard)
    assert ids(out) == [catalog[n].pk for n in ["a", "b", "c", "d", "e", "twin"]]
    assert (out.total, out.total_exact, out.has_more, out.next_) == (6, True, False, None)
    assert int(r.headers["RateLimit-Limit"]) > 0
    assert_error(search_text.sync_detailed(client=api.client, q="x", category="shoez"), 400, api)


def test_photo_search_json_and_multipart(api, catalog):
    search_image = op(api, "search", "search_image")
    m = api.models
    as_json = search_image.sync_detailed(
        client=api.client, body=m.ImageSearchInput(image=photo_url(1), auto_crop=False)
    )
    assert as_json.status_code == 200, as_json.content
    # The call the issue saw fail (an empty form sent): a data URL steered by words.
    steered = search_image.sync_detailed(
        client=api.client, body=m.ImageSearchInput(image=photo_url(1), text="red")
    )
    assert steered.status_code == 200, steered.content
    assert isinstance(steered.parsed, m.SearchOutput) and steered.parsed.results
    as_file = search_image.sync_detailed(
        client=api.client, body=m.ImageSearchUpload(image=photo_file(api, 1), auto_crop=False)
    )
    assert as_file.status_code == 200, as_file.content
    same_photo = {catalog["a"].pk, catalog["twin"].pk}
    assert set(ids(as_file.parsed)[:2]) == same_photo
    assert set(ids(as_json.parsed)[:2]) == same_photo
    # The request the issue saw fail: neither photo nor product.
    assert_error(search_image.sync_detailed(client=api.client, body=m.ImageSearchInput()), 400, api)
    not_an_image = api.types.File(payload=io.BytesIO(b"%PDF-1.4"), file_name="x.pdf")
    assert_error(
        search_image.sync_detailed(client=api.client, body=m.ImageSearchUpload(image=not_an_image)),
        400,
        api,
    )


def test_hybrid_search_and_paging_links(api, catalog):
    search_hybrid = op(api, "search", "search_hybrid")
    m = api.models
    body = m.HybridSearchInput(
        text=m.HybridSearchInputText.from_dict({"patterns": 0.2}),
        products=[m.WeightedProduct(product=catalog["a"].pk, weight=1.0)],
        images=[m.WeightedImage(image=photo_url(1), weight=0.5)],
        limit=2,
        sort=m.SortEnum.PRICE_DESC,
    )
    first = search_hybrid.sync_detailed(client=api.client, body=body)
    assert first.status_code == 200, first.content
    assert ids(first.parsed) == [catalog["twin"].pk, catalog["e"].pk]
    assert first.parsed.has_more and first.parsed.next_.endswith("?offset=2")
    second = search_hybrid.sync_detailed(client=api.client, body=body, offset=2)
    assert ids(second.parsed) == [catalog["d"].pk, catalog["c"].pk]
    negative_only = m.HybridSearchInput(text=m.HybridSearchInputText.from_dict({"red": -1.0}))
    assert_error(search_hybrid.sync_detailed(client=api.client, body=negative_only), 400, api)


def test_more_like_this(api, catalog):
    search_similar = op(api, "search", "search_similar")
    r = search_similar.sync_detailed(catalog["a"].pk, client=api.client)
    assert r.status_code == 200
    assert ids(r.parsed)[0] == catalog["twin"].pk
    assert_error(search_similar.sync_detailed(999_999, client=api.client), 404, api)


def test_shop_the_look(api, catalog):
    search_look = op(api, "search", "search_look")
    m = api.models
    r = search_look.sync_detailed(client=api.client, body=m.DetectInput(image=photo_url(2)))
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, m.DetectOutput)
    assert all(isinstance(item, m.DetectedItem) for item in r.parsed.items)
    upload = search_look.sync_detailed(
        client=api.client, body=m.DetectUpload(image=photo_file(api, 2), limit=3)
    )
    assert upload.status_code == 200, upload.content
    bad = m.DetectInput(image="data:image/png;base64,not-base64!")
    assert_error(search_look.sync_detailed(client=api.client, body=bad), 400, api)


def test_describe_and_similarity(api, catalog):
    describe, similarity = op(api, "search", "describe"), op(api, "search", "similarity")
    m = api.models
    r = describe.sync_detailed(client=api.client, body=m.DescribeInput(image=photo_url(1), top=2))
    assert r.status_code == 200, r.content
    assert isinstance(r.parsed, m.DescribeOutput)
    assert r.parsed.categories and isinstance(r.parsed.categories[0], m.Label)
    r = describe.sync_detailed(client=api.client, body=m.DescribeUpload(image=photo_file(api, 1)))
    assert r.status_code == 200, r.content
    assert_error(
        describe.sync_detailed(client=api.client, body=m.DescribeInput(product=0)), 404, api
    )
    r = similarity.sync_detailed(
        client=api.client, body=m.SimilarityInput(text="a pattern", image=photo_url(3))
    )
    assert r.status_code == 200 and -1.0 <= r.parsed.score <= 1.0
    r = similarity.sync_detailed(
        client=api.client, body=m.SimilarityUpload(text="a pattern", image=photo_file(api, 3))
    )
    assert r.status_code == 200 and -1.0 <= r.parsed.score <= 1.0
    no_photo = m.SimilarityInput(text="a pattern", image="")
    assert_error(similarity.sync_detailed(client=api.client, body=no_photo), 400, api)


def test_suggest_and_stats(api, catalog):
    suggest, stats = op(api, "search", "suggest"), op(api, "index", "index_stats")
    r = suggest.sync_detailed(client=api.client, q="pat")
    assert r.status_code == 200 and isinstance(r.parsed, api.models.SuggestOutput)
    assert_error(suggest.sync_detailed(client=api.client, q=""), 400, api)
    r = stats.sync_detailed(client=api.client)
    assert r.status_code == 200 and isinstance(r.parsed, api.models.IndexStats)
    assert r.parsed.products == 6


def test_catalog_writes_with_a_staff_token(api, catalog):
    create = op(api, "products", "products_create")
    add_image = op(api, "products", "products_image_add")
    listing, retrieve = (
        op(api, "products", "products_list"),
        op(api, "products", "products_retrieve"),
    )
    reindex = op(api, "index", "index_reindex")
    m = api.models
    red = api.types.File(
        payload=io.BytesIO(png_bytes()), file_name="red.png", mime_type="image/png"
    )
    body = m.ProductCreateInput(
        title="Red Sneaker", price="59.00", category="Sneaker", images=[red]
    )
    r = create.sync_detailed(client=api.staff, body=body)
    assert r.status_code == 201, r.content
    made = r.parsed
    assert isinstance(made, m.ProductOutput) and len(made.images) == 1
    assert_error(create.sync_detailed(client=api.client, body=body), 401, api)
    blue = api.types.File(payload=io.BytesIO(png_bytes((20, 40, 220))), file_name="blue.png")
    r = add_image.sync_detailed(made.id, client=api.staff, body=m.ProductImageAddInput(image=blue))
    assert r.status_code == 201 and isinstance(r.parsed, m.ProductImageOutput)
    missing = add_image.sync_detailed(
        999_999, client=api.staff, body=m.ProductImageAddInput(image=blue)
    )
    assert_error(missing, 404, api)
    page = listing.sync_detailed(client=api.client, limit=2)
    assert page.status_code == 200 and isinstance(page.parsed, m.PaginatedProductOutputList)
    assert page.parsed.count == 7 and page.parsed.next_
    assert retrieve.sync_detailed(made.id, client=api.client).parsed.title == "Red Sneaker"
    assert_error(retrieve.sync_detailed(999_999, client=api.client), 404, api)
    assert reindex.sync_detailed(client=api.staff).status_code == 202
    assert_error(reindex.sync_detailed(client=api.client), 401, api)


def test_no_operation_shares_one_component_across_content_types(live_server):
    schema = httpx.get(f"{live_server.url}/api/schema/?format=json").json()
    for path, operations in schema["paths"].items():
        assert path.startswith("/api/v1/"), path
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            refs = [c["schema"].get("$ref") for c in content.values()]
            assert len(refs) == len(set(refs)), (method, path, list(content))
            assert "application/x-www-form-urlencoded" not in content, (method, path)
            assert "503" in operation["responses"], (method, path)


README = Path(__file__).resolve().parents[3] / "README.md"
EXAMPLE_MARK = "<!-- client-example: run by tests/search/api/test_client_contract.py -->"


def readme_example() -> str:
    """The README's client example: the Python block after its marker."""
    after = README.read_text().split(EXAMPLE_MARK, 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_client_example_runs(api, catalog, live_server, tmp_path, capsys):
    photo = tmp_path / "look.png"
    photo.write_bytes(encode(pattern(1), "PNG"))
    code = readme_example()
    values = {
        "BASE_URL": live_server.url,
        "PHOTO": str(photo),
        "PRODUCT_ID": catalog["a"].pk,
        "TOKEN": api.staff.token,
    }
    for name, value in values.items():
        code, found = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", code, flags=re.M)
        assert found == 1, name
    names: dict = {}
    exec(compile(code, str(README), "exec"), names)  # noqa: S102 - the README's own example
    same_photo = {catalog["a"].pk, catalog["twin"].pk}
    assert {card.id for card in names["same"].results[:2]} == same_photo
    assert names["similar"].results[0].id == catalog["twin"].pk
    assert [card.id for card in names["mix"].results] == [catalog["twin"].pk, catalog["e"].pk]
    assert [card.id for card in names["more"].results] == [catalog["d"].pk, catalog["c"].pk]
    assert names["answer"].status_code == 400
    assert names["made"].title == "Red Sneaker"
    assert "400 Invalid request: category: Unknown category 'shoez'" in capsys.readouterr().out

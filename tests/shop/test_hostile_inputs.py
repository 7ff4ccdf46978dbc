"""Hostile query strings on the catalog: a 400 with a message, and the server keeps serving."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url, params",
    [("/api/products/", {"category": "\x00"}), ("/", {"category": "a\x00b"})],
)
def test_nul_in_query_string_is_a_400(client, url, params):
    r = client.get(url, params)
    assert r.status_code == 400
    assert "NUL byte" in r.content.decode()
    assert client.get("/api/products/").status_code == 200


def test_huge_paging_numbers_give_a_page_not_a_500(client, make_product):
    make_product("Only one")
    big = "9223372036854775808"
    r = client.get("/api/products/", {"limit": big})
    assert r.status_code == 200 and len(r.json()["results"]) == 1
    r = client.get("/api/products/", {"offset": big})
    assert r.status_code == 200 and r.json()["results"] == []
    assert client.get("/api/products/", {"limit": "101"}).json()["count"] == 1


def test_the_category_filter_is_checked_before_sql(client, make_product):
    make_product("Red", category="shoes")
    assert len(client.get("/api/products/", {"category": "shoes"}).json()["results"]) == 1
    assert client.get("/api/products/", {"category": "nope"}).json()["results"] == []
    for bad in ["a b", "x" * 101, "<script>", "é'--"]:
        r = client.get("/api/products/", {"category": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"].startswith("Invalid request: category:"), r.json()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/products/-1/", "/api/v1/products/true/similar/", "/api/v1/nothing-here/", "/api/x"],
)
def test_an_api_path_without_a_route_is_a_json_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r["Content-Type"] == "application/json"
    assert "No API operation at" in r.json()["error"]
    page = client.get("/no-such-page/")  # the shop's pages keep their own 404 page
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_product_sent_as_a_json_list_is_a_400(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    r = client.post("/api/products/", [1, 2], content_type="application/json")
    assert r.status_code == 400
    assert "JSON object" in r.json()["error"]

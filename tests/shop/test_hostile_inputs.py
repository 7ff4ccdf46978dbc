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

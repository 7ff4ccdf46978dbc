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

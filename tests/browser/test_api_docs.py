"""/api/docs/ works without internet: Swagger UI comes from the app's own static files
(drf-spectacular-sidecar), never a CDN. Every request that leaves the test server is
blocked, as on a machine without internet, and the operations must still render."""

from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_renders_every_operation_offline(live_server, page, screenshot):
    local = urlsplit(live_server.url).netloc
    blocked: list[str] = []

    def only_local(route):
        url = route.request.url
        if urlsplit(url).netloc == local:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    screenshot("api-docs")
    schema = httpx.get(live_server.url + "/api/schema/?format=json").json()
    operations = sum(len(ops) for ops in schema["paths"].values())
    assert page.locator(".opblock").count() == operations
    shown = page.locator(".opblock-summary-path").all_inner_texts()
    for path in ("/api/v1/search/text/", "/api/v1/search/image/", "/api/v1/search/look/"):
        assert any(path in text.replace("\u200b", "") for text in shown), (path, shown[:5])
    assert blocked == [], blocked

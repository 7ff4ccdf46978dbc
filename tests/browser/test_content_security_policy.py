"""Every page is served with a Content-Security-Policy that allows only the site's own
scripts; the pages, the admin and the API docs work under it (every browser test fails on a
violation: tests/browser/conftest.py), and injected inline script does not run."""

import pytest

from tests.browser.conftest import CSP_VIOLATIONS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_injected_inline_script_is_refused_and_reported(live_server, page):
    response = page.goto(live_server.url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__injected = true";
          document.body.append(s);
          const img = document.createElement("img");
          img.setAttribute("onerror", "window.__injected = true");
          img.src = "data:,broken";
          document.body.append(img);
        }"""
    )
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__injected === undefined")
    assert any("inline" in v for v in CSP_VIOLATIONS), CSP_VIOLATIONS
    CSP_VIOLATIONS.clear()  # seen: this test is about exactly these


def test_the_site_s_own_scripts_run_under_the_policy(live_server, page, small_demo_catalog):
    # shop.js wires the search box's suggestions: they appear only if the script ran.
    page.goto(live_server.url + "/search/?q=red")
    box = page.locator("input[name=q]").first
    box.fill("snea")
    page.wait_for_selector("[role=listbox] [role=option], datalist option", state="attached")
    # The API docs start Swagger UI from a static script (no inline start-up code).
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)

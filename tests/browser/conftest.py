import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
# test itself are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium not found: run scripts/bootstrap.sh test (installs it with apt).")


# Content-Security-Policy violations (Chromium reports each on the console) seen by any page of
# any context of the current test; every browser test fails if one happened (_no_csp_violation).
CSP_VIOLATIONS: list[str] = []


class _WatchedBrowser:
    """The Playwright browser, with every new context reporting CSP violations."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def __getattr__(self, name):
        return getattr(self._browser, name)

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)

        def on_console(message) -> None:
            if message.type == "error" and "Content Security Policy" in message.text:
                CSP_VIOLATIONS.append(f"{message.location.get('url', '')}: {message.text}")

        context.on("console", on_console)
        return context


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield _WatchedBrowser(b)
        b.close()


@pytest.fixture(autouse=True)
def _no_csp_violation():
    CSP_VIOLATIONS.clear()
    yield
    found, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    assert found == [], "the page broke its Content-Security-Policy:\n" + "\n".join(found)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()


@pytest.fixture
def screenshot(page):
    ARTIFACTS.mkdir(exist_ok=True)

    def _shot(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot


AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# What a shopper with a screen reader or a keyboard cannot get past; "moderate" findings are
# reported by axe too but do not fail a page.
BLOCKING_IMPACTS = ("critical", "serious")


@pytest.fixture
def axe():
    """Run axe-core (from node_modules, never a CDN) on a page; return the blocking violations."""
    if not AXE_JS.exists():
        raise RuntimeError("axe-core missing: run scripts/bootstrap.sh test (npm ci).")

    def _run(page, *, context: str | None = None) -> list[dict]:
        # Evaluated through the DevTools protocol, which the page's CSP does not govern (a
        # <script> tag with axe's source would be inline script, which the CSP refuses).
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(AXE_JS.read_text())
        result = page.evaluate(
            "async (ctx) => await axe.run(ctx || document, {resultTypes: ['violations']})",
            context,
        )
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "targets": [n["target"] for n in v["nodes"]][:5],
            }
            for v in result["violations"]
            if v["impact"] in BLOCKING_IMPACTS
        ]

    return _run

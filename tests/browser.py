"""Headless Chromium for the tests marked `browser`: Playwright drives Debian's chromium (which
.ci/run installs), never a downloaded browser. Screenshots go to test-artifacts/.

Playwright's sync API runs an event loop in the test's thread while the browser is open, and
Django's ORM must not be used meanwhile (it would open connections that are never closed): tests
arrange their data before opening the browser and check the database after closing it."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}


@contextmanager
def chromium() -> Iterator:
    """A launched headless Chromium (Playwright's `Browser`), closed afterwards whatever happens."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def session_of(user) -> str:
    """A signed-in session id of `user`, made before the browser opens (it needs the ORM)."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def signed_in_context(browser, base_url: str, session: str):
    """A 1280 px wide browser context carrying `session`'s cookie for `base_url`."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([{"name": "sessionid", "value": session, "url": base_url}])
    return context


def screenshot(page, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

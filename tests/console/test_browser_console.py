"""The console and the API docs in a real browser: Debian's Chromium driven by Playwright against
pytest-django's live server. Screenshots of each page go to test-artifacts/ (git-ignored) so a
person can look at them. Run with `pytest -m browser`."""

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest

from subscriptions.models import Delivery, Subscription
from tests.browser import VIEWPORT, chromium, screenshot
from tests.conftest import received
from tests.factories import failed_delivery, logged_attempt

pytestmark = pytest.mark.browser


@contextmanager
def browser_page(name: str):
    """A fresh 1280 px page; a screenshot of where it ended goes to test-artifacts/ (no ORM while it
    is open: tests/browser.py)."""
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(15000)
        try:
            yield page
        finally:
            screenshot(page, f"{name}-final", full_page=False)


@pytest.fixture
def operator(make_user):
    return make_user("operator", is_staff=True, is_superuser=True)


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.fixture
def hook(project, httpserver):
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    return Subscription.objects.create(
        project=project, event="request.create", target=httpserver.url_for("/hook"), secret="whsec_c2VjcmV0c2VjcmV0"
    )


def test_operator_logs_in_and_sees_the_dashboard_with_a_chart(live_server, operator, hook):
    failed = failed_delivery(hook, timedelta(minutes=30))
    logged_attempt(failed, error="Connection refused")

    with browser_page("dashboard") as page:
        log_in(page, live_server)
        chart = page.locator("svg.console-chart").first
        chart.wait_for(state="visible")
        assert chart.bounding_box()["height"] > 50
        assert page.locator("svg.console-chart rect.bar-failed").count() == 1
        assert "Connection refused" in page.locator(".console-failing").inner_text()
        screenshot(page, "dashboard")


def test_operator_disables_a_subscription_from_its_list(live_server, operator, hook):
    with browser_page("subscription-list") as page:
        log_in(page, live_server)
        page.goto(f"{live_server.url}/admin/subscriptions/subscription/")
        checkbox = page.locator("input[name='form-0-enabled']")
        assert checkbox.is_checked()
        checkbox.uncheck()
        screenshot(page, "subscription-list-before-save")
        page.click("input[name='_save']")
        page.locator(".messagelist").wait_for()
        assert not page.locator("input[name='form-0-enabled']").is_checked()
        screenshot(page, "subscription-list-disabled")

    hook.refresh_from_db()
    assert hook.enabled is False


def test_operator_opens_a_failed_delivery_and_redelivers_it(live_server, operator, hook, httpserver):
    failed = failed_delivery(hook, timedelta(hours=1))
    logged_attempt(
        failed,
        attempt=4,
        request_headers={"Content-Type": "application/json"},
        request_body='{"payload": {"first_text": "Hello"}}',
        status_code=500,
        response_body='{"error": "boom"}',
    )

    with browser_page("redeliver") as page:
        log_in(page, live_server)
        page.goto(f"{live_server.url}/admin/subscriptions/delivery/?status__exact=failed")
        page.click(f"a[href*='{failed.pk}']")
        page.locator(".console-exchange").first.wait_for()
        assert "boom" in page.locator(".console-response").first.inner_text()
        screenshot(page, "failed-delivery")
        page.click("#redeliver-button")
        page.locator(".messagelist").wait_for()
        assert re.search(r"1 delivery\(ies\) queued again", page.locator(".messagelist").inner_text())
        screenshot(page, "redelivered")

    assert [got["headers"]["x-hook-id"] for got in received(httpserver)] == [failed.pk]
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.SUCCESS


def outside_requests(page, live_server) -> list[str]:
    """Every URL the page fetched from outside this app (there is no internet here). A request the
    page's own Content-Security-Policy blocks never leaves the browser and does not count."""
    outside: list[str] = []

    def local(request) -> bool:
        return request.url.startswith((live_server.url, "data:", "blob:"))

    def blocked(request) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP") and request.url in outside:
            outside.remove(request.url)

    page.on("request", lambda r: None if local(r) else outside.append(r.url))
    page.on("requestfailed", blocked)
    return outside


def test_swagger_ui_lists_the_operations(live_server, db):
    with browser_page("swagger-ui") as page:
        check_swagger_ui(page, live_server)


def check_swagger_ui(page, live_server) -> None:
    outside = outside_requests(page, live_server)
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock").first.wait_for()

    summaries = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(summaries) > 40
    assert any("/api/projects/{project_id}/subscriptions/{id}/test/" in s.replace("\u200b", "") for s in summaries)
    page.wait_for_load_state("networkidle")
    assert outside == []
    screenshot(page, "swagger-ui")


def test_redoc_renders_the_api_from_local_assets(live_server, db):
    with browser_page("redoc") as page:
        check_redoc(page, live_server)


def check_redoc(page, live_server) -> None:
    outside = outside_requests(page, live_server)
    page.goto(f"{live_server.url}/api/redoc/")
    page.get_by_text("tiledesk-hooks API").first.wait_for()
    page.wait_for_load_state("networkidle")

    assert page.locator("[data-section-id^='operation/']").count() > 40
    assert page.locator("[data-section-id='operation/projects_subscriptions_recover_create']").count() == 1
    assert outside == []
    screenshot(page, "redoc", full_page=False)

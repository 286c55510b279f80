"""The debug page: members only, and development runs shown live (a real headless Chromium)."""

from pathlib import Path

import pytest
import requests
from django.test import Client

from automations.models import Run
from support.models import Role
from tests.browser import chromium, screenshot, session_of, signed_in_context

REPO = Path(__file__).resolve().parents[2]
FLOW = [
    {"id": "greet", "action": "set", "name": "greeting", "value": "Hello {{ payload.name }}"},
    {"id": "check", "action": "condition", "if": {"left": "{{ payload.n }}", "op": ">", "right": 2}, "then": [
        {"id": "answer", "action": "response", "status": 200, "body": {"greeting": "{{ greeting }}"}}
    ], "else": [
        {"id": "bad", "action": "set", "name": "oops", "value": "{{ 1 / 0 }}"}
    ]},
]  # fmt: skip


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_debug_page_needs_login(client, make_automation):
    automation = make_automation(FLOW)
    response = client.get(f"/automations/{automation.pk}/debug/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_debug_page_is_404_for_non_members(make_automation, make_user):
    automation = make_automation(FLOW)
    stranger = logged_in(make_user("stranger"))
    assert stranger.get(f"/automations/{automation.pk}/debug/").status_code == 404
    assert stranger.get(f"/automations/{automation.pk}/debug/runs.json").status_code == 404
    assert stranger.get("/automations/nope/debug/").status_code == 404


def test_debug_page_shows_urls_to_any_member(make_automation, add_member):
    automation = make_automation(FLOW)
    page = logged_in(add_member("agent", Role.AGENT)).get(f"/automations/{automation.pk}/debug/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"http://testserver/webhook/{automation.webhook_id}/dev" in html
    assert "<script src=" not in html and "https://" not in html  # nothing from elsewhere
    assert f'href="/automations/{automation.pk}/studio/"' in html


def test_runs_json_lists_development_runs_newest_first(make_automation, owner, project):
    automation = make_automation(FLOW)
    Run.objects.create(automation=automation, project=project, method="POST", mode="production")
    dev = [
        Run.objects.create(automation=automation, project=project, method="POST", mode="development") for _ in range(2)
    ]
    data = logged_in(owner).get(f"/automations/{automation.pk}/debug/runs.json").json()
    assert [run["id"] for run in data["runs"]] == [dev[1].pk, dev[0].pk]


def test_development_run_trace_is_written_step_by_step(make_automation, hook, owner):
    automation = make_automation(FLOW)
    response = requests.post(hook(automation, dev=True), json={"name": "Ann", "n": 1}, timeout=10)
    assert response.status_code == 502
    data = logged_in(owner).get(f"/automations/{automation.pk}/debug/runs.json").json()
    (run,) = data["runs"]
    assert run["status"] == "failed"
    assert [(s["id"], s.get("branch")) for s in run["trace"]] == [("greet", None), ("check", "else"), ("bad", None)]
    assert run["trace"][2]["error"].startswith("template error") and "ZeroDivisionError" in run["trace"][2]["error"]


@pytest.mark.browser
def test_debug_page_shows_a_development_run_live_in_chromium(make_automation, hook, owner, live_server):
    from playwright.sync_api import expect

    automation = make_automation(FLOW, name="Greeter")
    session = session_of(owner)
    with chromium() as browser:
        page = signed_in_context(browser, live_server.url, session).new_page()
        page.goto(f"{live_server.url}/automations/{automation.pk}/debug/")
        expect(page.locator("h1")).to_contain_text("Greeter")
        expect(page.locator("#status")).to_contain_text("Live", timeout=5000)
        page.evaluate("window.__notReloaded = true")

        # (No ORM calls in here: Playwright's sync API runs an event loop in this thread.)
        answer = requests.post(hook(automation, dev=True), json={"name": "Ann", "n": 3}, timeout=10)
        assert answer.json() == {"greeting": "Hello Ann"}
        card = page.locator("section.run")
        expect(card).to_be_visible(timeout=2000)  # within 2 s, without a reload
        shown_id = card.get_attribute("id")
        expect(card).to_have_attribute("data-status", "succeeded", timeout=2000)
        expect(card.locator("tr.step")).to_have_count(3)
        expect(card.locator("tr.step").nth(0)).to_contain_text("Hello Ann")
        expect(card.locator("tr.step").nth(1)).to_contain_text("condition → then")
        expect(card).to_contain_text('"name": "Ann"')
        screenshot(page, "automations-debug-success")

        requests.post(hook(automation, dev=True), json={"name": "Bo", "n": 1}, timeout=10)
        failed = page.locator("section.run[data-status=failed]")
        expect(failed).to_have_count(1, timeout=2000)
        expect(failed.locator("td.error")).to_contain_text("ZeroDivisionError")
        assert page.evaluate("window.__notReloaded") is True
        assert page.locator("section.run").count() == 2
        screenshot(page, "automations-debug-failure")
    runs = list(Run.objects.filter(automation=automation).order_by("created_at").values_list("pk", "status"))
    assert shown_id == f"run-{runs[0][0]}" and [status for _, status in runs] == ["succeeded", "failed"]

"""A failed run is heard of: `automation.run.failed` reaches REST Hooks subscribers (also when the
caller already had its 200), and the dashboard counts failed runs with a link to them."""

import re

import requests

from automations.models import Run
from tests.conftest import received, wait_for

from .conftest import finished_run

FAILS_AFTER_ANSWERING = [
    {"id": "answer", "action": "response", "status": 200, "body": {"ok": True}},
    {"id": "divide", "action": "set", "name": "x", "value": "{{ payload.n / 0 }}"},
]


def subscribe(api, project, url: str) -> None:
    created = api.post(
        f"/api/projects/{project.pk}/subscriptions/", {"event": "automation.run.failed", "target": url}, format="json"
    )
    assert created.status_code == 201, created.json()


def test_a_failure_after_the_answer_reaches_the_subscriber(api, project, make_automation, hook, httpserver):
    httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/alerts"))
    automation = make_automation(FAILS_AFTER_ANSWERING, name="Orders")
    secret_body = {"n": 1, "card": "4111 1111 1111 1111"}
    assert requests.post(hook(automation), json=secret_body, timeout=10).status_code == 200
    run = finished_run(automation)
    (delivery,) = wait_for(lambda: received(httpserver), timeout=10)
    envelope = delivery["json"]
    assert envelope["hook"]["event"] == "automation.run.failed"
    payload = envelope["payload"]
    assert payload["run_id"] == payload["id"] == run.pk and payload["status"] == "failed"
    assert payload["automation"] == {"_id": automation.pk, "id": automation.pk, "name": "Orders"}
    assert payload["step"] == {"id": "divide", "action": "set"} and "divide" in payload["error"]
    assert payload["mode"] == "production" and payload["id_project"] == project.pk
    assert secret_body["card"] not in str(envelope)  # (random ids may hold "4111", the card does not)


def test_a_succeeding_run_publishes_nothing(api, project, make_automation, hook, httpserver):
    httpserver.expect_request("/alerts", method="POST").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/alerts"))
    succeeding = make_automation([{"action": "response", "status": 200, "body": 1}], name="fine")
    requests.post(hook(succeeding), json={}, timeout=10)
    assert finished_run(succeeding).status == "succeeded"
    failing = make_automation(FAILS_AFTER_ANSWERING, name="broken")
    requests.post(hook(failing), json={"n": 1}, timeout=10)
    failed = finished_run(failing)
    wait_for(lambda: received(httpserver), timeout=10)
    assert [d["json"]["payload"]["run_id"] for d in received(httpserver)] == [failed.pk]


def test_the_event_is_in_the_catalog(api):
    names = [event["name"] for event in api.get("/api/events/").json()]
    assert "automation.run.failed" in names


def test_the_dashboard_counts_failed_runs_and_links_to_them(client, make_user, make_automation, project):
    automation = make_automation([{"action": "log", "message": "x"}])
    for status in ("failed", "timed_out", "succeeded"):
        Run.objects.create(automation=automation, project=project, method="POST", status=status)
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    html = client.get("/admin/").content.decode()
    [card] = re.findall(r'<div class="console-card console-failed-runs bad">.*?</small>', html, re.S)
    assert '<div class="figure">2</div>' in card
    [link] = re.findall(r'href="([^"]+)"', card)
    listed = client.get(link.replace("&amp;", "&"))
    assert listed.status_code == 200 and listed.context["cl"].result_count == 2

"""Runs a signed-in member makes: replaying a recorded run against the current flow, and the
studio's test call. Both skip the automation's inbound authentication."""

import requests

from automations.models import Run, Secret
from support.models import Event

from .conftest import finished_run

ECHO = [
    {
        "id": "answer",
        "action": "response",
        "status": 200,
        "body": {"got": "{{ payload.n }}", "key": "{{ headers['x-api-key'] }}", "ct": "{{ headers['content-type'] }}"},
    },
]


def runs_url(project, automation) -> str:
    return f"/api/projects/{project.pk}/automations/{automation.pk}/runs/"


def test_a_replay_reruns_the_recorded_call_against_the_current_flow(api, project, make_automation, hook):
    automation = make_automation([{"id": "answer", "action": "response", "status": 200, "body": {"v": 1}}])
    requests.post(hook(automation), json={"n": 7}, params={"page": "2"}, timeout=10)
    original = finished_run(automation)
    automation.flow = {
        "steps": [
            {
                "id": "answer",
                "action": "response",
                "status": 200,
                "body": {"n": "{{ payload.n }}", "page": "{{ query.page }}"},
            }
        ]
    }
    automation.save()
    response = api.post(f"{runs_url(project, automation)}{original.pk}/replay/", {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["replay_of"] == original.pk and body["mode"] == "development" and body["status"] == "succeeded"
    assert body["response"]["body"] == {"n": 7, "page": "2"} and body["method"] == "POST"
    assert Run.objects.get(pk=body["id"]).replay_of_id == original.pk


def test_redacted_header_values_are_not_resent(api, project, make_automation, hook):
    automation = make_automation(ECHO)
    requests.post(hook(automation), json={"n": 1}, headers={"X-Api-Key": "k-123"}, timeout=10)
    original = finished_run(automation)
    replayed = api.post(f"{runs_url(project, automation)}{original.pk}/replay/", {}, format="json").json()
    assert replayed["response"]["body"] == {"got": 1, "key": None, "ct": "application/json"}


def test_a_replay_skips_inbound_authentication(api, project, make_automation, hook):
    secret = Secret(project=project, name="INBOUND")
    secret.value = "the-key-value"
    secret.save()
    automation = make_automation(
        [{"id": "emit", "action": "emit_event", "name": "replayed"}],
        auth={"type": "header", "header": "X-Api-Key", "secret": "INBOUND"},
    )
    assert requests.post(hook(automation), json={}, timeout=10).status_code == 401
    refused = finished_run(automation)
    response = api.post(f"{runs_url(project, automation)}{refused.pk}/replay/", {"mode": "production"}, format="json")
    assert response.status_code == 200 and response.json()["mode"] == "production"
    assert response.json()["status"] == "succeeded" and Event.objects.filter(name="replayed").exists()


def test_agents_may_not_replay(agent_api, project, make_automation, hook):
    automation = make_automation(ECHO)
    requests.post(hook(automation), json={}, timeout=10)
    run = finished_run(automation)
    assert agent_api.post(f"{runs_url(project, automation)}{run.pk}/replay/", {}, format="json").status_code == 403


def test_replaying_another_automations_run_is_404(api, project, make_automation, hook):
    first, second = make_automation(ECHO, name="a"), make_automation(ECHO, name="b")
    requests.post(hook(first), json={}, timeout=10)
    run = finished_run(first)
    assert api.post(f"{runs_url(project, second)}{run.pk}/replay/", {}, format="json").status_code == 404


def test_a_run_whose_body_was_truncated_cannot_be_replayed(api, project, make_automation, hook, settings):
    settings.AUTOMATION_RUN_BODY_LIMIT = 10
    automation = make_automation(ECHO)
    requests.post(hook(automation), json={"n": "x" * 100}, timeout=10)
    run = finished_run(automation)
    response = api.post(f"{runs_url(project, automation)}{run.pk}/replay/", {}, format="json")
    assert response.status_code == 400 and "truncated" in response.json()["detail"][0]


def test_a_bad_mode_is_400_on_mode(api, project, make_automation, hook):
    automation = make_automation(ECHO)
    requests.post(hook(automation), json={}, timeout=10)
    run = finished_run(automation)
    response = api.post(f"{runs_url(project, automation)}{run.pk}/replay/", {"mode": "live"}, format="json")
    assert response.status_code == 400 and "mode" in response.json()


def test_a_test_call_is_a_development_run_skipping_inbound_auth(api, project, make_automation):
    secret = Secret(project=project, name="INBOUND")
    secret.value = "the-key-value"
    secret.save()
    automation = make_automation(ECHO, auth={"type": "header", "header": "X-Api-Key", "secret": "INBOUND"})
    url = f"/api/projects/{project.pk}/automations/{automation.pk}/test_call/"
    response = api.post(url, {"method": "PUT", "headers": {"X-Api-Key": "any"}, "body": {"n": 3}}, format="json")
    assert response.status_code == 200, response.json()
    run = response.json()
    assert run["mode"] == "development" and run["method"] == "PUT" and run["status"] == "succeeded"
    assert run["response"]["body"] == {"got": 3, "key": "any", "ct": "application/json"}
    assert run["headers"]["x-api-key"] == "[redacted]"


def test_a_test_call_of_a_failing_flow_answers_the_failed_run(api, project, make_automation):
    automation = make_automation([{"id": "boom", "action": "set", "name": "x", "value": "{{ 1 / 0 }}"}])
    url = f"/api/projects/{project.pk}/automations/{automation.pk}/test_call/"
    run = api.post(url, {"body": {}}, format="json").json()
    assert run["status"] == "failed" and "boom" in run["error"] and run["trace"][0]["error"]


def test_a_test_call_with_a_bad_method_or_header_is_400_naming_it(api, project, make_automation):
    automation = make_automation(ECHO)
    url = f"/api/projects/{project.pk}/automations/{automation.pk}/test_call/"
    assert "method" in api.post(url, {"method": "BREW"}, format="json").json()
    assert "headers" in api.post(url, {"headers": {"bad name": "x"}}, format="json").json()


def test_agents_may_not_send_test_calls(agent_api, project, make_automation):
    automation = make_automation(ECHO)
    url = f"/api/projects/{project.pk}/automations/{automation.pk}/test_call/"
    assert agent_api.post(url, {"body": {}}, format="json").status_code == 403


def test_the_admin_replays_selected_runs(admin_client, project, make_automation, hook):
    automation = make_automation(
        [{"id": "answer", "action": "response", "status": 200, "body": {"n": "{{ payload.n }}"}}]
    )
    requests.post(hook(automation), json={"n": 5}, timeout=10)
    original = finished_run(automation)
    response = admin_client.post(
        "/admin/automations/run/", {"action": "replay", "_selected_action": [original.pk], "index": 0}, follow=True
    )
    replayed = Run.objects.get(replay_of=original)
    assert f"replayed as run {replayed.pk}: succeeded" in response.content.decode()
    assert replayed.mode == "development" and replayed.response["body"] == {"n": 5}

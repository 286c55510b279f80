"""Project secrets: written through the API by owners and admins, encrypted at rest, never read
back, used by flows as `{{ secrets.NAME }}` and scrubbed from everything a run records."""

import requests

from automations.models import Secret

from .conftest import finished_run

TOKEN = "crm-token-5f2a9c7e"


def secrets_url(project, name: str = "") -> str:
    return f"/api/projects/{project.pk}/secrets/" + (f"{name}/" if name else "")


def add_secret(api, project, name: str = "CRM_TOKEN", value: str = TOKEN):
    response = api.post(secrets_url(project), {"name": name, "value": value}, format="json")
    assert response.status_code == 201, response.json()
    return response


def test_a_created_secret_answers_its_name_and_dates_never_its_value(api, project):
    body = add_secret(api, project).json()
    assert body["name"] == "CRM_TOKEN" and body["id"] == body["_id"] and "createdAt" in body
    assert "value" not in body and TOKEN not in str(body)
    listed = api.get(secrets_url(project)).json()
    assert [row["name"] for row in listed["results"]] == ["CRM_TOKEN"] and TOKEN not in str(listed)


def test_the_value_is_encrypted_at_rest(api, project):
    add_secret(api, project)
    stored = Secret.objects.get(project=project, name="CRM_TOKEN")
    assert TOKEN not in stored.encrypted_value and stored.value == TOKEN


def test_put_replaces_the_value(api, project):
    add_secret(api, project)
    response = api.put(secrets_url(project, "CRM_TOKEN"), {"value": "new-token-1234"}, format="json")
    assert response.status_code == 200 and "value" not in response.json()
    assert Secret.objects.get(project=project, name="CRM_TOKEN").value == "new-token-1234"


def test_delete_removes_the_secret(api, project):
    add_secret(api, project)
    assert api.delete(secrets_url(project, "CRM_TOKEN")).status_code == 204
    assert not Secret.objects.filter(project=project).exists()


def test_a_second_secret_of_the_same_name_is_400_on_name(api, project):
    add_secret(api, project)
    response = api.post(secrets_url(project), {"name": "CRM_TOKEN", "value": "other-value"}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_a_bad_name_or_a_too_short_value_is_400_naming_the_field(api, project):
    assert "name" in api.post(secrets_url(project), {"name": "1 bad", "value": "long enough"}, format="json").json()
    assert "value" in api.post(secrets_url(project), {"name": "OK", "value": "abc"}, format="json").json()


def test_agents_may_not_read_or_write_secrets(agent_api, api, project):
    add_secret(api, project)
    assert agent_api.get(secrets_url(project)).status_code == 403
    assert agent_api.post(secrets_url(project), {"name": "X", "value": "valuevalue"}, format="json").status_code == 403


def test_another_projects_secrets_are_404(stranger_api, api, project):
    add_secret(api, project)
    assert stranger_api.get(secrets_url(project)).status_code == 404
    assert stranger_api.delete(secrets_url(project, "CRM_TOKEN")).status_code == 404


def test_a_flow_sends_a_secret_and_the_run_never_shows_it(api, project, make_automation, hook, httpserver):
    add_secret(api, project)
    httpserver.expect_request("/crm", headers={"X-Token": TOKEN}).respond_with_json({"echo": TOKEN})
    automation = make_automation(
        [
            {"id": "keep", "action": "set", "name": "token", "value": "{{ secrets.CRM_TOKEN }}"},
            {
                "id": "crm",
                "action": "http_request",
                "method": "POST",
                "url": httpserver.url_for("/crm"),
                "headers": {"X-Token": "{{ secrets.CRM_TOKEN }}"},
                "body": {"token": "{{ token }}"},
                "save_as": "crm",
            },
            {"id": "log", "action": "log", "message": "sent {{ token }}"},
            {"id": "answer", "action": "response", "status": 200, "body": {"status": "{{ crm.status }}"}},
        ]
    )
    response = requests.post(hook(automation, dev=True), json={}, timeout=10)
    assert response.status_code == 200 and response.json() == {"status": 200}
    run = finished_run(automation)
    assert run.status == "succeeded"
    assert run.trace[2]["output"] == "sent [secret CRM_TOKEN]"
    runs = api.get(f"/api/projects/{project.pk}/automations/{automation.pk}/runs/").json()
    assert TOKEN not in str(runs) and "[secret CRM_TOKEN]" in str(runs)


def test_an_error_naming_a_secret_is_scrubbed(api, project, make_automation, hook):
    add_secret(api, project)
    automation = make_automation(
        [
            {"id": "boom", "action": "http_request", "url": "ftp://{{ secrets.CRM_TOKEN }}/", "save_as": "r"},
            {"action": "response", "status": 200, "body": 1},
        ]
    )
    response = requests.post(hook(automation, dev=True), json={}, timeout=10)
    run = finished_run(automation)
    assert response.status_code == 502 and run.status == "failed"
    assert "ftp://[secret CRM_TOKEN]/" in run.error
    assert TOKEN not in response.text and TOKEN not in run.error and TOKEN not in str(run.trace)

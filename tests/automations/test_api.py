"""The automations API: CRUD, absolute URLs, regenerate, runs, validation and access."""

import pytest
import requests

from automations.models import Automation, Run
from support.models import Project, ProjectUser, Role

HELLO_FLOW = {
    "steps": [
        {"action": "set", "name": "who", "value": "{{ payload.name }}"},
        {"action": "response", "status": 200, "body": {"hello": "{{ who }}", "n": "{{ payload.n }}"}},
    ]
}


def base(project) -> str:
    return f"/api/projects/{project.pk}/automations/"


def test_owner_creates_automation_and_gets_absolute_webhook_urls(api, project):
    response = api.post(base(project), {"name": "Hello", "flow": HELLO_FLOW}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"] == body["_id"] and body["enabled"] is True and body["id_project"] == project.pk
    assert len(body["webhook_id"]) >= 32  # token_urlsafe(24): 192 random bits
    assert body["production_url"] == f"http://testserver/webhook/{body['webhook_id']}"
    assert body["development_url"] == f"http://testserver/webhook/{body['webhook_id']}/dev"
    assert body["debug_url"] == f"http://testserver/automations/{body['id']}/debug/"
    assert [step["id"] for step in body["flow"]["steps"]] == ["set_1", "response_1"]  # ids generated


def test_webhook_ids_differ_between_automations(api, project):
    ids = {
        api.post(base(project), {"name": f"a{i}", "flow": HELLO_FLOW}, format="json").json()["webhook_id"]
        for i in range(3)
    }
    assert len(ids) == 3


def test_list_retrieve_update_and_delete(api, project):
    created = api.post(base(project), {"name": "Hello", "flow": HELLO_FLOW}, format="json").json()
    listed = api.get(base(project)).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == created["id"]
    detail = f"{base(project)}{created['id']}/"
    assert api.patch(detail, {"enabled": False}, format="json").json()["enabled"] is False
    assert (
        api.put(detail, {"name": "Renamed", "enabled": True, "flow": HELLO_FLOW}, format="json").json()["name"]
        == "Renamed"
    )
    assert api.delete(detail).status_code == 204
    assert api.get(detail).status_code == 404


def test_regenerate_gives_new_webhook_id_and_old_url_stops(api, project, live_server):
    created = api.post(base(project), {"name": "Hello", "flow": HELLO_FLOW}, format="json").json()
    old_url = f"{live_server.url}/webhook/{created['webhook_id']}"
    assert requests.post(old_url, json={"name": "Ann", "n": 1}, timeout=10).status_code == 200
    response = api.post(f"{base(project)}{created['id']}/regenerate/")
    assert response.status_code == 200
    assert response.json()["webhook_id"] != created["webhook_id"]
    gone = requests.post(old_url, json={"name": "Ann", "n": 1}, timeout=10)
    assert gone.status_code == 404 and "detail" in gone.json()
    new_url = f"{live_server.url}/webhook/{response.json()['webhook_id']}"
    assert requests.post(new_url, json={"name": "Ann", "n": 1}, timeout=10).json() == {"hello": "Ann", "n": 1}


@pytest.mark.parametrize(
    ("steps", "fragment"),
    [
        ([{"action": "teleport"}], "steps[0] step_1: unknown action 'teleport'"),
        ([{"id": "greet", "action": "log"}], "steps[0] greet: missing field 'message'"),
        ([{"action": "log", "message": "{{ payload.x "}], "bad template syntax"),
        ([{"action": "log", "message": "{% for i in range(9) %}{% endfor %}"}], "'for' blocks are not allowed"),
        ([{"action": "log", "message": "{{ ''.__class__ }}"}], "'__class__' is private"),
        ([{"action": "log", "message": "hi", "goto": "start"}], "unknown field 'goto'"),
        ([{"action": "condition", "if": {"left": 1, "op": "~", "right": 2}}], "'if.op' must be one of"),
        (
            [{"action": "condition", "if": {"left": 1, "op": "exists"}, "then": [{"id": "deep", "action": "nope"}]}],
            "steps[0].then[0] deep: unknown action",
        ),
        ([{"action": "response", "status": 700}], "'status' must be an HTTP status code"),
        ([{"action": "set", "name": "payload", "value": 1}], "reserved"),
        ([{"action": "set", "name": "1x", "value": 1}], "must be a variable name"),
        ([{"action": "http_request", "url": "ftp://x", "save_as": "r"}], "'url'"),
        ([{"action": "condition", "if": {"left": "a", "op": "matches", "right": "(unclosed"}}], "regular expression"),
        ([{"id": "a", "action": "stop"}, {"id": "a", "action": "stop"}], "id 'a' is used by more than one step"),
    ],
)
def test_invalid_flow_is_400_naming_the_bad_step(api, project, steps, fragment):
    response = api.post(base(project), {"name": "Bad", "flow": {"steps": steps}}, format="json")
    assert response.status_code == 400
    messages = [f"{error['path']} {error['step_id']}: {error['message']}" for error in response.json()["flow"]]
    assert any(fragment in message for message in messages), messages


def test_flow_must_be_an_object_with_steps(api, project):
    response = api.post(base(project), {"name": "Bad", "flow": [1, 2]}, format="json")
    assert response.status_code == 400 and "flow" in response.json()


def test_private_url_refused_when_private_targets_not_allowed(api, project, settings):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    steps = [{"action": "http_request", "url": "http://169.254.169.254/latest/meta-data", "save_as": "r"}]
    response = api.post(base(project), {"name": "SSRF", "flow": {"steps": steps}}, format="json")
    assert response.status_code == 400
    assert "not allowed" in response.json()["flow"][0]["message"]


def test_agent_reads_but_cannot_write(agent_api, api, project):
    created = api.post(base(project), {"name": "Hello", "flow": HELLO_FLOW}, format="json").json()
    assert agent_api.get(base(project)).status_code == 200
    assert agent_api.post(base(project), {"name": "x", "flow": HELLO_FLOW}, format="json").status_code == 403
    assert agent_api.post(f"{base(project)}{created['id']}/regenerate/").status_code == 403
    assert agent_api.delete(f"{base(project)}{created['id']}/").status_code == 403


def test_admin_can_write(add_member, project):
    from tests.conftest import client_for

    admin_api = client_for(add_member("boss", Role.ADMIN))
    assert admin_api.post(base(project), {"name": "x", "flow": HELLO_FLOW}, format="json").status_code == 201


def test_other_projects_automations_and_runs_are_404(api, stranger_api, project, make_automation, owner, make_user):
    automation = make_automation([{"action": "stop"}])
    Run.objects.create(automation=automation, project=project, method="POST", status=Run.Status.SUCCEEDED)
    assert stranger_api.get(base(project)).status_code == 404
    assert stranger_api.get(f"{base(project)}{automation.pk}/").status_code == 404
    assert stranger_api.get(f"{base(project)}{automation.pk}/runs/").status_code == 404
    # The owner's own other project does not see this project's automation under its id either.
    other = Project.objects.create(name="Other", created_by=owner)
    ProjectUser.objects.create(project=other, user=owner, email=owner.email, role=Role.OWNER)
    assert api.get(f"{base(other)}{automation.pk}/").status_code == 404
    assert api.get(f"{base(other)}{automation.pk}/runs/").status_code == 404
    assert api.post(f"{base(other)}{automation.pk}/regenerate/").status_code == 404


def test_anonymous_is_401(client, project):
    assert client.get(base(project)).status_code == 401


def test_runs_newest_first_filtered_by_mode_and_status(api, project, make_automation):
    automation = make_automation([{"action": "stop"}])
    first = Run.objects.create(
        automation=automation, project=project, method="POST", mode="production", status="succeeded"
    )
    second = Run.objects.create(
        automation=automation, project=project, method="GET", mode="development", status="failed"
    )
    third = Run.objects.create(automation=automation, project=project, method="PUT", mode="production", status="failed")
    url = f"{base(project)}{automation.pk}/runs/"
    assert [r["id"] for r in api.get(url).json()["results"]] == [third.pk, second.pk, first.pk]
    assert [r["id"] for r in api.get(url, {"mode": "production"}).json()["results"]] == [third.pk, first.pk]
    assert [r["id"] for r in api.get(url, {"status": "failed", "mode": "development"}).json()["results"]] == [second.pk]
    page = api.get(url, {"page_size": 1}).json()
    assert page["count"] == 3 and len(page["results"]) == 1 and page["next"]
    assert api.get(url, {"status": "exploded"}).status_code == 400
    assert set(api.get(url).json()["results"][0]) >= {"id", "_id", "mode", "status", "trace", "response", "createdAt"}


def test_automation_is_scoped_to_the_callers_project(api, project):
    created = api.post(base(project), {"name": "Hello", "flow": HELLO_FLOW}, format="json").json()
    assert Automation.objects.get(pk=created["id"]).project_id == project.pk

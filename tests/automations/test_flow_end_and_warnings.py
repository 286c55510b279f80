"""A `response` that ends the flow, the warnings a save answers, and the validate endpoint that
answers a save's checks (errors and warnings, each naming its step) without saving."""

import requests

from automations import examples
from automations.models import Run
from support.models import Event, Request

from .conftest import finished_run
from .test_example_flows import install

CREATE = {
    "id": "create",
    "action": "create_request",
    "first_text": "{{ payload.message }}",
    "lead": {"fullname": "{{ payload.name }}"},
    "save_as": "request",
}


def reject(**extra) -> dict:
    return {"id": "reject", "action": "response", "status": 400, "body": {"error": "email is required"}, **extra}


def check_email(**extra) -> dict:
    return {
        "id": "check_email",
        "action": "condition",
        "if": {"left": "{{ payload.email }}", "op": "exists"},
        "else": [reject(**extra)],
    }


def automations_url(project) -> str:
    return f"/api/projects/{project.pk}/automations/"


def test_the_inbound_lead_example_creates_no_conversation_after_answering_400(project, owner, hook):
    automation = install(project, owner, "inbound_lead")
    response = requests.post(hook(automation), json={"name": "Ann", "message": "hi"}, timeout=10)
    assert response.status_code == 400 and response.json() == {"error": "email is required"}
    run = finished_run(automation)
    assert run.status == Run.Status.SUCCEEDED
    assert [step["id"] for step in run.trace] == ["check_email", "reject"]
    assert Request.objects.count() == 0


def test_a_response_with_end_true_stops_the_flow_after_answering(make_automation, hook):
    automation = make_automation(
        [
            {"id": "answer", "action": "response", "status": 202, "body": {"ok": True}, "end": True},
            {"id": "emit", "action": "emit_event", "name": "after.answer"},
        ]
    )
    assert requests.post(hook(automation), json={}, timeout=10).status_code == 202
    assert [step["id"] for step in finished_run(automation).trace] == ["answer"]
    assert not Event.objects.filter(name="after.answer").exists()


def test_a_response_without_end_lets_the_flow_go_on_after_answering(make_automation, hook):
    automation = make_automation(
        [
            {"id": "answer", "action": "response", "status": 202, "body": {"ok": True}},
            {"id": "emit", "action": "emit_event", "name": "after.answer"},
        ]
    )
    assert requests.post(hook(automation), json={}, timeout=10).status_code == 202
    assert [step["id"] for step in finished_run(automation).trace] == ["answer", "emit"]
    assert Event.objects.filter(name="after.answer").exists()


def test_end_must_be_a_boolean(api, project):
    flow = {"steps": [{"action": "response", "status": 200, "end": "yes"}]}
    response = api.post(automations_url(project), {"name": "x", "flow": flow}, format="json")
    assert response.status_code == 400
    error = {"path": "steps[0]", "step_id": "response_1", "message": "'end' must be true or false."}
    assert response.json()["flow"] == [error]


def test_saving_warns_of_a_side_effect_that_can_run_after_an_error_answer(api, project):
    flow = {"steps": [check_email(), CREATE]}
    response = api.post(automations_url(project), {"name": "Lead", "flow": flow}, format="json")
    assert response.status_code == 201
    (warning,) = response.json()["warnings"]
    assert warning["path"] == "steps[1]" and warning["step_id"] == "create"
    assert "after the caller was answered with an error status" in warning["message"]


def test_an_error_answer_that_ends_the_flow_is_saved_without_warnings(api, project):
    flow = {"steps": [check_email(end=True), CREATE]}
    response = api.post(automations_url(project), {"name": "Lead", "flow": flow}, format="json")
    assert response.status_code == 201 and response.json()["warnings"] == []


def test_an_update_answers_the_warnings_of_the_new_flow(api, project):
    created = api.post(automations_url(project), {"name": "Lead", "flow": {"steps": [CREATE]}}, format="json").json()
    assert created["warnings"] == []
    flow = {"steps": [check_email(), CREATE]}
    updated = api.patch(f"{automations_url(project)}{created['id']}/", {"flow": flow}, format="json")
    assert updated.status_code == 200 and [w["step_id"] for w in updated.json()["warnings"]] == ["create"]


def test_every_example_is_saved_without_warnings(api, project):
    for name in examples.NAMES:
        example = examples.load(name)
        response = api.post(automations_url(project), {"name": name, "flow": example["flow"]}, format="json")
        assert response.status_code == 201 and response.json()["warnings"] == [], name


def test_validate_answers_each_error_with_its_path_and_step_id(api, project):
    flow = {"steps": [{"id": "greet", "action": "log"}, {"action": "condition", "if": {"left": 1, "op": "~"}}]}
    response = api.post(f"{automations_url(project)}validate/", {"flow": flow}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["warnings"] == []
    assert {"path": "steps[0]", "step_id": "greet", "message": "missing field 'message'."} in body["errors"]
    assert any(e["path"] == "steps[1]" and "'if.op' must be one of" in e["message"] for e in body["errors"])


def test_validate_answers_the_warnings_of_a_valid_flow_and_saves_nothing(api, project):
    flow = {"steps": [check_email(), CREATE]}
    response = api.post(f"{automations_url(project)}validate/", {"flow": flow}, format="json")
    assert response.status_code == 200
    assert response.json()["errors"] == [] and [w["step_id"] for w in response.json()["warnings"]] == ["create"]
    assert not project.automations.exists()


def test_a_flow_that_is_not_an_object_with_steps_is_one_error_without_a_step(api, project):
    response = api.post(f"{automations_url(project)}validate/", {"flow": [1, 2]}, format="json")
    (error,) = response.json()["errors"]
    assert error["path"] == "" and error["step_id"] is None


def test_a_refused_save_carries_the_errors_validate_gives(api, project):
    flow = {"steps": [{"id": "greet", "action": "log"}]}
    checked = api.post(f"{automations_url(project)}validate/", {"flow": flow}, format="json").json()
    saved = api.post(automations_url(project), {"name": "x", "flow": flow}, format="json")
    assert saved.status_code == 400 and saved.json()["flow"] == checked["errors"]


def test_validate_without_a_flow_is_400_on_flow(api, project):
    response = api.post(f"{automations_url(project)}validate/", {}, format="json")
    assert response.status_code == 400 and "flow" in response.json()


def test_validate_in_another_project_is_404(stranger_api, project):
    response = stranger_api.post(f"{automations_url(project)}validate/", {"flow": {"steps": []}}, format="json")
    assert response.status_code == 404

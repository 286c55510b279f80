"""The three example flows of the product, end to end over real HTTP, as shipped in the demo seed."""

import pytest
import requests
from django_q.models import Task

from automations import examples
from automations.flow import validate_flow
from automations.models import Automation, Run, RunRequest
from support.models import Event, Lead, Request
from tests.conftest import received, wait_for

from .conftest import finished_run


def install(project, owner, name: str, **kwargs) -> Automation:
    example = examples.load(name, **kwargs)
    checked = validate_flow(example["flow"])
    assert not checked.problems
    return Automation.objects.create(project=project, name=example["name"], flow=checked.flow, created_by=owner)


def test_every_example_is_a_valid_flow():
    for name in examples.NAMES:
        assert validate_flow(examples.load(name)["flow"]).problems == []


def test_inbound_lead_creates_lead_and_request_and_answers_201(project, owner, hook):
    automation = install(project, owner, "inbound_lead")
    form = {"name": "Ann Lee", "email": "ann@example.com", "message": "Do you ship to Norway?"}
    response = requests.post(hook(automation), json=form, timeout=10)
    assert response.status_code == 201
    request = Request.objects.get(project=project)
    assert response.json() == {"request_id": request.request_id, "status": 200}  # assigned to the owner
    assert request.first_text == "Do you ship to Norway?"
    lead = Lead.objects.get(project=project, email="ann@example.com")
    assert lead.fullname == "Ann Lee" and lead.lead_id == "ann@example.com"
    assert finished_run(automation).status == "succeeded"


def test_inbound_lead_keeps_one_lead_per_email(project, owner, hook):
    automation = install(project, owner, "inbound_lead")
    for message in ("Do you ship to Norway?", "And to Iceland?"):
        form = {"name": "Ann Lee", "email": "ann@example.com", "message": message}
        assert requests.post(hook(automation), json=form, timeout=10).status_code == 201
    assert Request.objects.filter(project=project).count() == 2 and Lead.objects.filter(project=project).count() == 1


def test_inbound_lead_from_an_html_form_post(project, owner, hook):
    automation = install(project, owner, "inbound_lead")
    response = requests.post(
        hook(automation), data={"name": "Bo", "email": "bo@example.com", "message": "Hi"}, timeout=10
    )
    assert response.status_code == 201 and Request.objects.get(project=project).first_text == "Hi"


def test_inbound_lead_without_email_is_answered_400_by_the_flow(project, owner, hook):
    automation = install(project, owner, "inbound_lead")
    response = requests.post(hook(automation), json={"name": "Ann", "message": "hi"}, timeout=10)
    assert response.status_code == 400 and response.json() == {"error": "email is required"}
    assert Request.objects.count() == 0


def test_rest_hooks_subscriber_receives_the_request_create_an_automation_caused(api, project, owner, hook, httpserver):
    httpserver.expect_request("/hooks/request-create", method="POST").respond_with_data("ok")
    created = api.post(
        f"/api/projects/{project.pk}/subscriptions/",
        {"event": "request.create", "target": httpserver.url_for("/hooks/request-create")},
        format="json",
    )
    assert created.status_code == 201
    automation = install(project, owner, "inbound_lead")
    answer = requests.post(
        hook(automation), json={"name": "Ann", "email": "ann@example.com", "message": "Hello"}, timeout=10
    )
    assert answer.status_code == 201
    deliveries = wait_for(lambda: received(httpserver), timeout=10)
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery["headers"]["x-hook-secret"] == created.json()["secret"]
    assert delivery["json"]["hook"]["event"] == "request.create"
    assert delivery["json"]["payload"]["request_id"] == answer.json()["request_id"]
    assert delivery["json"]["payload"]["first_text"] == "Hello"
    assert delivery["json"]["payload"]["lead"]["email"] == "ann@example.com"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (
            {"status": "shipped", "tracking": "TRK-1"},
            {"order_id": "A-1", "status": "shipped", "message": "Your order A-1 has shipped; tracking number TRK-1."},
        ),
        ({"status": "packing"}, {"order_id": "A-1", "status": "packing", "message": "Your order A-1 is packing."}),
    ],
)
def test_order_status_asks_the_orders_api_and_branches_on_its_answer(project, owner, hook, httpserver, order, expected):
    httpserver.expect_request("/api/orders/A-1", method="GET").respond_with_json(order)
    automation = install(project, owner, "order_status", orders_api=httpserver.url_for("/api"))
    response = requests.post(hook(automation), json={"order_id": "A-1"}, timeout=10)
    assert response.status_code == 200 and response.json() == expected
    (call,) = received(httpserver)
    assert call["path"] == "/api/orders/A-1" and call["headers"]["accept"] == "application/json"


def test_order_status_for_an_unknown_order(project, owner, hook, httpserver):
    httpserver.expect_request("/api/orders/NOPE").respond_with_json({"error": "not found"}, status=404)
    automation = install(project, owner, "order_status", orders_api=httpserver.url_for("/api"))
    response = requests.post(hook(automation), json={"order_id": "NOPE"}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"order_id": "NOPE", "status": "unknown", "message": "We could not find order NOPE."}
    run = finished_run(automation)
    assert [step["id"] for step in run.trace] == ["api", "fetch", "found", "answer_unknown"]
    assert run.trace[1]["output"]["status"] == 404


@pytest.mark.e2e
def test_fire_and_forget_answers_at_once_and_runs_on_a_real_qcluster(project, owner, hook, start_worker, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # this process only queues; the worker runs the flow
    automation = install(project, owner, "fire_and_forget")
    response = requests.post(hook(automation), json={"event": "invoice.paid", "amount": 12}, timeout=10)
    assert response.status_code == 200
    run_id = response.json()["run_id"]
    assert response.json() == {"success": True, "run_id": run_id}
    assert Run.objects.get(pk=run_id).status == "running"  # nothing ran in the web process
    assert not Event.objects.exists()
    worker = start_worker()
    run = wait_for(lambda: Run.objects.filter(pk=run_id).exclude(status="running").first(), timeout=40)
    assert run is not None, worker.output()
    assert run.status == "succeeded", run.error
    event = Event.objects.get(project=project)
    assert event.name == "invoice.paid"
    assert event.attributes == {
        "payload": {"event": "invoice.paid", "amount": 12},
        "received_by": "fire-and-forget automation",
    }
    assert [step["id"] for step in run.trace] == ["log", "emit"]
    # The queue carried the run's id only; the call it read is deleted now that the run has ended.
    task = wait_for(lambda: Task.objects.filter(name=f"automation-run-{run_id}").first())
    assert task is not None and task.args == (run_id,) and not task.kwargs
    assert not RunRequest.objects.filter(run_id=run_id).exists()

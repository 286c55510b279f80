"""What runs record of credentials: header values are redacted everywhere a run is shown (runs API,
debug page, admin), the flow still reads them, and the task queue never holds a caller's call."""

import json
from datetime import timedelta

import requests
from django.test import Client
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from werkzeug import Response

from automations.maintenance import fail_stale_runs
from automations.models import Run, RunRequest
from automations.tasks import execute_run

from .conftest import finished_run

SECRETS = ("Bearer s3cret-token", "k3y-value", "sig-123", "tok-from-receiver", "session=abc")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def http_flow(url: str, echo: bool) -> list:
    """Calls a CRM with credentials, keeps its answer, copies and logs it; answers with the values
    read out of the headers when `echo` (the author's own doing, then)."""
    body = {"token": "{{ crm.headers['X-Token'] }}", "auth": "{{ headers.authorization }}"} if echo else {"ok": True}
    return [
        {
            "id": "call",
            "action": "http_request",
            "method": "POST",
            "url": url,
            "headers": {"Authorization": "{{ headers.authorization }}", "X-Api-Key": "k3y-value"},
            "body": {"n": 1},
            "save_as": "crm",
        },
        {"id": "copy", "action": "set", "name": "all_headers", "value": "{{ crm.headers }}"},
        {"id": "log", "action": "log", "message": "{{ crm }}"},
        {
            "id": "answer",
            "action": "response",
            "status": 200,
            "body": body,
        },
    ]


def call_http_flow(make_automation, hook, httpserver, dev=False, echo=False):
    httpserver.expect_request("/crm", method="POST").respond_with_response(
        Response(
            json.dumps({"ok": True}),
            content_type="application/json",
            headers={"X-Token": "tok-from-receiver", "Set-Cookie": "session=abc"},
        )
    )
    automation = make_automation(http_flow(httpserver.url_for("/crm"), echo))
    response = requests.post(
        hook(automation, dev=dev),
        json={"n": 1},
        headers={"Authorization": "Bearer s3cret-token", "X-Signature": "sig-123"},
        timeout=10,
    )
    return automation, response


def test_the_flow_reads_real_header_values_in_and_out(make_automation, hook, httpserver):
    automation, response = call_http_flow(make_automation, hook, httpserver, echo=True)
    assert response.json() == {"token": "tok-from-receiver", "auth": "Bearer s3cret-token"}
    sent = httpserver.log[-1][0]
    assert sent.headers["Authorization"] == "Bearer s3cret-token" and sent.headers["X-Api-Key"] == "k3y-value"


def test_http_request_headers_sent_and_received_are_redacted_in_the_trace(make_automation, hook, httpserver):
    automation, _ = call_http_flow(make_automation, hook, httpserver)
    run = finished_run(automation)
    call, copy, log, answer = run.trace
    # What was sent: the flow's headers, and the Content-Type of its JSON body.
    assert call["input"]["headers"] == {
        "Authorization": "[redacted]",
        "X-Api-Key": "[redacted]",
        "Content-Type": "application/json",
    }
    assert call["output"]["headers"]["X-Token"] == "[redacted]"
    assert call["output"]["headers"]["Set-Cookie"] == "[redacted]"
    assert call["output"]["headers"]["Content-Type"] == "application/json"
    assert call["variables"]["crm"]["headers"]["X-Token"] == "[redacted]"
    assert copy["output"]["X-Token"] == "[redacted]" and copy["variables"]["all_headers"]["X-Token"] == "[redacted]"
    assert '"X-Token": "[redacted]"' in log["output"]
    assert run.headers["authorization"] == "[redacted]" and run.headers["x-signature"] == "[redacted]"
    stored = Run.objects.filter(pk=run.pk).values("trace", "headers", "query").get()
    assert_no_secret(json.dumps(stored))


def test_runs_api_debug_page_and_admin_show_no_header_values(make_automation, hook, httpserver, api, project, owner):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    automation, _ = call_http_flow(make_automation, hook, httpserver, dev=True)
    run = finished_run(automation)
    shown = api.get(f"/api/projects/{project.pk}/automations/{automation.pk}/runs/").content.decode()
    browser = Client()
    browser.force_login(owner)
    debug = browser.get(f"/automations/{automation.pk}/debug/runs.json").content.decode()
    admin = browser.get(f"/admin/automations/run/{run.pk}/change/").content.decode()
    assert "X-Token" in shown and "X-Token" in debug and "X-Token" in admin
    for text in (shown, debug, admin):
        assert_no_secret(text.replace("\\u0027", "'"))


def test_response_headers_a_flow_answers_with_are_redacted_in_its_run(make_automation, hook):
    automation = make_automation(
        [
            {
                "action": "response",
                "status": 200,
                "body": {"ok": True},
                "headers": {"X-Echo": "{{ headers.authorization }}", "Content-Type": "application/json"},
            }
        ]
    )
    response = requests.post(hook(automation), json={}, headers={"Authorization": "Bearer s3cret-token"}, timeout=10)
    assert response.headers["X-Echo"] == "Bearer s3cret-token"
    run = finished_run(automation)
    assert run.response["headers"] == {"X-Echo": "[redacted]", "Content-Type": "application/json"}
    assert run.trace[0]["output"]["headers"]["X-Echo"] == "[redacted]"


def queue_only(monkeypatch) -> None:
    """This process enqueues through the real ORM broker and nothing takes the task."""
    monkeypatch.setattr(Conf, "SYNC", False)


def test_a_queued_run_carries_its_id_only_and_the_call_lives_in_its_run_request(
    make_automation, hook, monkeypatch, transactional_db
):
    queue_only(monkeypatch)
    automation = make_automation([{"action": "log", "message": "{{ payload.card }} {{ headers.authorization }}"}])
    response = requests.post(
        hook(automation) + "?page=2",
        json={"card": "4111-1111"},
        headers={"Authorization": "Bearer s3cret-token"},
        timeout=10,
    )
    run_id = response.json()["run_id"]
    (queued,) = OrmQ.objects.all()
    assert queued.task["args"] == (run_id,) and not queued.task["kwargs"].get("payload")
    assert "4111-1111" not in repr(queued.task) and "s3cret" not in repr(queued.task)
    call = RunRequest.objects.get(run_id=run_id)
    assert json.loads(bytes(call.body)) == {"card": "4111-1111"}
    assert call.headers["authorization"] == "Bearer s3cret-token" and call.query_string == "page=2"

    assert execute_run(run_id) == "succeeded"
    run = Run.objects.get(pk=run_id)
    assert run.trace[0]["output"] == "4111-1111 Bearer s3cret-token"
    assert not RunRequest.objects.filter(run_id=run_id).exists()


def test_a_queued_multipart_form_is_read_back_by_the_worker(make_automation, hook, monkeypatch, transactional_db):
    queue_only(monkeypatch)
    automation = make_automation([{"action": "log", "message": "{{ payload.name }}/{{ payload.file.filename }}"}])
    run_id = requests.post(
        hook(automation), data={"name": "Ann"}, files={"file": ("cv.txt", b"hello")}, timeout=10
    ).json()["run_id"]
    assert execute_run(run_id) == "succeeded"
    assert Run.objects.get(pk=run_id).trace[0]["output"] == "Ann/cv.txt"


def test_a_run_whose_call_is_gone_fails_saying_so(make_automation, hook, monkeypatch, transactional_db):
    queue_only(monkeypatch)
    automation = make_automation([{"action": "log", "message": "hi"}])
    run_id = requests.post(hook(automation), json={}, timeout=10).json()["run_id"]
    RunRequest.objects.filter(run_id=run_id).delete()
    assert execute_run(run_id) == "failed"
    assert "no longer kept" in Run.objects.get(pk=run_id).error


def test_the_stale_run_sweep_deletes_the_calls_of_runs_it_closes(make_automation, hook, monkeypatch, transactional_db):
    queue_only(monkeypatch)
    automation = make_automation([{"action": "log", "message": "hi"}])
    old, recent = (requests.post(hook(automation), json={}, timeout=10).json()["run_id"] for _ in range(2))
    Run.objects.filter(pk=old).update(created_at=timezone.now() - timedelta(days=1))
    assert fail_stale_runs() == 1
    assert list(RunRequest.objects.values_list("run_id", flat=True)) == [recent]

"""The inbound endpoints over real HTTP: the contract's answers, what a run records, and bounds."""

import json
import time

import pytest
import requests
from werkzeug import Response

from automations.models import Run

from .conftest import finished_run

HELLO = [
    {"action": "set", "name": "who", "value": "{{ payload.name }}"},
    {"action": "response", "status": 200, "body": {"hello": "{{ who }}", "n": "{{ payload.n }}"}},
]
ECHO = [
    {
        "action": "response",
        "status": 200,
        "body": {
            "payload": "{{ payload }}",
            "query": "{{ query }}",
            "method": "{{ method }}",
            "agent": "{{ headers['x-agent'] }}",
        },
    }
]


def test_contract_example_answers_with_templated_json_keeping_types(make_automation, hook):
    automation = make_automation(HELLO)
    response = requests.post(hook(automation), json={"name": "Ann", "n": 3}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"hello": "Ann", "n": 3}


def test_any_method_with_query_and_headers_available_to_the_flow(make_automation, hook):
    automation = make_automation(ECHO)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = requests.request(method, hook(automation) + "?a=1&tag=x&tag=y", headers={"X-Agent": "t"}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "payload": {},
            "query": {"a": "1", "tag": ["x", "y"]},
            "method": method,
            "agent": "t",
        }


def test_form_bodies_are_parsed(make_automation, hook):
    automation = make_automation(ECHO)
    response = requests.post(hook(automation), data={"name": "Ann", "n": "3"}, timeout=10)
    assert response.json()["payload"] == {"name": "Ann", "n": "3"}
    multipart = requests.post(
        hook(automation), data={"name": "Bo"}, files={"cv": ("cv.txt", b"hello", "text/plain")}, timeout=10
    )
    assert multipart.json()["payload"] == {
        "name": "Bo",
        "cv": {"filename": "cv.txt", "content_type": "text/plain", "size": 5},
    }


def test_text_bodies_are_kept_raw(make_automation, hook):
    automation = make_automation(ECHO)
    response = requests.post(hook(automation), data="<a>1</a>", headers={"Content-Type": "application/xml"}, timeout=10)
    assert response.json()["payload"] == "<a>1</a>"


def test_unknown_webhook_id_is_404_json(live_server, db):
    response = requests.post(f"{live_server.url}/webhook/nope", json={}, timeout=10)
    assert response.status_code == 404 and response.json()["detail"]
    assert Run.objects.count() == 0


def test_disabled_automation_is_422_and_recorded(make_automation, hook):
    automation = make_automation(HELLO, enabled=False)
    response = requests.post(hook(automation), json={"name": "Ann"}, timeout=10)
    assert response.status_code == 422 and "disabled" in response.json()["detail"]
    run = finished_run(automation)
    assert run.status == "failed" and run.response["status"] == 422


def test_body_over_the_limit_is_413(make_automation, hook, settings):
    settings.AUTOMATION_MAX_BODY_BYTES = 1000
    automation = make_automation(HELLO)
    response = requests.post(
        hook(automation),
        data=b'{"a": "' + b"x" * 2000 + b'"}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413 and response.json()["detail"]
    assert finished_run(automation).response["status"] == 413


def test_chunked_body_without_content_length_is_411_on_a_server_that_cannot_read_it(make_automation, hook):
    def chunks():
        yield b'{"name": '
        yield b'"Ann"}'

    automation = make_automation(HELLO)
    response = requests.post(hook(automation), data=chunks(), headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 411 and "Content-Length" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"name": ', "application/json", 400, "Invalid JSON"),
        (b"[" * 100 + b"]" * 100, "application/json", 400, "nested deeper"),
        (b"[" * 100000 + b"]" * 100000, "application/json", 400, "nested deeper"),
        (b'{"name": "\xff\xfe"}', "application/json", 400, "UTF-8"),
        (b"name=\xff", "application/x-www-form-urlencoded", 400, "UTF-8"),
        (b"\x00\x01\x02", "application/octet-stream", 415, "Unsupported content type"),
        (b"GIF89a", "image/gif", 415, "Unsupported content type"),
    ],
)
def test_bad_bodies_get_a_clear_4xx(make_automation, hook, body, content_type, status, fragment):
    automation = make_automation(HELLO)
    response = requests.post(hook(automation), data=body, headers={"Content-Type": content_type}, timeout=10)
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert finished_run(automation).status == "failed"


def test_calls_past_the_rate_are_429(make_automation, hook, settings):
    settings.AUTOMATION_THROTTLE_RATE = "3/min"
    automation, other = make_automation(HELLO), make_automation(HELLO, name="other")
    codes = [requests.post(hook(automation), json={"name": "a"}, timeout=10).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    refused = requests.post(hook(automation), json={}, timeout=10)
    assert refused.json()["detail"] and int(refused.headers["Retry-After"]) > 0
    assert requests.post(hook(other), json={"name": "a"}, timeout=10).status_code == 200  # per automation


def test_csrf_exempt_and_no_session_needed(make_automation, live_server):
    automation = make_automation(HELLO)
    session = requests.Session()
    response = session.post(f"{live_server.url}/webhook/{automation.webhook_id}", json={"name": "Z"}, timeout=10)
    assert response.status_code == 200 and "sessionid" not in session.cookies


def test_every_call_is_a_run_with_header_values_redacted_except_harmless_ones(make_automation, hook):
    automation = make_automation(HELLO)
    requests.post(
        hook(automation) + "?x=1",
        json={"name": "Ann", "n": 3},
        headers={"Authorization": "Bearer s3cret", "X-Api-Key": "k3y", "X-Trace": "t"},
        timeout=10,
    )
    run = finished_run(automation)
    assert run.mode == "production" and run.method == "POST" and run.status == "succeeded"
    assert run.query == {"x": "1"}
    assert run.headers["authorization"] == "[redacted]" and run.headers["x-api-key"] == "[redacted]"
    assert run.headers["x-trace"] == "[redacted]"
    assert run.headers["content-type"] == "application/json" and run.headers["user-agent"].startswith("python-")
    assert "s3cret" not in json.dumps(run.headers)
    assert json.loads(run.body) == {"name": "Ann", "n": 3}
    assert run.response == {"status": 200, "headers": {}, "body": {"hello": "Ann", "n": 3}}
    assert [(s["id"], s["action"]) for s in run.trace] == [("set_1", "set"), ("response_1", "response")]
    assert run.trace[0]["output"] == "Ann" and run.trace[0]["variables"] == {"who": "Ann"}
    assert run.trace[0]["error"] is None and 0 <= run.trace[0]["duration_ms"] < 5000


def test_flow_can_use_the_authorization_header_even_though_runs_redact_it(make_automation, hook):
    automation = make_automation(
        [
            {
                "action": "condition",
                "if": {"left": "{{ headers.authorization }}", "op": "==", "right": "Bearer good"},
                "then": [{"action": "response", "status": 200, "body": {"ok": True}}],
                "else": [{"action": "response", "status": 401, "body": {"ok": False}}],
            }
        ]
    )
    assert (
        requests.post(hook(automation), json={}, headers={"Authorization": "Bearer good"}, timeout=10).status_code
        == 200
    )
    assert (
        requests.post(hook(automation), json={}, headers={"Authorization": "Bearer bad"}, timeout=10).status_code == 401
    )


def test_stored_body_is_truncated_at_the_setting(make_automation, hook, settings):
    settings.AUTOMATION_RUN_BODY_LIMIT = 50
    automation = make_automation(HELLO)
    requests.post(hook(automation), json={"name": "A" * 500}, timeout=10)
    run = finished_run(automation)
    assert len(run.body) == 50 and run.body_truncated is True


def test_development_url_records_development_runs(make_automation, hook):
    automation = make_automation(HELLO)
    assert requests.post(hook(automation, dev=True), json={"name": "Dev"}, timeout=10).json()["hello"] == "Dev"
    assert finished_run(automation).mode == "development"


def test_flow_goes_on_after_responding(make_automation, hook, httpserver):
    httpserver.expect_request("/after").respond_with_json({"ok": True})
    automation = make_automation(
        [
            {"action": "response", "status": 202, "body": {"accepted": True}, "headers": {"X-Flow": "yes"}},
            {
                "action": "http_request",
                "method": "POST",
                "url": httpserver.url_for("/after"),
                "body": {"a": 1},
                "save_as": "r",
            },
            {"action": "response", "status": 500, "body": "never sent"},
        ]
    )
    response = requests.post(hook(automation), json={}, timeout=10)
    assert response.status_code == 202 and response.json() == {"accepted": True}
    assert response.headers["X-Flow"] == "yes"
    from tests.conftest import wait_for

    run = wait_for(lambda: Run.objects.filter(automation=automation, status="succeeded").first(), timeout=10)
    assert run is not None and len(httpserver.log) == 1
    assert run.trace[2]["output"].startswith("ignored")
    assert run.response["status"] == 202


def test_flow_that_ends_without_reaching_its_response_answers_success(make_automation, hook):
    automation = make_automation(
        [
            {
                "action": "condition",
                "if": {"left": "{{ payload.x }}", "op": "exists"},
                "then": [{"action": "response", "status": 201, "body": 1}],
            },
        ]
    )
    response = requests.post(hook(automation), json={}, timeout=10)
    run = finished_run(automation)
    assert response.status_code == 200 and response.json() == {"success": True, "run_id": run.pk}


def test_failure_before_responding_is_502_with_the_run_id_and_a_failed_run(make_automation, hook):
    automation = make_automation(
        [
            {"id": "boom", "action": "set", "name": "x", "value": "{{ 1 / 0 }}"},
            {"action": "response", "status": 200, "body": "no"},
        ]
    )
    response = requests.post(hook(automation), json={}, timeout=10)
    run = finished_run(automation)
    assert response.status_code == 502 and response.json()["run_id"] == run.pk
    assert run.status == "failed" and "boom" in run.error and "ZeroDivisionError" in run.trace[0]["error"]


def test_run_past_max_runtime_is_504_and_timed_out(make_automation, hook, httpserver, settings):
    settings.AUTOMATION_MAX_RUNTIME_S = 1

    def slow(request):
        time.sleep(4)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    automation = make_automation(
        [
            {"action": "http_request", "url": httpserver.url_for("/slow"), "timeout_s": 30, "save_as": "r"},
            {"action": "response", "status": 200, "body": "too late"},
        ]
    )
    started = time.monotonic()
    response = requests.post(hook(automation), json={}, timeout=10)
    assert response.status_code == 504
    assert time.monotonic() - started < 3.5  # the caller was not kept waiting for the slow API
    run = finished_run(automation)
    assert run.status == "timed_out" and run.response["status"] == 504
    assert response.json() == {"success": False, "error": "the automation failed", "run_id": run.pk}


def test_run_stops_after_max_steps(make_automation, hook, settings):
    settings.AUTOMATION_MAX_STEPS = 3
    automation = make_automation(
        [{"action": "log", "message": str(i)} for i in range(5)] + [{"action": "response", "status": 200, "body": 1}]
    )
    response = requests.post(hook(automation), json={}, timeout=10)
    run = finished_run(automation)
    assert response.status_code == 502
    assert run.status == "failed" and "AUTOMATION_MAX_STEPS" in run.error and len(run.trace) == 3


def test_response_status_headers_and_body_from_templates(make_automation, hook):
    automation = make_automation(
        [
            {
                "action": "response",
                "status": "{{ payload.code }}",
                "headers": {"X-Order": "{{ payload.id }}"},
                "body": ["{{ payload.id }}", "{{ payload.code }}"],
            }
        ]
    )
    response = requests.post(hook(automation), json={"code": 418, "id": "A7"}, timeout=10)
    assert response.status_code == 418 and response.headers["X-Order"] == "A7" and response.json() == ["A7", 418]


def test_nul_characters_from_the_caller_are_recorded_safely(make_automation, hook):
    automation = make_automation(
        [
            {"action": "set", "name": "v", "value": "{{ payload.a }}"},
            {"action": "response", "status": 200, "body": {"v": "{{ v }}", "q": "{{ query.q }}"}},
        ]
    )
    response = requests.post(hook(automation, dev=True) + "?q=%00", json={"a": "x\u0000y"}, timeout=10)
    assert response.status_code == 200 and response.json() == {"v": "x\u0000y", "q": "\u0000"}
    run = finished_run(automation)
    assert run.status == "succeeded" and run.trace[0]["output"] == "x\ufffdy" and run.query == {"q": "\ufffd"}


def test_runs_api_shows_the_calls_with_their_traces(make_automation, hook, api, project):
    automation = make_automation(HELLO)
    requests.post(hook(automation), json={"name": "Ann", "n": 3}, timeout=10)
    requests.post(hook(automation, dev=True), data=b"{broken", headers={"Content-Type": "application/json"}, timeout=10)
    finished_run(automation, 2)
    runs = api.get(f"/api/projects/{project.pk}/automations/{automation.pk}/runs/").json()["results"]
    assert [(r["mode"], r["status"]) for r in runs] == [("development", "failed"), ("production", "succeeded")]
    assert runs[0]["response"]["status"] == 400 and runs[0]["body"] == "{broken"
    assert [step["action"] for step in runs[1]["trace"]] == ["set", "response"]
    production = api.get(f"/api/projects/{project.pk}/automations/{automation.pk}/runs/", {"mode": "production"})
    assert [r["id"] for r in production.json()["results"]] == [runs[1]["id"]]


def test_string_body_with_its_own_content_type_is_sent_as_text(make_automation, hook):
    """A provider's verification handshake: echo the challenge as plain text."""
    automation = make_automation(
        [
            {
                "action": "response",
                "status": 200,
                "headers": {"Content-Type": "text/plain; charset=utf-8"},
                "body": "{{ query['hub.challenge'] }}",
            }
        ]
    )
    response = requests.get(hook(automation) + "?hub.mode=subscribe&hub.challenge=1158201444", timeout=10)
    assert response.status_code == 200 and response.text == "1158201444"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_empty_statuses_send_no_body(make_automation, hook):
    automation = make_automation([{"action": "response", "status": 204, "body": {"ignored": True}}])
    response = requests.post(hook(automation), json={}, timeout=10)
    assert response.status_code == 204 and response.content == b""


def test_a_failure_on_the_production_url_answers_only_the_run_id(make_automation, hook):
    automation = make_automation(
        [
            {"id": "secret_step", "action": "set", "name": "x", "value": "{{ payload.n / 0 }}"},
            {"action": "response", "status": 200, "body": "no"},
        ]
    )
    response = requests.post(hook(automation), json={"n": 1}, timeout=10)
    run = finished_run(automation)
    assert response.status_code == 502
    assert response.json() == {"success": False, "error": "the automation failed", "run_id": run.pk}
    assert "secret_step" in run.error and "payload.n / 0" in run.trace[0]["error"]


def test_a_failure_on_the_development_url_says_which_step_failed_and_why(make_automation, hook):
    automation = make_automation(
        [
            {"id": "secret_step", "action": "set", "name": "x", "value": "{{ payload.n / 0 }}"},
            {"action": "response", "status": 200, "body": "no"},
        ]
    )
    response = requests.post(hook(automation, dev=True), json={"n": 1}, timeout=10)
    assert response.status_code == 502 and response.json()["success"] is False
    assert "secret_step" in response.json()["detail"] and "ZeroDivisionError" in response.json()["detail"]

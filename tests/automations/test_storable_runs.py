"""Whatever a caller or a receiver sends, its run is recorded (PostgreSQL refuses NUL in text and
jsonb, and no driver encodes a lone surrogate): the values are made storable before they are
written, and the flow still sees what was sent."""

import requests
from django.test import Client
from werkzeug import Response

from automations.models import Run, RunRequest
from automations.tasks import execute_run

from .conftest import finished_run

ECHO = [
    {"action": "set", "name": "v", "value": "{{ payload.a }}"},
    {"action": "log", "message": "{{ v }}"},
    {"action": "response", "status": 200, "body": {"v": "{{ v }}", "q": "{{ query.q }}"}},
]
RAW_JSON = {"Content-Type": "application/json"}


def test_a_lone_surrogate_in_the_body_is_recorded_escaped(make_automation, hook):
    automation = make_automation(ECHO)
    response = requests.post(hook(automation, dev=True), data=b'{"a": "x\\ud800y"}', headers=RAW_JSON, timeout=10)
    assert response.status_code == 200 and response.json()["v"] == "x\ud800y"
    run = finished_run(automation)
    assert run.status == "succeeded"
    assert run.trace[0]["output"] == "x\\ud800y" and run.trace[1]["variables"] == {"v": "x\\ud800y"}
    assert run.response["body"]["v"] == "x\\ud800y"


def test_nul_in_the_body_and_query_is_recorded_replaced(make_automation, db):
    automation = make_automation(ECHO)
    response = Client().post(
        f"/webhook/{automation.webhook_id}?q=%00", data=b'{"a": "x\\u0000y"}', content_type="application/json"
    )
    assert response.status_code == 200 and response.json() == {"v": "x\x00y", "q": "\x00"}
    run = finished_run(automation)
    assert run.status == "succeeded" and run.query == {"q": "\ufffd"} and run.trace[0]["output"] == "x\ufffdy"


def test_a_refused_content_type_with_nul_is_recorded_replaced(make_automation, db):
    automation = make_automation(ECHO)
    response = Client().post(f"/webhook/{automation.webhook_id}", data=b"x", content_type="image/png\x00")
    assert response.status_code == 415
    run = Run.objects.get(automation=automation)
    assert run.status == "failed" and run.content_type == "image/png\ufffd"


def test_a_refused_body_that_is_not_utf8_is_recorded_escaped(make_automation, hook):
    automation = make_automation(ECHO)
    body = b"caf\xe9 \x00 ok"
    response = requests.post(hook(automation), data=body, headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 400 and "not valid UTF-8" in response.json()["detail"]
    run = Run.objects.get(automation=automation)
    assert run.status == "failed" and run.body == "caf\ufffd \ufffd ok"


def test_a_receiver_answering_nul_and_invalid_utf8_is_recorded(make_automation, hook, httpserver):
    httpserver.expect_request("/nul").respond_with_response(
        Response(b"bad \x00 bytes \xff\xfe", content_type="text/plain")
    )
    automation = make_automation(
        [
            {"id": "call", "action": "http_request", "url": httpserver.url_for("/nul"), "save_as": "r"},
            {"action": "response", "status": 200, "body": {"len": "{{ r.body | length }}"}},
        ]
    )
    assert requests.post(hook(automation), json={}, timeout=10).json() == {"len": 14}
    run = finished_run(automation)
    assert run.status == "succeeded" and run.trace[0]["output"]["body"] == "bad \ufffd bytes \ufffd\ufffd"


def test_a_queued_call_with_nul_in_its_headers_is_kept_and_run(make_automation, db, settings):
    automation = make_automation([{"action": "log", "message": "{{ payload.a }}"}])
    Client().post(
        f"/webhook/{automation.webhook_id}", data=b'{"a": "x\\u0000"}', content_type="application/json; v=\x00",
        HTTP_X_ODD="a\x00b",
    )  # fmt: skip
    run = Run.objects.get(automation=automation)
    assert run.status == "succeeded" and run.trace[0]["output"] == "x\ufffd"
    assert not RunRequest.objects.exists() and execute_run(run.pk) == "gone or done"

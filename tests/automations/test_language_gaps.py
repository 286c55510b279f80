"""The language's small tools: conversions, dates, encodings, digests, signatures and ids; the raw
body and the URL path; headers given as one templated object; missing reads listed in the trace;
names no step sets warned of at save."""

import hashlib
import hmac
import re
from datetime import UTC, datetime

import requests

from automations.models import Secret
from tests.conftest import received

from .conftest import finished_run


def add_secret(project, name: str, value: str) -> None:
    secret = Secret(project=project, name=name)
    secret.value = value
    secret.save()


def answer(body) -> dict:
    return {"id": "answer", "action": "response", "status": 200, "body": body}


def test_conversions_dates_encodings_digests_and_ids(make_automation, hook):
    automation = make_automation(
        [
            answer(
                {
                    "int": "{{ payload.n | int }}",
                    "float": "{{ payload.n | float }}",
                    "string": "{{ payload.q | string }}",
                    "now": "{{ now() }}",
                    "day": "{{ payload.at | date('%d/%m/%Y') }}",
                    "epoch": "{{ 0 | date('%Y-%m-%dT%H:%M') }}",
                    "b64": "{{ 'user:pw' | b64encode }}",
                    "plain": "{{ 'dXNlcjpwdw==' | b64decode }}",
                    "sha": "{{ 'abc' | sha256 }}",
                    "id": "{{ uuid4() }}",
                }
            )
        ]
    )
    body = requests.post(hook(automation), json={"n": "42", "q": 7, "at": "2026-12-02T10:00:00Z"}, timeout=10).json()
    assert body["int"] == 42 and body["float"] == 42.0 and body["string"] == "7"
    assert abs((datetime.fromisoformat(body["now"]) - datetime.now(UTC)).total_seconds()) < 60
    assert body["day"] == "02/12/2026" and body["epoch"] == "1970-01-01T00:00"
    assert body["b64"] == "dXNlcjpwdw==" and body["plain"] == "user:pw"
    assert body["sha"] == hashlib.sha256(b"abc").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", body["id"])


def test_a_flow_checks_a_signature_over_the_raw_body_with_a_named_secret(project, make_automation, hook):
    add_secret(project, "SHOP_KEY", "shop-key-123")
    automation = make_automation(
        [
            {
                "id": "check",
                "action": "condition",
                "if": {
                    "left": "{{ raw_body | hmac_sha256('SHOP_KEY') }}",
                    "op": "==",
                    "right": "{{ headers['x-sig'] }}",
                },
                "then": [answer({"valid": True})],
                "else": [{"id": "bad", "action": "response", "status": 401, "body": {"valid": False}, "end": True}],
            }
        ]
    )
    raw = b'{"order": 1}'
    good = hmac.new(b"shop-key-123", raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    assert requests.post(hook(automation), data=raw, headers={**headers, "X-Sig": good}, timeout=10).status_code == 200
    assert (
        requests.post(hook(automation), data=raw, headers={**headers, "X-Sig": "0" * 64}, timeout=10).status_code == 401
    )


def test_the_path_after_the_webhook_id_is_read_by_the_flow(make_automation, hook):
    automation = make_automation([answer({"path": "{{ path }}", "id": "{{ path.split('/')[1] }}"})])
    response = requests.get(f"{hook(automation)}/orders/42", timeout=10)
    assert response.status_code == 200 and response.json() == {"path": "orders/42", "id": "42"}
    dev = requests.get(f"{hook(automation, dev=True)}/orders/7", timeout=10)
    assert dev.json() == {"path": "orders/7", "id": "7"}
    assert finished_run(automation, count=2).path in ("orders/42", "orders/7")


def test_headers_may_be_one_templated_object(make_automation, hook, httpserver):
    httpserver.expect_request("/crm", headers={"X-Tenant": "acme"}).respond_with_json({"ok": True})
    automation = make_automation(
        [
            {"id": "h", "action": "set", "name": "crm_headers", "value": {"X-Tenant": "{{ payload.tenant }}"}},
            {
                "id": "crm",
                "action": "http_request",
                "url": httpserver.url_for("/crm"),
                "headers": "{{ crm_headers }}",
                "save_as": "crm",
            },
            {
                "id": "answer",
                "action": "response",
                "status": 200,
                "body": "{{ crm.body }}",
                "headers": "{{ crm_headers }}",
            },
        ]
    )
    response = requests.post(hook(automation), json={"tenant": "acme"}, timeout=10)
    assert response.status_code == 200 and response.json() == {"ok": True} and response.headers["X-Tenant"] == "acme"
    assert len(received(httpserver)) == 1


def test_the_trace_lists_the_missing_paths_a_step_read(make_automation, hook):
    automation = make_automation(
        [answer({"email": "{{ payload.emial }}", "page": "{{ query.page | default(1) }}", "n": "{{ payload.n }}"})]
    )
    response = requests.post(hook(automation), json={"email": "a@example.com", "n": 1}, timeout=10)
    assert response.json() == {"email": None, "page": 1, "n": 1}
    assert finished_run(automation).trace[0]["missing"] == ["payload.emial", "query.page"]


def test_saving_warns_of_names_no_step_sets(api, project):
    flow = {
        "steps": [
            {"id": "total", "action": "set", "name": "total", "value": 1},
            {
                "id": "log",
                "action": "log",
                "message": "{{ totl }} {{ total }} {{ steps.nope.output }} {{ steps.total.output }}",
            },
        ]
    }
    response = api.post(f"/api/projects/{project.pk}/automations/", {"name": "x", "flow": flow}, format="json")
    assert response.status_code == 201
    warnings = response.json()["warnings"]
    assert [(w["path"], w["step_id"]) for w in warnings] == [("steps[1]", "log"), ("steps[1]", "log")]
    assert "'totl'" in warnings[0]["message"] and "'steps.nope'" in warnings[1]["message"]


def test_names_the_language_provides_are_not_warned_of(api, project):
    flow = {
        "steps": [
            {
                "id": "log",
                "action": "log",
                "message": "{% set x = 1 %}{{ x }} {{ payload }} {{ raw_body }} {{ path }} {{ now() }} {{ uuid4() }}",
            }
        ]
    }
    checked = api.post(f"/api/projects/{project.pk}/automations/validate/", {"flow": flow}, format="json").json()
    assert checked == {"errors": [], "warnings": []}


def test_an_unknown_secret_for_hmac_fails_the_step_naming_it(make_automation, hook):
    automation = make_automation([answer({"sig": "{{ raw_body | hmac_sha256('NOPE') }}"})])
    requests.post(hook(automation, dev=True), data=b"x", headers={"Content-Type": "text/plain"}, timeout=10)
    assert "no secret named 'NOPE'" in finished_run(automation).error

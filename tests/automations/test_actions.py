"""Every action type, each through a real webhook call on the live server."""

import json

import pytest
import requests
from werkzeug import Response

from automations.models import Run
from support.models import Event, Lead, Message, Request

from .conftest import finished_run

_calls: dict[str, int] = {}


def call(hook, automation, payload=None, dev=False):
    _calls[automation.pk] = _calls.get(automation.pk, 0) + 1
    return requests.post(hook(automation, dev=dev), json=payload or {}, timeout=15)


def last_run(automation) -> Run:
    """The run of the latest call, once it has finished."""
    return finished_run(automation, _calls[automation.pk])


def respond(body) -> dict:
    return {"action": "response", "status": 200, "body": body}


def test_set_keeps_json_types_and_later_steps_read_the_variable(make_automation, hook):
    automation = make_automation(
        [
            {"action": "set", "name": "order", "value": {"id": "{{ payload.id }}", "items": "{{ payload.items }}"}},
            {"action": "set", "name": "count", "value": "{{ order['items'] | length }}"},
            respond({"order": "{{ order }}", "count": "{{ count }}", "text": "{{ count }} items"}),
        ]
    )
    body = call(hook, automation, {"id": 7, "items": [{"sku": "a"}, {"sku": "b"}]}).json()
    assert body == {"order": {"id": 7, "items": [{"sku": "a"}, {"sku": "b"}]}, "count": 2, "text": "2 items"}


def test_steps_outputs_are_readable_by_id(make_automation, hook):
    automation = make_automation(
        [
            {"id": "greeting", "action": "log", "message": "hi {{ payload.name }}"},
            respond("{{ steps.greeting.output }}"),
        ]
    )
    assert call(hook, automation, {"name": "Ann"}).json() == "hi Ann"


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("{{ payload.n }}", "==", 3, "then"),
        ("{{ payload.n }}", "!=", 3, "else"),
        ("{{ payload.n }}", "<", 10, "then"),
        ("{{ payload.n }}", ">", 10, "else"),
        ("{{ payload.text }}", "contains", "world", "then"),
        ("{{ payload.tags }}", "contains", "vip", "then"),
        ("{{ payload.tags }}", "contains", "nope", "else"),
        ("{{ payload.text }}", "exists", None, "then"),
        ("{{ payload.missing }}", "exists", None, "else"),
        ("{{ payload.email }}", "matches", "^[^@]+@example\\.com$", "then"),
        ("{{ payload.text }}", "matches", "^\\d+$", "else"),
    ],
)
def test_condition_operators(make_automation, hook, left, op, right, expected):
    condition = {"left": left, "op": op} | ({} if op == "exists" else {"right": right})
    automation = make_automation(
        [{"id": "check", "action": "condition", "if": condition, "then": [respond("then")], "else": [respond("else")]}]
    )
    payload = {"n": 3, "text": "hello world", "tags": ["vip", "new"], "email": "ann@example.com"}
    assert call(hook, automation, payload).json() == expected
    assert last_run(automation).trace[0]["branch"] == expected


def test_condition_comparing_incomparable_values_fails_the_run_naming_the_step(make_automation, hook):
    automation = make_automation(
        [
            {
                "id": "cmp",
                "action": "condition",
                "if": {"left": "{{ payload.a }}", "op": "<", "right": 3},
                "then": [respond(1)],
            }
        ]
    )
    assert call(hook, automation, {"a": "x"}).status_code == 502
    run = last_run(automation)
    assert run.status == "failed" and "cmp" in run.error and "cannot compare" in run.error


def test_catastrophic_regex_is_bounded(make_automation, hook):
    automation = make_automation(
        [
            {
                "action": "condition",
                "if": {"left": "{{ payload.s }}", "op": "matches", "right": "^(a+)+$"},
                "then": [respond(1)],
                "else": [respond(0)],
            }
        ]
    )
    response = call(hook, automation, {"s": "a" * 40 + "!"})
    assert response.status_code in (200, 502)  # answered (or failed) quickly, not hung
    if response.status_code == 502:
        assert "too long" in last_run(automation).error


def test_http_request_sends_templated_request_and_saves_status_body_headers(make_automation, hook, httpserver):
    httpserver.expect_request(
        "/orders/42", method="POST", json={"id": 42, "note": "rush"}, headers={"X-Key": "k-42"}
    ).respond_with_json({"status": "shipped"}, status=201, headers={"X-Answer": "yes"})
    automation = make_automation(
        [
            {
                "action": "http_request",
                "method": "POST",
                "url": httpserver.url_for("/orders/") + "{{ payload.id }}",
                "headers": {"X-Key": "k-{{ payload.id }}"},
                "body": {"id": "{{ payload.id }}", "note": "rush"},
                "save_as": "api",
            },
            respond(
                {"status": "{{ api.status }}", "body": "{{ api.body }}", "header": "{{ api.headers['X-Answer'] }}"}
            ),
        ]
    )
    assert call(hook, automation, {"id": 42}).json() == {"status": 201, "body": {"status": "shipped"}, "header": "yes"}
    httpserver.check_assertions()


def test_http_request_does_not_follow_redirects(make_automation, hook, httpserver):
    httpserver.expect_request("/moved").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/target")}
    )
    automation = make_automation(
        [
            {"action": "http_request", "url": httpserver.url_for("/moved"), "save_as": "r"},
            respond("{{ r.status }}"),
        ]
    )
    assert call(hook, automation).json() == 302
    assert [request.path for request, _ in httpserver.log] == ["/moved"]


def test_http_request_timeout_fails_the_step(make_automation, hook, httpserver):
    import time

    def slow(request):
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    automation = make_automation(
        [
            {
                "id": "fetch",
                "action": "http_request",
                "url": httpserver.url_for("/slow"),
                "timeout_s": 0.3,
                "save_as": "r",
            },
            respond(1),
        ]
    )
    assert call(hook, automation).status_code == 502
    run = last_run(automation)
    assert run.status == "failed" and "within 0.3 s" in run.trace[0]["error"]


def test_http_request_to_private_address_refused_at_run_time(make_automation, hook, settings):
    automation = make_automation(
        [
            {"id": "fetch", "action": "http_request", "url": "{{ payload.url }}", "save_as": "r"},
            respond(1),
        ]
    )
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    for url in ("http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/", "http://localhost:9/"):
        assert call(hook, automation, {"url": url}).status_code == 502
        assert "not allowed" in last_run(automation).trace[0]["error"]


def test_http_request_host_resolving_to_loopback_is_refused_at_send_time(make_automation, hook, settings):
    automation = make_automation(
        [
            {"id": "fetch", "action": "http_request", "url": "http://localtest.me.:9/", "save_as": "r"},
            respond(1),
        ]
    )
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    assert call(hook, automation).status_code == 502
    error = last_run(automation).trace[0]["error"]
    assert "refused" in error or "cannot resolve" in error


def test_create_request_goes_through_the_support_domain(make_automation, hook, project):
    automation = make_automation(
        [
            {
                "action": "create_request",
                "first_text": "{{ payload.message }}",
                "lead": {"fullname": "{{ payload.name }}", "email": "{{ payload.email }}"},
                "attributes": {"source": "form"},
                "save_as": "req",
            },
            respond({"id": "{{ req.id }}", "status": "{{ req.status }}", "lead": "{{ req.lead.fullname }}"}),
        ]
    )
    body = call(hook, automation, {"message": "Help!", "name": "Ann", "email": "ann@example.com"}).json()
    created = Request.objects.get(pk=body["id"])
    assert created.project == project and created.first_text == "Help!" and created.attributes == {"source": "form"}
    assert created.lead.email == "ann@example.com" and body["lead"] == "Ann"


def test_create_request_routes_the_conversation_like_the_api(make_automation, hook, project, owner):
    automation = make_automation(
        [
            {"action": "create_request", "first_text": "hi", "lead": {"fullname": "Ann"}, "save_as": "req"},
            respond({"id": "{{ req.id }}", "status": "{{ req.status }}", "participants": "{{ req.participants }}"}),
        ]
    )
    body = call(hook, automation).json()
    created = Request.objects.get(pk=body["id"])
    assert (created.status, created.routed_by, created.participants) == (200, "builtin", [str(owner.pk)])
    assert body["status"] == 200 and body["participants"] == [str(owner.pk)]


def test_create_request_with_invalid_data_fails_with_the_serializer_message(make_automation, hook):
    automation = make_automation(
        [
            {
                "id": "mk",
                "action": "create_request",
                "first_text": "x",
                "lead": {"fullname": "A", "email": "not-an-email"},
                "save_as": "r",
            },
            respond(1),
        ]
    )
    assert call(hook, automation).status_code == 502
    assert "email" in last_run(automation).error and Request.objects.count() == 0


def test_send_message_and_close_request(make_automation, hook, project):
    lead = Lead.objects.create(project=project, fullname="Ann")
    conversation = Request.objects.create(project=project, lead=lead, first_text="hi", request_id="support-group-x-1")
    automation = make_automation(
        [
            {
                "action": "send_message",
                "request": "{{ payload.request }}",
                "text": "We got it, {{ payload.name }}",
                "save_as": "msg",
            },
            {"action": "close_request", "request": "{{ payload.request }}", "save_as": "closed"},
            respond({"message": "{{ msg.id }}", "status": "{{ closed.status }}"}),
        ],
        name="Support bot",
    )
    body = call(hook, automation, {"request": conversation.request_id, "name": "Ann"}).json()
    message = Message.objects.get(pk=body["message"])
    assert (
        message.request == conversation
        and message.text == "We got it, Ann"
        and message.sender_fullname == "Support bot"
    )
    assert body["status"] == 1000
    conversation.refresh_from_db()
    assert conversation.status == Request.Status.CLOSED and conversation.closed_at is not None


def test_send_message_to_another_projects_request_fails(make_automation, hook, make_user):
    from support.models import Project

    other = Project.objects.create(name="Other")
    lead = Lead.objects.create(project=other, fullname="X")
    foreign = Request.objects.create(project=other, lead=lead, first_text="hi", request_id="support-group-other-1")
    automation = make_automation([{"action": "send_message", "request": foreign.pk, "text": "hi"}, respond(1)])
    assert call(hook, automation).status_code == 502
    assert "no request" in last_run(automation).error and foreign.messages.count() == 0


def test_emit_event(make_automation, hook, project, owner):
    automation = make_automation(
        [
            {
                "action": "emit_event",
                "name": "order.{{ payload.state }}",
                "attributes": {"id": "{{ payload.id }}"},
                "save_as": "ev",
            },
            respond("{{ ev.name }}"),
        ]
    )
    assert call(hook, automation, {"state": "paid", "id": 9}).json() == "order.paid"
    event = Event.objects.get(project=project)
    assert event.name == "order.paid" and event.attributes == {"id": 9} and event.created_by == owner


def test_log_is_recorded_in_the_trace(make_automation, hook):
    automation = make_automation([{"action": "log", "message": "got {{ payload | tojson }}"}, respond(1)])
    call(hook, automation, {"a": 1})
    assert last_run(automation).trace[0]["output"] == 'got {"a": 1}'


def test_stop_ends_the_run_successfully(make_automation, hook):
    automation = make_automation(
        [
            {"action": "condition", "if": {"left": "{{ payload.stop }}", "op": "exists"}, "then": [{"action": "stop"}]},
            respond("went on"),
        ]
    )
    assert call(hook, automation, {}).json() == "went on"
    stopped = call(hook, automation, {"stop": True})
    run = last_run(automation)
    assert stopped.json() == {"success": True, "run_id": run.pk}
    assert run.status == "succeeded" and [s["action"] for s in run.trace] == ["condition", "stop"]


def test_variables_after_each_step_are_traced(make_automation, hook):
    automation = make_automation(
        [
            {"action": "set", "name": "a", "value": 1},
            {"action": "set", "name": "b", "value": "{{ a + 1 }}"},
            respond("{{ b }}"),
        ]
    )
    call(hook, automation, dev=True)
    trace = last_run(automation).trace
    assert [step["variables"] for step in trace] == [{"a": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 2}]
    assert json.dumps(trace)  # JSON all the way


def test_each_domain_action_commits_before_the_flow_goes_on(make_automation, hook, httpserver):
    """The endpoint is not one big transaction: what a step created is visible to others at once."""
    seen = []

    def check_database(request):
        from django.db import connection

        seen.append(Request.objects.filter(first_text="committed?").exists())
        connection.close()  # this receiver thread's own connection, so the test database can be dropped
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/peek").respond_with_handler(check_database)
    automation = make_automation(
        [
            {"action": "create_request", "first_text": "committed?", "lead": {"fullname": "A"}, "save_as": "r"},
            {"action": "http_request", "url": httpserver.url_for("/peek"), "save_as": "peek"},
            respond("{{ peek.status }}"),
        ]
    )
    assert call(hook, automation).json() == 200
    assert seen == [True]


def test_run_variables_are_bounded_in_total(make_automation, hook, monkeypatch):
    from automations import context

    monkeypatch.setattr(context, "VARIABLES_LIMIT", 5_000)
    automation = make_automation(
        [
            {"action": "set", "name": "a", "value": "{{ payload.s }}"},
            {"id": "second", "action": "set", "name": "b", "value": "{{ payload.s }}"},
            respond(1),
        ]
    )
    assert call(hook, automation, {"s": "x" * 3_000}).status_code == 502
    run = last_run(automation)
    assert "second" in run.error and "variables would be larger than 5000" in run.error


def test_large_values_are_previewed_in_the_trace(make_automation, hook):
    automation = make_automation([{"action": "set", "name": "big", "value": "{{ payload.s }}"}, respond("ok")])
    assert call(hook, automation, {"s": "y" * 50_000}).json() == "ok"
    step = last_run(automation).trace[0]
    assert step["output"]["truncated"] is True and len(step["output"]["preview"]) == 16 * 1024
    assert step["variables"]["preview"].startswith('{"big": "yyy')


def test_http_request_refusal_does_not_say_what_the_host_resolves_to(make_automation, hook, settings):
    automation = make_automation(
        [{"id": "fetch", "action": "http_request", "url": "http://127.1:9/", "save_as": "r"}, respond(1)]
    )
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    assert call(hook, automation).status_code == 502
    error = last_run(automation).trace[0]["error"]
    assert error == "refused: 127.1 resolves to a private address, which targets may not use"

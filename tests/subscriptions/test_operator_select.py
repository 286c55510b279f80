"""The synchronous operator.select webhook, over real HTTP to a receiver on 127.0.0.1.

Built-in routing suggests agent A (both agents idle, A joined first); the receiver may overrule it.
Tests commit for real (transactional), because the call must happen with no transaction open."""

import json
import socket
import threading
import time

import pytest
from django.conf import settings
from django.db import connection
from werkzeug import Response

from subscriptions import tasks
from subscriptions.models import Attempt, Delivery
from subscriptions.signing import sign
from support.models import Department, FaqKb, Group, Project, Request
from tests.conftest import received

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_S = settings.HOOKS_OPERATOR_SELECT_TIMEOUT_S
# What a loaded 2-core CI machine needs on top of the timeout for the rest of the create.
MARGIN_S = 0.75


def base(project) -> str:
    return f"/api/projects/{project.pk}"


@pytest.fixture
def a_and_b(add_member):
    return add_member("alice"), add_member("bob")


@pytest.fixture
def sales(project, a_and_b) -> Department:
    group = Group.objects.create(project=project, name="Sales", members=[str(u.pk) for u in a_and_b])
    return Department.objects.create(project=project, name="Sales", routing="assigned", group=group, default=True)


@pytest.fixture
def subscription(api, project, httpserver) -> dict:
    response = api.post(
        f"{base(project)}/subscriptions/",
        {"event": "operator.select", "target": httpserver.url_for("/select")},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def create(api, project, **extra):
    started = time.monotonic()
    response = api.post(
        f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}, **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json(), time.monotonic() - started


def the_delivery() -> Delivery:
    [delivery] = Delivery.objects.filter(event="operator.select")
    return delivery


def test_the_receiver_picks_b_over_the_suggested_a_and_b_gets_the_request(
    api, project, a_and_b, sales, subscription, httpserver
):
    a, b = a_and_b
    httpserver.expect_request("/select", method="POST").respond_with_json({"operators": [{"id_user": str(b.pk)}]})
    body, _ = create(api, project)
    [call] = received(httpserver)
    assert call["json"]["payload"]["operators"] == [{"id_user": str(a.pk)}]
    assert body["participants"] == [str(b.pk)] and body["status"] == 200
    assert body["routed_by"] == "webhook" and body["routing_reason"] == f"operator.select: chose {b.pk}"
    delivery = the_delivery()
    assert (delivery.decision, delivery.status, delivery.attempt_count) == ("webhook", "success", 1)


def test_the_receiver_may_choose_one_of_the_projects_bots(api, project, a_and_b, sales, subscription, httpserver):
    """Tiledesk's requestService.js:185-200 takes an operator named `bot_<id>` for a bot: the
    request is assigned to it (`participantsBots`, `hasBot`)."""
    bot = FaqKb.objects.create(project=project, name="Triage")
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": f"bot_{bot.pk}"}]})
    body, _ = create(api, project)
    assert (body["participants"], body["participantsBots"], body["hasBot"]) == ([f"bot_{bot.pk}"], [bot.pk], True)
    assert body["status"] == 200 and body["routed_by"] == "webhook"
    assert body["participatingBots"][0]["name"] == "Triage"
    assert the_delivery().decision == "webhook"


def test_a_bot_of_another_project_is_refused(api, project, a_and_b, sales, subscription, httpserver, owner):
    """Tiledesk would take any `bot_...` (requestService.js:194-199); here only the project's own."""
    a, _ = a_and_b
    theirs = Project.objects.create(name="Elsewhere", created_by=owner)
    foreign = FaqKb.objects.create(project=theirs, name="Theirs")
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": f"bot_{foreign.pk}"}]})
    body, _ = create(api, project)
    assert body["participants"] == [str(a.pk)] and body["routed_by"] == "builtin"
    assert the_delivery().decision == f"fallback: not an eligible teammate or a bot of the project: bot_{foreign.pk}"


def test_the_call_carries_the_standard_envelope_headers_and_signature(
    api, project, a_and_b, sales, subscription, httpserver, owner
):
    httpserver.expect_request("/select").respond_with_json({"operators": []})
    create(api, project)
    [call] = received(httpserver)
    headers, delivery = call["headers"], the_delivery()
    assert headers["content-type"] == "application/json"
    assert headers["x-hook-secret"] == subscription["secret"]
    assert headers["x-hook-id"] == headers["webhook-id"] == delivery.pk
    expected = sign(subscription["secret"], delivery.pk, int(headers["webhook-timestamp"]), call["raw"])
    assert headers["webhook-signature"] == expected
    hook = call["json"]["hook"]
    assert hook["event"] == "operator.select" and hook["id"] == subscription["id"]
    assert hook["id_project"] == project.pk and hook["createdBy"] == str(owner.pk)
    assert call["json"]["timestamp"] == delivery.event_payload.timestamp_ms()


def test_the_payload_describes_agents_department_group_project_and_request(
    api, project, a_and_b, sales, subscription, httpserver
):
    a, b = a_and_b
    b.memberships.filter(project=project).update(user_available=False)
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": str(a.pk)}]})
    body, _ = create(api, project)
    payload = received(httpserver)[0]["json"]["payload"]
    assert [agent["id_user"] for agent in payload["agents"]] == [str(a.pk), str(b.pk)]
    assert [agent["id_user"] for agent in payload["available_agents"]] == [str(a.pk)]
    assert payload["department"]["id"] == sales.pk and payload["department"]["routing"] == "assigned"
    assert payload["group"]["id"] == sales.group_id and payload["group"]["members"] == [str(a.pk), str(b.pk)]
    assert payload["id_project"] == project.pk and payload["project"] == {
        "_id": project.pk,
        "id": project.pk,
        "name": project.name,
    }
    assert payload["context"]["request"]["id"] == body["id"]
    assert payload["context"]["request"]["first_text"] == "hi"
    assert payload["context"]["previous_operator_id"] is None


def test_the_choice_is_published_as_request_update(api, project, a_and_b, sales, subscription, httpserver):
    _, b = a_and_b
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": b.pk}]})
    httpserver.expect_request("/updates").respond_with_data("ok")
    api.post(
        f"{base(project)}/subscriptions/",
        {"event": "request.update", "target": httpserver.url_for("/updates")},
        format="json",
    )
    body, _ = create(api, project)
    updates = [call["json"]["payload"] for call in received(httpserver) if call["path"] == "/updates"]
    assert updates == [body] and updates[0]["participants"] == [str(b.pk)]


def _garbage(request):
    return Response(b"<html>surprise</html>", status=200, content_type="text/html")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda request: Response(b"boom", status=500), "fallback: HTTP 500"),
        (_garbage, "fallback: invalid JSON"),
        (lambda request: Response(b'{"chosen": "x"}', content_type="application/json"), "fallback: no operators"),
        (
            lambda request: Response(b'{"operators": "alice"}', content_type="application/json"),
            "fallback: operators must be a list",
        ),
    ],
    ids=["500", "garbage", "no-operators-key", "operators-not-a-list"],
)
def test_an_unusable_answer_leaves_the_built_in_choice_and_logs_why(
    api, project, a_and_b, sales, subscription, httpserver, answer, reason
):
    a, _ = a_and_b
    httpserver.expect_request("/select").respond_with_handler(answer)
    body, elapsed = create(api, project)
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert body["participants"] == [str(a.pk)] and body["routed_by"] == "builtin"
    assert f"operator.select {reason}" in body["routing_reason"]
    delivery = the_delivery()
    assert delivery.decision.startswith(reason) and delivery.status == "failed"
    [attempt] = Attempt.objects.filter(delivery=delivery)
    assert attempt.outcome == "failed" and attempt.attempt == 1


def test_a_stranger_named_by_the_receiver_is_refused(
    api, project, a_and_b, sales, subscription, httpserver, make_user, add_member, owner
):
    a, _ = a_and_b
    stranger = make_user("mallory")
    httpserver.expect_request("/select").respond_with_json(
        {"operators": [{"id_user": str(stranger.pk)}, {"id_user": str(owner.pk)}]}
    )
    body, elapsed = create(api, project)
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert body["participants"] == [str(a.pk)] and body["routed_by"] == "builtin"
    decision = the_delivery().decision
    assert decision == f"fallback: not an eligible teammate or a bot of the project: {stranger.pk}, {owner.pk}"
    [attempt] = Attempt.objects.filter(delivery=the_delivery())
    assert attempt.status_code == 200 and attempt.error == decision.removeprefix("fallback: ")


def test_a_receiver_sleeping_past_the_timeout_is_abandoned_in_time(
    api, project, a_and_b, sales, subscription, httpserver
):
    a, b = a_and_b
    done = threading.Event()

    def sleepy(request):
        time.sleep(TIMEOUT_S + 0.5)
        done.set()
        return Response(json.dumps({"operators": [{"id_user": str(b.pk)}]}), content_type="application/json")

    httpserver.expect_request("/select").respond_with_handler(sleepy)
    body, elapsed = create(api, project)
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert body["participants"] == [str(a.pk)] and body["routed_by"] == "builtin"
    assert body["routing_reason"].endswith(f"(operator.select fallback: timeout after {TIMEOUT_S:g}s)")
    [attempt] = Attempt.objects.filter(delivery=the_delivery())
    assert (attempt.status_code, attempt.error, attempt.outcome) == (504, "Gateway Timeout", "failed")
    assert done.wait(5)  # let the receiver finish before the next test uses it


def test_a_receiver_trickling_its_answer_is_abandoned_in_time(api, project, a_and_b, sales, subscription, httpserver):
    """Each byte arrives well within the timeout, but the whole answer would not."""
    a, _ = a_and_b
    done = threading.Event()

    def trickle(request):
        def body():
            try:
                for _ in range(10):
                    yield b" "
                    time.sleep(TIMEOUT_S * 0.4)
                yield b'{"operators": []}'
            finally:
                done.set()

        return Response(body(), content_type="application/json", direct_passthrough=True)

    httpserver.expect_request("/select").respond_with_handler(trickle)
    body, elapsed = create(api, project)
    assert elapsed < TIMEOUT_S + MARGIN_S
    assert body["participants"] == [str(a.pk)] and body["routed_by"] == "builtin"
    assert the_delivery().decision == f"fallback: timeout after {TIMEOUT_S:g}s"
    done.wait(10)


def test_an_unreachable_receiver_leaves_the_built_in_choice(api, project, a_and_b, sales, subscription):
    a, _ = a_and_b
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api.patch(
        f"{base(project)}/subscriptions/{subscription['id']}/", {"target": f"http://127.0.0.1:{port}/x"}, format="json"
    )
    body, elapsed = create(api, project)
    assert body["participants"] == [str(a.pk)] and elapsed < TIMEOUT_S + MARGIN_S
    assert the_delivery().decision.startswith("fallback: ConnectionError")


def test_the_call_is_never_retried(api, project, a_and_b, sales, subscription, httpserver):
    httpserver.expect_request("/select").respond_with_data("down", status=503)
    create(api, project)
    delivery = the_delivery()
    assert delivery.next_attempt_at is None and delivery.status == "failed"
    assert tasks.retry_pending(grace_s=0) == 0
    assert len(received(httpserver)) == 1


def test_an_empty_operators_list_leaves_the_request_pooled(api, project, a_and_b, sales, subscription, httpserver):
    httpserver.expect_request("/select").respond_with_json({"operators": []})
    body, _ = create(api, project)
    assert body["status"] == 100 and body["participants"] == []
    assert body["routed_by"] == "webhook" and the_delivery().decision == "webhook"


def test_a_pooled_department_suggests_no_operator(api, project, a_and_b, subscription, httpserver):
    a, _ = a_and_b
    pool = Department.objects.create(project=project, name="Pool", routing="pooled")
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": str(a.pk)}]})
    body, _ = create(api, project, department=pool.pk)
    payload = received(httpserver)[0]["json"]["payload"]
    assert payload["operators"] == [] and payload["department"]["routing"] == "pooled"
    assert body["participants"] == [str(a.pk)] and body["routed_by"] == "webhook"


def test_a_reroute_tells_the_receiver_the_previous_operator(api, project, a_and_b, sales, subscription, httpserver):
    a, b = a_and_b
    httpserver.expect_ordered_request("/select").respond_with_json({"operators": [{"id_user": str(a.pk)}]})
    httpserver.expect_ordered_request("/select").respond_with_json({"operators": [{"id_user": str(b.pk)}]})
    body, _ = create(api, project)
    response = api.post(f"{base(project)}/requests/{body['id']}/reroute/", {}, format="json")
    assert response.status_code == 200 and response.json()["participants"] == [str(b.pk)]
    first, second = (call["json"]["payload"] for call in received(httpserver))
    assert first["context"]["previous_operator_id"] is None
    assert second["context"]["previous_operator_id"] == str(a.pk)
    assert second["context"]["request"]["participants"] == [str(a.pk)]


def test_moving_the_request_by_patch_asks_the_receiver_with_the_previous_operator(
    api, project, a_and_b, sales, subscription, httpserver
):
    a, b = a_and_b
    other = Department.objects.create(project=project, name="Other", routing="assigned", group=sales.group)
    httpserver.expect_ordered_request("/select").respond_with_json({"operators": [{"id_user": str(a.pk)}]})
    httpserver.expect_ordered_request("/select").respond_with_json({"operators": [{"id_user": str(b.pk)}]})
    body, _ = create(api, project)
    response = api.patch(f"{base(project)}/requests/{body['id']}/", {"department": other.pk}, format="json")
    assert response.status_code == 200 and response.json()["participants"] == [str(b.pk)]
    second = received(httpserver)[1]["json"]["payload"]
    assert second["context"]["previous_operator_id"] == str(a.pk) and second["department"]["id"] == other.pk


def test_disabling_the_subscription_makes_routing_built_in_at_once(
    api, project, a_and_b, sales, subscription, httpserver
):
    a, b = a_and_b
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": str(b.pk)}]})
    assert create(api, project)[0]["routed_by"] == "webhook"
    api.patch(f"{base(project)}/subscriptions/{subscription['id']}/", {"enabled": False}, format="json")
    body, _ = create(api, project)
    assert body["routed_by"] == "builtin" and body["participants"] == [str(a.pk)]
    assert len(received(httpserver)) == 1 and Delivery.objects.filter(event="operator.select").count() == 1


def test_fixed_routing_does_not_ask_the_receiver(api, project, a_and_b, subscription, httpserver):
    bot = FaqKb.objects.create(project=project, name="Bot")
    desk = Department.objects.create(project=project, name="Bot desk", routing="fixed", bot=bot)
    body, _ = create(api, project, department=desk.pk)
    assert body["participants"] == [f"bot_{bot.pk}"] and received(httpserver) == []


def test_the_receiver_is_called_with_the_request_committed_and_no_lock_held(
    api, project, a_and_b, sales, subscription, httpserver
):
    """The receiver may call back into the platform: the conversation exists, and writing to it
    does not wait on a transaction of the caller (it would run into the timeout)."""
    _, b = a_and_b
    seen = {}

    def calls_back(request):
        request_id = json.loads(request.get_data())["payload"]["context"]["request"]["id"]
        try:
            seen["rows"] = Request.objects.filter(pk=request_id).update(attributes={"crm": "checked"})
        finally:
            connection.close()
        return Response(json.dumps({"operators": [{"id_user": str(b.pk)}]}), content_type="application/json")

    httpserver.expect_request("/select").respond_with_handler(calls_back)
    body, _ = create(api, project)
    assert seen == {"rows": 1}
    assert body["participants"] == [str(b.pk)] and body["attributes"] == {"crm": "checked"}


def test_the_call_is_listed_in_the_logs_and_deliveries_apis(api, project, a_and_b, sales, subscription, httpserver):
    httpserver.expect_request("/select").respond_with_data("boom", status=500)
    create(api, project)
    logs = api.get(f"{base(project)}/subscriptions/logs/", {"event": "operator.select"}).json()["results"]
    assert len(logs) == 1 and logs[0]["status_code"] == 500 and logs[0]["outcome"] == "failed"
    assert logs[0]["request_headers"]["x-hook-secret"] == "[redacted]"
    deliveries = api.get(f"{base(project)}/deliveries/", {"event": "operator.select"}).json()["results"]
    assert [(d["decision"], d["status"], len(d["attempts"])) for d in deliveries] == [
        ("fallback: HTTP 500", "failed", 1)
    ]


def test_a_failing_selector_leaves_the_built_in_choice(api, project, a_and_b, sales, subscription, monkeypatch):
    from subscriptions.operator_select import OperatorSelectWebhook

    def broken(self, question):
        raise RuntimeError("selector bug")

    monkeypatch.setattr(OperatorSelectWebhook, "select", broken)
    body, _ = create(api, project)
    assert body["participants"] == [str(a_and_b[0].pk)] and body["routed_by"] == "builtin"
    assert body["routing_reason"].endswith("(operator.select fallback: selector error)")


def test_an_operator_select_delivery_cannot_be_redelivered(api, project):
    from subscriptions.models import Delivery, EventPayload, Subscription

    subscription = Subscription.objects.create(
        project=project, event="operator.select", target="https://route.example.com/", secret="s"
    )
    payload = EventPayload.objects.create(project=project, payload={})
    delivery = Delivery.objects.create(
        project=project, subscription=subscription, event="operator.select", event_payload=payload, status="failed"
    )
    response = api.post(f"/api/projects/{project.pk}/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 400 and "event" in response.json()
    delivery.refresh_from_db()
    assert delivery.status == "failed"

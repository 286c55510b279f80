"""Deliveries over real HTTP to a receiver on 127.0.0.1: the envelope, headers, retries, the log."""

import json
import time

import pytest
from django_q.brokers import get_broker
from django_q.scheduler import scheduler
from werkzeug import Response

from subscriptions import events
from subscriptions.models import Attempt, Delivery, Subscription
from subscriptions.signing import sign
from support.models import FaqKb
from tests.conftest import received, retries_come_due, wait_for
from tests.factories import create_request, subscribed


def base(project) -> str:
    return f"/api/projects/{project.pk}"


def run_due_retries(clock) -> None:
    """Let the retry delay pass, then run django-q2's scheduler (the cluster does this every ~30 s)."""
    retries_come_due(clock)
    scheduler(broker=get_broker())


def test_a_subscriber_receives_the_seed_envelope(api, project, owner, httpserver, on_commit):
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    subscription = subscribed(api, project.pk, httpserver.url_for("/hook"))
    before_ms = int(time.time() * 1000)
    request = create_request(api, project, on_commit)

    [got] = received(httpserver)
    delivery = Delivery.objects.get()
    assert got["method"] == "POST"
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["x-hook-secret"] == subscription["secret"]
    assert got["headers"]["x-hook-id"] == delivery.pk
    body = got["json"]
    assert set(body) == {
        "hook",
        "timestamp",
        "payload",
        "token",
        "sequence",
    }  # the token: tests/tiledesk/test_envelope_token.py
    assert body["hook"] == {
        "_id": subscription["id"],
        "id": subscription["id"],
        "createdAt": subscription["createdAt"],
        "updatedAt": subscription["updatedAt"],
        "target": httpserver.url_for("/hook"),
        "event": "request.create",
        "id_project": project.pk,
        "createdBy": str(owner.pk),
        "__v": 0,
    }
    assert before_ms - 1000 <= body["timestamp"] <= int(time.time() * 1000)
    assert body["payload"] == request


def test_the_signature_covers_the_exact_bytes_sent(api, project, httpserver, on_commit):
    httpserver.expect_request("/hook").respond_with_data("ok")
    subscription = subscribed(api, project.pk, httpserver.url_for("/hook"))
    create_request(api, project, on_commit)
    [got] = received(httpserver)
    headers = got["headers"]
    expected = sign(subscription["secret"], headers["webhook-id"], int(headers["webhook-timestamp"]), got["raw"])
    assert headers["webhook-signature"] == expected
    assert headers["webhook-id"] == headers["x-hook-id"]


def _do(api, project, on_commit, name: str) -> dict:
    """Perform the domain action that publishes `name`; returns the object as the API answered."""
    b = base(project)
    if name.startswith("project."):
        with on_commit():
            if name == "project.update":
                answered = api.patch(f"/api/projects/{project.pk}/", {"name": "Renamed"}, format="json").json()
            else:
                answered = api.get(f"/api/projects/{project.pk}/").json()
                api.delete(f"/api/projects/{project.pk}/")
        answered.pop("role")  # the caller's own, which an event has not
        return {**answered, "id_project": project.pk}
    if name.startswith("subscription."):
        other = subscribed(api, project.pk, "https://crm.example.com/in", event="lead.create")
        with on_commit():
            answered = api.patch(f"{b}/subscriptions/{other['id']}/", {"enabled": False}, format="json").json()
            if name == "subscription.enabled":
                answered = api.patch(f"{b}/subscriptions/{other['id']}/", {"enabled": True}, format="json").json()
        if name == "subscription.enabled":
            return {"subscription": answered, "id_project": project.pk}
        return {
            "subscription": answered,
            "reason": "Disabled by an operator.",
            "last_attempt": None,
            "id_project": project.pk,
        }
    name = name.removesuffix(".agent")  # project_user.update.agent comes with project_user.update
    with on_commit():
        if name in ("request.create", "lead.create"):
            created = api.post(f"{b}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json")
            return created.json() if name == "request.create" else created.json()["lead"]
    request = api.post(f"{b}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json").json()
    family, _, verb = name.rpartition(".")
    # (Made here only when needed: its own faqbot.create would join the test's batch of deliveries,
    # which the on_commit blocks below do not run because it was registered before them.)
    bot = FaqKb.objects.create(project=project, name="B") if family == "faq" else None
    with on_commit():
        if name == "request.update":
            return api.patch(f"{b}/requests/{request['id']}/", {"attributes": {"a": 1}}, format="json").json()
        if name == "request.close":
            return api.post(f"{b}/requests/{request['id']}/close/").json()
        if name == "message.create":
            return api.post(f"{b}/requests/{request['id']}/messages/", {"text": "m"}, format="json").json()
        if name == "event.emit":
            return api.post(f"{b}/events/", {"name": "clicked"}, format="json").json()
    path, body = {
        "faq": ("faqs", {"id_faq_kb": bot and bot.pk, "question": "Q", "answer": "A"}),
        "faqbot": ("faq_kb", {"name": "Bot"}),
        "department": ("departments", {"name": "Sales"}),
        "group": ("groups", {"name": "G"}),
        "project_user": ("project_users", {"email": "new@example.com", "role": "agent"}),
    }[family]
    with on_commit():
        created = api.post(f"{b}/{path}/", body, format="json").json()
    if verb in ("create", "invite"):
        return created
    with on_commit():
        if verb == "update":
            return api.patch(
                f"{b}/{path}/{created['id']}/",
                {"role": "admin"}
                if family == "project_user"
                else {"name": "Renamed"}
                if family != "faq"
                else {"answer": "B"},
                format="json",
            ).json()
        api.delete(f"{b}/{path}/{created['id']}/")
    return created


# automation.run.failed is published by a failing flow: tests/automations/test_run_failed_event.py.
CATALOG_NAMES = [
    e.name
    for e in events.CATALOG
    if "<" not in e.name and e.name not in (events.OPERATOR_SELECT, events.AUTOMATION_RUN_FAILED)
]


@pytest.mark.parametrize("name", CATALOG_NAMES)
def test_every_catalog_event_reaches_its_subscriber_with_the_api_payload(api, project, httpserver, on_commit, name):
    httpserver.expect_request("/hook").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/hook"), event=name)
    expected = _do(api, project, on_commit, name)
    got = received(httpserver)
    assert len(got) == 1, [g["json"]["hook"]["event"] for g in got]
    assert got[0]["json"]["hook"]["event"] == name
    payload = got[0]["json"]["payload"]
    if name.endswith(".delete"):
        assert payload["id"] == expected["id"]
    elif name == "request.close":  # the closed request as the API answered, and its (here no) messages
        assert payload == {**expected, "messages": []}
    else:
        assert payload == expected


def test_channel_sub_event_goes_only_to_that_channels_subscribers(api, project, httpserver, on_commit):
    httpserver.expect_request("/tg").respond_with_data("ok")
    httpserver.expect_request("/wa").respond_with_data("ok")
    httpserver.expect_request("/all").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/tg"), event="message.create.request.channel.telegram")
    subscribed(api, project.pk, httpserver.url_for("/wa"), event="message.create.request.channel.whatsapp")
    subscribed(api, project.pk, httpserver.url_for("/all"), event="message.create")
    request = create_request(api, project, on_commit, channel="telegram")
    with on_commit():
        api.post(f"{base(project)}/requests/{request['id']}/messages/", {"text": "hi"}, format="json")
    paths = sorted(g["path"] for g in received(httpserver))
    assert paths == ["/all", "/tg"]


def test_emitted_event_sub_event_reaches_its_subscriber(api, project, httpserver, on_commit):
    httpserver.expect_request("/typing").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/typing"), event="event.emit.typing.start")
    with on_commit():
        api.post(f"{base(project)}/events/", {"name": "typing.stop"}, format="json")
        api.post(f"{base(project)}/events/", {"name": "typing.start", "attributes": {"n": 1}}, format="json")
    [got] = received(httpserver)
    assert got["json"]["hook"]["event"] == "event.emit.typing.start"
    assert got["json"]["payload"]["name"] == "typing.start" and got["json"]["payload"]["attributes"] == {"n": 1}


def test_a_disabled_subscription_is_sent_nothing_and_keeps_a_skipped_row(api, project, httpserver, on_commit):
    subscribed(api, project.pk, httpserver.url_for("/hook"), enabled=False)
    create_request(api, project, on_commit)
    assert received(httpserver) == []
    assert list(Delivery.objects.values_list("status", "attempt_count")) == [("skipped", 0)]


def test_a_failed_attempt_is_retried_until_a_2xx(api, project, httpserver, on_commit, clock):
    httpserver.expect_ordered_request("/hook").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok", status=200)
    subscribed(api, project.pk, httpserver.url_for("/hook"))
    create_request(api, project, on_commit)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempt_count == 1
    run_due_retries(clock)
    delivery.refresh_from_db()
    assert delivery.status == "success"
    attempts = list(
        Attempt.objects.order_by("attempt").values_list("attempt", "status_code", "outcome", "response_body")
    )
    assert attempts == [(1, 500, "failed", "boom"), (2, 200, "success", "ok")]
    first, second = received(httpserver)
    assert first["headers"]["x-hook-id"] == second["headers"]["x-hook-id"] == delivery.pk
    assert first["json"]["timestamp"] == second["json"]["timestamp"]


def test_after_the_last_delay_the_delivery_is_failed(api, project, httpserver, on_commit, settings, clock):
    settings.HOOKS_RETRY_DELAYS_S = [0.1, 0.1]
    httpserver.expect_request("/hook").respond_with_data("nope", status=503)
    subscribed(api, project.pk, httpserver.url_for("/hook"))
    create_request(api, project, on_commit)
    run_due_retries(clock)
    run_due_retries(clock)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempt_count == 3
    assert len(received(httpserver)) == 3
    run_due_retries(clock)
    assert len(received(httpserver)) == 3


def test_a_timeout_is_logged_as_504_gateway_timeout(api, project, httpserver, on_commit, settings):
    settings.HOOKS_TIMEOUT_S = 0.3

    def slow(request):
        time.sleep(0.6)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    subscribed(api, project.pk, httpserver.url_for("/slow"))
    create_request(api, project, on_commit)
    attempt = Attempt.objects.get()
    assert (attempt.status_code, attempt.error, attempt.outcome) == (504, "Gateway Timeout", "failed")
    assert attempt.duration_ms < 600
    wait_for(lambda: httpserver.log, timeout=2)  # let the receiver finish before the next test


def test_a_refused_connection_is_logged_with_its_error_and_no_status(api, project, on_commit):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subscribed(api, project.pk, f"http://127.0.0.1:{port}/nobody")
    create_request(api, project, on_commit)
    attempt = Attempt.objects.get()
    assert attempt.status_code is None and attempt.outcome == "failed"
    assert "Connection" in attempt.error or "refused" in attempt.error.lower()
    assert Delivery.objects.get().status == "pending"


def test_a_redirect_is_not_followed_and_counts_as_failure(api, project, httpserver, on_commit):
    httpserver.expect_request("/moved").respond_with_data("", status=302, headers={"Location": "/elsewhere"})
    subscribed(api, project.pk, httpserver.url_for("/moved"))
    create_request(api, project, on_commit)
    assert [g["path"] for g in received(httpserver)] == ["/moved"]
    attempt = Attempt.objects.get()
    assert attempt.status_code == 302 and attempt.outcome == "failed" and "redirect" in attempt.error


def test_the_attempt_log_row_records_the_exchange_with_the_secret_redacted(api, project, httpserver, on_commit):
    httpserver.expect_request("/hook").respond_with_json({"thanks": 1}, status=201, headers={"X-Receiver": "r1"})
    subscription = subscribed(api, project.pk, httpserver.url_for("/hook"))
    create_request(api, project, on_commit)
    attempt = Attempt.objects.get()
    assert attempt.request_headers["x-hook-secret"] == "[redacted]"
    assert subscription["secret"] not in json.dumps(attempt.request_headers)
    assert json.loads(attempt.request_body)["hook"]["id"] == subscription["id"]
    assert attempt.status_code == 201 and json.loads(attempt.response_body) == {"thanks": 1}
    assert attempt.response_headers["X-Receiver"] == "r1"
    assert attempt.outcome == "success" and attempt.attempt == 1
    assert 0 <= attempt.duration_ms < 2000  # within HOOKS_TIMEOUT_S of the tests


def test_response_bodies_are_kept_to_4_kib(api, project, httpserver, on_commit):
    httpserver.expect_request("/big").respond_with_data("x" * 100_000)
    subscribed(api, project.pk, httpserver.url_for("/big"))
    create_request(api, project, on_commit)
    assert len(Attempt.objects.get().response_body) == 4096


def test_redeliver_sends_again_with_the_same_delivery_id_and_next_attempt_number(
    api, project, httpserver, on_commit, settings
):
    settings.HOOKS_RETRY_DELAYS_S = []
    httpserver.expect_ordered_request("/hook").respond_with_data("down", status=500)
    httpserver.expect_ordered_request("/hook").respond_with_data("up", status=200)
    subscribed(api, project.pk, httpserver.url_for("/hook"))
    create_request(api, project, on_commit)
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    with on_commit():
        response = api.post(f"{base(project)}/deliveries/{delivery.pk}/redeliver/")
    assert response.status_code == 202
    delivery.refresh_from_db()
    assert delivery.status == "success" and delivery.attempt_count == 2
    assert [g["headers"]["x-hook-id"] for g in received(httpserver)] == [delivery.pk, delivery.pk]
    assert list(delivery.attempts.order_by("attempt").values_list("attempt", "outcome")) == [
        (1, "failed"),
        (2, "success"),
    ]


def test_a_410_gone_disables_the_subscription_with_a_reason(api, project, httpserver, on_commit):
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    subscription = subscribed(api, project.pk, httpserver.url_for("/gone"))
    create_request(api, project, on_commit)
    stored = Subscription.objects.get(pk=subscription["id"])
    assert stored.enabled is False and "410" in stored.disabled_reason
    assert Delivery.objects.get().status == "failed"
    create_request(api, project, on_commit)
    assert len(received(httpserver)) == 1


def test_a_slow_target_does_not_hold_back_others_in_the_same_event(api, project, httpserver, on_commit):
    """Each subscription has its own delivery and task: the fast one is sent and logged on its own."""
    httpserver.expect_request("/fast").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/fast"))
    subscribed(api, project.pk, "http://127.0.0.1:9/closed")
    create_request(api, project, on_commit)
    statuses = dict(Delivery.objects.values_list("subscription__target", "status"))
    assert statuses[httpserver.url_for("/fast")] == "success"
    assert statuses["http://127.0.0.1:9/closed"] == "pending"

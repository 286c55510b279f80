"""The operator's console in Django admin: the dashboard on the index, the delivery and log pages
(request and response side by side), and the actions "Send test event" and "Replay failed
deliveries since…"."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions import events
from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from tests.conftest import received
from tests.factories import failed_delivery


@pytest.fixture
def operator(make_user, client):
    user = make_user("operator", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def hook(project, httpserver):
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    return Subscription.objects.create(
        project=project, event="request.create", target=httpserver.url_for("/hook"), secret="whsec_c2VjcmV0c2VjcmV0"
    )


def attempt(delivery: Delivery, number: int, status_code: int | None, **extra) -> Attempt:
    return Attempt.objects.create(
        project=delivery.project,
        delivery=delivery,
        subscription=delivery.subscription,
        event=delivery.event,
        attempt=number,
        target=delivery.subscription.target,
        request_headers={"Content-Type": "application/json", "x-hook-secret": "[redacted]"},
        request_body='{"hook":{"id":"h"},"payload":{"first_text":"Hello"}}',
        status_code=status_code,
        response_headers={"Content-Type": "application/json"} if status_code else {},
        response_body='{"ok":false,"reason":"busy"}' if status_code else "",
        outcome="success" if status_code and status_code < 300 else "failed",
        **extra,
    )


def delivery(hook: Subscription, status: str) -> Delivery:
    payload = EventPayload.objects.create(project=hook.project, payload={"first_text": "Hello"})
    return Delivery.objects.create(
        project=hook.project, subscription=hook, event=hook.event, event_payload=payload, status=status
    )


def test_dashboard_shows_a_chart_of_the_last_24h_per_project(operator, project, hook):
    ok = delivery(hook, "success")
    attempt(ok, 1, 200, duration_ms=80)
    bad = delivery(hook, "failed")
    attempt(bad, 1, None, error="Connection refused", duration_ms=5)

    html = operator.get("/admin/").content.decode()

    assert 'id="console-dashboard"' in html
    [chart] = re.findall(r'<svg class="console-chart".*?</svg>', html, re.S)
    assert len(re.findall(r'class="bar-success"', chart)) == 1
    assert len(re.findall(r'class="bar-failed"', chart)) == 1
    assert "1 success, 1 failed" in chart  # the hover text of the hour's bar
    assert "50.0%" in html  # success rate
    assert "Connection refused" in html  # the failing subscription with its last error
    assert "no worker" in html  # no qcluster in this test


def test_dashboard_p95_latency_and_pending_depth(operator, project, hook):
    for n in range(20):
        done = delivery(hook, "success")
        Delivery.objects.filter(pk=done.pk).update(updated_at=done.created_at + timedelta(milliseconds=100 * (n + 1)))
    delivery(hook, "pending")

    html = operator.get("/admin/").content.decode()

    assert "1900 ms" in html  # nearest-rank p95 of 100..2000 ms
    assert re.search(r'id="console-pending">.*?<div class="figure">1</div>', html, re.S)


def test_attempt_page_shows_request_and_response_side_by_side(operator, hook):
    row = attempt(delivery(hook, "failed"), 1, 503, duration_ms=1234)

    html = operator.get(f"/admin/subscriptions/attempt/{row.pk}/change/").content.decode()

    request_part, response_part = html.split('class="console-response"')[0], html.split('class="console-response"')[1]
    assert 'class="console-request"' in request_part and "&quot;first_text&quot;: &quot;Hello&quot;" in request_part
    assert "HTTP 503" in response_part and "&quot;reason&quot;: &quot;busy&quot;" in response_part
    assert "1234 ms" in html
    assert "whsec_c2VjcmV0c2VjcmV0" not in html


def test_delivery_page_redeliver_button_sends_it_again(operator, hook, httpserver):
    failed = failed_delivery(hook, timedelta(hours=1))
    attempt(failed, 4, 500)
    page = operator.get(f"/admin/subscriptions/delivery/{failed.pk}/change/").content.decode()
    assert 'id="redeliver-button"' in page and "Attempt #4" in page

    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.split('id="redeliver-form"')[1]))
    response = operator.post("/admin/subscriptions/delivery/", form, follow=True)

    assert response.status_code == 200
    assert [got["headers"]["x-hook-id"] for got in received(httpserver)] == [failed.pk]
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.SUCCESS


def test_send_test_event_action_delivers_the_example_payload(operator, hook, httpserver, on_commit):
    with on_commit():
        response = operator.post(
            "/admin/subscriptions/subscription/",
            {"action": "send_test_event", "_selected_action": [hook.pk], "index": 0},
            follow=True,
        )

    assert "1 test event(s) queued" in response.content.decode()
    [got] = received(httpserver)
    assert got["json"]["payload"] == events.example_payload("request.create")
    assert Attempt.objects.filter(subscription=hook, outcome="success").count() == 1


def test_replay_action_asks_the_time_first(operator, hook):
    response = operator.post(
        "/admin/subscriptions/subscription/", {"action": "replay_failed_since", "_selected_action": [hook.pk]}
    )

    html = response.content.decode()
    assert response.status_code == 200 and 'id="replay-form"' in html and 'name="since"' in html
    assert 'type="datetime-local"' in html


def test_replay_action_replays_failed_deliveries_since_the_time_given(operator, hook, httpserver):
    recent = failed_delivery(hook, timedelta(hours=2))
    failed_delivery(hook, timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    response = operator.post(
        "/admin/subscriptions/subscription/",
        {
            "action": "replay_failed_since",
            "_selected_action": [hook.pk],
            "since": since,
            "scope": "subscription",
            "apply": "1",
        },
        follow=True,
    )

    assert "1 failed delivery(ies) of 1 subscription(s)" in response.content.decode()
    assert [got["headers"]["x-hook-id"] for got in received(httpserver)] == [recent.pk]


def test_replay_action_for_the_whole_project(operator, project, hook, httpserver):
    sibling = Subscription.objects.create(
        project=project, event="lead.create", target=httpserver.url_for("/hook"), secret="s"
    )
    both = [failed_delivery(hook, timedelta(hours=1)), failed_delivery(sibling, timedelta(hours=1))]

    operator.post(
        "/admin/subscriptions/subscription/",
        {
            "action": "replay_failed_since",
            "_selected_action": [hook.pk],
            "since": "2000-01-01T00:00",
            "scope": "project",
        }
        | {"apply": "1"},
    )

    assert sorted(got["headers"]["x-hook-id"] for got in received(httpserver)) == sorted(d.pk for d in both)

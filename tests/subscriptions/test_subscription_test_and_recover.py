"""POST .../subscriptions/{id}/test/ sends an example of the subscription's event through the real
pipeline; POST .../subscriptions/{id}/recover/ {"since"} redelivers its failed deliveries since then."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions import events
from subscriptions.models import Attempt, Delivery, Subscription
from support.models import Role
from tests.conftest import client_for, received
from tests.factories import failed_delivery, subscription


@pytest.fixture
def subscribe(project, owner):
    def make(target: str, event: str = "request.create", **extra) -> Subscription:
        return subscription(project, target, event, secret="whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ=", **extra)

    return make


def test_test_event_delivers_the_example_payload_to_that_subscription_only(
    api, project, subscribe, httpserver, on_commit
):
    httpserver.expect_request("/a", method="POST").respond_with_json({"ok": True})
    httpserver.expect_request("/b", method="POST").respond_with_json({"ok": True})
    tested = subscribe(httpserver.url_for("/a"))
    subscribe(httpserver.url_for("/b"))

    with on_commit():
        response = api.post(f"/api/projects/{project.pk}/subscriptions/{tested.pk}/test/")

    assert response.status_code == 202
    assert response.json() == {
        "id": response.json()["id"],
        "status": "pending",
        "event": "request.create",
        "filter_matches": True,
    }
    [got] = received(httpserver)
    assert got["path"] == "/a"
    assert got["headers"]["x-hook-id"] == response.json()["id"]
    assert got["json"]["hook"]["id"] == tested.pk
    assert got["json"]["payload"] == events.example_payload("request.create")


def test_test_event_is_logged_like_any_delivery(api, project, subscribe, httpserver, on_commit):
    httpserver.expect_request("/a").respond_with_data("nope", status=500)
    tested = subscribe(httpserver.url_for("/a"))

    with on_commit():
        delivery_id = api.post(f"/api/projects/{project.pk}/subscriptions/{tested.pk}/test/").json()["id"]

    logs = api.get(f"/api/projects/{project.pk}/subscriptions/logs/", {"subscription": tested.pk}).json()["results"]
    assert [(row["delivery"], row["attempt"], row["status_code"], row["outcome"]) for row in logs] == [
        (delivery_id, 1, 500, "failed")
    ]
    assert Delivery.objects.get(pk=delivery_id).status == Delivery.Status.PENDING  # a retry is scheduled


def test_test_event_of_a_channel_subscription_carries_that_channel(api, project, subscribe, httpserver, on_commit):
    httpserver.expect_request("/t").respond_with_json({})
    tested = subscribe(httpserver.url_for("/t"), event="message.create.request.channel.telegram")

    with on_commit():
        api.post(f"/api/projects/{project.pk}/subscriptions/{tested.pk}/test/")

    assert received(httpserver)[0]["json"]["payload"]["channel"] == {"name": "telegram"}


def test_test_event_is_for_managers_only(project, subscribe, add_member, stranger_api):
    tested = subscribe("http://127.0.0.1:9/x")
    agent = client_for(add_member("agent", Role.AGENT))
    url = f"/api/projects/{project.pk}/subscriptions/{tested.pk}/test/"

    assert agent.post(url).status_code == 403
    assert stranger_api.post(url).status_code == 404
    assert Delivery.objects.count() == 0


def test_recover_redelivers_the_failed_deliveries_since_the_given_time(api, project, subscribe, httpserver, on_commit):
    httpserver.expect_request("/r").respond_with_json({"ok": True})
    subscription = subscribe(httpserver.url_for("/r"))
    recent = failed_delivery(subscription, timedelta(hours=1))
    old = failed_delivery(subscription, timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    with on_commit():
        response = api.post(
            f"/api/projects/{project.pk}/subscriptions/{subscription.pk}/recover/", {"since": since}, format="json"
        )

    assert response.status_code == 202
    assert response.json()["count"] == 1 and response.json()["deliveries"] == [recent.pk]
    assert [got["headers"]["x-hook-id"] for got in received(httpserver)] == [recent.pk]
    assert Attempt.objects.get(delivery=recent).attempt == 5  # attempt numbers continue
    assert Delivery.objects.get(pk=recent.pk).status == Delivery.Status.SUCCESS
    assert Delivery.objects.get(pk=old.pk).status == Delivery.Status.FAILED


def test_recover_leaves_other_subscriptions_alone(api, project, subscribe, httpserver, on_commit):
    httpserver.expect_request("/r").respond_with_json({})
    subscription = subscribe(httpserver.url_for("/r"))
    other = failed_delivery(subscribe(httpserver.url_for("/other"), event="lead.create"), timedelta(minutes=5))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    with on_commit():
        response = api.post(
            f"/api/projects/{project.pk}/subscriptions/{subscription.pk}/recover/", {"since": since}, format="json"
        )

    assert response.json()["count"] == 0
    assert received(httpserver) == []
    assert Delivery.objects.get(pk=other.pk).status == Delivery.Status.FAILED


@pytest.mark.parametrize("body", [{}, {"since": "yesterday"}])
def test_recover_without_a_valid_since_is_400_on_since(api, project, subscribe, body):
    subscription = subscribe("http://127.0.0.1:9/x")
    response = api.post(f"/api/projects/{project.pk}/subscriptions/{subscription.pk}/recover/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["since"]


def test_recover_leaves_operator_select_calls_alone(api, project, subscribe, httpserver, on_commit):
    selector = subscribe(httpserver.url_for("/select"), event="operator.select")
    failed_delivery(selector, timedelta(hours=1))

    with on_commit():
        response = api.post(
            f"/api/projects/{project.pk}/subscriptions/{selector.pk}/recover/",
            {"since": "2000-01-01T00:00:00Z"},
            format="json",
        )

    assert response.status_code == 202 and response.json()["count"] == 0
    assert received(httpserver) == []

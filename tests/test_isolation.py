"""A slow target gets one delivery in flight at a time, so that it cannot hold every worker
(subscriptions/isolation.py; measured by bench/isolation.py). Real HTTP to a local receiver;
tasks run in-process (Q_SYNC) through the real queue calls."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions import isolation, tasks
from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from subscriptions.signing import new_secret


@pytest.fixture(autouse=True)
def forget_slow_targets():
    isolation._slow_until.clear()
    yield
    isolation._slow_until.clear()


@pytest.fixture
def subscription(project, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return Subscription.objects.create(
        project=project, event="request.create", target=httpserver.url_for("/hook"), secret=new_secret()
    )


def pending_delivery(subscription, **fields) -> Delivery:
    payload = EventPayload.objects.create(project=subscription.project, payload={"id": "r1"})
    project, event = subscription.project, subscription.event
    return Delivery.objects.create(
        project=project, subscription=subscription, event=event, event_payload=payload, **fields
    )


def in_flight(subscription) -> Delivery:
    return pending_delivery(subscription, locked_until=timezone.now() + timedelta(seconds=30))


def slow_attempt_ended(delivery: Delivery) -> None:
    """What the worker reports after an attempt whose HTTP exchange took 2 s."""
    Attempt.objects.create(project=delivery.project, delivery=delivery, subscription=delivery.subscription,
                           event=delivery.event, attempt=1, target="x", request_body="{}", status_code=504,
                           duration_ms=2000, outcome="failed")  # fmt: skip
    isolation.after_attempt(delivery, seconds=2.1)


def hook_ids(httpserver) -> list[str]:
    return [request.headers["x-hook-id"] for request, _ in httpserver.log]


def test_a_delivery_to_a_slow_target_waits_while_another_is_in_flight(subscription, httpserver):
    slow_attempt_ended(in_flight(subscription))
    waiting = pending_delivery(subscription)

    assert tasks.deliver(waiting.pk) == "parked"

    waiting.refresh_from_db()
    assert hook_ids(httpserver) == []
    assert (waiting.status, waiting.attempt_count, waiting.locked_until) == ("pending", 0, None)
    assert waiting.last_error == isolation.PARKED
    assert waiting.next_attempt_at > timezone.now() + timedelta(seconds=isolation.PARK_S - 5)


def test_when_the_delivery_in_flight_ends_the_parked_ones_go_in_turn_oldest_first(subscription, httpserver):
    first = in_flight(subscription)
    slow_attempt_ended(first)
    newer, older = pending_delivery(subscription), pending_delivery(subscription)
    Delivery.objects.filter(pk=older.pk).update(created_at=newer.created_at - timedelta(seconds=1))
    assert tasks.deliver(newer.pk) == tasks.deliver(older.pk) == "parked"

    Delivery.objects.filter(pk=first.pk).update(status="success", locked_until=None)
    slow_attempt_ended(first)

    # Each one's end hands the next to the queue (tasks run in-process here, so all at once).
    assert hook_ids(httpserver) == [older.pk, newer.pk]
    assert set(Delivery.objects.filter(pk__in=[older.pk, newer.pk]).values_list("status", "last_error")) == {
        ("success", "")
    }


def test_a_healthy_target_takes_deliveries_side_by_side(subscription, httpserver):
    in_flight(subscription)
    isolation.after_attempt(in_flight(subscription), seconds=0.01)
    other = pending_delivery(subscription)

    assert tasks.deliver(other.pk) == "success"
    assert hook_ids(httpserver) == [other.pk]


def test_a_claimed_delivery_to_a_slow_target_steps_back_when_another_is_in_flight(subscription, httpserver):
    slow_attempt_ended(in_flight(subscription))
    claimed = tasks.claim(pending_delivery(subscription).pk)

    assert isolation.should_park(claimed)
    isolation.park(claimed)

    claimed.refresh_from_db()
    assert (claimed.locked_until, claimed.last_error, claimed.attempt_count) == (None, isolation.PARKED, 0)
    assert hook_ids(httpserver) == []


def test_a_long_attempt_whose_http_exchange_was_quick_does_not_make_the_target_slow(subscription, httpserver):
    first = in_flight(subscription)
    Attempt.objects.create(project=first.project, delivery=first, subscription=subscription, event=first.event,
                           attempt=1, target="x", request_body="{}", status_code=200, duration_ms=15,
                           outcome="success")  # fmt: skip
    isolation.after_attempt(first, seconds=3.0)  # the database was slow, not the target
    other = pending_delivery(subscription)

    assert tasks.deliver(other.pk) == "success"

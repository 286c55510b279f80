"""Outbox rows as the worker leaves them, for tests that start from a history (the console, the
commands, the logs API) rather than from a live exchange."""

from datetime import timedelta

from django.utils import timezone

from subscriptions.models import Attempt, Delivery, EventPayload, Subscription


def failed_delivery(subscription: Subscription, age: timedelta, attempts: int = 4) -> Delivery:
    """A delivery created `age` ago that used up its attempts."""
    created = timezone.now() - age
    payload = EventPayload.objects.create(project=subscription.project, payload={"n": str(age)}, occurred_at=created)
    return Delivery.objects.create(
        project=subscription.project,
        subscription=subscription,
        event=subscription.event,
        event_payload=payload,
        status=Delivery.Status.FAILED,
        attempt_count=attempts,
        next_attempt_at=None,
        last_error="HTTP 500",
        created_at=created,
    )


def logged_attempt(delivery: Delivery, **fields) -> Attempt:
    """The log row of a failed first attempt of `delivery`, with `fields` changed."""
    subscription = delivery.subscription
    row = {
        "project_id": delivery.project_id,
        "delivery": delivery,
        "subscription": subscription,
        "event": delivery.event,
        "attempt": 1,
        "target": subscription.target,
        "request_body": "{}",
        "outcome": Attempt.Outcome.FAILED,
    }
    return Attempt.objects.create(**{**row, **fields})


def pending_delivery(subscription: Subscription, payload: dict | None = None) -> Delivery:
    """A delivery in the outbox, due now and not handed to the queue (a test then plays the worker)."""
    stored = EventPayload.objects.create(project=subscription.project, payload=payload or {"n": 1})
    return Delivery.objects.create(
        project=subscription.project, subscription=subscription, event=subscription.event, event_payload=stored
    )

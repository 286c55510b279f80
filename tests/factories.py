"""What tests start from: subscriptions made through the API (as a client makes them, with the
full secret in the answer) or written directly (when the API is not what is under test), and
outbox rows as the worker leaves them, for tests that start from a history (the console, the
commands, the logs API) rather than from a live exchange."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from subscriptions import routing
from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from subscriptions.signing import new_secret
from support.models import Project


def subscribed(api: APIClient, project_id: str, target: str, event: str = "request.create", **fields) -> dict:
    """A subscription created through `/api/` by the client's user; the answer, with its secret."""
    response = api.post(
        f"/api/projects/{project_id}/subscriptions/", {"event": event, "target": target, **fields}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def create_request(api: APIClient, project: Project, on_commit, *, channel: str | None = None, **fields) -> dict:
    """A conversation created through `/api/` ("hello" from a new lead, Ann, unless `fields` say
    otherwise; `channel` by name), its events published as its transaction commits."""
    body = {"first_text": "hello", "lead": {"fullname": "Ann"}, **fields}
    if channel is not None:
        body["channel"] = {"name": channel}
    with on_commit():
        response = api.post(f"/api/projects/{project.pk}/requests/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create_requests_unsent(api: APIClient, project: Project, count: int) -> None:
    """`count` conversations created through `/api/` whose deliveries stay in the outbox: the test's
    transaction never commits, so nothing wakes a worker (the test then plays the worker). Their
    events are routed, as a worker first does, so their deliveries are there, pending and unsent."""
    for _ in range(count):
        body = {"first_text": "hi", "lead": {"fullname": "Ann"}}
        assert api.post(f"/api/projects/{project.pk}/requests/", body, format="json").status_code == 201
    routing.route(count)


def subscription(
    project: Project, target: str = "https://hooks.example.com/", event: str = "request.create", **fields
) -> Subscription:
    """A subscription row written directly, with a fresh secret unless `fields` gives one."""
    return Subscription.objects.create(
        project=project, event=event, target=target, **{"secret": new_secret(), **fields}
    )


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

"""Publishing a domain event: the one function the webhook layer consumes events through.

Inside the caller's transaction it writes the outbox (an `EventPayload` and one `Delivery` per
matching enabled subscription); only after commit are the deliveries handed to the queue, so a
rolled-back change sends nothing and a committed one is never lost."""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .events import OPERATOR_SELECT
from .models import Delivery, EventPayload, Subscription

logger = logging.getLogger(__name__)

# Sent after commit for every published event, with project_id, names, payload and occurred_at.
# Observers (metrics, tests) listen here; deliveries do not depend on it.
event_published = Signal()


def publish_event(
    project_id: str, names: Iterable[str], payload: dict, occurred_at: datetime | None = None
) -> list[str]:
    """Publish one occurrence under one or more names (e.g. `message.create` and its channel
    sub-event). Returns the ids of the deliveries it created."""
    names = list(dict.fromkeys(names))
    occurred_at = occurred_at or timezone.now()
    subscriptions = list(
        Subscription.objects.filter(project_id=project_id, enabled=True, event__in=names)
        .exclude(event=OPERATOR_SELECT)
        .only("id", "event")
    )
    delivery_ids = _write_outbox(project_id, subscriptions, payload, occurred_at)
    transaction.on_commit(
        lambda: event_published.send(
            sender=publish_event, project_id=project_id, names=names, payload=payload, occurred_at=occurred_at
        ),
        robust=True,
    )
    return delivery_ids


def publish_to_subscription(subscription: Subscription, payload: dict, occurred_at: datetime | None = None) -> str:
    """Publish one payload to one subscription only, whatever its event and state: the "send test
    event" of the API and the admin. It takes the same outbox and queue path as a real event, so
    it is delivered, retried and logged like any delivery. Returns the delivery id."""
    return _write_outbox(subscription.project_id, [subscription], payload, occurred_at or timezone.now())[0]


def _write_outbox(
    project_id: str, subscriptions: list[Subscription], payload: dict, occurred_at: datetime
) -> list[str]:
    """The payload once and one delivery per subscription, enqueued only after commit."""
    if not subscriptions:
        return []
    stored = EventPayload.objects.create(project_id=project_id, payload=payload, occurred_at=occurred_at)
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            project_id=project_id,
            subscription_id=sub.pk,
            event=sub.event,
            event_payload=stored,
            next_attempt_at=occurred_at,
            created_at=occurred_at,
        )
        for sub in subscriptions
    )
    delivery_ids = [d.pk for d in deliveries]

    def enqueue_after_commit() -> None:
        from .tasks import enqueue_deliveries

        enqueue_deliveries(delivery_ids)

    transaction.on_commit(enqueue_after_commit, robust=True)
    return delivery_ids

"""Bulk replay: start a new round of attempts on every failed delivery since a moment, for one
subscription or one project; and send the deliveries a subscription missed while it was disabled
(`skipped`). One function each for the API (`recover`, `replay_missing`), the admin actions and
the commands (`redeliver --failed`, `replay_missing`), so they select and send the same way."""

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from . import events, queue, tasks
from .models import Delivery


def failed_since(since: datetime, subscription=None, project=None) -> QuerySet:
    """Failed deliveries created at or after `since`, oldest first (the order they happened).
    operator.select calls are left out: their answer only mattered when the conversation was routed."""
    deliveries = Delivery.objects.filter(status=Delivery.Status.FAILED, created_at__gte=since).exclude(
        event=events.OPERATOR_SELECT
    )
    if subscription is not None:
        deliveries = deliveries.filter(subscription=subscription)
    if project is not None:
        deliveries = deliveries.filter(project=project)
    return deliveries.order_by("created_at", "id").only("id", "attempt_count")


def replay(deliveries: Iterable[Delivery], progress: Callable[[Delivery], None] | None = None) -> list[str]:
    """Redeliver each (same id, attempt numbers continue); returns the ids."""
    replayed = []
    for delivery in deliveries:
        tasks.redeliver(delivery)
        replayed.append(delivery.pk)
        if progress:
            progress(delivery)
    return replayed


def skipped_between(subscription, since: datetime, until: datetime | None = None) -> QuerySet:
    """The subscription's `skipped` deliveries created in [since, until], oldest first."""
    deliveries = Delivery.objects.filter(
        subscription=subscription, status=Delivery.Status.SKIPPED, created_at__gte=since
    )
    if until is not None:
        deliveries = deliveries.filter(created_at__lte=until)
    return deliveries.order_by("created_at", "sequence", "id")


def replay_missing(subscription, since: datetime, until: datetime | None = None) -> list[str]:
    """Queue the subscription's skipped deliveries of the window, in the order they were made
    (same delivery ids and sequence numbers as when they were skipped). Returns their ids."""
    ids = list(skipped_between(subscription, since, until).values_list("id", flat=True))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # A delivery queued twice (two replays at once) is still sent once: the worker's claim decides.
        Delivery.objects.filter(pk__in=chunk, status=Delivery.Status.SKIPPED).update(
            status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), locked_until=None, last_error=""
        )
    queue.enqueue_deliveries(ids)
    return ids

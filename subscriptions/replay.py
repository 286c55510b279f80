"""Bulk replay: start a new round of attempts on every failed delivery since a moment, for one
subscription or one project. One function for the API (`recover`), the admin action and
`manage.py redeliver --failed`, so they select and redeliver the same way."""

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db.models import QuerySet

from . import events, tasks
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

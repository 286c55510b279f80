"""Housekeeping of the delivery log."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core import sql

from .models import Attempt, Delivery, EventPayload

BATCH = 5000


def purge_attempts(older_than: datetime, batch: int = BATCH, progress: Callable[[int], None] | None = None) -> int:
    """Delete attempt rows older than `older_than` in small batches, so that each transaction is short
    and deliveries keep writing while a large log is purged. Finished deliveries left without attempts,
    and payloads left without deliveries, go with them."""
    removed = 0
    while True:
        rows = list(Attempt.objects.filter(created_at__lt=older_than).values_list("pk", "delivery_id")[:batch])
        if not rows:
            break
        removed += Attempt.objects.filter(pk__in=[pk for pk, _ in rows]).delete()[0]
        # Each batch takes the deliveries it leaves bare with it: looking them up among the batch's
        # own ids is an index probe each, where one anti-join over the whole tables per batch made
        # a 1,000,000-row purge quadratic (bench/logs_scale.py).
        _purge_finished({delivery_id for _, delivery_id in rows}, older_than, batch)
        if progress:
            progress(len(rows))
    _purge_finished(None, older_than, batch)  # finished deliveries that never had an attempt
    return removed


PURGE_SKIPPED_TASK = "subscriptions.maintenance.purge_expired_skipped"


def purge_expired_skipped(batch: int = BATCH) -> int:
    """Delete the deliveries skipped while their subscription was disabled once they are older than
    HOOKS_EVENT_RETENTION_DAYS (too old to replay), and the payloads they leave without deliveries.
    Scheduled daily; `purge_logs` takes them with the logs too."""
    cutoff = timezone.now() - timedelta(days=settings.HOOKS_EVENT_RETENTION_DAYS)
    expired = Delivery.objects.filter(status=Delivery.Status.SKIPPED, created_at__lt=cutoff)
    removed, payloads = 0, set()
    while rows := list(expired.values_list("pk", "event_payload_id")[:batch]):
        _delete_unreferenced(Delivery, [pk for pk, _ in rows])
        payloads.update(payload_id for _, payload_id in rows)
        removed += len(rows)
    orphans = EventPayload.objects.filter(pk__in=payloads, names__isnull=True).exclude(
        Exists(Delivery.objects.filter(event_payload=OuterRef("pk")))
    )
    while ids := list(orphans.values_list("pk", flat=True)[:batch]):
        _delete_unreferenced(EventPayload, ids)
    return removed


def _purge_finished(candidates: set[str] | None, older_than: datetime, batch: int) -> None:
    """Delete finished deliveries older than `older_than` without attempts (among `candidates`, or
    all), then the payloads they leave without deliveries."""
    finished = (
        Delivery.objects.filter(created_at__lt=older_than)
        .exclude(status=Delivery.Status.PENDING)
        .exclude(Exists(Attempt.objects.filter(delivery=OuterRef("pk"))))
    )
    if candidates is not None:
        finished = finished.filter(pk__in=candidates)
    payloads: set[str] = set()
    while rows := list(finished.values_list("pk", "event_payload_id")[:batch]):
        _delete_unreferenced(Delivery, [pk for pk, _ in rows])
        payloads.update(payload_id for _, payload_id in rows)
    # Routed events only: one still waiting for a worker has no deliveries yet.
    orphans = EventPayload.objects.filter(occurred_at__lt=older_than, names__isnull=True).exclude(
        Exists(Delivery.objects.filter(event_payload=OuterRef("pk")))
    )
    if candidates is not None:
        orphans = orphans.filter(pk__in=payloads) if payloads else orphans.none()
    while ids := list(orphans.values_list("pk", flat=True)[:batch]):
        _delete_unreferenced(EventPayload, ids)


def _delete_unreferenced(model, ids: list[str]) -> None:
    """One DELETE per batch. The rows were chosen because nothing refers to them any more, so
    Django's cascade collector, which loads every row first, is not needed: with it, deleting
    500,000 finished deliveries took most of a 1,000,000-row purge (bench/logs_scale.py)."""
    sql.delete_ids(model, ids)

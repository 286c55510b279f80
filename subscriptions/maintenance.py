"""Housekeeping of the delivery log."""

from collections.abc import Callable
from datetime import datetime

from django.db import connection

from .models import Attempt, Delivery, EventPayload

BATCH = 5000


def purge_attempts(older_than: datetime, batch: int = BATCH, progress: Callable[[int], None] | None = None) -> int:
    """Delete attempt rows older than `older_than` in small batches, so that each transaction is short
    and deliveries keep writing while a large log is purged. Finished deliveries left without attempts,
    and payloads left without deliveries, go with them."""
    removed = 0
    while True:
        ids = list(Attempt.objects.filter(created_at__lt=older_than).values_list("pk", flat=True)[:batch])
        if not ids:
            break
        removed += Attempt.objects.filter(pk__in=ids).delete()[0]
        if progress:
            progress(len(ids))
    finished = Delivery.objects.filter(created_at__lt=older_than, attempts__isnull=True).exclude(
        status=Delivery.Status.PENDING
    )
    while ids := list(finished.values_list("pk", flat=True)[:batch]):
        _delete_unreferenced(Delivery, ids)
    while ids := list(
        EventPayload.objects.filter(occurred_at__lt=older_than, deliveries__isnull=True).values_list("pk", flat=True)[
            :batch
        ]
    ):
        _delete_unreferenced(EventPayload, ids)
    return removed


def _delete_unreferenced(model, ids: list[str]) -> None:
    """One DELETE per batch. The rows were chosen because nothing refers to them any more, so
    Django's cascade collector, which loads every row first, is not needed: with it, deleting
    500,000 finished deliveries took most of a 1,000,000-row purge (bench/logs_scale.py)."""
    table, pk = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(ids))})", ids)

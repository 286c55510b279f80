"""Housekeeping of the delivery log."""

from collections.abc import Callable
from datetime import datetime

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
        Delivery.objects.filter(pk__in=ids).delete()
    while ids := list(
        EventPayload.objects.filter(occurred_at__lt=older_than, deliveries__isnull=True).values_list("pk", flat=True)[
            :batch
        ]
    ):
        EventPayload.objects.filter(pk__in=ids).delete()
    return removed

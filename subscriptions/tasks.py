"""django-q2 tasks. A task receives only a delivery id; the row in the database is the truth, and a
task claims it with one conditional UPDATE so that two workers never send the same attempt."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from .delivery import attempt_delivery, stop_if_disabled
from .models import Delivery

logger = logging.getLogger(__name__)

DELIVER = "subscriptions.tasks.deliver"
# A pending delivery this late has lost its task (a broker flush, an enqueue that failed after
# commit, a worker killed after taking it); the sweep hands it to the queue again.
SWEEP_GRACE_S = settings.HOOKS_SWEEP_GRACE_S


def enqueue_deliveries(delivery_ids: list[str]) -> None:
    for delivery_id in delivery_ids:
        try:
            async_task(DELIVER, delivery_id, task_name=f"deliver-{delivery_id}", group="deliveries")
        except Exception:  # the broker is down: the row stays pending and the sweep picks it up
            logger.exception("could not enqueue delivery %s; retry_pending will", delivery_id)


def claim(delivery_id: str) -> Delivery | None:
    """Own the delivery for one lease if it is pending, due, and not owned by a live worker."""
    now = timezone.now()
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=settings.HOOKS_CLAIM_LEASE_S))
    )
    if not claimed:
        return None
    return Delivery.objects.select_related("subscription", "event_payload").get(pk=delivery_id)


def deliver(delivery_id: str) -> str:
    delivery = claim(delivery_id)
    if delivery is None:
        return "not due or taken"
    if stop_if_disabled(delivery):
        return delivery.status
    status = attempt_delivery(delivery)
    if status == Delivery.Status.PENDING:
        schedule_retry(delivery)
    return status


def schedule_retry(delivery: Delivery) -> None:
    """The django-q2 scheduler runs the next attempt at its time (checked about every 30 s)."""
    schedule(
        DELIVER,
        delivery.pk,
        name=f"retry-{delivery.pk}-{delivery.attempt_count + 1}",
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=delivery.next_attempt_at,
    )


def redeliver(delivery: Delivery) -> None:
    """Start a new round of attempts on the same delivery (same id; attempt numbers continue)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=timezone.now(),
        locked_until=None,
        round_started_after=delivery.attempt_count,
        last_error="",
    )
    enqueue_deliveries([delivery.pk])


def retry_pending(grace_s: float = SWEEP_GRACE_S, progress: Callable[[int, int], None] | None = None) -> int:
    """Enqueue every pending delivery that is overdue and unclaimed. Scheduled every minute, and
    the `retry_pending` command; a duplicate enqueue is harmless (the claim decides)."""
    now = timezone.now()
    overdue = (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=grace_s))
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .values_list("pk", flat=True)
    )
    ids = list(overdue)
    for start in range(0, len(ids), 500):
        enqueue_deliveries(ids[start : start + 500])
        if progress:  # the command's progress bar: (enqueued in this step, total)
            progress(len(ids[start : start + 500]), len(ids))
    return len(ids)

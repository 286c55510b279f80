"""django-q2 tasks. A task receives only a delivery id; the row in the database is the truth, and a
task claims it with one conditional UPDATE so that two workers never send the same attempt."""

import logging
import os
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from . import isolation
from .delivery import attempt_delivery, stop_if_disabled
from .models import Delivery

logger = logging.getLogger(__name__)

DELIVER = "subscriptions.tasks.deliver"
# A pending delivery this late has lost its task (a broker flush, an enqueue that failed after
# commit, a worker killed after taking it); the sweep hands it to the queue again.
SWEEP_GRACE_S = settings.HOOKS_SWEEP_GRACE_S


_broker: Broker | None = None
_broker_key: tuple[int, str] | None = None


def queue_broker() -> Broker:
    """The process's broker. Without it django-q2's `async_task` builds a new broker, and so opens
    a new Redis connection, for every task enqueued (measured in bench/throughput.py). Kept per
    process and per queue name, so a fork or a change of queue never reuses the wrong one."""
    global _broker, _broker_key
    key = (os.getpid(), Conf.PREFIX)
    if _broker is None or _broker_key != key:
        _broker, _broker_key = get_broker(Conf.PREFIX), key
    return _broker


class _Collector:
    """Stands in for the broker inside `async_task`, which packs and signs each task as usual and
    hands it to `enqueue`; the packs are then pushed together (see `enqueue_deliveries`)."""

    def __init__(self, broker: Broker):
        self.list_key = broker.list_key
        self.packs: list[str] = []

    def enqueue(self, pack: str) -> None:
        self.packs.append(pack)


def _push(broker: Broker, packs: list[str]) -> None:
    """One round trip per 500 tasks on Redis (what its broker's `enqueue` does: RPUSH to the
    queue's list); other brokers one by one."""
    if isinstance(broker, RedisBroker):
        for start in range(0, len(packs), 500):
            broker.connection.rpush(broker.list_key, *packs[start : start + 500])
    else:
        for pack in packs:
            broker.enqueue(pack)


def enqueue_deliveries(delivery_ids: list[str]) -> None:
    # save=False: django-q2 would otherwise store every successful run in its task table and, with
    # save_limit, re-read up to `save_limit` stored results per task to prune them; the Attempt row
    # is the log of a delivery already. Failed runs (exceptions) are still stored.
    broker = queue_broker()
    collector = _Collector(broker)
    for delivery_id in delivery_ids:
        async_task(
            DELIVER, delivery_id, task_name=f"deliver-{delivery_id}", group="deliveries", save=False, broker=collector
        )
    try:
        _push(broker, collector.packs)
    except Exception:  # the broker is down: the rows stay pending and the sweep picks them up
        logger.exception("could not enqueue %d deliveries; retry_pending will", len(collector.packs))


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
    if isolation.park_if_busy(delivery_id):  # one in flight at a time for a slow target
        return "parked"
    delivery = claim(delivery_id)
    if delivery is None:
        return "not due or taken"
    if stop_if_disabled(delivery):
        return delivery.status
    if isolation.should_park(delivery):  # the same, for two claimed at once
        isolation.park(delivery)
        return "parked"
    started = time.monotonic()
    status = attempt_delivery(delivery)
    isolation.after_attempt(delivery, time.monotonic() - started)
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
        q_options={"save": False},  # as in enqueue_deliveries: the attempt row is the log
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

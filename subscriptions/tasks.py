"""django-q2 tasks. A task receives only delivery ids; the rows in the database are the truth, and
a task claims them with one conditional UPDATE so that two workers never send the same attempt.

The deliveries committed together are queued in tasks of up to HOOKS_BATCH_SIZE ids. A worker
claims a task's deliveries at once, sends them side by side and logs them in a few statements, so
the queue's own cost per task (pickling, signing, the pusher and monitor hops: most of the CPU of a
delivery when each one was a task, bench/throughput.py) is paid once per batch."""

import logging
import os
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from . import isolation
from .delivery import disable_failing, prepare, record_outcomes, send_all, stop_if_disabled
from .models import Delivery

logger = logging.getLogger(__name__)

DELIVER = "subscriptions.tasks.deliver"
DELIVER_BATCH = "subscriptions.tasks.deliver_batch"
NOT_DUE = "not due or taken"
PARKED = "parked"
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
    """Queue the deliveries in tasks of up to HOOKS_BATCH_SIZE ids, pushed together."""
    # save=False: django-q2 would otherwise store every successful run in its task table and, with
    # save_limit, re-read up to `save_limit` stored results per task to prune them; the Attempt row
    # is the log of a delivery already. Failed runs (exceptions) are still stored.
    broker = queue_broker()
    collector = _Collector(broker)
    size = settings.HOOKS_BATCH_SIZE
    for start in range(0, len(delivery_ids), size):
        batch = list(delivery_ids[start : start + size])
        async_task(
            DELIVER_BATCH,
            batch,
            task_name=f"deliver-{batch[0]}" + (f"+{len(batch) - 1}" if len(batch) > 1 else ""),
            group="deliveries",
            save=False,
            broker=collector,
        )
    try:
        _push(broker, collector.packs)
    except Exception:  # the broker is down: the rows stay pending and the sweep picks them up
        logger.exception("could not enqueue %d delivery tasks; retry_pending will", len(collector.packs))


def claim_many(delivery_ids: list[str]) -> list[Delivery]:
    """Own, for one lease, those of the deliveries that are pending, due, and not owned by a live
    worker; returns them with their subscriptions and payloads.

    One UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35): the rows it changed are exactly the
    ones this worker owns, even when another worker claims some of the same ids at the same moment.
    The ORM's update() returns only a count, hence the SQL."""
    ids = list(dict.fromkeys(delivery_ids))
    if not ids:
        return []
    now = timezone.now()
    lease = now + timedelta(seconds=settings.HOOKS_CLAIM_LEASE_S)
    quote, adapt = connection.ops.quote_name, connection.ops.adapt_datetimefield_value
    meta = Delivery._meta
    columns = ("id", "status", "next_attempt_at", "locked_until")
    pk, status, due, locked = (quote(meta.get_field(name).column) for name in columns)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {locked} = %s "
        f"WHERE {pk} IN ({', '.join(['%s'] * len(ids))}) AND {status} = %s AND {due} <= %s "
        f"AND ({locked} IS NULL OR {locked} < %s) RETURNING {pk}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(lease), *ids, Delivery.Status.PENDING, adapt(now), adapt(now)])
        claimed = [row[0] for row in cursor.fetchall()]
    if not claimed:
        return []
    rows = Delivery.objects.select_related("subscription", "event_payload").in_bulk(claimed)
    return [rows[pk] for pk in ids if pk in rows]


def claim(delivery_id: str) -> Delivery | None:
    """`claim_many` for one delivery."""
    claimed = claim_many([delivery_id])
    return claimed[0] if claimed else None


def deliver_batch(delivery_ids: list[str]) -> dict[str, str]:
    """Claim, send side by side, log. Returns each id's outcome: its new status, "parked", or
    "not due or taken" (sent already, not due yet, or another worker has it)."""
    outcome = dict.fromkeys(delivery_ids, NOT_DUE)
    live = []
    for delivery in claim_many(delivery_ids):
        if stop_if_disabled(delivery):
            outcome[delivery.pk] = delivery.status
        else:
            live.append(delivery)
    to_send, to_park = isolation.split_claimed(live)  # one in flight at a time for a slow target
    isolation.park(to_park)
    outcome.update(dict.fromkeys((d.pk for d in to_park), PARKED))
    if not to_send:
        return outcome
    for sent in send_all([prepare(delivery) for delivery in to_send]):
        attempts = record_outcomes(sent)
        disable_failing(sent, attempts)
        for outgoing, attempt in zip(sent, attempts, strict=True):
            delivery = outgoing.delivery
            outcome[delivery.pk] = delivery.status
            if delivery.status == Delivery.Status.PENDING:
                schedule_retry(delivery)
            isolation.after_attempt(delivery, attempt.duration_ms / 1000)
    return outcome


def deliver(delivery_id: str) -> str:
    """One delivery (a scheduled retry, or a task queued before batches existed)."""
    return deliver_batch([delivery_id])[delivery_id]


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

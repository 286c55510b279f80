"""Handing deliveries to django-q2's queue. A task carries only delivery ids (the rows in the
database are the truth, and the worker claims them before sending); the ids committed together
travel in tasks of up to HOOKS_BATCH_SIZE, pushed to the broker together, so that the queue's own
cost per task (pickling, signing, the pusher and monitor hops) is paid once per batch. The task
itself is named, never imported: it is subscriptions/tasks.py's `deliver_batch`."""

import logging

from django.conf import settings
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.tasks import async_task

from core.per_process import PerProcess

logger = logging.getLogger(__name__)

DELIVER = "subscriptions.tasks.deliver"
DELIVER_BATCH = "subscriptions.tasks.deliver_batch"


# The process's broker. Without it django-q2's `async_task` builds a new broker, and so opens a new
# Redis connection, for every task enqueued (measured in bench/throughput.py). Kept per process and
# per queue name, so a fork or a change of queue never reuses the wrong one.
_broker = PerProcess(lambda: get_broker(Conf.PREFIX), key=lambda: Conf.PREFIX)


def queue_broker() -> Broker:
    return _broker.get()


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

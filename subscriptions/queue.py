"""Waking workers to send what the outbox holds.

A task carries no ids: the outbox (events waiting to be routed, pending deliveries due at
`next_attempt_at`) is the truth, and a woken worker routes the oldest events and claims the
longest-waiting due deliveries itself (subscriptions/tasks.py, `deliver_due`), a batch at a time,
for as long as there are more. So a task's cost (pickling,
signing, the broker, django-q2's pusher and monitor hops) is paid per batch of deliveries, not per
delivery, whatever the size of the transactions that published them.

Wake-ups are coalesced: with the Redis broker a flag (`SET NX`) marks that a wake-up is queued or
a worker is draining, and commits meanwhile queue none, so a burst of API calls queues a few
tasks, not one each; and under a steady stream of one-event transactions one worker drains them
as they come, with no task per commit at all. A draining worker holds the flag (`hold_wake_ups`);
when a claim finds nothing it waits a moment for more (commits meanwhile nudge it instead of
queueing: `wait_for_nudge`, so a light stream is sent without a task's hops per event), then lets
go of the flag (`release_wake_ups`) and claims once more: a delivery committed while the flag was
held is seen by that last claim, and one committed after it queues a new wake-up, so none is left
waiting. A nudge also stands for its process's commits of the next NUDGE_SPAN_S, which tell the
broker nothing: the worker lets go no sooner than that after taking its last nudge, and not while
one waits, so its last claim sees them (a stream of one-event commits pays a Redis round trip per
NUDGE_SPAN_S and process, not per commit). A draining worker whose claims bring a few deliveries
at a time pauses a moment before the next (`tasks.GATHER_S`), so a stream is sent in batches.

A worker that claims a full batch calls a helper past the flag (`call_for_help`), so a backlog is
drained by every worker; a helper neither holds nor lets go of the flag, and leaves as soon as a
claim brings less than half a batch, so a stream that one worker keeps up with is drained by one
worker in batches, not split among every worker in claims of one delivery each.
Retries, and deliveries a rate limit holds back, are found by `next_attempt_at` too: the worker
process that set the time wakes a worker then (an in-process alarm), and for a retry one scheduled
wake-up per HOOKS_RETRY_WAKE_S is the durable fallback (not one django-q2 Schedule row per
retry)."""

import heapq
import logging
import math
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from core.per_process import PerProcess

logger = logging.getLogger(__name__)

DELIVER_DUE = "subscriptions.tasks.deliver_due"
# Longer than a drain normally waits in the queue; if a wake-up is lost (a broker flushed), the
# next commit after this long queues another (and the sweep wakes a worker every minute).
WAKE_FLAG_TTL_MS = 10_000


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


def _flag_key(broker: RedisBroker) -> str:
    return f"{broker.list_key}:wake-queued"


def _nudge_key(broker: RedisBroker) -> str:
    return f"{broker.list_key}:nudge"


# The flag if it is free (then a wake-up is to be queued: 1); otherwise a nudge for a worker waiting
# for more (`wait_for_nudge`): at most one is kept, and it runs out with the flag (0). One round
# trip, as the SET NX alone was.
_FLAG_OR_NUDGE = """
if redis.call('SET', KEYS[1], 1, 'NX', 'PX', ARGV[1]) then return 1 end
redis.call('RPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], -1, -1)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 0
"""


def nudging() -> bool:
    """Whether commits nudge a draining worker: with the Redis broker, tasks not run inline."""
    return isinstance(queue_broker(), RedisBroker) and not Conf.SYNC


# How long a nudge stands for the later commits of the process that sent it (see the module's
# docstring): short beside a drain's LINGER_S, long beside the gap between one process's commits.
NUDGE_SPAN_S = 0.02
# When this process last sent a nudge that reached a held flag (time.monotonic(), taken before the
# round trip, so the span never outlasts the worker's wait).
_nudged_at = -math.inf


def wake(workers: int = 1) -> None:
    """Have `workers` workers drain the outbox: coalesced with a wake-up queued and not yet taken,
    or a worker draining (which is nudged, should it be waiting for more); a count above one (a
    known backlog) always queues."""
    global _nudged_at
    broker = queue_broker()
    if workers == 1 and nudging():
        asked_at = time.monotonic()
        if asked_at - _nudged_at < NUDGE_SPAN_S:
            return  # this process's last nudge covers this commit: its worker claims after it
        try:
            script = broker.connection.register_script(_FLAG_OR_NUDGE)
            if not script(keys=[_flag_key(broker), _nudge_key(broker)], args=[WAKE_FLAG_TTL_MS]):
                _nudged_at = asked_at
                return  # a worker will claim after this commit: the one queued, or the one draining
        except Exception:  # the broker is down: the rows stay pending and the sweep picks them up
            logger.exception("could not reach the broker to wake a worker; retry_pending will")
            return
    _queue(broker, workers)


def wait_for_nudge(timeout_s: float) -> bool:
    """For a draining worker holding the flag whose claim found nothing: wait up to `timeout_s` for
    a commit's nudge. True if one came (it may be from a commit made while the worker was sending:
    a claim finds out). Without the Redis broker there is no nudge, and it returns False at once."""
    if not nudging() or timeout_s <= 0:
        return False
    broker = queue_broker()
    try:
        return broker.connection.blpop([_nudge_key(broker)], timeout=timeout_s) is not None
    except Exception:  # as if none came: the worker lets go of the flag and stops
        logger.exception("could not wait for a nudge")
        return False


def call_for_help() -> None:
    """A draining worker has claimed a full batch: one more worker joins in, past the flag, as a
    helper (`deliver_due(helping=True)`)."""
    _queue(queue_broker(), 1, helping=True)


def _queue(broker: Broker, workers: int, **kwargs) -> None:
    collector = _Collector(broker)
    for _ in range(workers):
        # save=False: django-q2 would otherwise store every successful run in its task table and,
        # with save_limit, re-read up to `save_limit` stored results per task to prune them; the
        # Attempt rows are the log already. Failed runs (exceptions) are still stored.
        async_task(DELIVER_DUE, task_name="deliver-due", group="deliveries", save=False, broker=collector, **kwargs)
    try:
        _push(broker, collector.packs)
    except Exception:  # the broker is down: the rows stay pending and the sweep picks them up
        logger.exception("could not queue %d wake-ups; retry_pending will", len(collector.packs))


def hold_wake_ups() -> None:
    """A worker drains and will claim again: commits meanwhile need queue no wake-up. Renewed by
    the worker as it goes; should it die, the flag runs out after WAKE_FLAG_TTL_MS (and the sweep
    wakes a worker for what waited)."""
    if nudging():
        broker = queue_broker()
        try:
            broker.connection.set(_flag_key(broker), 1, px=WAKE_FLAG_TTL_MS)
        except Exception:  # commits queue wake-ups as if there were no flag
            logger.exception("could not hold the wake-up flag")


# Lets go of the flag unless a nudge waits (1), in one step: a nudge pushed just before, which the
# worker's wait missed, keeps it draining (0).
_RELEASE_UNLESS_NUDGED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


def release_wake_ups() -> bool:
    """A worker is about to make its last claim: the next commit queues a new wake-up. False if
    a nudge waits: the worker keeps the flag and takes it (a commit it stands for may be later than
    the last claim would be)."""
    if not nudging():
        return True
    broker = queue_broker()
    try:
        script = broker.connection.register_script(_RELEASE_UNLESS_NUDGED)
        return bool(script(keys=[_flag_key(broker), _nudge_key(broker)]))
    except Exception:  # as if let go: the flag runs out after WAKE_FLAG_TTL_MS
        logger.exception("could not let go of the wake-up flag")
        return True


def pass_on() -> None:
    """A worker that has drained for long ends its task: another worker goes on, queued past the
    flag, which the first keeps for it, so the nudges meanwhile wait for the next one."""
    hold_wake_ups()
    _queue(queue_broker(), 1)


def wake_at(moment: datetime) -> None:
    """Wake a worker when `moment` comes (a retry's time): this process's alarm rings then
    (`wake_later`), and, should the process be gone by then, one django-q2 schedule per
    HOOKS_RETRY_WAKE_S-wide slot, at the slot's end, serves every retry due in the slot (the
    scheduler looks every ~30 s: API.md's "a retry may fire up to ~30 s late")."""
    wake_later(moment)
    width = settings.HOOKS_RETRY_WAKE_S
    slot = math.ceil(moment.timestamp() / width)
    name = f"deliver-due-{slot}"
    if Schedule.objects.filter(name=name).exists():
        return
    schedule(
        DELIVER_DUE,
        name=name,
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=datetime.fromtimestamp(slot * width, tz=UTC),
        q_options={"save": False},
    )


class _Alarm:
    """Wake-ups this process has promised for later moments (deliveries a rate limit holds back),
    rung by one timer thread at the earliest. It dies with the process; the `retry_pending` sweep
    then wakes a worker for what is overdue. With tasks run inline (Q_SYNC: tests) nothing rings:
    an inline task on a timer thread would run outside the caller's database transaction."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.moments: list[float] = []
        self.timer: threading.Timer | None = None

    def set(self, moment: float) -> None:
        with self.lock:
            if any(abs(m - moment) < ALARM_RESOLUTION_S for m in self.moments):
                return
            heapq.heappush(self.moments, moment)
            if self.moments[0] == moment:
                self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = threading.Timer(max(0.0, self.moments[0] - time.time()), self._ring)
        self.timer.daemon = True
        self.timer.start()

    def _ring(self) -> None:
        with self.lock:
            now = time.time()
            while self.moments and self.moments[0] <= now + ALARM_RESOLUTION_S:
                heapq.heappop(self.moments)
            self.timer = None
            if self.moments:
                self._arm()
        try:
            wake()
        finally:
            connection.close()  # this thread's own (the ORM broker enqueues through the database)


# Moments closer than this share one wake-up.
ALARM_RESOLUTION_S = 0.005
_alarm = PerProcess(_Alarm)


def wake_later(moment: datetime) -> None:
    """Wake a worker at `moment` (within a few milliseconds), from this process."""
    if not Conf.SYNC:
        _alarm.get().set(moment.timestamp())


def enqueue_deliveries(delivery_ids: list[str]) -> None:
    """Hand committed deliveries to the workers: a wake-up, coalesced (the ids are in the outbox)."""
    if delivery_ids:
        wake()

"""django-q2's entry points for deliveries: draining the outbox when woken, a batch of given ids,
and the sweep.

A woken worker routes a batch of published events into deliveries leased to itself
(subscriptions/routing.py) and claims due deliveries to fill the batch (subscriptions/transitions.py,
which also keeps ordered subscriptions to one delivery at a time), sends them side by side
(sender.py) and logs them in a few statements (outcomes.py), and goes on while there are more;
rate limits hold back what would go too early (pacing.py), slow targets are kept from holding
every worker (isolation.py), failing ones are disabled (disabling.py)."""

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from django_q.conf import Conf

from core.per_process import PerProcess

from . import isolation, pacing, queue, routing, transitions
from .disabling import disable_failing, stop_if_disabled
from .models import Delivery
from .outcomes import record_outcomes
from .sender import prepare, send_all

logger = logging.getLogger(__name__)

NOT_DUE = "not due or taken"
PARKED = "parked"
DEFERRED = "deferred"
SENDING = "sending"
# A pending delivery this late has lost its task (a broker flush, an enqueue that failed after
# commit, a worker killed after taking it); the sweep hands it to the queue again.
SWEEP_GRACE_S = settings.HOOKS_SWEEP_GRACE_S
# A woken worker stops claiming new batches after this long (the batch in hand may add up to
# HOOKS_TIMEOUT_S), well inside django-q2's task timeout of HOOKS_TIMEOUT_S + 30 s, and wakes
# another to go on.
DRAIN_S = 10.0


def claim_many(delivery_ids: list[str]) -> list[Delivery]:
    """The deliveries of these ids that this worker now owns (see transitions.claim)."""
    return transitions.claim(delivery_ids)


def claim(delivery_id: str) -> Delivery | None:
    claimed = transitions.claim([delivery_id])
    return claimed[0] if claimed else None


def deliver_due(helping: bool = False) -> int:
    """Drain the outbox: route the oldest published events, taking their new deliveries for
    itself (subscriptions/routing.py), claim the longest-waiting due deliveries to fill the batch,
    and send them, a batch at a time, for as long as there are any (or DRAIN_S has passed:
    another worker is queued to go on, and the flag is kept for it). While it drains, commits
    queue no wake-up (queue.hold_wake_ups): under a steady stream of one-event transactions one task serves them
    all, instead of one task per commit; and when a claim finds nothing, it claims again when the
    last nudge's span ends (commits in it send none), then waits up to LINGER_S for a commit's
    nudge before it lets go, so a light stream (an event every few hundred milliseconds) is served
    the same way, each event sent without the queue's hops. Claims of a few deliveries are paced
    GATHER_S apart, so a stream is sent in batches. A full claim calls a helper (at most every
    HELP_EVERY_S per process); a helper (`helping`) leaves the flag alone, does not wait, and
    stops at its first claim of less than half a batch: the backlog it came for is gone, and what
    remains is the draining worker's (claims of one delivery each by every worker cost more CPU
    per delivery than one worker's batches). Returns how many were claimed."""
    size, started, claimed = settings.HOOKS_BATCH_SIZE, time.monotonic(), 0
    holding = not helping
    if holding:
        queue.hold_wake_ups()
    # heard_at: when the flag was taken, or the last nudge came; a nudge stands for its process's
    # commits of the next NUDGE_SPAN_S, so the flag is not let go sooner than that after it.
    held_at = heard_at = started
    idle_since = None
    while True:
        batch = take_batch(size)
        now = time.monotonic()
        if holding and now - held_at > queue.WAKE_FLAG_TTL_MS / 2000:
            queue.hold_wake_ups()
            held_at = now
        if not batch:
            if not holding:
                return claimed
            idle_since = idle_since or now
            # Commits in the last nudge's span nudge no more: when it ends, claim what they made.
            span_left = queue.NUDGE_SPAN_S - (now - heard_at) if queue.nudging() else 0
            wait = span_left if span_left > 0 else min(LINGER_S - (now - idle_since), DRAIN_S - (now - started))
            if wait > 0 and queue.wait_for_nudge(wait):
                heard_at = time.monotonic()
                continue  # a commit came (or came while sending): claim it
            if span_left > 0:
                continue
            if not queue.release_wake_ups():
                heard_at = time.monotonic()  # a nudge came after all: claim, and wait its span again
                continue
            # A commit made while the flag was held queued no wake-up: one more claim sees it.
            holding = False
            continue
        idle_since = None
        if not helping and not holding:
            queue.hold_wake_ups()  # a commit made after the release: drain on
            held_at = heard_at = now
            holding = True
        if len(batch) == size:
            _call_for_help(now)
        claimed += len(batch)
        send_claimed(batch, detach_slow=not Conf.SYNC)
        if helping and len(batch) < size / 2:
            return claimed
        if time.monotonic() - started > DRAIN_S:
            if not helping:
                queue.pass_on()  # there may be more: the next worker goes on, with the flag
            return claimed
        if len(batch) < size * GATHER_BELOW:
            # The drain keeps up with a stream of commits and claims a few at a time: a moment's
            # pause lets the next claim take several, each claim and its log paid once for them.
            time.sleep(GATHER_S)


def take_batch(size: int) -> list[Delivery]:
    """A draining worker's next batch: the deliveries of the oldest published events, made and
    leased to it as it routes them, then as many due deliveries (retries, ordered subscriptions',
    those a lost worker held) as the batch has room for: always when routing brought none, and at
    most every CLAIM_EVERY_S while it does."""
    global _claimed_at
    batch = routing.route(size, lease=True)
    now = time.monotonic()
    if len(batch) < size and (not batch or now - _claimed_at >= CLAIM_EVERY_S):
        _claimed_at = now
        batch += transitions.claim_due(size - len(batch))
    return batch


# While routing brings deliveries, a stream of new events pays no claim per batch (a statement
# that mostly finds nothing); a due delivery waits at most this much longer for its claim.
CLAIM_EVERY_S = 0.1
_claimed_at = -math.inf


# How long a draining worker whose claim found nothing waits for a commit before it lets go of the
# flag and ends its task (a django-q2 worker is taken meanwhile).
LINGER_S = 1.0
# A claim of less than this part of a batch is followed by a pause of GATHER_S before the next.
# Measured with one-event transactions from 4 publishers (bench/README.md): 3 claims in 4 brought
# 1 to 3 deliveries; with the pause (and NUDGE_SPAN_S) a claim brings 21 on average.
GATHER_BELOW = 0.16
GATHER_S = 0.005
# A burst claims full batches one after another; one helper per this long is enough for them.
HELP_EVERY_S = 0.1
_helped_at = -math.inf


def _call_for_help(now: float) -> None:
    global _helped_at
    if now - _helped_at >= HELP_EVERY_S:
        _helped_at = now
        queue.call_for_help()


def _lets_next_go(batch: list[Delivery]) -> bool:
    """Whether an ordered subscription's delivery in the batch ended (success or final failure),
    so that its next one may be claimable now."""
    return any(d.in_order and d.status != Delivery.Status.PENDING for d in batch)


def deliver_batch(delivery_ids: list[str]) -> dict[str, str]:
    """Claim these deliveries (those pending, due and free), send, log. Returns each id's outcome:
    its new status, "parked", or "not due or taken" (sent already, not due yet, or another worker
    has it)."""
    outcome = dict.fromkeys(delivery_ids, NOT_DUE)
    claimed = transitions.claim(delivery_ids)
    outcome.update(send_claimed(claimed))
    if _lets_next_go(claimed):
        queue.wake()
    return outcome


def deliver(delivery_id: str) -> str:
    """One delivery, by id."""
    return deliver_batch([delivery_id])[delivery_id]


def send_claimed(claimed: list[Delivery], detach_slow: bool = False) -> dict[str, str]:
    """Send deliveries this worker has claimed, log them and move them on; returns each one's
    new status (or "parked", or "deferred": held back by its subscription's rate limit).

    With `detach_slow`, those to targets known to be slow are sent and logged on a thread of
    their own ("sending"), and the drain goes on without waiting for them: otherwise a worker
    whose batch holds the one delivery in flight to a hanging target waits HOOKS_TIMEOUT_S before
    its next claim, and with 2 workers half the capacity goes to waiting (bench/traffic.py, shape
    "slow"). Their claims stay leased meanwhile; if the process dies, the lease runs out and the
    sweep hands them on. Each is renewed when its thread takes it, and one that waited for a free
    thread past its lease, and was claimed by another worker meanwhile, is left to that worker."""
    outcome, live = {}, []
    for delivery in claimed:
        if stop_if_disabled(delivery):
            outcome[delivery.pk] = delivery.status
        else:
            live.append(delivery)
    admitted = pacing.admit(live)
    if len(admitted) < len(live):
        going = {d.pk for d in admitted}
        outcome.update({d.pk: DEFERRED for d in live if d.pk not in going})
    to_send, to_park = isolation.split_claimed(admitted)  # one in flight at a time for a slow target
    isolation.park(to_park)
    outcome.update(dict.fromkeys((d.pk for d in to_park), PARKED))
    if detach_slow and (slow := [d for d in to_send if isolation.known_slow(d.subscription)]):
        to_send = [d for d in to_send if d not in slow]
        _detached.get().submit(_send_detached, slow)
        outcome.update(dict.fromkeys((d.pk for d in slow), SENDING))
    outcome.update(_send_and_record(to_send))
    return outcome


def _send_and_record(to_send: list[Delivery]) -> dict[str, str]:
    outcome: dict[str, str] = {}
    retry_slots: dict[int, Delivery] = {}
    for sent in send_all([prepare(delivery) for delivery in to_send]) if to_send else ():
        attempts = record_outcomes(sent)
        disable_failing(sent, attempts)
        for outgoing, attempt in zip(sent, attempts, strict=True):
            delivery = outgoing.delivery
            outcome[delivery.pk] = delivery.status
            if delivery.status == Delivery.Status.PENDING:
                slot = math.ceil(delivery.next_attempt_at.timestamp() / settings.HOOKS_RETRY_WAKE_S)
                retry_slots.setdefault(slot, delivery)
            isolation.after_attempt(delivery, attempt.duration_ms / 1000)
    for delivery in retry_slots.values():
        queue.wake_at(delivery.next_attempt_at)
    return outcome


def _send_detached(deliveries: list[Delivery]) -> None:
    try:
        # It may have waited for a free thread: only what is still this worker's goes.
        deliveries = transitions.renew(deliveries)
        _send_and_record(deliveries)
        if _lets_next_go(deliveries):
            queue.wake()
    except Exception:  # the claims run out and the sweep hands the deliveries on
        logger.exception("sending %d deliveries to slow targets", len(deliveries))
    finally:
        connection.close()  # this thread's own


# Threads that send and log deliveries to slow targets off the drain loop (send_claimed): at most
# one delivery is in flight per slow target, so a handful of threads serve many.
_detached = PerProcess(lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="hooks-slow"))


def redeliver(delivery: Delivery) -> None:
    """Start a new round of attempts on the same delivery and wake a worker for it."""
    transitions.redeliver(delivery)
    queue.wake()


def retry_pending(grace_s: float = SWEEP_GRACE_S, progress: Callable[[int, int], None] | None = None) -> int:
    """Wake workers for the pending deliveries that are overdue and unclaimed, and the events left
    unrouted (their wake-up was lost: a broker flushed, a worker killed), one per batch of them up
    to the number of workers.
    Scheduled every minute, and the `retry_pending` command; returns how many are overdue."""
    count = transitions.overdue(grace_s) + routing.overdue(grace_s)
    if count:
        queue.wake(min(math.ceil(count / settings.HOOKS_BATCH_SIZE), settings.Q_CLUSTER["workers"]))
    if progress:  # the command's progress bar: (woken for, total)
        progress(count, count)
    return count

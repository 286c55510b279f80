"""django-q2's entry points for deliveries: a batch of ids to send, one retry, and the sweep.

A worker claims a task's deliveries at once (subscriptions/transitions.py), sends them side by side
(sender.py) and logs them in a few statements (outcomes.py); slow targets are kept from holding
every worker (isolation.py), failing ones are disabled (disabling.py)."""

import logging
from collections.abc import Callable

from django.conf import settings
from django_q.models import Schedule
from django_q.tasks import schedule

from . import isolation, transitions
from .disabling import disable_failing, stop_if_disabled
from .models import Delivery
from .outcomes import record_outcomes
from .queue import DELIVER, enqueue_deliveries
from .sender import prepare, send_all

logger = logging.getLogger(__name__)

NOT_DUE = "not due or taken"
PARKED = "parked"
# A pending delivery this late has lost its task (a broker flush, an enqueue that failed after
# commit, a worker killed after taking it); the sweep hands it to the queue again.
SWEEP_GRACE_S = settings.HOOKS_SWEEP_GRACE_S


def claim_many(delivery_ids: list[str]) -> list[Delivery]:
    """The deliveries of these ids that this worker now owns (see transitions.claim)."""
    return transitions.claim(delivery_ids)


def claim(delivery_id: str) -> Delivery | None:
    claimed = transitions.claim([delivery_id])
    return claimed[0] if claimed else None


def deliver_batch(delivery_ids: list[str]) -> dict[str, str]:
    """Claim, send side by side, log. Returns each id's outcome: its new status, "parked", or
    "not due or taken" (sent already, not due yet, or another worker has it)."""
    outcome = dict.fromkeys(delivery_ids, NOT_DUE)
    live = []
    for delivery in transitions.claim(delivery_ids):
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
    """Start a new round of attempts on the same delivery and queue it."""
    transitions.redeliver(delivery)
    enqueue_deliveries([delivery.pk])


def retry_pending(grace_s: float = SWEEP_GRACE_S, progress: Callable[[int, int], None] | None = None) -> int:
    """Enqueue every pending delivery that is overdue and unclaimed. Scheduled every minute, and
    the `retry_pending` command; a duplicate enqueue is harmless (the claim decides)."""
    ids = transitions.overdue(grace_s)
    for start in range(0, len(ids), 500):
        enqueue_deliveries(ids[start : start + 500])
        if progress:  # the command's progress bar: (enqueued in this step, total)
            progress(len(ids[start : start + 500]), len(ids))
    return len(ids)

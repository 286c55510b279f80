"""A subscription's `rate_limit` (deliveries per second): the excess waits, it does not fail.

The pace is one moment per subscription, `rate_next_at`: when its next delivery may go (the
generic cell rate algorithm). It lives on the subscription row, so every worker process shares it,
and costs one row lock per paced subscription in a claimed batch. Up to one second's worth of
deliveries (at least one) may go together after a quiet spell, the burst the rate's own unit
allows (a spell is quiet when nothing went or was due to go for a second); beyond that each
delivery goes one interval (1 / rate) after the one before, however late its turn is taken.

A claimed delivery that would go too early is given back unattempted (no attempt is made or
counted), due at the moment its turn comes, and this process's alarm wakes a worker at each turn
(`queue.wake_later`; if the process dies first, the `retry_pending` sweep does). Those given back
together are spread one interval apart, so the claims that take them again find about one due at
a time. Deliveries of subscriptions without a rate limit are not looked at here, so a paced
subscription's backlog slows no other."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from . import queue, transitions
from .models import Delivery, Subscription

BURST = timedelta(seconds=1)


def _turns(
    rate: float, next_free: datetime | None, waiting: list[Delivery], now: datetime
) -> tuple[list[Delivery], list[tuple[Delivery, datetime]], datetime]:
    """(those that go now, those that wait with their moments, the subscription's new
    `rate_next_at`) for one subscription's claimed deliveries, in their order."""
    interval = timedelta(seconds=1 / rate)
    # The burst only after a quiet spell: nothing went, or was due to go, in the last second. A
    # backlog's turns taken late (a busy worker, a late wake-up) go one interval apart from now,
    # not as a fresh burst on top of the second that has just gone.
    quiet = next_free is None or next_free <= now - BURST
    tolerance = max(timedelta(0), BURST - interval) if quiet else timedelta(0)
    turn = max(now, next_free or now)
    going: list[Delivery] = []
    while waiting and turn - now <= tolerance:
        going.append(waiting.pop(0))
        turn += interval
    later = [(delivery, turn + index * interval) for index, delivery in enumerate(waiting)]
    return going, later, turn


def admit(claimed: list[Delivery]) -> list[Delivery]:
    """Of a worker's claimed deliveries, those that may be sent now; the others are given back
    due at their turns, with a wake-up set for each turn."""
    paced: dict[str, list[Delivery]] = defaultdict(list)
    admitted: list[Delivery] = []
    for delivery in claimed:
        (paced[delivery.subscription_id] if delivery.subscription.rate_limit else admitted).append(delivery)
    if not paced:
        return claimed
    now = timezone.now()
    waiting: list[tuple[Delivery, datetime]] = []
    with transaction.atomic():
        rows = Subscription.objects.select_for_update(no_key=True).filter(pk__in=list(paced)).order_by("pk")
        found = {pk: (rate, next_free) for pk, rate, next_free in rows.values_list("pk", "rate_limit", "rate_next_at")}
        for subscription_id, group in paced.items():
            rate, next_free = found.get(subscription_id, (None, None))
            if not rate:  # the limit was lifted since the claim (or the subscription is gone)
                admitted += group
                continue
            group.sort(key=lambda d: (d.sequence or 0, d.created_at))
            going, later, next_free = _turns(rate, next_free, group, now)
            admitted += going
            waiting += later
            Subscription.objects.filter(pk=subscription_id).update(rate_next_at=next_free)
    if waiting:
        transitions.defer(waiting)
        for moment in sorted({moment for _, moment in waiting}):
            queue.wake_later(moment)
    return admitted

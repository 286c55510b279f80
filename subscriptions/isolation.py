"""Keeping one slow target from holding every worker.

A delivery holds its worker until its target answers, up to HOOKS_TIMEOUT_S. When one
subscription's target hangs, every worker soon waits on it and every other subscription's
deliveries queue behind (bench/isolation.py: the fast targets' p99 went from 36 ms to 32 s).

So a subscription whose target was recently slow gets one delivery in flight at a time. Another
delivery to it is parked instead of attempted (no attempt is made or counted; `parked_at` says
since when), and when the delivery in flight ends it hands the oldest parked one back to the
queue. Parked deliveries are due again PARK_S later, so if that chain breaks (a worker dies) the
`retry_pending` sweep still picks them up.

Which targets are slow is kept on the subscription row (`slow_until`), so every worker process
knows it as soon as one has seen it, and a target is marked while its first slow attempt is still
in flight, not only when it ends. A slow target that answers quickly again is forgotten at once and
its parked deliveries all go: one answer past SLOW_AFTER_S (a receiver's pause, or this machine
too busy to read the answer in time) must not hold a healthy target to one delivery at a time for
REMEMBER_S (a one-subscription stream of 100-250 events/s, after a 1.5 s pause of its receiver,
fell to 23-30 deliveries a second for minutes, and parked ones waited for the sweep; the pause
phase of bench/isolation.py).

Healthy targets pay nothing for this: the worker reads `slow_until` with the delivery it claimed
anyway, and the database is asked more (a sibling in flight, a sibling parked: both small partial
indexes) only for a subscription known to be slow."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.utils import timezone

from . import queue, transitions
from .models import Delivery, Subscription

# An HTTP exchange longer than this marks its target slow, for REMEMBER_S after it.
SLOW_AFTER_S = 1.0
REMEMBER_S = 60.0
PARK_S = 120.0


def known_slow(subscription: Subscription, now: datetime | None = None) -> bool:
    return subscription.slow_until is not None and subscription.slow_until > (now or timezone.now())


def mark_slow(subscription_ids: Iterable[str]) -> None:
    """Remember these targets as slow, for every worker (a queryset update: `updated_at`, which
    the auto-disable rule reads as the subscription's last change, is left alone)."""
    ids = set(subscription_ids)
    if ids:
        Subscription.objects.filter(pk__in=ids).update(slow_until=timezone.now() + timedelta(seconds=REMEMBER_S))


def split_claimed(claimed: list[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
    """(to send, to park) of one worker's claimed deliveries. Of those to a slow target, the
    oldest goes unless another worker has one in flight to it; the others wait their turn. A
    target whose mark has run out is forgotten here, and its parked deliveries go."""
    now = timezone.now()
    to_send: list[Delivery] = []
    slow: dict[str, list[Delivery]] = defaultdict(list)
    ran_out: dict[str, Subscription] = {}
    for delivery in claimed:
        subscription = delivery.subscription
        if known_slow(subscription, now):
            slow[delivery.subscription_id].append(delivery)
        else:
            to_send.append(delivery)
            if subscription.slow_until is not None:
                ran_out[subscription.pk] = subscription
    for subscription in ran_out.values():
        recover(subscription)
    to_park: list[Delivery] = []
    for subscription_id, group in slow.items():
        group.sort(key=lambda d: d.created_at)
        going = 0 if transitions.in_flight_elsewhere(subscription_id, [d.pk for d in group], now) else 1
        to_send += group[:going]
        to_park += group[going:]
    return to_send, to_park


def park(deliveries: list[Delivery]) -> None:
    """Give the claims back without an attempt, until their turn (or the sweep, PARK_S later).
    Should the target have recovered since the claim read its mark, its recovery may have let the
    parked deliveries go before these were parked: they go at once instead. And should the
    delivery in flight that these were parked behind have ended meanwhile, its end saw these
    claimed, took them for in flight and left the next turn to them: with none of the target's
    deliveries in flight now, the oldest parked one goes. (Each side writes, then looks: the
    delivery's end clears its claim before it looks for one in flight, these are parked before
    this looks, so one of the two always sees the other's write.)"""
    if not deliveries:
        return
    now = timezone.now()
    transitions.park(deliveries, until=now + timedelta(seconds=PARK_S))
    targets = {delivery.subscription_id for delivery in deliveries}
    still_slow = set(Subscription.objects.filter(pk__in=targets, slow_until__gt=now).values_list("pk", flat=True))
    released = sum(transitions.release_parked(subscription_id) for subscription_id in targets - still_slow)
    for subscription_id in still_slow:
        if not transitions.in_flight_elsewhere(subscription_id, [], timezone.now()):
            released += transitions.release_next(subscription_id) is not None
    if released:
        queue.wake()


def forget_slow(subscription: Subscription) -> bool:
    """Forget the mark this worker read with its claim; False if another worker has set a new one
    since (that worker saw a slow answer after this one's claim)."""
    unchanged = Subscription.objects.filter(pk=subscription.pk, slow_until=subscription.slow_until)
    return unchanged.update(slow_until=None) == 1


def recover(subscription: Subscription) -> bool:
    """The target is slow no more: forget its mark and let all its parked deliveries go (unless
    another worker has marked it again since: False)."""
    if not forget_slow(subscription):
        return False
    if transitions.release_parked(subscription.pk):
        queue.wake()
    return True


def after_attempt(delivery: Delivery, exchange_s: float) -> None:
    """Remember a slow target; for a slow target, let the next parked delivery go, or all of them
    if it answered quickly (under half of SLOW_AFTER_S): it has recovered. (Only here: if a claim
    about to park hides the end of the one in flight, the next new delivery to the target finds
    nothing in flight and goes, and its end releases the next parked one.)

    `exchange_s` is the HTTP exchange alone, so that a slow database does not make a healthy
    target look slow."""
    slow = exchange_s > SLOW_AFTER_S
    if slow:
        mark_slow([delivery.subscription_id])
    elif known_slow(delivery.subscription) and exchange_s < SLOW_AFTER_S / 2 and recover(delivery.subscription):
        return
    if slow or known_slow(delivery.subscription):
        release_if_idle(delivery)


def release_if_idle(delivery: Delivery) -> None:
    """Hand the oldest parked delivery of this subscription to the queue, unless another one is
    in flight (it will, when it ends)."""
    if transitions.in_flight_elsewhere(delivery.subscription_id, [delivery.pk], timezone.now()):
        return
    if transitions.release_next(delivery.subscription_id, excluding=delivery.pk) is not None:
        queue.wake()

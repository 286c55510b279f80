"""Keeping one slow target from holding every worker.

A delivery holds its worker until its target answers, up to HOOKS_TIMEOUT_S. When one
subscription's target hangs, every worker soon waits on it and every other subscription's
deliveries queue behind (bench/isolation.py: the fast targets' p99 went from 36 ms to 32 s).

So a subscription whose target was recently slow gets one delivery in flight at a time. Another
delivery to it is parked instead of attempted (no attempt is made or counted; `last_error` says
so), and when the delivery in flight ends it hands the oldest parked one back to the queue. Parked
deliveries are due again PARK_S later, so if that chain breaks (a worker dies) the `retry_pending`
sweep still picks them up.

Which targets are slow is remembered by each worker process from its own attempts: nothing is
added to the path of healthy targets; the database is asked (a sibling in flight, a sibling
parked: both small partial indexes) only for a subscription known to be slow."""

import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .models import PARKED_ERROR, Attempt, Delivery

# An attempt that took longer than this marks its target slow, for REMEMBER_S.
SLOW_AFTER_S = 1.0
REMEMBER_S = 60.0
PARK_S = 120.0
PARKED = PARKED_ERROR

_slow_until: dict[str, float] = {}


def known_slow(subscription_id: str) -> bool:
    until = _slow_until.get(subscription_id)
    if until is None:
        return False
    if until < time.monotonic():
        del _slow_until[subscription_id]
        return False
    return True


def _siblings(delivery: Delivery):
    return Delivery.objects.filter(subscription_id=delivery.subscription_id, status=Delivery.Status.PENDING).exclude(
        pk=delivery.pk
    )


def park_if_busy(delivery_id: str) -> bool:
    """Before claiming: park the delivery if its target is known to be slow and another delivery
    to it is in flight. Nothing to do (not even a query) while this process knows no slow target;
    else a read and, to park, one write that need not wait for the disk (lost in a crash, the
    delivery is merely not parked)."""
    if not _slow_until:
        return False
    subscription_id = Delivery.objects.filter(pk=delivery_id).values_list("subscription_id", flat=True).first()
    if subscription_id is None or not known_slow(subscription_id):
        return False
    now = timezone.now()
    siblings = Delivery.objects.filter(subscription_id=subscription_id, status=Delivery.Status.PENDING)
    if not siblings.exclude(pk=delivery_id).filter(locked_until__gt=now).exists():
        return False
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        parked = (
            Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
            .update(next_attempt_at=now + timedelta(seconds=PARK_S), last_error=PARKED)
        )
    return bool(parked)


def should_park(delivery: Delivery) -> bool:
    """For a claimed delivery: is its target slow, with another delivery to it in flight? (Of two
    claimed at once both may park; the next delivery to the target then goes: for a slow target,
    a pause is better than a second worker held.)"""
    if not known_slow(delivery.subscription_id):
        return False
    return _siblings(delivery).filter(locked_until__gt=timezone.now()).exists()


def park(delivery: Delivery) -> None:
    """Give the claim back without an attempt; the delivery waits for its turn (or the sweep)."""
    Delivery.objects.filter(pk=delivery.pk, locked_until=delivery.locked_until).update(
        locked_until=None, next_attempt_at=timezone.now() + timedelta(seconds=PARK_S), last_error=PARKED
    )


def after_attempt(delivery: Delivery, seconds: float) -> None:
    """Remember a slow target; for a slow target, let the next parked delivery go. (Only here:
    if a claim about to park hides the end of the one in flight, the next new delivery to the
    target finds nothing in flight and goes, and its end releases the next parked one.)

    `seconds` is the whole attempt; when it is long, the attempt row's `duration_ms` (the HTTP
    exchange alone) decides, so that a slow database does not make a healthy target look slow."""
    if seconds > SLOW_AFTER_S and _exchange_seconds(delivery) > SLOW_AFTER_S:
        _slow_until[delivery.subscription_id] = time.monotonic() + REMEMBER_S
    if known_slow(delivery.subscription_id):
        release_if_idle(delivery)


def _exchange_seconds(delivery: Delivery) -> float:
    duration_ms = (
        Attempt.objects.filter(delivery=delivery).order_by("-attempt").values_list("duration_ms", flat=True).first()
    )
    return (duration_ms or 0) / 1000


def release_if_idle(delivery: Delivery) -> None:
    """Hand the oldest parked delivery of this subscription to the queue, unless another one is
    in flight (it will, when it ends)."""
    now = timezone.now()
    siblings = _siblings(delivery)
    if siblings.filter(locked_until__gt=now).exists():
        return
    with transaction.atomic():
        following = siblings.filter(last_error=PARKED).order_by("created_at").select_for_update(skip_locked=True)
        following = following.values_list("pk", flat=True).first()
        if following is None:
            return
        Delivery.objects.filter(pk=following).update(next_attempt_at=now, last_error="")
    from .tasks import enqueue_deliveries

    enqueue_deliveries([following])

"""Disabling a subscription whose target is gone (410) or has failed for too long, and stopping
what a disabled subscription still had waiting."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import transitions
from .models import Attempt, Delivery, Subscription
from .sender import Outgoing

logger = logging.getLogger(__name__)

_ATTEMPT_ERROR_LENGTH = Attempt._meta.get_field("error").max_length


def disable_failing(sent: list[Outgoing], attempts: list[Attempt]) -> None:
    """After logging: a 410 disables its subscription at once; a subscription failing for too long
    is disabled too (checked once per subscription per group). A delivery of a subscription
    disabled here reads back the state that disabling gave it."""
    now = timezone.now()
    checked: set[str] = set()
    for outgoing, attempt in zip(sent, attempts, strict=True):
        subscription, exchange = outgoing.delivery.subscription, outgoing.exchange
        if exchange.ok or subscription.pk in checked:
            continue
        checked.add(subscription.pk)
        if exchange.status_code == 410:
            disable_subscription(subscription, "The target answered 410 Gone.", attempt)
        elif reason := failing_too_long(subscription, now):
            disable_subscription(subscription, reason, attempt)
    if checked:
        for outgoing in sent:
            if outgoing.delivery.subscription_id in checked and not outgoing.exchange.ok:
                outgoing.delivery.refresh_from_db(fields=["status", "next_attempt_at", "last_error"])


def failing_too_long(subscription: Subscription, now) -> str | None:
    """Why the subscription should be disabled for failing, or None.

    It qualifies when no attempt has succeeded since its first failure at least
    `HOOKS_DISABLE_AFTER_S` ago, with at least `HOOKS_DISABLE_AFTER_FAILURES` failed attempts.
    Failures before the subscription's last change (re-enabled, edited, disabled) do not count,
    so an operator who enables it again gives it a fresh period."""
    window_s = settings.HOOKS_DISABLE_AFTER_S
    attempts = Attempt.objects.filter(subscription_id=subscription.pk)
    last_success = (
        attempts.filter(outcome=Attempt.Outcome.SUCCESS).order_by("-created_at").values_list("created_at", flat=True)
    ).first()
    since = max(filter(None, (last_success, subscription.updated_at)))
    failures = attempts.filter(outcome=Attempt.Outcome.FAILED, created_at__gt=since)
    first_failure = failures.order_by("created_at").values_list("created_at", flat=True).first()
    if first_failure is None or first_failure > now - timedelta(seconds=window_s):
        return None
    needed = settings.HOOKS_DISABLE_AFTER_FAILURES
    count = failures[:needed].count()
    if count < needed:
        return None
    return (
        f"Every delivery failed for more than {_duration(window_s)} "
        f"(since {first_failure:%Y-%m-%d %H:%M} UTC, {count}{'+' if count == needed else ''} failed attempts)."
    )


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = round(seconds / size, 1)
            return f"{amount:g} {unit}{'' if amount == 1 else 's'}"
    return f"{seconds:g} seconds"


def disable_subscription(subscription: Subscription, reason: str, attempt: Attempt | None = None) -> None:
    """Disable with a visible reason: on the subscription, on every delivery it stops, and on the
    log row of the attempt that caused it."""
    note = f"subscription disabled: {reason}"
    with transaction.atomic():
        # Nothing more goes to a disabled subscription; what was waiting stays visible and can be
        # redelivered once it is enabled again.
        transitions.stop_pending(subscription.pk, note)
        if attempt is not None:
            transitions.note(attempt.delivery_id, note)
            attempt.error = (f"{attempt.error}; {note}" if attempt.error else note)[:_ATTEMPT_ERROR_LENGTH]
            Attempt.objects.filter(pk=attempt.pk).update(error=attempt.error)
        subscription.disable(reason, last_attempt=attempt)  # announced to the project
    logger.warning("subscription %s disabled: %s", subscription.pk, reason)


def stop_if_disabled(delivery: Delivery) -> bool:
    """A claimed delivery whose subscription is disabled is not sent: it fails, saying why."""
    subscription = delivery.subscription
    if subscription.enabled:
        return False
    transitions.stop(delivery, f"subscription disabled: {subscription.disabled_reason or 'by an operator'}")
    return True

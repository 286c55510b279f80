"""Operational events: a project is told through its own subscriptions when one of them stops
(`subscription.disabled`: a 410, failing too long, or an operator) and when it comes back
(`subscription.enabled`), so the team that owns a receiver learns it from the stream it already
reads rather than from missing data days later."""

from django.dispatch import receiver

from .models import Attempt, Subscription, subscription_disabled, subscription_enabled
from .publishing import publish_event
from .serializers import AttemptSerializer, SubscriptionSerializer
from .signals import payload_of

DISABLED = "subscription.disabled"
ENABLED = "subscription.enabled"


def subscription_payload(subscription: Subscription) -> dict:
    """The subscription as its API reads it: secret, headers and auth masked."""
    return payload_of(SubscriptionSerializer, subscription)


def attempt_payload(attempt: Attempt | None) -> dict | None:
    """The log row of the attempt that caused it, as the logs API reads it (secrets redacted)."""
    if attempt is None:
        return None
    return payload_of(AttemptSerializer, attempt)


def disabled_payload(subscription: Subscription, reason: str, last_attempt: Attempt | None) -> dict:
    return {
        "subscription": subscription_payload(subscription),
        "reason": reason,
        "last_attempt": attempt_payload(last_attempt),
        "id_project": subscription.project_id,
    }


def enabled_payload(subscription: Subscription) -> dict:
    return {"subscription": subscription_payload(subscription), "id_project": subscription.project_id}


def announce_disabled(subscription: Subscription, reason: str, last_attempt: Attempt | None = None) -> None:
    """Publish `subscription.disabled` in the caller's transaction (so with the change itself)."""
    subscription.refresh_from_db()
    if last_attempt is None:
        last_attempt = Attempt.objects.filter(subscription=subscription).order_by("-created_at").first()
    publish_event(subscription.project_id, [DISABLED], disabled_payload(subscription, reason, last_attempt))


def announce_enabled(subscription: Subscription) -> None:
    subscription.refresh_from_db()
    publish_event(subscription.project_id, [ENABLED], enabled_payload(subscription))


@receiver(subscription_disabled, dispatch_uid="announce-subscription-disabled")
def _on_disabled(sender, subscription: Subscription, reason: str, last_attempt: Attempt | None = None, **kwargs):
    announce_disabled(subscription, reason, last_attempt)


@receiver(subscription_enabled, dispatch_uid="announce-subscription-enabled")
def _on_enabled(sender, subscription: Subscription, **kwargs):
    announce_enabled(subscription)

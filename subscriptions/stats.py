"""One subscription's figures: its deliveries by outcome over the last hour, day and week, the
latency of its attempts, and its last success and failure. Computed from the outbox when asked
(the API's `stats`, the admin's subscription page), like the console's dashboard: the web and
worker processes are separate, so in-process counters would never see each other's work."""

from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from .models import Attempt, Delivery, Subscription

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


def _percentile_ms(attempts, count: int, fraction: float) -> int | None:
    """Nearest-rank percentile of attempt durations, read at its rank by the database (a week of a
    busy subscription's attempts is not loaded into memory)."""
    if not count:
        return None
    rank = max(1, -(-count * fraction // 1))
    return attempts.order_by("duration_ms").values_list("duration_ms", flat=True)[int(rank) - 1]


def window_figures(subscription: Subscription, since: datetime) -> dict:
    deliveries = Delivery.objects.filter(subscription=subscription, created_at__gte=since)
    by_status = dict.fromkeys(Delivery.Status.values, 0)
    by_status.update(
        {row["status"]: row["n"] for row in deliveries.order_by().values("status").annotate(n=Count("pk"))}
    )
    attempts = Attempt.objects.filter(subscription=subscription, created_at__gte=since)
    by_outcome = dict.fromkeys(Attempt.Outcome.values, 0)
    by_outcome.update(
        {row["outcome"]: row["n"] for row in attempts.order_by().values("outcome").annotate(n=Count("pk"))}
    )
    count = sum(by_outcome.values())
    return {
        "deliveries": by_status,
        "attempts": by_outcome,
        "latency_ms": {"p50": _percentile_ms(attempts, count, 0.5), "p95": _percentile_ms(attempts, count, 0.95)},
    }


def _last(subscription: Subscription, outcome: str) -> dict | None:
    attempt = (
        Attempt.objects.filter(subscription=subscription, outcome=outcome)
        .order_by("-created_at")
        .values("created_at", "status_code", "error", "duration_ms", "delivery_id")
        .first()
    )
    if attempt is None:
        return None
    return {
        "at": attempt["created_at"],
        "status_code": attempt["status_code"],
        "error": attempt["error"],
        "duration_ms": attempt["duration_ms"],
        "delivery": attempt["delivery_id"],
    }


def subscription_stats(subscription: Subscription, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    return {
        "subscription": subscription.pk,
        "enabled": subscription.enabled,
        "at": now,
        "windows": {name: window_figures(subscription, now - span) for name, span in WINDOWS.items()},
        "last_success": _last(subscription, Attempt.Outcome.SUCCESS),
        "last_failure": _last(subscription, Attempt.Outcome.FAILED),
    }


def deliveries_by_hour(subscription: Subscription, now: datetime | None = None, hours: int = 24):
    """(hour starts, {status: deliveries made in each hour}) over the last `hours`, for the chart."""
    now = now or timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    by_hour = {status: [0] * hours for status in Delivery.Status.values}
    created = Delivery.objects.filter(subscription=subscription, created_at__gte=start)
    for created_at, status in created.values_list("created_at", "status").iterator():
        by_hour[status][min(hours - 1, int((created_at - start).total_seconds() // 3600))] += 1
    return [start + timedelta(hours=i) for i in range(hours)], by_hour

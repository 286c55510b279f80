"""Figures computed from the database when asked (a scrape, a dashboard view), because the web and
worker processes are separate: in-process counters in one would never see the other's work."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from automations.models import Run
from subscriptions.models import Attempt, Delivery, Subscription

# Attempt duration buckets (seconds) of the histogram and the p95 estimate.
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def runs_by_status(project_id: str | None = None, since: datetime | None = None) -> dict[str, int]:
    """Automation runs per status."""
    runs = Run.objects.all()
    if project_id is not None:
        runs = runs.filter(project_id=project_id)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    return {row["status"]: row["n"] for row in runs.order_by().values("status").annotate(n=Count("pk"))}


def percentile_ms(durations: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of attempt durations (None without data)."""
    if not durations:
        return None
    ordered = sorted(durations)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


@dataclass
class ProjectSummary:
    """One project's last 24 h, as the admin dashboard shows it."""

    project_id: str
    name: str
    hours: list[datetime]
    by_hour: dict[str, list[int]]  # deliveries created in each hour, by status
    pending: int
    success: int
    failed: int
    p95_latency_ms: int | None  # from the event to its successful attempt
    p95_attempt_ms: int | None  # one HTTP round trip
    failing_subscriptions: list[dict] = field(default_factory=list)
    runs: dict[str, int] | None = None

    @property
    def failed_runs(self) -> int:
        """Automation runs that failed or timed out (the dashboard links to them)."""
        runs = self.runs or {}
        return runs.get(Run.Status.FAILED, 0) + runs.get(Run.Status.TIMED_OUT, 0)

    @property
    def success_rate(self) -> float | None:
        done = self.success + self.failed
        return None if done == 0 else self.success / done


def project_summary(project, now: datetime | None = None, hours: int = 24) -> ProjectSummary:
    now = now or timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    by_hour = {status: [0] * hours for status in Delivery.Status.values}
    latencies = []
    deliveries = Delivery.objects.filter(project=project, created_at__gte=start)
    for created_at, updated_at, status in deliveries.values_list("created_at", "updated_at", "status").iterator():
        by_hour[status][min(hours - 1, int((created_at - start).total_seconds() // 3600))] += 1
        if status == Delivery.Status.SUCCESS:
            latencies.append(int((updated_at - created_at).total_seconds() * 1000))
    attempt_ms = Attempt.objects.filter(project=project, created_at__gte=start).values_list("duration_ms", flat=True)
    return ProjectSummary(
        project_id=project.pk,
        name=project.name,
        hours=[start + timedelta(hours=i) for i in range(hours)],
        by_hour=by_hour,
        pending=Delivery.objects.filter(project=project, status=Delivery.Status.PENDING).count(),
        success=sum(by_hour[Delivery.Status.SUCCESS]),
        failed=sum(by_hour[Delivery.Status.FAILED]),
        p95_latency_ms=percentile_ms(latencies, 0.95),
        p95_attempt_ms=percentile_ms(list(attempt_ms), 0.95),
        failing_subscriptions=failing_subscriptions(project, since=start),
        runs=runs_by_status(project.pk, since=start),
    )


def failing_subscriptions(project, since: datetime) -> list[dict]:
    """Subscriptions whose latest attempt failed (or that were disabled), with the last error."""
    rows = []
    candidates = Subscription.objects.filter(project=project).filter(
        Q(enabled=False) | Q(attempts__created_at__gte=since, attempts__outcome=Attempt.Outcome.FAILED)
    )
    for subscription in candidates.distinct().order_by("event"):
        last = subscription.attempts.order_by("-created_at", "-attempt").first()
        if subscription.enabled and (last is None or last.outcome == Attempt.Outcome.SUCCESS):
            continue
        rows.append(
            {
                "subscription": subscription,
                "last_error": (last.error or f"HTTP {last.status_code}") if last else "",
                "last_attempt_at": last.created_at if last else None,
                "disabled_reason": "" if subscription.enabled else subscription.disabled_reason or "disabled",
            }
        )
    return rows

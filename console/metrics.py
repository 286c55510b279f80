"""Prometheus metrics at `/metrics`, computed from the database at scrape time by a custom
collector: the web and worker processes are separate, so counters kept in one process would miss
the other's work (and every web process would report a different part)."""

import hmac

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from subscriptions.models import Attempt, Delivery, EventPayload

from . import stats
from .workers import heartbeat


class DatabaseCollector(Collector):
    def collect(self):
        deliveries = GaugeMetricFamily(
            "hooks_deliveries", "Deliveries kept in the database, by event and status.", labels=["event", "status"]
        )
        for row in Delivery.objects.order_by().values("event", "status").annotate(n=Count("pk")):
            deliveries.add_metric([row["event"], row["status"]], row["n"])
        yield deliveries

        attempts = GaugeMetricFamily(
            "hooks_attempts",
            "Delivery attempts kept in the database, by event and outcome.",
            labels=["event", "outcome"],
        )
        for row in Attempt.objects.order_by().values("event", "outcome").annotate(n=Count("pk")):
            attempts.add_metric([row["event"], row["outcome"]], row["n"])
        yield attempts

        yield self._duration_histogram()

        now = timezone.now()
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING).aggregate(
            total=Count("pk"), due=Count("pk", filter=Q(next_attempt_at__lte=now))
        )
        depth = GaugeMetricFamily("hooks_pending_deliveries", "Deliveries waiting for an attempt.", labels=["when"])
        depth.add_metric(["all"], pending["total"])
        depth.add_metric(["due"], pending["due"])
        yield depth
        yield GaugeMetricFamily(
            "hooks_unrouted_events",
            "Published events no worker has made deliveries of yet.",
            value=EventPayload.objects.filter(names__isnull=False).count(),
        )

        try:
            queued = get_broker().queue_size()
        except Exception:  # a broker that is down shows as a missing sample, /healthz says why
            queued = None
        if queued is not None:
            yield GaugeMetricFamily("hooks_queue_tasks", "Tasks waiting in the django-q2 broker.", value=queued)

        try:
            beat = heartbeat()
        except Exception:
            beat = None
        if beat is not None:
            yield GaugeMetricFamily("hooks_worker_clusters", "Live django-q2 clusters.", value=beat.clusters)
            yield GaugeMetricFamily("hooks_worker_processes", "Worker processes of live clusters.", value=beat.workers)

        runs = GaugeMetricFamily(
            "automation_runs", "Automation runs kept in the database, by status.", labels=["status"]
        )
        for status, count in sorted(stats.runs_by_status().items()):
            runs.add_metric([str(status)], count)
        yield runs

    def _duration_histogram(self) -> HistogramMetricFamily:
        bounds_ms = [int(bound * 1000) for bound in stats.DURATION_BUCKETS_S]
        aggregates = {f"le_{ms}": Count("pk", filter=Q(duration_ms__lte=ms)) for ms in bounds_ms}
        row = Attempt.objects.aggregate(total=Count("pk"), sum_ms=Sum("duration_ms"), **aggregates)
        buckets = [(str(bound), row[f"le_{ms}"]) for bound, ms in zip(stats.DURATION_BUCKETS_S, bounds_ms, strict=True)]
        buckets.append(("+Inf", row["total"]))
        return HistogramMetricFamily(
            "hooks_attempt_duration_seconds",
            "Duration of delivery attempts (HTTP round trip) kept in the database.",
            buckets=buckets,
            sum_value=(row["sum_ms"] or 0) / 1000,
        )


registry = CollectorRegistry(auto_describe=False)
registry.register(DatabaseCollector())


def _authorized(request) -> bool:
    """Open unless METRICS_TOKEN is set (the figures name every tenant's events); then only a
    scraper sending it as a bearer token, compared in constant time."""
    expected = settings.METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@transaction.non_atomic_requests
@require_GET
def metrics(request):
    if not _authorized(request):
        response = HttpResponse("A bearer token is required (METRICS_TOKEN).\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

"""Operations: /healthz tells a load balancer whether this deployment can deliver, /metrics gives
Prometheus figures computed from the database (so they include the worker processes' work)."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from tests.conftest import REPO, child_env, wait_for


def test_healthz_is_503_with_detail_when_no_worker_is_alive(client, db):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["worker"] == {**body["checks"]["worker"], "ok": False, "clusters": 0}


@pytest.mark.e2e
def test_healthz_is_200_once_a_qcluster_runs(client, start_worker):
    start_worker()

    response = wait_for(lambda: (r := client.get("/healthz")).status_code == 200 and r, timeout=30)

    assert response, client.get("/healthz").json()
    worker = response.json()["checks"]["worker"]
    assert worker["clusters"] == 1 and worker["workers"] >= 1 and worker["heartbeat_age_s"] < 60


@pytest.mark.e2e
def test_healthz_is_503_when_the_broker_is_unreachable(db):
    """A separate process configured with a Redis broker on a closed port, asked over the real view."""
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client(HTTP_HOST='localhost').get('/healthz'); "
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    env = child_env(Q_BROKER="redis://127.0.0.1:9/0", DJANGO_SETTINGS_MODULE="tiledesk_hooks.settings")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 503
    assert result["body"]["checks"]["broker"]["ok"] is False
    assert "Connection" in result["body"]["checks"]["broker"]["error"]


@pytest.fixture
def history(project):
    """Two request.create deliveries (one success, one failed after 2 attempts) and a pending one."""
    sub = Subscription.objects.create(project=project, event="request.create", target="http://x.test/", secret="s")
    payload = EventPayload.objects.create(project=project, payload={})

    def delivery(status: str, durations: list[int]) -> Delivery:
        d = Delivery.objects.create(
            project=project, subscription=sub, event=sub.event, event_payload=payload, status=status
        )
        for number, ms in enumerate(durations, 1):
            Attempt.objects.create(
                project=project,
                delivery=d,
                subscription=sub,
                event=sub.event,
                attempt=number,
                target=sub.target,
                request_body="{}",
                status_code=200 if status == "success" else 500,
                duration_ms=ms,
                outcome="success" if status == "success" else "failed",
            )
        return d

    delivery("success", [40])
    delivery("failed", [300, 3000])
    delivery("pending", []).__class__.objects.filter(status="pending").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_deliveries_by_event_and_status(client, history):
    samples = scrape(client)
    for status, expected in (("success", 1), ("failed", 1), ("pending", 1)):
        assert samples[("hooks_deliveries", (("event", "request.create"), ("status", status)))] == expected
    assert samples[("hooks_attempts", (("event", "request.create"), ("outcome", "failed")))] == 2


def test_metrics_histogram_of_attempt_durations(client, history):
    samples = scrape(client)
    assert samples[("hooks_attempt_duration_seconds_bucket", (("le", "0.05"),))] == 1
    assert samples[("hooks_attempt_duration_seconds_bucket", (("le", "0.5"),))] == 2
    assert samples[("hooks_attempt_duration_seconds_bucket", (("le", "5.0"),))] == 3
    assert samples[("hooks_attempt_duration_seconds_count", ())] == 3
    assert samples[("hooks_attempt_duration_seconds_sum", ())] == pytest.approx(3.34)


def test_metrics_pending_depth(client, history):
    samples = scrape(client)
    assert samples[("hooks_pending_deliveries", (("when", "all"),))] == 1
    assert samples[("hooks_pending_deliveries", (("when", "due"),))] == 1


def test_metrics_count_the_events_waiting_to_be_routed(client, history, project, monkeypatch):
    from subscriptions import queue
    from subscriptions.publishing import publish_event

    monkeypatch.setattr(queue, "wake", lambda *args, **kwargs: None)  # no worker routes it
    publish_event(project.pk, ["request.create"], {"id": "r1"})

    assert scrape(client)[("hooks_unrouted_events", ())] == 1

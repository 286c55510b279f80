"""GET .../subscriptions/{id}/stats/: deliveries by status and attempts by outcome over the last
hour, day and week, p50/p95 attempt latency, last success and last failure; the admin's
subscription page shows the same with a chart."""

import re
from datetime import timedelta

from django.utils import timezone

from subscriptions.models import Delivery
from tests.conftest import client_for, received
from tests.factories import failed_delivery, logged_attempt, subscribed, subscription


def stats_url(project, subscription_id) -> str:
    return f"/api/projects/{project.pk}/subscriptions/{subscription_id}/stats/"


def history(hook):
    """Deliveries 10 minutes, 5 hours and 3 days old (and one 9 days old, outside every window)."""
    now = timezone.now()
    rows = []
    for age, outcome, status_code, duration in (
        (timedelta(minutes=10), "success", 200, 10),
        (timedelta(minutes=10), "failed", 503, 30),
        (timedelta(hours=5), "success", 200, 20),
        (timedelta(days=3), "failed", None, 1000),
        (timedelta(days=9), "success", 200, 5),
    ):
        delivery = failed_delivery(hook, age, attempts=1)
        Delivery.objects.filter(pk=delivery.pk).update(status=outcome)
        rows.append(
            logged_attempt(
                delivery,
                outcome=outcome,
                status_code=status_code,
                duration_ms=duration,
                error="" if status_code else "ConnectionError: refused",
                created_at=now - age,
            )
        )
    return rows


def test_stats_count_by_window_with_latency_and_last_outcomes(api, project):
    hook = subscription(project)
    rows = history(hook)
    response = api.get(stats_url(project, hook.pk))

    assert response.status_code == 200
    body = response.json()
    hour, day, week = (body["windows"][name] for name in ("hour", "day", "week"))
    assert hour["deliveries"] == {"pending": 0, "success": 1, "failed": 1, "skipped": 0}
    assert day["deliveries"] == {"pending": 0, "success": 2, "failed": 1, "skipped": 0}
    assert week["deliveries"] == {"pending": 0, "success": 2, "failed": 2, "skipped": 0}
    assert week["attempts"] == {"success": 2, "failed": 2}
    assert hour["latency_ms"] == {"p50": 10, "p95": 30}
    assert day["latency_ms"] == {"p50": 20, "p95": 30}
    assert week["latency_ms"] == {"p50": 20, "p95": 1000}
    assert body["last_success"]["delivery"] == rows[0].delivery_id and body["last_success"]["status_code"] == 200
    assert body["last_failure"]["status_code"] == 503 and body["last_failure"]["delivery"] == rows[1].delivery_id


def test_stats_without_history_are_zeros_and_nulls(api, project):
    hook = subscription(project)
    body = api.get(stats_url(project, hook.pk)).json()
    assert body["windows"]["week"]["latency_ms"] == {"p50": None, "p95": None}
    assert body["last_success"] is None and body["last_failure"] is None


def test_stats_follow_real_deliveries(api, project, httpserver, on_commit):
    httpserver.expect_request("/ok").respond_with_data("ok")
    created = subscribed(api, project.pk, httpserver.url_for("/ok"))
    with on_commit():
        api.post(
            f"/api/projects/{project.pk}/requests/", {"first_text": "hi", "lead": {"fullname": "A"}}, format="json"
        )
    assert len(received(httpserver, "/ok")) == 1

    body = api.get(stats_url(project, created["id"])).json()
    assert body["windows"]["hour"]["deliveries"]["success"] == 1
    assert body["last_success"]["status_code"] == 200 and body["windows"]["hour"]["latency_ms"]["p50"] is not None


def test_stats_of_another_projects_subscription_are_404(api, project, make_user):
    hook = subscription(project)
    assert client_for(make_user("stranger")).get(stats_url(project, hook.pk)).status_code == 404


def test_the_admin_page_shows_the_figures_and_a_chart(project, make_user, client):
    hook = subscription(project)
    history(hook)
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    html = client.get(f"/admin/subscriptions/subscription/{hook.pk}/change/").content.decode()

    assert 'id="subscription-stats"' in html and '<svg class="console-chart"' in html
    assert re.search(r"last hour</th>(\s*<td>[^<]*</td>)+\s*<td>10 ms</td>\s*<td>30 ms</td>", html)  # p50, p95
    assert "HTTP 503" in html

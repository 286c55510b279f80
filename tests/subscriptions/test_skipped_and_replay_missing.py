"""Nothing is missed while a subscription is off: events that match a disabled subscription get a
`skipped` delivery row (no attempt), which `replay_missing` (API, admin, command) queues once it is
enabled again; skipped rows are kept for HOOKS_EVENT_RETENTION_DAYS."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from subscriptions import maintenance, publishing, routing
from subscriptions.models import Attempt, Delivery, Subscription
from tests.conftest import client_for, received
from tests.factories import create_request, subscribed


def url(project, suffix="") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{suffix}"


@pytest.fixture
def paused(api, project, httpserver) -> dict:
    """A subscription to request.create that was disabled, with its receiver ready."""
    httpserver.expect_request("/paused").respond_with_data("ok")
    created = subscribed(api, project.pk, httpserver.url_for("/paused"))
    assert api.patch(url(project, f"{created['id']}/"), {"enabled": False}, format="json").status_code == 200
    return created


def enable(api, project, subscription) -> None:
    assert api.patch(url(project, f"{subscription['id']}/"), {"enabled": True}, format="json").status_code == 200


def test_an_event_for_a_disabled_subscription_makes_a_skipped_row_and_sends_nothing(
    api, project, httpserver, on_commit, paused
):
    create_request(api, project, on_commit)

    delivery = Delivery.objects.get(subscription_id=paused["id"])
    assert delivery.status == "skipped" and delivery.attempt_count == 0 and delivery.sequence == 1
    assert not Attempt.objects.exists() and received(httpserver, "/paused") == []
    listed = api.get(f"/api/projects/{project.pk}/deliveries/?status=skipped").json()
    assert [row["id"] for row in listed["results"]] == [delivery.pk]


def test_replay_missing_sends_them_in_order_with_their_sequence(api, project, httpserver, on_commit, paused):
    first = create_request(api, project, on_commit, first_text="one")
    second = create_request(api, project, on_commit, first_text="two")
    enable(api, project, paused)
    with on_commit():
        response = api.post(
            url(project, f"{paused['id']}/replay_missing/"),
            {"since": (timezone.now() - timedelta(hours=1)).isoformat()},
            format="json",
        )

    assert response.status_code == 202 and response.json()["count"] == 2
    got = [(g["json"]["payload"]["id"], g["json"]["sequence"]) for g in received(httpserver, "/paused")]
    assert got == [(first["id"], 1), (second["id"], 2)]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"success"}


def test_replay_missing_takes_only_the_window(api, project, httpserver, on_commit, paused):
    create_request(api, project, on_commit, first_text="early")
    Delivery.objects.update(created_at=timezone.now() - timedelta(hours=3))
    create_request(api, project, on_commit, first_text="late")
    enable(api, project, paused)
    with on_commit():
        response = api.post(
            url(project, f"{paused['id']}/replay_missing/"),
            {
                "since": (timezone.now() - timedelta(hours=4)).isoformat(),
                "until": (timezone.now() - timedelta(hours=2)).isoformat(),
            },
            format="json",
        )

    assert response.json()["count"] == 1
    assert [g["json"]["payload"]["first_text"] for g in received(httpserver, "/paused")] == ["early"]
    assert Delivery.objects.filter(status="skipped").count() == 1


def test_replay_missing_of_a_disabled_subscription_is_400(api, project, on_commit, paused):
    response = api.post(url(project, f"{paused['id']}/replay_missing/"), {"since": "2026-01-01T00:00:00Z"})
    assert response.status_code == 400 and "enabled" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_replay_missing_with_a_bad_window_is_400_on_its_field(api, project, body, field):
    created = subscribed(api, project.pk, "https://hooks.example.com/in")
    response = api.post(url(project, f"{created['id']}/replay_missing/"), body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_replay_missing_of_another_projects_subscription_is_404(api, project, make_user):
    created = subscribed(api, project.pk, "https://hooks.example.com/in")
    stranger = client_for(make_user("stranger"))
    response = stranger.post(url(project, f"{created['id']}/replay_missing/"), {"since": "2026-01-01T00:00:00Z"})
    assert response.status_code == 404


def test_the_admin_action_queues_them(api, project, httpserver, on_commit, paused, make_user, client):
    create_request(api, project, on_commit)
    enable(api, project, paused)
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    asked = client.post(
        "/admin/subscriptions/subscription/", {"action": "replay_missing", "_selected_action": [paused["id"]]}
    )
    assert asked.status_code == 200 and b"Queue missed deliveries" in asked.content
    with on_commit():
        client.post(
            "/admin/subscriptions/subscription/",
            {
                "action": "replay_missing",
                "_selected_action": [paused["id"]],
                "apply": "1",
                "since": (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"),
            },
        )
    assert len(received(httpserver, "/paused")) == 1


def test_the_command_queues_them_and_refuses_a_disabled_subscription(api, project, httpserver, on_commit, paused):
    create_request(api, project, on_commit)
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    with pytest.raises(CommandError, match="disabled"):
        call_command("replay_missing", paused["id"], "--since", since, stdout=StringIO())
    enable(api, project, paused)
    out = StringIO()
    with on_commit():
        call_command("replay_missing", paused["id"], "--since", since, stdout=out)

    assert "1 skipped delivery(ies) queued" in out.getvalue()
    assert len(received(httpserver, "/paused")) == 1


def test_skipped_rows_older_than_the_retention_are_purged(api, project, on_commit, paused, settings):
    settings.HOOKS_EVENT_RETENTION_DAYS = 30
    create_request(api, project, on_commit, first_text="old")
    Delivery.objects.update(created_at=timezone.now() - timedelta(days=31))
    create_request(api, project, on_commit, first_text="recent")

    assert maintenance.purge_expired_skipped() == 1
    [kept] = Delivery.objects.filter(subscription_id=paused["id"])
    assert kept.event_payload.payload["first_text"] == "recent"


def test_routing_reads_disabled_subscriptions_in_the_same_single_statement(project):
    Subscription.objects.create(project=project, event="lead.create", target="https://a.example.com/", secret="s")
    Subscription.objects.create(
        project=project, event="lead.create", target="https://b.example.com/", secret="s", enabled=False
    )
    publishing.publish_event(project.pk, ["lead.create"], {"id": "x"})
    with CaptureQueriesContext(connection) as queries:
        routing.route(10)
    statements = [q["sql"].lstrip().upper() for q in queries.captured_queries]
    reads = [sql for sql in statements if sql.startswith(("SELECT", "WITH")) and '"SUBSCRIPTIONS_SUBSCRIPTION"' in sql]
    assert len(reads) == 1
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["pending", "skipped"]

"""The logs (attempts) and deliveries APIs: newest first, filters, pagination, isolation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from support.models import Project, ProjectUser, Role
from tests.conftest import client_for


def logs(api, project, query="", path="logs"):
    response = api.get(f"/api/projects/{project.pk}/subscriptions/{path}/{query}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def history(project, owner):
    """Two subscriptions with attempts at known times: a success, two failures (500, timeout)."""
    now = timezone.now()
    a = Subscription.objects.create(
        project=project, event="request.create", target="https://a.example.com/", secret="s1"
    )
    b = Subscription.objects.create(project=project, event="lead.create", target="https://b.example.com/", secret="s2")
    rows = {}
    for name, sub, status, outcome, age_h in [
        ("old_ok", a, 200, "success", 48),
        ("fail_500", a, 500, "failed", 2),
        ("timeout", b, 504, "failed", 1),
    ]:
        payload = EventPayload.objects.create(project=project, payload={"x": name})
        delivery = Delivery.objects.create(
            project=project,
            subscription=sub,
            event=sub.event,
            event_payload=payload,
            status="success" if outcome == "success" else "failed",
        )
        rows[name] = Attempt.objects.create(
            project=project,
            delivery=delivery,
            subscription=sub,
            event=sub.event,
            attempt=1,
            target=sub.target,
            request_headers={},
            request_body="{}",
            status_code=status,
            outcome=outcome,
            created_at=now - timedelta(hours=age_h),
        )
    return {"a": a, "b": b, **rows}


def test_logs_list_every_attempt_newest_first_with_the_contract_fields(api, project, history):
    page = logs(api, project)
    assert page["count"] == 3
    assert [r["id"] for r in page["results"]] == [history["timeout"].pk, history["fail_500"].pk, history["old_ok"].pk]
    assert set(page["results"][0]) == {
        "id",
        "delivery",
        "subscription",
        "event",
        "attempt",
        "target",
        "request_headers",
        "request_body",
        "status_code",
        "response_headers",
        "response_body",
        "error",
        "duration_ms",
        "outcome",
        "createdAt",
    }


def test_history_is_an_alias_of_logs(api, project, history):
    assert logs(api, project, path="history") == logs(api, project)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?outcome=failed", ["timeout", "fail_500"]),
        ("?outcome=success", ["old_ok"]),
        ("?status_code=500", ["fail_500"]),
        ("?event=lead.create", ["timeout"]),
    ],
)
def test_logs_filters(api, project, history, query, expected):
    assert [r["id"] for r in logs(api, project, query)["results"]] == [history[name].pk for name in expected]


def test_logs_filter_by_subscription_and_time_range(api, project, history):
    assert [r["id"] for r in logs(api, project, f"?subscription={history['a'].pk}")["results"]] == [
        history["fail_500"].pk,
        history["old_ok"].pk,
    ]
    since = (timezone.now() - timedelta(hours=3)).isoformat()
    until = (timezone.now() - timedelta(minutes=90)).isoformat()
    page = logs(
        api, project, "?" + "&".join([f"since={since.replace('+', '%2B')}", f"until={until.replace('+', '%2B')}"])
    )
    assert [r["id"] for r in page["results"]] == [history["fail_500"].pk]


def test_logs_bad_filter_values_are_a_400(api, project, history):
    assert api.get(f"/api/projects/{project.pk}/subscriptions/logs/?outcome=maybe").status_code == 400
    assert api.get(f"/api/projects/{project.pk}/subscriptions/logs/?since=yesterday").status_code == 400


def test_logs_are_paginated(api, project, history):
    page = logs(api, project, "?page_size=2")
    assert len(page["results"]) == 2 and page["next"]
    assert len(logs(api, project, "?page_size=2&page=2")["results"]) == 1


def test_another_projects_logs_are_invisible(api, project, history, make_user):
    stranger = make_user("zed")
    other = Project.objects.create(name="Other", created_by=stranger)
    ProjectUser.objects.create(project=other, user=stranger, email=stranger.email, role=Role.OWNER)
    theirs = client_for(stranger)
    assert theirs.get(f"/api/projects/{other.pk}/subscriptions/logs/").json()["count"] == 0
    assert theirs.get(f"/api/projects/{project.pk}/subscriptions/logs/").status_code == 404
    delivery = history["old_ok"].delivery
    assert theirs.get(f"/api/projects/{other.pk}/deliveries/{delivery.pk}/").status_code == 404
    assert theirs.post(f"/api/projects/{other.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 404


def test_deliveries_list_one_row_per_event_and_subscription_with_attempts(api, project, history):
    page = api.get(f"/api/projects/{project.pk}/deliveries/").json()
    assert page["count"] == 3
    detail = api.get(f"/api/projects/{project.pk}/deliveries/{history['timeout'].delivery_id}/").json()
    assert detail["status"] == "failed" and detail["subscription"] == history["b"].pk
    assert [a["id"] for a in detail["attempts"]] == [history["timeout"].pk]
    assert isinstance(detail["timestamp"], int)


def test_deliveries_filter_by_status(api, project, history):
    page = api.get(f"/api/projects/{project.pk}/deliveries/?status=success").json()
    assert [d["id"] for d in page["results"]] == [history["old_ok"].delivery_id]
    assert api.get(f"/api/projects/{project.pk}/deliveries/?status=bogus").status_code == 400

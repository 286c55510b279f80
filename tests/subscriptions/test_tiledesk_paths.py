"""Clients written for Tiledesk's REST Hooks (its Zapier and Make apps, scripts) work unchanged:
`/{project_id}/subscriptions` with a token or HTTP basic auth, no trailing slash, same JSON."""

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from support.models import Role

TARGET = "https://hooks.zapier.com/hooks/standard/123/abc/"


def basic(username: str, password: str = "pw") -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def zapier(client, owner):
    """Requests as Zapier's Tiledesk app sends them: JSON bodies, HTTP basic auth, no trailing slash."""

    def send(method: str, path: str, body: dict | None = None, auth: str | None = None):
        extra = {"HTTP_AUTHORIZATION": auth or basic(owner.username), "HTTP_ACCEPT": "application/json"}
        if body is not None:
            extra.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(path, **extra)

    return send


def test_subscribe_as_zapier_does_returns_the_secret_in_body_and_header(zapier, project):
    response = zapier("post", f"/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET})

    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_") and response.headers["x-hook-secret"] == body["secret"]
    assert {"_id", "id", "event", "target", "id_project", "createdBy", "createdAt", "updatedAt", "__v"} <= set(body)
    assert Subscription.objects.get(pk=body["id"]).target == TARGET


def test_token_auth_works_on_the_tiledesk_paths(zapier, project, owner):
    response = zapier("get", f"/{project.pk}/subscriptions", auth=f"Token {owner.auth_token.key}")
    assert response.status_code == 200


def test_list_has_the_same_json_as_the_api(zapier, api, project):
    created = zapier("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()

    tiledesk = zapier("get", f"/{project.pk}/subscriptions").json()
    native = api.get(f"/api/projects/{project.pk}/subscriptions/").json()

    assert tiledesk == native["results"]  # Tiledesk answers a plain array
    assert [row["id"] for row in tiledesk] == [created["id"]]
    assert tiledesk[0]["secret"].startswith("whsec_••••")


def test_get_put_and_unsubscribe_by_id_without_trailing_slash(zapier, project):
    sub_id = zapier("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()["id"]
    url = f"/{project.pk}/subscriptions/{sub_id}"

    assert zapier("get", url).json()["event"] == "lead.create"
    updated = zapier("put", url, {"event": "request.close", "target": TARGET + "v2"})
    assert updated.status_code == 200 and updated.json()["event"] == "request.close"
    assert zapier("delete", url).status_code == 204
    assert not Subscription.objects.filter(pk=sub_id).exists()


def test_history_pages_the_attempts_newest_first_as_tiledesk_does(zapier, project):
    """Tiledesk counts pages from 0, 40 attempts a page, and answers a plain array."""
    sub = Subscription.objects.create(project=project, event="lead.create", target=TARGET, secret="whsec_x")
    payload = EventPayload.objects.create(project=project, payload={})
    delivery = Delivery.objects.create(project=project, subscription=sub, event=sub.event, event_payload=payload)
    Attempt.objects.bulk_create(
        Attempt(
            project=project,
            delivery=delivery,
            subscription=sub,
            event=sub.event,
            attempt=number,
            target=TARGET,
            request_body="{}",
            status_code=500,
            outcome="failed",
            created_at=timezone.now() - timedelta(seconds=100 - number),
        )
        for number in range(1, 43)
    )

    first = zapier("get", f"/{project.pk}/subscriptions/history")
    assert first.status_code == 200
    assert [row["attempt"] for row in first.json()] == list(range(42, 2, -1))
    assert zapier("get", f"/{project.pk}/subscriptions/history?page=0").json() == first.json()
    assert [row["attempt"] for row in zapier("get", f"/{project.pk}/subscriptions/history?page=1").json()] == [2, 1]


def test_invalid_subscription_is_400_with_field_errors(zapier, project):
    response = zapier("post", f"/{project.pk}/subscriptions", {"event": "nope", "target": "ftp://x"})
    assert response.status_code == 400
    assert set(response.json()) == {"event", "target"}


def test_without_credentials_is_401_with_a_basic_challenge(client, project):
    response = client.get(f"/{project.pk}/subscriptions")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_password_is_401(zapier, project, owner):
    assert zapier("get", f"/{project.pk}/subscriptions", auth=basic(owner.username, "wrong")).status_code == 401


def test_agents_may_not_manage_subscriptions(zapier, project, add_member):
    add_member("agent", Role.AGENT)
    response = zapier(
        "post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}, basic("agent")
    )
    assert response.status_code == 403


def test_admins_may(zapier, project, add_member):
    add_member("admin", Role.ADMIN)
    response = zapier(
        "post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}, basic("admin")
    )
    assert response.status_code == 201


def test_other_projects_are_404(zapier, project, make_user):
    make_user("stranger")
    assert zapier("get", f"/{project.pk}/subscriptions", auth=basic("stranger")).status_code == 404

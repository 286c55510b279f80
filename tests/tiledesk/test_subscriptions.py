"""Tiledesk's REST Hooks interface, replayed point by point: each test sends what a Tiledesk user sends
and expects what Tiledesk's server (2.19.16) answers, citing its source. Where Tiledesk has a bug,
the test says so and expects this project's answer instead."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from support.models import Project, ProjectUser, Role

from .conftest import TARGET, basic

PREFIXES = ["", "/v3"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_create_answers_200_with_the_secret_in_body_and_header(tiledesk, project, prefix):
    """routes/subscription.js:36-39: `res.setHeader('x-hook-secret', secret)`, then `res.json(saved)`
    (200) with the saved document, secret included."""
    response = tiledesk("post", f"{prefix}/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET})

    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_") and response.headers["x-hook-secret"] == body["secret"]
    assert {"_id", "id", "event", "target", "id_project", "createdBy", "createdAt", "updatedAt", "__v"} <= set(body)
    assert (body["event"], body["target"], body["id_project"]) == ("request.create", TARGET, project.pk)
    assert Subscription.objects.get(pk=body["id"]).secret == body["secret"]


def test_the_same_event_and_target_again_answers_the_existing_subscription(tiledesk, project):
    """models/subscription.js:46 (unique index on project, event, target) and routes/subscription.js:24-29
    (on the duplicate, the existing subscription is answered with 200). Tiledesk also answers its full
    secret there, in the body and the header: here a full secret is shown only at creation and
    rotation, so the second answer has it masked and no header."""
    first = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET})
    again = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET})

    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["secret"] == "whsec_••••" + first.json()["secret"][-4:]
    assert "x-hook-secret" not in again.headers
    assert Subscription.objects.filter(project=project).count() == 1


def test_the_same_event_with_another_target_is_another_subscription(tiledesk, project):
    """Tiledesk's duplicate lookup (routes/subscription.js:25) searches by project and event only, so
    it would answer the subscription of another target: the unique index (models/subscription.js:46)
    is what counts."""
    first = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET})
    other = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET + "2"})

    assert other.status_code == 200 and other.json()["id"] != first.json()["id"]
    assert other.headers["x-hook-secret"] == other.json()["secret"]
    assert Subscription.objects.filter(project=project).count() == 2


def test_a_form_encoded_create_is_read_like_json_and_makes_an_enabled_subscription(tiledesk, project):
    """app.js:320: Tiledesk reads `application/x-www-form-urlencoded` bodies as it reads JSON."""
    response = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}, form=True)

    assert response.status_code == 200
    assert response.json()["enabled"] is True
    assert Subscription.objects.get(pk=response.json()["id"]).enabled is True


def test_secrets_of_different_subscriptions_differ(tiledesk, project):
    """models/subscription.js:21: Tiledesk's `default: uuidv4()` is computed once, when the module
    loads, so every subscription of a server process shares one secret. Here each has its own."""
    secrets_ = {
        tiledesk("post", f"/{project.pk}/subscriptions", {"event": event, "target": TARGET}).json()["secret"]
        for event in ("request.create", "request.close", "lead.create")
    }
    assert len(secrets_) == 3


@pytest.mark.parametrize("prefix", PREFIXES)
def test_list_is_a_plain_array_of_the_projects_subscriptions(tiledesk, api, project, prefix):
    """routes/subscription.js:82-94: `res.json(subscriptions)`. Tiledesk never selects the secret
    (models/subscription.js:22, `select: false`); here it is masked."""
    created = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()

    listed = tiledesk("get", f"{prefix}/{project.pk}/subscriptions")

    assert listed.status_code == 200
    assert listed.json() == api.get(f"/api/projects/{project.pk}/subscriptions/").json()["results"]
    assert [row["id"] for row in listed.json()] == [created["id"]]
    assert listed.json()[0]["secret"].startswith("whsec_••••")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_by_id(tiledesk, project, prefix):
    """routes/subscription.js:124-135: 200 with the subscription."""
    created = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()
    response = tiledesk("get", f"{prefix}/{project.pk}/subscriptions/{created['id']}")
    assert response.status_code == 200 and response.json()["event"] == "lead.create"


def test_an_unknown_id_is_404_in_tiledesks_error_shape(tiledesk, project):
    """routes/subscription.js:132-134: `404 {success: false, msg: 'Object not found.'}`."""
    response = tiledesk("get", f"/{project.pk}/subscriptions/6553a1f0aaaa999988887777")
    assert response.status_code == 404
    assert response.json()["success"] is False and response.json()["msg"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_put_is_a_partial_update(tiledesk, project, prefix):
    """routes/subscription.js:55: `findByIdAndUpdate(id, req.body)` changes only what the body names,
    so `{"target"}` alone moves the subscription and keeps its event."""
    created = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()

    response = tiledesk("put", f"{prefix}/{project.pk}/subscriptions/{created['id']}", {"target": TARGET + "v2"})

    assert response.status_code == 200
    assert (response.json()["event"], response.json()["target"]) == ("lead.create", TARGET + "v2")
    assert response.json()["secret"].startswith("whsec_••••")


def test_a_form_encoded_put_leaves_out_what_it_does_not_name(tiledesk, project):
    """app.js:320 again: a form that does not name `enabled` does not disable the subscription."""
    created = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()
    response = tiledesk("put", f"/{project.pk}/subscriptions/{created['id']}", {"target": TARGET + "v2"}, form=True)
    assert response.status_code == 200 and response.json()["enabled"] is True


@pytest.mark.parametrize("prefix", PREFIXES)
def test_delete_answers_200_with_the_deleted_subscription(tiledesk, project, prefix):
    """routes/subscription.js:69-75: `findByIdAndRemove`, then `res.json(removed)`."""
    created = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}).json()

    response = tiledesk("delete", f"{prefix}/{project.pk}/subscriptions/{created['id']}")

    assert response.status_code == 200
    assert response.json()["id"] == created["id"] and response.json()["event"] == "lead.create"
    assert not Subscription.objects.filter(pk=created["id"]).exists()


def test_another_projects_subscription_cannot_be_read_changed_or_deleted(tiledesk, project, make_user):
    """routes/subscription.js:55, 69 and 128 find the subscription by id alone, whatever project the URL
    names: an admin of one project can change or delete any project's subscriptions. Here they are
    404 outside their own project."""
    stranger = make_user("stranger")
    theirs = Project.objects.create(name="Theirs", created_by=stranger)
    ProjectUser.objects.create(project=theirs, user=stranger, email=stranger.email, role=Role.OWNER)
    sub = Subscription.objects.create(project=theirs, event="lead.create", target=TARGET, secret="whsec_theirs")

    for method, body in (("get", None), ("put", {"target": "https://evil.example.com/"}), ("delete", None)):
        response = tiledesk(method, f"/{project.pk}/subscriptions/{sub.pk}", body)
        assert response.status_code == 404, method
        assert response.json()["success"] is False
    sub.refresh_from_db()
    assert sub.target == TARGET


def test_history_pages_the_attempts_newest_first_40_a_page_from_page_0(tiledesk, project):
    """routes/subscription.js:96-121: `limit = 40`, `page` from 0, sorted by createdAt desc, a plain array."""
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

    first = tiledesk("get", f"/{project.pk}/subscriptions/history")
    assert first.status_code == 200
    assert [row["attempt"] for row in first.json()] == list(range(42, 2, -1))
    assert tiledesk("get", f"/v3/{project.pk}/subscriptions/history?page=0").json() == first.json()
    assert [row["attempt"] for row in tiledesk("get", f"/{project.pk}/subscriptions/history?page=1").json()] == [2, 1]
    assert tiledesk("get", f"/{project.pk}/subscriptions/history?page=99999999999999999999").json() == []


def test_trailing_slashes_are_optional(tiledesk, project):
    created = tiledesk("post", f"/{project.pk}/subscriptions/", {"event": "lead.create", "target": TARGET})
    assert created.status_code == 200
    assert tiledesk("get", f"/v3/{project.pk}/subscriptions/{created.json()['id']}/").status_code == 200
    assert tiledesk("get", f"/{project.pk}/subscriptions/history/").status_code == 200


def test_invalid_input_is_400_in_tiledesks_shape_naming_the_fields(tiledesk, project):
    """Tiledesk's errors are `{success: false, msg}` (routes/subscription.js:32, 57, 72); Tiledesk saves
    any event and any target (routes/subscription.js:15-20), and answers 500 when one is missing.
    Here both are checked, and the fields stay named beside the message."""
    response = tiledesk("post", f"/{project.pk}/subscriptions", {"event": "nope", "target": "ftp://x"})

    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and set(body["errors"]) == {"event", "target"}
    assert "event: " in body["msg"] and "target: " in body["msg"]


def test_a_missing_body_is_400_not_500(tiledesk, project):
    response = tiledesk("post", f"/{project.pk}/subscriptions", {})
    assert response.status_code == 400 and response.json()["success"] is False


def test_without_credentials_is_401_with_a_challenge(tiledesk, project):
    """app.js:588: `passport.authenticate(['basic', 'jwt'])` answers 401 to a call without credentials."""
    response = tiledesk("get", f"/{project.pk}/subscriptions", auth="")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["success"] is False


def test_a_wrong_password_is_401(tiledesk, project, owner):
    """middleware/passport.js:434-443: a wrong password fails the basic strategy (401)."""
    response = tiledesk("get", f"/{project.pk}/subscriptions", auth=basic(owner.email, "wrong"))
    assert response.status_code == 401 and response.json()["success"] is False


def test_basic_auth_takes_the_email_in_any_case_and_the_username(tiledesk, project, owner):
    """middleware/passport.js:421-424: the basic strategy lowercases the name and looks the e-mail up."""
    for name in (owner.email, owner.email.upper(), owner.username):
        assert tiledesk("get", f"/{project.pk}/subscriptions", auth=basic(name)).status_code == 200, name


def test_token_auth_works_on_the_tiledesk_paths(tiledesk, project, owner):
    response = tiledesk("get", f"/{project.pk}/subscriptions", auth=f"Token {owner.auth_token.key}")
    assert response.status_code == 200


def test_agents_may_not_manage_subscriptions(tiledesk, project, add_member):
    """app.js:588: `roleChecker.hasRole('admin')`; middleware/has-role.js:247 answers an agent
    `403 {success: false, msg: 'you dont have the required role.'}`."""
    agent = add_member("agent", Role.AGENT)
    response = tiledesk(
        "post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}, basic(agent.email)
    )
    assert response.status_code == 403
    assert response.json()["success"] is False and response.json()["msg"]


def test_admins_may(tiledesk, project, add_member):
    admin = add_member("admin", Role.ADMIN)
    response = tiledesk(
        "post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": TARGET}, basic(admin.email)
    )
    assert response.status_code == 200


def test_other_projects_are_404(tiledesk, project, make_user):
    """middleware/has-role.js:291 answers a non-member 403 'you dont belong to the project.'; here a
    project one is not a member of is 404, as on /api/ (its existence is not revealed)."""
    stranger = make_user("stranger")
    response = tiledesk("get", f"/{project.pk}/subscriptions", auth=basic(stranger.email))
    assert response.status_code == 404 and response.json()["success"] is False


def test_the_api_keeps_its_own_answers(api, project):
    """/api/ is this project's own interface: 201 for a create, 204 for a delete, DRF's error shape,
    and no deduplication (API.md, "Subscriptions")."""
    url = f"/api/projects/{project.pk}/subscriptions/"
    first = api.post(url, {"event": "lead.create", "target": TARGET}, format="json")
    second = api.post(url, {"event": "lead.create", "target": TARGET}, format="json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert api.post(url, {"event": "nope", "target": TARGET}, format="json").json().keys() == {"event"}
    assert api.delete(f"{url}{first.json()['id']}/").status_code == 204


@pytest.mark.parametrize("prefix", PREFIXES)
def test_several_events_are_taken_and_a_create_again_answers_the_existing_one(tiledesk, project, prefix):
    response = tiledesk("post", f"{prefix}/{project.pk}/subscriptions", {"events": ["request.*"], "target": TARGET})
    assert response.status_code == 200
    assert response.json()["events"] == ["request.*"] and response.json()["event"] == "request.*"
    again = tiledesk("post", f"{prefix}/{project.pk}/subscriptions", {"events": ["request.*"], "target": TARGET})
    assert again.json()["id"] == response.json()["id"]


def test_a_filter_is_taken_and_a_bad_operator_is_a_tiledesk_error(tiledesk, project):
    conditions = {"department.name": "Sales"}
    made = tiledesk(
        "post", f"/{project.pk}/subscriptions", {"event": "request.create", "target": TARGET, "filter": conditions}
    )
    assert made.status_code == 200 and made.json()["filter"] == conditions
    bad = tiledesk(
        "put", f"/{project.pk}/subscriptions/{made.json()['id']}", {"filter": {"department.name": {"$like": "S"}}}
    )
    assert bad.status_code == 400
    assert bad.json()["success"] is False and "$like" in bad.json()["msg"]

"""The subscriptions (REST Hooks) API: create, read, update, delete, rotate, and its rules."""

import re
from urllib.parse import urlencode

import pytest

from subscriptions.models import Subscription
from support.models import Project, ProjectUser, Role
from tests.conftest import client_for

TARGET = "https://hooks.example.com/in"


def url(project, suffix="") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{suffix}"


def post_subscription(api, project, event="request.create", target=TARGET, **extra):
    return api.post(url(project), {"event": event, "target": target, **extra}, format="json")


def test_create_answers_201_with_the_full_secret_once(api, project, owner):
    response = post_subscription(api, project)
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", body["secret"])
    assert response["x-hook-secret"] == body["secret"]
    assert body["id"] == body["_id"] and body["event"] == "request.create" and body["target"] == TARGET
    assert body["enabled"] is True and body["id_project"] == project.pk and body["createdBy"] == str(owner.pk)
    assert body["__v"] == 0 and {"createdAt", "updatedAt"} <= set(body)


def form(body: dict) -> dict:
    return {"data": urlencode(body), "content_type": "application/x-www-form-urlencoded"}


def test_a_form_encoded_create_is_read_like_json_and_makes_an_enabled_subscription(api, project):
    """`enabled` left out of a form is left out (true by default), as in JSON; not a missing checkbox."""
    response = api.post(url(project), **form({"event": "request.create", "target": TARGET}))
    assert response.status_code == 201
    assert response.json()["enabled"] is True and Subscription.objects.get().enabled is True


def test_a_form_encoded_patch_leaves_enabled_alone_and_false_still_disables(api, project):
    created = post_subscription(api, project).json()
    kept = api.patch(url(project, f"{created['id']}/"), **form({"target": TARGET + "2"}))
    assert kept.status_code == 200 and kept.json()["enabled"] is True
    disabled = api.patch(url(project, f"{created['id']}/"), **form({"enabled": "false"}))
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False


def test_later_reads_show_the_secret_masked(api, project):
    secret = post_subscription(api, project).json()["secret"]
    listed = api.get(url(project)).json()["results"][0]
    assert listed["secret"] == f"whsec_••••{secret[-4:]}"
    assert api.get(url(project, f"{listed['id']}/")).json()["secret"] == listed["secret"]


def test_secrets_are_random(api, project):
    first = post_subscription(api, project).json()["secret"]
    second = post_subscription(api, project, event="request.update").json()["secret"]
    assert first != second


def test_rotate_secret_returns_a_new_secret_and_keeps_the_old_one_in_grace(api, project):
    created = post_subscription(api, project).json()
    response = api.post(url(project, f"{created['id']}/rotate_secret/"))
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != created["secret"] and new.startswith("whsec_")
    subscription = Subscription.objects.get(pk=created["id"])
    assert subscription.signing_secrets() == [new, created["secret"]]


def test_update_event_target_and_enabled(api, project):
    created = post_subscription(api, project).json()
    response = api.patch(
        url(project, f"{created['id']}/"),
        {"event": "request.close", "target": "https://other.example.com/x", "enabled": False},
        format="json",
    )
    assert response.status_code == 200
    assert (response.json()["event"], response.json()["enabled"]) == ("request.close", False)
    put = api.put(url(project, f"{created['id']}/"), {"event": "lead.create", "target": TARGET}, format="json")
    assert put.status_code == 200 and put.json()["event"] == "lead.create"


def test_delete_answers_204(api, project):
    created = post_subscription(api, project).json()
    assert api.delete(url(project, f"{created['id']}/")).status_code == 204
    assert not Subscription.objects.filter(pk=created["id"]).exists()


@pytest.mark.parametrize(
    "event",
    [
        "request.create",
        "message.create.request.channel.telegram",
        "event.emit.typing.start",
        "operator.select",
        "faqbot.delete",
        "project_user.invite",
    ],
)
def test_catalog_events_and_their_open_families_are_accepted(api, project, event):
    assert post_subscription(api, project, event=event).status_code == 201


@pytest.mark.parametrize(
    "event", ["request.explode", "", "message.create.request.channel.", "event.emit.", "event.emit.has space", 7]
)
def test_an_unknown_event_is_a_400_on_event(api, project, event):
    response = post_subscription(api, project, event=event)
    assert response.status_code == 400 and "event" in response.json()


@pytest.mark.parametrize(
    "target", ["not a url", "ftp://example.com/x", "/relative/path", "http://", "javascript:alert(1)", ""]
)
def test_a_bad_target_is_a_400_on_target(api, project, target):
    response = post_subscription(api, project, target=target)
    assert response.status_code == 400 and "target" in response.json()


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://localhost/x",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_private_targets_are_refused_unless_allowed(api, project, settings, target):
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = False
    response = post_subscription(api, project, target=target)
    assert response.status_code == 400 and "target" in response.json()
    settings.HOOKS_ALLOW_PRIVATE_TARGETS = True
    assert post_subscription(api, project, target=target).status_code == 201


def test_a_second_operator_select_subscription_is_a_400(api, project):
    assert post_subscription(api, project, event="operator.select", enabled=False).status_code == 201
    response = post_subscription(api, project, event="operator.select", target="https://b.example.com/")
    assert response.status_code == 400
    assert "operator.select" in response.json()["event"][0]


def test_invalid_json_body_is_a_400(api, project):
    response = api.generic("POST", url(project), b'{"event": ', content_type="application/json")
    assert response.status_code == 400


def test_another_projects_subscription_is_404(api, project, make_user):
    stranger = make_user("zed")
    other = Project.objects.create(name="Other", created_by=stranger)
    ProjectUser.objects.create(project=other, user=stranger, email=stranger.email, role=Role.OWNER)
    theirs = post_subscription(client_for(stranger), other).json()
    assert api.get(url(project, f"{theirs['id']}/")).status_code == 404
    assert api.delete(url(project, f"{theirs['id']}/")).status_code == 404
    assert api.get(url(other)).status_code == 404
    assert Subscription.objects.filter(pk=theirs["id"]).exists()


def test_agents_cannot_manage_or_read_subscriptions(agent_api, project):
    assert agent_api.get(url(project)).status_code == 403
    assert post_subscription(agent_api, project).status_code == 403
    assert agent_api.get(url(project, "logs/")).status_code == 403


def test_admins_manage_subscriptions(project, add_member):
    admin_api = client_for(add_member("adam", Role.ADMIN))
    assert post_subscription(admin_api, project).status_code == 201


def test_non_members_get_404_for_subscriptions_and_logs(stranger_api, project):
    assert stranger_api.get(url(project)).status_code == 404
    assert stranger_api.get(url(project, "logs/")).status_code == 404
    assert stranger_api.get(f"/api/projects/{project.pk}/deliveries/").status_code == 404


def test_the_event_catalog_lists_every_name_with_its_payload_model(client, db):
    catalog = client.get("/api/events/").json()
    by_name = {event["name"]: event for event in catalog}
    for name in [
        "request.create",
        "request.update",
        "request.close",
        "message.create",
        "lead.create",
        "faq.create",
        "faqbot.delete",
        "department.update",
        "project_user.invite",
        "group.delete",
        "event.emit",
        "operator.select",
        "message.create.request.channel.<channel>",
        "event.emit.<name>",
    ]:
        assert name in by_name, name
        assert by_name[name]["description"] and by_name[name]["payload"]

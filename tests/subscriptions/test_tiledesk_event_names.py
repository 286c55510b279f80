"""Event names Tiledesk's notifier delivers to a project's subscriptions are accepted and published;
names it never delivers to them stay refused."""

import pytest

from subscriptions import events
from tests.conftest import received
from tests.factories import create_request, subscribed

from .test_delivery import base

# services/subscriptionNotifier.js:228 (message.create.**.channel.*), :494 (project.update), :510
# (project.delete); services/subscriptionNotifierQueued.js:116-118 (project_user.update.agent).
DELIVERED_BY_TILEDESK = [
    "message.create.channel.telegram",
    "message.create.channel.chat21",
    "project.update",
    "project.delete",
    "project_user.update.agent",
]

# user.signup carries no project (services/subscriptionNotifier.js:350-356: only global
# subscriptions match); project.create fires before any of the project's subscriptions can exist
# (:486-491); channelOutbound does not match the notifier's message.create.**.channel.* (:228);
# project.downgrade is about plans, which do not exist here; the others are emitted but never
# subscribed to by the notifier.
NEVER_DELIVERED_TO_A_PROJECT = [
    "user.signup",
    "user.signin",
    "project.create",
    "project.downgrade",
    "message.create.request.channelOutbound.telegram",
    "project_user.update.user",
    "message.update",
    "message.create.first",
    "message.create.from.requester",
    "message.create.channel.",
    "message.create.channel.two words",
]


@pytest.mark.parametrize("name", DELIVERED_BY_TILEDESK)
def test_names_tiledesk_delivers_are_accepted(api, project, name):
    response = api.post(
        f"{base(project)}/subscriptions/", {"event": name, "target": "https://hooks.example.com/"}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("name", NEVER_DELIVERED_TO_A_PROJECT)
def test_names_tiledesk_never_delivers_to_a_project_are_400_on_event(api, project, name):
    response = api.post(
        f"{base(project)}/subscriptions/", {"event": name, "target": "https://hooks.example.com/"}, format="json"
    )
    assert response.status_code == 400 and set(response.json()) == {"event"}


@pytest.mark.parametrize("name", ["message.create.channel.<channel>", "project.update", "project.delete"])
def test_the_catalog_lists_them_with_an_example(client, db, name):
    rows = {row["name"]: row for row in client.get("/api/events/").json()}
    assert rows[name]["example"]["id_project"]
    assert "project_user.update.agent" in rows


def test_the_channel_example_names_its_channel(client, db):
    assert events.example_payload("message.create.channel.whatsapp")["channel"] == {"name": "whatsapp"}


def test_a_message_reaches_the_subscribers_of_its_channel_only(api, project, httpserver, on_commit):
    """event/messageEvent.js:141: `message.create.channel.` + the message's channel."""
    httpserver.expect_request("/tg").respond_with_data("ok")
    httpserver.expect_request("/wa").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/tg"), event="message.create.channel.telegram")
    subscribed(api, project.pk, httpserver.url_for("/wa"), event="message.create.channel.whatsapp")
    request = create_request(api, project, on_commit, channel="telegram")
    with on_commit():
        sent = api.post(f"{base(project)}/requests/{request['id']}/messages/", {"text": "hi"}, format="json").json()

    [got] = received(httpserver)
    assert got["path"] == "/tg" and got["json"]["hook"]["event"] == "message.create.channel.telegram"
    assert got["json"]["payload"] == sent


def test_a_teammate_update_reaches_both_update_subscriptions_once_each(api, project, httpserver, on_commit, add_member):
    """event/authEvent.js:18-26: a teammate's project_user.update is followed by project_user.update.agent."""
    httpserver.expect_request("/update").respond_with_data("ok")
    httpserver.expect_request("/agent").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/update"), event="project_user.update")
    subscribed(api, project.pk, httpserver.url_for("/agent"), event="project_user.update.agent")
    add_member("carol")
    membership = api.get(f"{base(project)}/project_users/?role=agent").json()["results"][0]
    with on_commit():
        updated = api.patch(
            f"{base(project)}/project_users/{membership['id']}/", {"user_available": False}, format="json"
        ).json()

    got = {g["path"]: g["json"] for g in received(httpserver)}
    assert sorted(got) == ["/agent", "/update"]
    assert got["/agent"]["payload"] == got["/update"]["payload"] == updated


def test_a_project_rename_publishes_project_update_with_its_id_as_id_project(api, project, httpserver, on_commit):
    """services/subscriptionNotifier.js:494-499: the project as JSON, with `id_project` = its `_id`."""
    httpserver.expect_request("/project").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/project"), event="project.update")
    with on_commit():
        renamed = api.patch(f"/api/projects/{project.pk}/", {"name": "Acme 2"}, format="json").json()

    [got] = received(httpserver)
    payload = got["json"]["payload"]
    assert got["json"]["hook"]["event"] == "project.update"
    assert payload == {**{k: v for k, v in renamed.items() if k != "role"}, "id_project": project.pk}
    assert payload["name"] == "Acme 2"

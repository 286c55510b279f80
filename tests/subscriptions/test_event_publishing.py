"""Every domain change publishes the catalog's names with the object as the API serializes it,
and only once the change commits."""

import pytest
from django.db import transaction

from subscriptions.publishing import event_published
from support.models import Department, FaqKb, Lead, Request


@pytest.fixture
def published():
    """The events published (after commit) during a test, as (name, payload) pairs."""
    seen: list[tuple[str, dict]] = []

    def listener(sender, names, payload, **kwargs):
        seen.extend((name, payload) for name in names)

    event_published.connect(listener)
    yield seen
    event_published.disconnect(listener)


def base(project) -> str:
    return f"/api/projects/{project.pk}"


def names(published) -> list[str]:
    return [name for name, _ in published]


def test_creating_a_request_publishes_request_create_and_lead_create(api, project, published, on_commit):
    with on_commit():
        response = api.post(
            f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json"
        )
    assert names(published) == ["lead.create", "request.create"]
    assert published[1][1] == response.json()
    assert published[0][1] == response.json()["lead"]


def test_updating_a_request_publishes_request_update_with_the_new_state(api, project, published, on_commit):
    created = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json")
    with on_commit():
        response = api.patch(
            f"{base(project)}/requests/{created.json()['id']}/", {"attributes": {"a": 1}}, format="json"
        )
    assert names(published) == ["request.update"]
    assert published[0][1] == response.json()


def test_closing_a_request_publishes_request_close_only(api, project, published, on_commit):
    created = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json")
    with on_commit():
        response = api.post(f"{base(project)}/requests/{created.json()['id']}/close/")
    assert names(published) == ["request.close"]
    assert published[0][1]["status"] == 1000
    assert published[0][1] == {**response.json(), "messages": []}


def test_request_close_carries_the_conversations_messages_as_plain_rows(api, project, published, on_commit):
    request = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json")
    url = f"{base(project)}/requests/{request.json()['id']}"
    sent = [api.post(f"{url}/messages/", {"text": text}, format="json").json() for text in ("one", "two")]
    with on_commit():
        api.post(f"{url}/close/")
    [(_, payload)] = published
    rows = [{key: value for key, value in message.items() if key != "request"} for message in sent]
    assert payload["messages"] == rows
    assert [row["text"] for row in payload["messages"]] == ["one", "two"]


def test_a_message_publishes_message_create_and_its_channel_sub_events(api, project, published, on_commit):
    """As Tiledesk's event/messageEvent.js:139-141 emits them (channelOutbound is not delivered to
    subscriptions: services/subscriptionNotifier.js:228 listens to message.create.**.channel.*)."""
    created = api.post(
        f"{base(project)}/requests/",
        {"first_text": "hi", "lead": {"fullname": "Ann"}, "channel": {"name": "telegram"}},
        format="json",
    )
    with on_commit():
        response = api.post(f"{base(project)}/requests/{created.json()['id']}/messages/", {"text": "yo"}, format="json")
    assert names(published) == [
        "message.create",
        "message.create.request.channel.telegram",
        "message.create.channel.telegram",
    ]
    assert all(payload == response.json() for _, payload in published)


def test_an_emitted_event_publishes_event_emit_and_its_named_sub_event(api, project, published, on_commit):
    with on_commit():
        response = api.post(f"{base(project)}/events/", {"name": "typing.start"}, format="json")
    assert names(published) == ["event.emit", "event.emit.typing.start"]
    assert published[0][1] == response.json()


@pytest.mark.parametrize(
    "path, body, prefix",
    [
        ("departments", {"name": "Sales"}, "department"),
        ("faq_kb", {"name": "Bot"}, "faqbot"),
        ("groups", {"name": "Tier 1"}, "group"),
    ],
)
def test_settings_objects_publish_create_update_delete(api, project, published, on_commit, path, body, prefix):
    with on_commit():
        created = api.post(f"{base(project)}/{path}/", body, format="json")
    url = f"{base(project)}/{path}/{created.json()['id']}/"
    with on_commit():
        updated = api.patch(url, {"name": "Renamed"}, format="json")
    with on_commit():
        api.delete(url)
    assert names(published) == [f"{prefix}.create", f"{prefix}.update", f"{prefix}.delete"]
    assert published[0][1] == created.json()
    assert published[1][1] == updated.json()
    assert published[2][1]["id"] == created.json()["id"]


def test_faqs_publish_create_update_delete(api, project, published, on_commit):
    bot = FaqKb.objects.create(project=project, name="Bot")
    with on_commit():
        created = api.post(
            f"{base(project)}/faqs/", {"id_faq_kb": bot.pk, "question": "Q", "answer": "A"}, format="json"
        )
    url = f"{base(project)}/faqs/{created.json()['id']}/"
    with on_commit():
        api.patch(url, {"answer": "B"}, format="json")
    with on_commit():
        api.delete(url)
    assert names(published) == ["faq.create", "faq.update", "faq.delete"]
    assert published[0][1] == created.json()


def test_teammates_publish_invite_update_delete(api, project, published, on_commit):
    with on_commit():
        invited = api.post(
            f"{base(project)}/project_users/", {"email": "new@example.com", "role": "agent"}, format="json"
        )
    url = f"{base(project)}/project_users/{invited.json()['id']}/"
    with on_commit():
        api.patch(url, {"user_available": False}, format="json")
    with on_commit():
        api.delete(url)
    assert names(published) == [
        "project_user.invite",
        "project_user.update",
        "project_user.update.agent",
        "project_user.delete",
    ]
    assert published[0][1] == invited.json()
    assert published[1][1]["user_available"] is False


def test_a_lead_publishes_lead_create(api, project, published, on_commit):
    with on_commit():
        created = api.post(f"{base(project)}/leads/", {"fullname": "Ann"}, format="json")
    assert published == [("lead.create", created.json())]


def test_nothing_is_published_when_the_transaction_rolls_back(project, published, on_commit):
    with on_commit():
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                lead = Lead.objects.create(project=project, fullname="Ghost")
                Request.objects.create(project=project, lead=lead, first_text="boo", request_id="r-ghost")
                Department.objects.create(project=project, name="Ghost dept")
                raise RuntimeError("abort")
    assert published == []
    assert not Request.objects.filter(request_id="r-ghost").exists()


def test_a_failing_api_call_publishes_nothing(api, project, published, on_commit):
    with on_commit():
        api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": "no-such-lead"}, format="json")
    assert published == []

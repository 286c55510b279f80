"""Several events per subscription: `events` with names and wildcards, one delivery per occurrence
per subscription, named by the most specific name it takes."""

import pytest

from subscriptions.models import Delivery, Subscription
from tests.conftest import received
from tests.factories import create_request, subscribed

TARGET = "https://hooks.example.com/in"


def url(project, suffix="") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{suffix}"


def subscribe(api, project, target=TARGET, **body) -> dict:
    return subscribed(api, project.pk, target, **body)


def send_message(api, project, on_commit, request_id: str) -> None:
    with on_commit():
        response = api.post(
            f"/api/projects/{project.pk}/requests/{request_id}/messages/", {"text": "hi"}, format="json"
        )
    assert response.status_code == 201


def test_events_read_back_with_event_as_their_first_entry(api, project):
    body = subscribe(api, project, events=["message.create", "request.*"])
    assert body["events"] == ["message.create", "request.*"] and body["event"] == "message.create"


def test_a_subscription_made_with_event_reads_events_of_that_one_name(api, project):
    body = subscribe(api, project, event="request.create")
    assert body["events"] == ["request.create"]


def test_without_event_or_events_the_create_is_400_on_event(api, project):
    response = api.post(url(project), {"target": TARGET}, format="json")
    assert response.status_code == 400 and "event" in response.json()


@pytest.mark.parametrize("pattern", ["request.creat", "nothing.*", "request*", "operator.*x"])
def test_an_unknown_name_or_wildcard_is_400_naming_it(api, project, pattern):
    response = api.post(url(project), {"target": TARGET, "events": ["request.create", pattern]}, format="json")
    assert response.status_code == 400
    assert pattern in " ".join(response.json()["events"])


def test_operator_select_cannot_share_a_subscription(api, project):
    response = api.post(url(project), {"target": TARGET, "events": ["operator.select", "request.*"]}, format="json")
    assert response.status_code == 400 and "operator.select" in " ".join(response.json()["events"])


def test_patching_events_changes_event_too(api, project):
    created = subscribe(api, project, event="request.create")
    response = api.patch(url(project, f"{created['id']}/"), {"events": ["lead.create", "faq.*"]}, format="json")
    assert response.status_code == 200
    assert response.json()["event"] == "lead.create" and response.json()["events"] == ["lead.create", "faq.*"]
    assert Subscription.objects.get().matches_many is True


def test_a_wildcard_subscription_receives_every_event_under_its_prefix(api, project, httpserver, on_commit):
    httpserver.expect_request("/wild").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/wild"), events=["request.*"])
    request = create_request(api, project, on_commit)
    with on_commit():
        api.patch(f"/api/projects/{project.pk}/requests/{request['id']}/", {"attributes": {"a": 1}}, format="json")

    assert [got["json"]["hook"]["event"] for got in received(httpserver, "/wild")] == [
        "request.create",
        "request.update",
    ]


def test_a_message_makes_one_delivery_named_by_its_most_specific_matching_name(api, project, httpserver, on_commit):
    httpserver.expect_request("/messages").respond_with_data("ok")
    subscription = subscribe(api, project, httpserver.url_for("/messages"), events=["message.*", "message.create"])
    request = create_request(api, project, on_commit, channel="whatsapp")
    send_message(api, project, on_commit, request["id"])

    [got] = received(httpserver, "/messages")
    assert got["json"]["hook"]["event"] == "message.create.request.channel.whatsapp"
    assert got["json"]["hook"]["id"] == subscription["id"] and got["json"]["payload"]["text"] == "hi"
    assert Delivery.objects.get().event == "message.create.request.channel.whatsapp"


def test_several_exact_names_each_deliver_to_the_one_subscription(api, project, httpserver, on_commit):
    httpserver.expect_request("/crm").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/crm"), events=["lead.create", "request.create"])
    create_request(api, project, on_commit)

    assert sorted(got["json"]["hook"]["event"] for got in received(httpserver, "/crm")) == [
        "lead.create",
        "request.create",
    ]


def test_star_takes_every_published_name_but_not_a_disabled_subscription(api, project, httpserver, on_commit):
    httpserver.expect_request("/all").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/all"), events=["*"])
    subscribe(api, project, httpserver.url_for("/off"), events=["*"], enabled=False)
    create_request(api, project, on_commit)

    assert sorted(got["json"]["hook"]["event"] for got in received(httpserver, "/all")) == [
        "lead.create",
        "request.create",
    ]
    assert received(httpserver, "/off") == []


def test_a_test_event_of_a_wildcard_subscription_is_the_first_name_it_takes(api, project, httpserver, on_commit):
    httpserver.expect_request("/test").respond_with_data("ok")
    created = subscribe(api, project, httpserver.url_for("/test"), events=["faq.*"])
    with on_commit():
        response = api.post(url(project, f"{created['id']}/test/"))

    assert response.status_code == 202 and response.json()["event"] == "faq.create"
    [got] = received(httpserver, "/test")
    assert got["json"]["hook"]["event"] == "faq.create" and got["json"]["payload"]["question"]

"""Payload filters: validated when saved, checked when the event is published (no delivery row for
an event that does not match), and shown by the test event."""

import pytest

from subscriptions import payload_filter
from subscriptions.models import Delivery
from tests.conftest import received
from tests.factories import create_request, subscribed

TARGET = "https://hooks.example.com/in"


def url(project, suffix="") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{suffix}"


def subscribe(api, project, target=TARGET, **body) -> dict:
    return subscribed(api, project.pk, target, **body)


def test_the_filter_reads_back_as_saved(api, project):
    conditions = {"channel.name": {"$in": ["whatsapp"]}, "attributes.vip": True}
    assert subscribe(api, project, filter=conditions)["filter"] == conditions


@pytest.mark.parametrize(
    ("conditions", "named"),
    [
        ({"channel.name": {"$like": "x"}}, "$like"),
        ({"channel..name": "x"}, "channel..name"),
        ({"status": {"$gt": [1]}}, "$gt"),
        ({"status": {"$in": "whatsapp"}}, "$in"),
        ({"first_text": {"$regex": "(a+)+$"}}, "$regex"),
        ({"first_text": {"$regex": "("}}, "$regex"),
        ({"attributes": {"$exists": "yes"}}, "$exists"),
    ],
)
def test_a_bad_path_or_operator_is_400_naming_it(api, project, conditions, named):
    response = api.post(
        url(project), {"event": "request.create", "target": TARGET, "filter": conditions}, format="json"
    )
    assert response.status_code == 400
    assert named in " ".join(response.json()["filter"])


def test_a_filter_that_is_not_an_object_is_400(api, project):
    response = api.post(url(project), {"event": "request.create", "target": TARGET, "filter": ["x"]}, format="json")
    assert response.status_code == 400 and "filter" in response.json()


def test_only_matching_events_are_delivered_and_others_make_no_row(api, project, httpserver, on_commit):
    httpserver.expect_request("/whatsapp").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/whatsapp"), filter={"channel.name": {"$in": ["whatsapp"]}})
    create_request(api, project, on_commit, channel="chat21")
    wanted = create_request(api, project, on_commit, channel="whatsapp")

    [got] = received(httpserver, "/whatsapp")
    assert got["json"]["payload"]["id"] == wanted["id"]
    assert Delivery.objects.count() == 1


def test_equality_on_a_nested_object_and_an_attribute(api, project, httpserver, on_commit):
    httpserver.expect_request("/vip").respond_with_data("ok")
    subscribe(api, project, httpserver.url_for("/vip"), filter={"attributes.vip": True, "lead.fullname": "Ann"})
    create_request(api, project, on_commit, attributes={"vip": 1})
    vip = create_request(api, project, on_commit, attributes={"vip": True})

    assert [got["json"]["payload"]["id"] for got in received(httpserver, "/vip")] == [vip["id"]]


def test_the_test_event_says_whether_the_example_meets_the_filter(api, project, httpserver, on_commit):
    httpserver.expect_request("/test").respond_with_data("ok")
    sales = subscribe(api, project, httpserver.url_for("/test"), filter={"department.name": "Sales"})
    support = subscribe(api, project, httpserver.url_for("/test"), filter={"department.name": "Support"})
    with on_commit():
        matched = api.post(url(project, f"{sales['id']}/test/"))
        unmatched = api.post(url(project, f"{support['id']}/test/"))

    assert matched.status_code == unmatched.status_code == 202
    assert matched.json()["filter_matches"] is True and unmatched.json()["filter_matches"] is False
    assert len(received(httpserver, "/test")) == 2  # sent either way


def test_removing_the_filter_takes_every_event_again(api, project, httpserver, on_commit):
    httpserver.expect_request("/all").respond_with_data("ok")
    created = subscribe(api, project, httpserver.url_for("/all"), filter={"channel.name": "whatsapp"})
    assert api.patch(url(project, f"{created['id']}/"), {"filter": None}, format="json").json()["filter"] is None
    create_request(api, project, on_commit)
    assert len(received(httpserver, "/all")) == 1


PAYLOAD = {
    "status": 200,
    "first_text": "Refund please",
    "channel": {"name": "whatsapp"},
    "participants": ["2", "3"],
    "messages": [{"text": "a"}, {"text": "refund"}],
    "attributes": {"vip": True, "score": 7.5},
    "closed_at": None,
}


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"channel.name": "whatsapp"}, True),
        ({"channel.name": "chat21"}, False),
        ({"status": {"$gte": 200, "$lt": 1000}}, True),
        ({"status": {"$gt": 200}}, False),
        ({"participants": "3"}, True),
        ({"participants": {"$nin": ["4"]}}, True),
        ({"participants": {"$ne": "2"}}, False),
        ({"messages.text": {"$regex": "^ref"}}, True),
        ({"messages.1.text": "refund"}, True),
        ({"first_text": {"$regex": "(?i)^refund"}}, True),
        ({"attributes.missing": {"$exists": False}}, True),
        ({"closed_at": {"$exists": True}}, True),
        ({"closed_at": None}, True),
        ({"attributes.vip": 1}, False),
        ({"attributes.score": {"$lte": 7.5}}, True),
        ({"attributes.missing": {"$ne": "x"}}, True),
        ({"attributes.missing": {"$in": ["x"]}}, False),
    ],
)
def test_operators_on_a_payload(conditions, expected):
    assert payload_filter.matches(payload_filter.validate(conditions), PAYLOAD) is expected

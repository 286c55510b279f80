"""Bad input anywhere in the API is a 400 naming the field (or `{"detail"}` for a body that cannot
be read), never a 500: bodies nested thousands deep, NUL and lone surrogates in JSON strings (which
PostgreSQL cannot store), and dates that do not exist or cannot be expressed in UTC."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from subscriptions.models import Subscription

DEEP = ("[" * 5000 + "]" * 5000).encode()
IMPOSSIBLE_DATES = [
    "2026-02-30T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-01T25:00:00Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2026-01-01T00:00:00+99:00",
    "not a date",
]


@pytest.fixture
def subscription(project, owner):
    return Subscription.objects.create(
        project=project, event="request.create", target="https://example.com/hook", created_by=owner
    )


def write_routes(project, subscription) -> list[tuple[str, str]]:
    """A route of each kind that takes a JSON body, with its method."""
    base = f"/api/projects/{project.pk}"
    return [
        ("post", f"{base}/subscriptions/"),
        ("patch", f"{base}/subscriptions/{subscription.pk}/"),
        ("post", f"{base}/subscriptions/{subscription.pk}/recover/"),
        ("post", f"{base}/requests/"),
        ("post", f"{base}/leads/"),
        ("post", f"{base}/events/"),
        ("post", f"{base}/automations/"),
        ("post", f"/{project.pk}/subscriptions"),
    ]


def send(api: APIClient, method: str, path: str, body: bytes):
    return getattr(api, method)(path, data=body, content_type="application/json")


def errors_of(response) -> dict:
    """The field errors of a 400: DRF's body on /api/, `errors` inside Tiledesk's
    `{"success": false, "msg", "errors"}` on Tiledesk's own paths."""
    body = response.json()
    return body["errors"] if body.get("success") is False else body


def test_a_body_nested_5000_deep_is_400_on_every_route(api, project, subscription):
    for method, path in write_routes(project, subscription):
        response = send(api, method, path, DEEP)
        assert response.status_code == 400, (path, response.status_code)
        body = response.json()
        assert "nested deeper" in body.get("detail", body.get("msg", "")), path


def test_a_body_as_deep_as_allowed_is_read(api, project):
    body = json.dumps({"name": "deep.enough", "attributes": {"a": [[[[[[1]]]]]]}}).encode()
    assert send(api, "post", f"/api/projects/{project.pk}/events/", body).status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"name": "x\u0000y"}, "name", "Null characters"),
        ({"name": "ok", "attributes": {"note": "a\u0000b"}}, "attributes", "attributes.note"),
        ({"name": "ok", "attributes": {"k\u0000": 1}}, "attributes", "attributes"),
        ({"name": "ok", "attributes": {"list": ["fine", "x\ud800"]}}, "attributes", "attributes.list[1]"),
        ({"name": "x\udfff"}, "name", "name"),
    ],
)
def test_nul_and_lone_surrogates_in_json_strings_are_400_naming_the_field(api, project, body, field, fragment):
    raw = json.dumps(body).encode()  # \u0000 and \ud800 travel as JSON escapes
    response = send(api, "post", f"/api/projects/{project.pk}/events/", raw)
    assert response.status_code == 400, response.content
    messages = response.json()[field]
    assert any(fragment in message for message in messages), messages


def test_nul_in_an_automation_flow_is_400_naming_the_flow(api, project):
    flow = {"steps": [{"action": "log", "message": "a\u0000b"}]}
    raw = json.dumps({"name": "x", "flow": flow}).encode()
    response = send(api, "post", f"/api/projects/{project.pk}/automations/", raw)
    assert response.status_code == 400 and "flow.steps[0].message" in response.json()["flow"][0]


@pytest.mark.parametrize("moment", IMPOSSIBLE_DATES)
@pytest.mark.parametrize("bound", ["since", "until"])
def test_an_impossible_date_in_a_filter_is_400_naming_it(api, project, subscription, moment, bound):
    automation = make_automation_for(project)
    base = f"/api/projects/{project.pk}"
    for path in (
        f"{base}/subscriptions/logs/",
        f"{base}/subscriptions/history/",
        f"{base}/deliveries/",
        f"{base}/automations/{automation.pk}/runs/",
        f"/{project.pk}/subscriptions/history",
    ):
        response = api.get(path, {bound: moment})
        assert response.status_code == 400, (path, response.status_code)
        assert bound in errors_of(response), (path, response.json())


@pytest.mark.parametrize("moment", IMPOSSIBLE_DATES)
def test_an_impossible_date_in_a_body_is_400_naming_it(api, project, subscription, moment):
    path = f"/api/projects/{project.pk}/subscriptions/{subscription.pk}/recover/"
    response = api.post(path, {"since": moment}, format="json")
    assert response.status_code == 400 and "since" in response.json()


@pytest.mark.parametrize("moment", IMPOSSIBLE_DATES)
def test_an_impossible_date_on_the_debug_page_feed_is_400(project, owner, moment):
    automation = make_automation_for(project)
    browser = Client()
    browser.force_login(owner)
    response = browser.get(f"/automations/{automation.pk}/debug/runs.json", {"since": moment})
    assert response.status_code == 400 and "since" in response.json()


def make_automation_for(project):
    from automations.models import Automation

    return Automation.objects.create(project=project, name="a", flow={"steps": []})

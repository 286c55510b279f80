"""Custom headers and target auth: sent with every delivery, write-only (masked on read, a masked
value sent back keeps the stored one), encrypted at rest, never in the log, the envelope or the
admin; and no credentials inside a target URL."""

import base64

import pytest
from werkzeug import Response

from subscriptions.models import Attempt, Subscription
from subscriptions.target_credentials import MASK
from tests.conftest import received
from tests.factories import create_request, subscribed

TARGET = "https://hooks.example.com/in"
TOKEN = "tok_live_9f8e7d6c5b4a"
API_KEY = "key-0123456789abcdef"


def url(project, suffix="") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{suffix}"


def subscribe(api, project, target=TARGET, **body) -> dict:
    return subscribed(api, project.pk, target, **body)


def test_headers_and_bearer_auth_are_sent_with_the_delivery(api, project, httpserver, on_commit):
    httpserver.expect_request("/gw").respond_with_data("ok")
    subscribe(
        api, project, httpserver.url_for("/gw"), headers={"X-Api-Key": API_KEY}, auth={"type": "bearer", "token": TOKEN}
    )
    create_request(api, project, on_commit)

    [got] = received(httpserver, "/gw")
    assert got["headers"]["x-api-key"] == API_KEY
    assert got["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert got["headers"]["webhook-signature"].startswith("v1,")


def test_basic_auth_is_sent_as_an_authorization_header(api, project, httpserver, on_commit):
    httpserver.expect_request("/basic").respond_with_data("ok")
    subscribe(
        api, project, httpserver.url_for("/basic"), auth={"type": "basic", "username": "crm", "password": "pw1234"}
    )
    create_request(api, project, on_commit)

    [got] = received(httpserver, "/basic")
    assert got["headers"]["authorization"] == "Basic " + base64.b64encode(b"crm:pw1234").decode()


def test_values_are_masked_on_every_read(api, project):
    created = subscribe(api, project, headers={"X-Api-Key": API_KEY}, auth={"type": "bearer", "token": TOKEN})
    read = api.get(url(project, f"{created['id']}/")).json()
    for body in (created, read, api.get(url(project)).json()["results"][0]):
        assert body["headers"] == {"X-Api-Key": MASK}
        assert body["auth"] == {"type": "bearer", "token": MASK}
        assert API_KEY not in str(body) and TOKEN not in str(body)


def test_a_masked_value_sent_back_keeps_the_stored_one(api, project, httpserver, on_commit):
    httpserver.expect_request("/kept").respond_with_data("ok")
    created = subscribe(
        api,
        project,
        httpserver.url_for("/kept"),
        headers={"X-Api-Key": API_KEY},
        auth={"type": "basic", "username": "crm", "password": "pw1234"},
    )
    read = api.get(url(project, f"{created['id']}/")).json()
    changed = {**read, "headers": {**read["headers"], "X-Tenant": "acme"}}
    assert api.put(url(project, f"{created['id']}/"), changed, format="json").status_code == 200
    create_request(api, project, on_commit)

    [got] = received(httpserver, "/kept")
    assert got["headers"]["x-api-key"] == API_KEY and got["headers"]["x-tenant"] == "acme"
    assert got["headers"]["authorization"] == "Basic " + base64.b64encode(b"crm:pw1234").decode()


def test_values_are_encrypted_at_rest(api, project):
    subscribe(api, project, headers={"X-Api-Key": API_KEY}, auth={"type": "bearer", "token": TOKEN})
    stored = Subscription.objects.values("headers_sealed", "auth_sealed").get()
    assert stored["headers_sealed"] and stored["auth_sealed"]
    assert API_KEY not in str(stored) and TOKEN not in str(stored)


def test_values_never_reach_the_log_even_when_the_receiver_echoes_them(api, project, httpserver, on_commit):
    def echo(request):
        return Response(f"{request.headers.get('X-Api-Key')} {request.headers.get('Authorization')}", status=200)

    httpserver.expect_request("/echo").respond_with_handler(echo)
    subscribe(
        api,
        project,
        httpserver.url_for("/echo"),
        headers={"X-Api-Key": API_KEY},
        auth={"type": "bearer", "token": TOKEN},
    )
    create_request(api, project, on_commit)

    attempt = Attempt.objects.get()
    logged = str(
        [attempt.request_headers, attempt.request_body, attempt.response_body, attempt.response_headers, attempt.error]
    )
    assert attempt.request_headers["X-Api-Key"] == attempt.request_headers["Authorization"] == "[redacted]"
    assert API_KEY not in logged and TOKEN not in logged
    assert API_KEY not in str(received(httpserver, "/echo")[0]["json"])  # nor in the envelope


@pytest.mark.parametrize("name", ["Content-Type", "host", "webhook-id", "X-Hook-Secret", "x-hook-id", "User-Agent"])
def test_protocol_headers_are_refused(api, project, name):
    response = api.post(
        url(project), {"event": "request.create", "target": TARGET, "headers": {name: "x"}}, format="json"
    )
    assert response.status_code == 400 and name in " ".join(response.json()["headers"])


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "bearer"},
        {"type": "digest", "token": "x"},
        {"type": "basic", "username": "a"},
        {"type": "bearer", "token": "x", "extra": 1},
        {"type": {"name": "bearer"}, "token": "x"},
        {"type": ["bearer"], "token": "x"},
        "Bearer x",
    ],
)
def test_an_incomplete_or_unknown_auth_is_400(api, project, auth):
    response = api.post(url(project), {"event": "request.create", "target": TARGET, "auth": auth}, format="json")
    assert response.status_code == 400 and "auth" in response.json()


def test_a_header_value_on_two_lines_is_400(api, project):
    response = api.post(
        url(project), {"event": "request.create", "target": TARGET, "headers": {"X-A": "a\r\nX-B: b"}}, format="json"
    )
    assert response.status_code == 400 and "headers" in response.json()


def test_credentials_in_the_target_url_are_refused_with_a_hint(api, project):
    response = api.post(
        url(project), {"event": "request.create", "target": "https://user:pw@hooks.example.com/in"}, format="json"
    )
    assert response.status_code == 400
    assert "auth" in " ".join(response.json()["target"])


def test_auth_null_removes_it(api, project, httpserver, on_commit):
    httpserver.expect_request("/none").respond_with_data("ok")
    created = subscribe(api, project, httpserver.url_for("/none"), auth={"type": "bearer", "token": TOKEN})
    assert api.patch(url(project, f"{created['id']}/"), {"auth": None}, format="json").json()["auth"] is None
    create_request(api, project, on_commit)
    assert "authorization" not in received(httpserver, "/none")[0]["headers"]


def test_the_admin_never_shows_the_values(api, project, make_user, client):
    created = subscribe(api, project, headers={"X-Api-Key": API_KEY}, auth={"type": "bearer", "token": TOKEN})
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/subscriptions/subscription/{created['id']}/change/")
    listing = client.get("/admin/subscriptions/subscription/")
    assert page.status_code == listing.status_code == 200
    for html in (page.content.decode(), listing.content.decode()):
        assert API_KEY not in html and TOKEN not in html
        assert Subscription.objects.get().auth_sealed not in html


def test_the_admin_refuses_credentials_in_the_target(api, project, make_user, client):
    created = subscribe(api, project)
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    response = client.post(
        f"/admin/subscriptions/subscription/{created['id']}/change/",
        {
            "project": project.pk,
            "event": "request.create",
            "events": '["request.create"]',
            "target": "https://user:pw@hooks.example.com/in",
            "enabled": "on",
        },
    )
    assert response.status_code == 200 and "Credentials in the URL" in response.content.decode()
    assert Subscription.objects.get().target == TARGET

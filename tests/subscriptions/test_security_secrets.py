"""Secrets and tokens never leak: not into delivery log rows (even when a receiver echoes what it
got), not into any API answer except the create and rotate answers, not into admin pages, and not
into log output or error messages."""

import json
import logging

import pytest
from django.contrib import admin
from rest_framework.authtoken.models import Token, TokenProxy
from werkzeug import Response

from subscriptions.models import Attempt, Delivery, Subscription
from tests.factories import subscribed
from tests.reliability.hooks import emit
from tests.support.test_access import ROUTES, UNKNOWN_ID, url_for


def echo_everything(request) -> Response:
    """A request inspector: answers with the headers it got, in its body and its own headers."""
    echoed = dict(request.headers)
    return Response(
        json.dumps({"you_sent": echoed}),
        status=500 if request.args.get("fail") else 200,
        headers={"X-Echo-Secret": request.headers.get("x-hook-secret", "")},
        content_type="application/json",
    )


@pytest.fixture
def secrets_in_play(api, project, httpserver, on_commit, caplog, settings) -> list[str]:
    """Deliveries (successful, failed, echoed back, refused by the SSRF guard) to a subscription
    whose secret was rotated; returns the secrets and API tokens that exist."""
    settings.HOOKS_RETRY_DELAYS_S = [3600]  # two rounds of three attempts, no retry among them
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/hook").respond_with_handler(echo_everything)
    hook = subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")
    failing = subscribed(api, project.pk, httpserver.url_for("/hook") + "?fail=1", "event.emit")
    refused = subscribed(api, project.pk, "http://127.0.0.1:9/nothing-listens", "event.emit")
    rotated = api.post(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/rotate_secret/").json()["secret"]
    for _ in range(2):
        with on_commit():
            emit(api, project.pk)
    assert Attempt.objects.filter(outcome="success").exists() and Attempt.objects.filter(outcome="failed").exists()
    tokens = list(Token.objects.values_list("key", flat=True))
    return [hook["secret"], rotated, failing["secret"], refused["secret"], *tokens]


def test_log_rows_hold_no_secret_even_when_the_receiver_echoes_it(secrets_in_play):
    rows = [
        json.dumps([row.request_headers, row.request_body, row.response_headers, row.response_body, row.error])
        for row in Attempt.objects.all()
    ]
    assert len(rows) == 6
    assert any("you_sent" in row for row in rows)  # the receiver did echo the headers
    assert all(row.request_headers.get("x-hook-secret") == "[redacted]" for row in Attempt.objects.all())
    for secret in secrets_in_play:
        assert not any(secret in row for row in rows)
    for delivery in Delivery.objects.all():
        assert not any(secret in delivery.last_error for secret in secrets_in_play)


def test_no_api_answer_shows_a_full_secret_or_token(secrets_in_play, api, project):
    ids = {"project_id": project.pk, "request_pk": UNKNOWN_ID}
    read = 0
    for route in ROUTES:
        if "get" in route.methods:
            response = api.get(url_for(route, ids))
            read += response.status_code == 200
            for secret in secrets_in_play:
                assert secret not in response.content.decode(), route.template
    assert read >= 10


def test_admin_pages_show_no_full_secret_or_token(secrets_in_play, admin_client, admin_user, rf):
    pages = 0
    as_admin = rf.get("/admin/")
    as_admin.user = admin_user
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        urls = [f"/admin/{opts.app_label}/{opts.model_name}/"]
        for obj in model_admin.get_queryset(as_admin).order_by("-pk")[:5]:
            urls.append(f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/change/")
        for url in urls:
            response = admin_client.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            pages += 1
            for secret in secrets_in_play:
                assert secret not in html, url
    assert pages >= 10
    assert Subscription in admin.site._registry


def test_log_output_holds_no_secret_or_token(secrets_in_play, caplog):
    formatter = logging.Formatter("%(name)s %(message)s")
    records = caplog.get_records("setup") + caplog.records
    text = "\n".join(formatter.format(record) for record in records)
    assert "subscriptions.outcomes" in text  # the deliveries were logged
    for secret in secrets_in_play:
        assert secret not in text


def test_tokens_are_not_in_the_admin(admin_client):
    assert TokenProxy not in admin.site._registry
    assert admin_client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_auth_errors_do_not_echo_the_credentials(client, db):
    forged = "f" * 40
    response = client.get("/api/projects/", HTTP_AUTHORIZATION=f"Token {forged}")
    assert response.status_code == 401 and forged not in response.content.decode()

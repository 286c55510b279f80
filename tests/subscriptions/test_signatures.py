"""Signed deliveries (Standard Webhooks), verified with the receivers' own library from PyPI,
`standardwebhooks`, over real HTTP: the headers, the rotation grace, and the secret format."""

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from subscriptions.models import Delivery
from tests.conftest import received
from tests.factories import subscribed
from tests.reliability.hooks import emit


@pytest.fixture
def hook(api, project, httpserver, on_commit):
    """A subscription to event.emit aimed at the test receiver, which answers 200."""
    httpserver.expect_request("/hook", method="POST").respond_with_json({})
    return subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")


def deliver_one(api, project, on_commit) -> None:
    with on_commit():
        emit(api, project.pk)


def test_delivery_verifies_with_the_standardwebhooks_library(api, project, hook, httpserver, on_commit):
    deliver_one(api, project, on_commit)
    [got] = received(httpserver)
    envelope = Webhook(hook["secret"]).verify(got["raw"], got["headers"])
    assert envelope["hook"]["id"] == hook["id"] and envelope["payload"]["name"] == "ping"
    delivery = Delivery.objects.get()
    assert got["headers"]["webhook-id"] == got["headers"]["x-hook-id"] == delivery.pk
    assert abs(int(got["headers"]["webhook-timestamp"]) - time.time()) < 10


def test_a_tampered_body_or_another_secret_fails_verification(api, project, hook, httpserver, on_commit):
    deliver_one(api, project, on_commit)
    [got] = received(httpserver)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(got["raw"].replace(b'"ping"', b'"pong"'), got["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"k" * 32).decode()).verify(got["raw"], got["headers"])


def test_during_rotation_both_secrets_verify_with_two_signatures(api, project, hook, httpserver, on_commit):
    rotated = api.post(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/rotate_secret/")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    deliver_one(api, project, on_commit)
    [got] = received(httpserver)
    assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(new_secret).verify(got["raw"], got["headers"])
    Webhook(hook["secret"]).verify(got["raw"], got["headers"])
    assert got["headers"]["x-hook-secret"] == new_secret


def test_old_secret_stops_verifying_after_the_grace_period(api, project, hook, httpserver, on_commit, settings, clock):
    settings.HOOKS_SECRET_ROTATION_GRACE_S = 1
    new_secret = api.post(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/rotate_secret/").json()["secret"]
    clock.shift(1.2)
    deliver_one(api, project, on_commit)
    [got] = received(httpserver)
    assert len(got["headers"]["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(got["raw"], got["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(got["raw"], got["headers"])


def test_retries_keep_the_id_and_are_signed_afresh(api, project, httpserver, on_commit, clock):
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("down", status=500)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_json({})
    hook = subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")
    deliver_one(api, project, on_commit)
    delivery = Delivery.objects.get()
    clock.shift(1.1)  # the next attempt is in another second: a new timestamp, so a new signature
    assert api.post(f"/api/projects/{project.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 202
    first, second = received(httpserver)
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == delivery.pk
    assert first["raw"] == second["raw"]
    assert int(second["headers"]["webhook-timestamp"]) > int(first["headers"]["webhook-timestamp"])
    assert first["headers"]["webhook-signature"] != second["headers"]["webhook-signature"]
    for got in (first, second):
        Webhook(hook["secret"]).verify(got["raw"], got["headers"])


def test_x_hook_secret_is_sent_by_default(api, project, hook, httpserver, on_commit):
    deliver_one(api, project, on_commit)
    [got] = received(httpserver)
    assert got["headers"]["x-hook-secret"] == hook["secret"]


def test_send_secret_header_off_sends_signatures_only(api, project, hook, httpserver, on_commit, settings):
    settings.HOOKS_SEND_SECRET_HEADER = False
    deliver_one(api, project, on_commit)
    [got] = received(httpserver)
    assert "x-hook-secret" not in got["headers"]
    assert hook["secret"].encode() not in got["raw"]
    Webhook(hook["secret"]).verify(got["raw"], got["headers"])


def test_secrets_are_whsec_and_base64_of_32_random_bytes(api, project, hook):
    other = subscribed(api, project.pk, "https://example.com/other", "event.emit")
    rotated = api.post(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/rotate_secret/").json()["secret"]
    secrets_ = [hook["secret"], other["secret"], rotated]
    for secret in secrets_:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert len(set(secrets_)) == 3

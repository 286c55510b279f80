"""Inbound authentication per automation (`auth`, naming a project secret) and `ip_allowlist`:
checked before the flow runs; refusals are 401/403, recorded as failed runs without the body."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from standardwebhooks import Webhook

from automations.models import Secret
from support.models import Event

from .conftest import finished_run

KEY = "s3cr3t-key-value"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FLOW = [
    {"id": "emit", "action": "emit_event", "name": "order.paid"},
    {"id": "answer", "action": "response", "status": 200, "body": {"ok": True}},
]
BODY = json.dumps({"order": 42, "card": "4111"}).encode()


@pytest.fixture
def secured(project, make_automation):
    def make(auth=None, ip_allowlist=(), value: str = KEY):
        secret = Secret(project=project, name="INBOUND")
        secret.value = value
        secret.save()
        return make_automation(FLOW, auth=auth, ip_allowlist=list(ip_allowlist))

    return make


def post(url: str, headers: dict | None = None, body: bytes = BODY) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})}, timeout=10)


def assert_refused(response, automation, status: int) -> None:
    assert response.status_code == status
    run = finished_run(automation)
    assert run.status == "failed" and run.response["status"] == status and run.body == ""
    assert run.trace == [] and not Event.objects.exists()


def test_header_auth_lets_the_right_key_in(secured, hook):
    automation = secured({"type": "header", "header": "X-Api-Key", "secret": "INBOUND"})
    response = post(hook(automation), {"X-Api-Key": KEY})
    assert response.status_code == 200 and Event.objects.filter(name="order.paid").exists()


def test_header_auth_refuses_a_wrong_key_with_401(secured, hook):
    automation = secured({"type": "header", "header": "X-Api-Key", "secret": "INBOUND"})
    assert_refused(post(hook(automation), {"X-Api-Key": "guess"}), automation, 401)


def test_header_auth_applies_to_the_development_url_too(secured, hook):
    automation = secured({"type": "header", "header": "X-Api-Key", "secret": "INBOUND"})
    assert_refused(post(hook(automation, dev=True)), automation, 401)


def test_basic_auth(secured, hook):
    automation = secured({"type": "basic", "username": "shop", "secret": "INBOUND"})
    assert_refused(requests.post(hook(automation), json={}, auth=("shop", "nope"), timeout=10), automation, 401)
    assert requests.post(hook(automation), json={}, auth=("shop", KEY), timeout=10).status_code == 200


def test_hmac_sha256_github_style_hex_after_a_prefix(secured, hook):
    automation = secured(
        {"type": "hmac_sha256", "header": "X-Hub-Signature-256", "secret": "INBOUND", "prefix": "sha256="}
    )
    signature = "sha256=" + hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    assert post(hook(automation), {"X-Hub-Signature-256": signature}).status_code == 200


def test_hmac_sha256_shopify_style_base64(secured, hook):
    automation = secured({"type": "hmac_sha256", "header": "X-Shopify-Hmac-Sha256", "secret": "INBOUND"})
    signature = base64.b64encode(hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()).decode()
    assert post(hook(automation), {"X-Shopify-Hmac-Sha256": signature}).status_code == 200


def test_hmac_sha256_over_another_body_is_401(secured, hook):
    automation = secured(
        {"type": "hmac_sha256", "header": "X-Hub-Signature-256", "secret": "INBOUND", "prefix": "sha256="}
    )
    signature = "sha256=" + hmac.new(KEY.encode(), b"{}", hashlib.sha256).hexdigest()
    assert_refused(post(hook(automation), {"X-Hub-Signature-256": signature}), automation, 401)


def standard_headers(moment: datetime) -> dict:
    signature = Webhook(WHSEC).sign("msg_1", moment, BODY.decode())
    return {"webhook-id": "msg_1", "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


def test_standard_webhooks_signature_is_verified(secured, hook):
    automation = secured({"type": "standard_webhooks", "secret": "INBOUND"}, value=WHSEC)
    assert post(hook(automation), standard_headers(datetime.now(UTC))).status_code == 200


def test_standard_webhooks_older_than_five_minutes_is_401(secured, hook):
    automation = secured({"type": "standard_webhooks", "secret": "INBOUND"}, value=WHSEC)
    old = datetime.now(UTC) - timedelta(minutes=6)
    assert_refused(post(hook(automation), standard_headers(old)), automation, 401)


def test_an_address_outside_the_allowlist_is_403(secured, hook):
    automation = secured(ip_allowlist=["10.0.0.0/8"])
    assert_refused(post(hook(automation)), automation, 403)


def test_an_address_inside_the_allowlist_is_let_in(secured, hook):
    automation = secured(ip_allowlist=["10.0.0.0/8", "127.0.0.1"])
    assert post(hook(automation)).status_code == 200


def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(secured, hook, settings):
    automation = secured(ip_allowlist=["203.0.113.0/24"])
    assert post(hook(automation), {"X-Forwarded-For": "203.0.113.7"}).status_code == 403
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    assert post(hook(automation), {"X-Forwarded-For": "203.0.113.7"}).status_code == 200


def test_auth_and_allowlist_are_set_through_the_api(api, project):
    secret = Secret(project=project, name="INBOUND")
    secret.value = KEY
    secret.save()
    body = {
        "name": "Shop",
        "flow": {"steps": FLOW},
        "auth": {"type": "header", "header": "X-Api-Key", "secret": "INBOUND"},
        "ip_allowlist": ["203.0.113.0/24"],
    }
    created = api.post(f"/api/projects/{project.pk}/automations/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["auth"] == body["auth"] and created.json()["ip_allowlist"] == ["203.0.113.0/24"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("auth", {"type": "header", "header": "X-Api-Key", "secret": "MISSING"}, "none called 'MISSING'"),
        ("auth", {"type": "jwt", "secret": "X"}, "'type' is one of"),
        ("auth", {"type": "basic", "secret": "X"}, "'username' is required"),
        ("ip_allowlist", ["10.0.0.0/33"], "not an IP address or network"),
        ("ip_allowlist", "10.0.0.0/8", "A list of addresses"),
    ],
)
def test_bad_auth_or_allowlist_is_400_on_the_field(api, project, field, value, fragment):
    body = {"name": "Shop", "flow": {"steps": FLOW}, field: value}
    response = api.post(f"/api/projects/{project.pk}/automations/", body, format="json")
    assert response.status_code == 400 and any(fragment in message for message in response.json()[field])

"""Calls as Tiledesk's clients send them: no trailing slash, JSON (or form-encoded) bodies, HTTP
basic auth with the e-mail, or `Authorization: JWT <jwt>`; at the site root or under /v3/."""

import base64
import json
from urllib.parse import urlencode

import pytest

from subscriptions.envelope import hook_representation
from subscriptions.envelope_token import encode_envelope_token
from subscriptions.models import Subscription
from subscriptions.signing import new_secret

TARGET = "https://hooks.zapier.com/hooks/standard/123/abc/"


def basic(name: str, password: str = "pw") -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@pytest.fixture
def tiledesk(client, owner):
    """`tiledesk(method, path, body=None, auth=None, form=False)`: one call, authenticated by default
    as the project owner with basic auth by e-mail (as Tiledesk's docs show it)."""

    def send(method: str, path: str, body: dict | list | None = None, auth: str | None = None, form: bool = False):
        extra = {"HTTP_AUTHORIZATION": auth if auth is not None else basic(owner.email)}
        if auth == "":
            extra.pop("HTTP_AUTHORIZATION")
        if body is not None:
            if form:
                extra.update(data=urlencode(body, doseq=True), content_type="application/x-www-form-urlencoded")
            else:
                extra.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(path, **extra)

    return send


def envelope_token(subscription) -> str:
    """The token of `subscription`'s envelopes, minted by the server's own code."""
    return encode_envelope_token(subscription, hook_representation(subscription))


@pytest.fixture
def subscription(project, owner):
    """A subscription of `project` whose envelope token the tests act with (its target is never
    called: nothing publishes its event unless a test does)."""
    return Subscription.objects.create(
        project=project, event="event.emit.never", target=TARGET, secret=new_secret(), created_by=owner
    )


@pytest.fixture
def as_subscription(tiledesk, subscription):
    """`tiledesk(...)` authenticated with `subscription`'s envelope token."""

    def send(method: str, path: str, body=None, **kwargs):
        return tiledesk(method, path, body, auth=f"JWT {envelope_token(subscription)}", **kwargs)

    return send

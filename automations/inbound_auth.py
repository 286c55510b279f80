"""Who may call an automation's URLs: its `ip_allowlist` (403 otherwise) and its inbound `auth`
(401 otherwise), both checked before the flow runs.

`auth` names a project secret rather than holding a credential, so the value lives once, encrypted
(automations/project_secrets.py). The kinds are those providers use:
- `header`: a header carries the secret itself (`X-Api-Key: <secret>`);
- `basic`: HTTP Basic with `username` and the secret as password;
- `hmac_sha256`: a header carries HMAC-SHA256 of the raw body keyed with the secret, hex or base64,
  after an optional `prefix` (GitHub: `X-Hub-Signature-256: sha256=<hex>`, Shopify:
  `X-Shopify-Hmac-Sha256: <base64>`);
- `standard_webhooks`: `webhook-id`, `webhook-timestamp`, `webhook-signature` checked by the
  `standardwebhooks` library (5 minutes' tolerance), the secret being the `whsec_...` text.
Comparisons take constant time. A missing secret refuses every call (the automation fails closed).
Replays and the studio's test calls are made by a signed-in member and do not come through here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from typing import Any

from standardwebhooks import Webhook

from accounts.addresses import client_address

from .inbound import InboundRefused
from .project_secrets import values_of

AUTH_TYPES = {
    "header": ("header", "secret"),
    "basic": ("username", "secret"),
    "hmac_sha256": ("header", "secret"),
    "standard_webhooks": ("secret",),
}
OPTIONAL_FIELDS = {"hmac_sha256": ("prefix",)}
REFUSED = "This call is not authenticated for this automation."


def auth_problems(auth: Any, secret_names: set[str]) -> list[str]:
    """What is wrong with an automation's `auth` (null is fine: no authentication)."""
    if auth is None:
        return []
    if not isinstance(auth, dict) or auth.get("type") not in AUTH_TYPES:
        return [f"'auth' is null or an object whose 'type' is one of {', '.join(AUTH_TYPES)}."]
    kind = auth["type"]
    required = AUTH_TYPES[kind]
    problems = [f"'{name}' is required for {kind}." for name in required if not isinstance(auth.get(name), str)]
    extra = set(auth) - {"type", *required, *OPTIONAL_FIELDS.get(kind, ())}
    if extra:
        problems.append(f"unknown field(s) for {kind}: {', '.join(sorted(extra))}.")
    if "prefix" in auth and not isinstance(auth["prefix"], str):
        problems.append("'prefix' is a string such as 'sha256='.")
    if isinstance(auth.get("secret"), str) and auth["secret"] not in secret_names:
        problems.append(f"'secret' names a project secret; this project has none called {auth['secret']!r}.")
    return problems


def allowlist_problems(networks: Any) -> list[str]:
    if not isinstance(networks, list):
        return ['A list of addresses or networks, such as ["203.0.113.0/24"].']
    problems = []
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except (TypeError, ValueError):
            problems.append(f"{network!r} is not an IP address or network (CIDR).")
    return problems


def check_caller(automation, request, headers: dict, body: bytes) -> None:
    """Raise InboundRefused (403, then 401) unless the caller may call this automation."""
    if automation.ip_allowlist:
        try:
            address = ipaddress.ip_address(client_address(request))
        except ValueError:
            address = None
        networks = [ipaddress.ip_network(network, strict=False) for network in automation.ip_allowlist]
        if address is None or not any(address in network for network in networks):
            raise InboundRefused(403, "Calls from this address are not allowed for this automation.")
    auth = automation.auth
    if not auth:
        return
    secret = values_of(automation.project_id, [auth.get("secret", "")]).get(auth.get("secret", ""))
    if secret is None or not _authenticated(auth, secret, headers, body):
        raise InboundRefused(401, REFUSED)


def _authenticated(auth: dict, secret: str, headers: dict, body: bytes) -> bool:
    kind = auth["type"]
    if kind == "header":
        return _same(headers.get(auth["header"].lower(), ""), secret)
    if kind == "basic":
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return _same(username, auth["username"]) & _same(password, secret)
    if kind == "hmac_sha256":
        sent = headers.get(auth["header"].lower(), "")
        prefix = auth.get("prefix", "")
        if not sent.startswith(prefix):
            return False
        sent = sent[len(prefix) :].strip()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return _same(sent.lower(), digest.hex()) | _same(sent, base64.b64encode(digest).decode())
    if kind == "standard_webhooks":
        try:
            Webhook(secret).verify(body, dict(headers), json_parse=False)
        except Exception:  # the library raises several kinds for bad headers, padding, encodings
            return False
        return True
    return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())

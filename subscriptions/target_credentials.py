"""A subscription's custom headers and target authentication: what a receiver behind an API
gateway or a SaaS inbox needs besides the signature.

Their values are credentials, so they are write-only: encrypted at rest (core/crypto.py), masked on
every read, redacted from the attempt log (every header but the protocol's is redacted there, and
whatever the receiver echoes back is scrubbed) and never in the envelope. A masked value sent back
unchanged keeps the stored one, so a client may PUT what it read."""

import base64
import json
import re
from typing import Any

from core import crypto

MASK = "••••••••"
MAX_HEADERS = 20
MAX_VALUE_LENGTH = 2000
AUTH_FIELDS = {"bearer": ("token",), "basic": ("username", "password")}

# Names the delivery itself sets, or that change how the request is framed or routed.
_PROTOCOL_NAMES = {
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "host",
    "user-agent",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "keep-alive",
    "proxy-authorization",
}
_PROTOCOL_PREFIXES = ("webhook-", "x-hook-")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


class CredentialsProblem(ValueError):
    """What is wrong with `headers` or `auth`."""


def seal(value: dict | None) -> str:
    return crypto.encrypt(json.dumps(value)) if value else ""


def unseal(sealed: str) -> dict:
    return json.loads(crypto.decrypt(sealed)) if sealed else {}


def masked_headers(stored: dict) -> dict:
    return dict.fromkeys(stored, MASK)


def masked_auth(stored: dict) -> dict | None:
    if not stored:
        return None
    return {"type": stored["type"], **dict.fromkeys(AUTH_FIELDS[stored["type"]], MASK)}


def merged_headers(given: Any, stored: dict, auth_given: bool) -> dict:
    """The headers to store: `given`, checked, a masked value keeping the stored one."""
    if not isinstance(given, dict):
        raise CredentialsProblem("An object of header names to values.")
    if len(given) > MAX_HEADERS:
        raise CredentialsProblem(f"At most {MAX_HEADERS} headers.")
    stored_by_name = {name.lower(): value for name, value in stored.items()}
    result, seen = {}, set()
    for name, value in given.items():
        lowered = name.lower() if isinstance(name, str) else ""
        if not _TOKEN.match(lowered):
            raise CredentialsProblem(f"{name!r} is not a valid header name.")
        if lowered in seen:
            raise CredentialsProblem(f"{name!r} is given twice.")
        seen.add(lowered)
        if lowered in _PROTOCOL_NAMES or lowered.startswith(_PROTOCOL_PREFIXES):
            raise CredentialsProblem(f"{name!r} belongs to the delivery protocol and cannot be set.")
        if lowered == "authorization" and auth_given:
            raise CredentialsProblem("Authorization comes from `auth` here: give one or the other.")
        if value == MASK and lowered in stored_by_name:
            value = stored_by_name[lowered]
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH or any(c in value for c in "\r\n\0"):
            raise CredentialsProblem(f"{name!r}: a value is a text of at most {MAX_VALUE_LENGTH} characters, one line.")
        result[name] = value
    return result


def merged_auth(given: Any, stored: dict) -> dict:
    """The auth to store (empty for none): `given`, checked, masked values keeping the stored ones
    of the same type."""
    if given is None:
        return {}
    if not isinstance(given, dict) or not isinstance(given.get("type"), str) or given["type"] not in AUTH_FIELDS:
        raise CredentialsProblem('{"type": "bearer", "token"} or {"type": "basic", "username", "password"}.')
    kind = given["type"]
    fields = AUTH_FIELDS[kind]
    if unknown := set(given) - {"type", *fields}:
        raise CredentialsProblem(f"Unknown field(s) for {kind}: {', '.join(sorted(unknown))}.")
    result = {"type": kind}
    for name in fields:
        value = given.get(name)
        if value == MASK and stored.get("type") == kind:
            value = stored.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH or "\n" in value:
            raise CredentialsProblem(f"{kind} needs `{name}` (a one-line text of at most {MAX_VALUE_LENGTH}).")
        if kind == "basic" and name == "username" and ":" in value:
            raise CredentialsProblem("A basic auth username cannot contain ':'.")
        result[name] = value
    return result


def authorization(auth: dict) -> str | None:
    if not auth:
        return None
    if auth["type"] == "bearer":
        return f"Bearer {auth['token']}"
    return "Basic " + base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()


def outgoing_headers(subscription) -> dict[str, str]:
    """The subscription's own headers for a delivery, Authorization included."""
    if not (subscription.headers_sealed or subscription.auth_sealed):
        return {}
    headers = unseal(subscription.headers_sealed)
    if value := authorization(unseal(subscription.auth_sealed)):
        headers["Authorization"] = value
    return headers


def confidential_values(subscription) -> list[str]:
    """Every value that must not reach a log row, should a receiver echo it back."""
    if not (subscription.headers_sealed or subscription.auth_sealed):
        return []
    values = list(unseal(subscription.headers_sealed).values())
    auth = unseal(subscription.auth_sealed)
    if auth:
        values += [auth[name] for name in AUTH_FIELDS[auth["type"]] if auth["type"] != "basic" or name == "password"]
        values.append(authorization(auth).split(" ", 1)[1])
    return [value for value in values if len(value) >= 4]

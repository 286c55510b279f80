"""The small functions and filters a flow needs to talk to other systems: dates, encodings,
digests and signatures, ids. Each takes JSON values and gives one back; errors are ValueErrors,
which the template shows its author.

Globals: `now()` (UTC, ISO 8601), `uuid4()`. Filters: `date(format)` (of an ISO 8601 text or
seconds since the epoch; strftime's codes), `b64encode`, `b64decode` (UTF-8 text), `sha256` (hex),
`hmac_sha256('SECRET_NAME')` (hex, keyed with a project secret: the key never appears in the
flow). `int`, `float` and `string` are Jinja's own."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).isoformat()


def uuid4() -> str:
    return str(uuid.uuid4())


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{name}' takes text, not {type(value).__name__}")
    return value


def date(value: Any, format: str = "%Y-%m-%d") -> str:  # noqa: A002 (the filter's argument name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"'date' takes an ISO 8601 text or seconds since the epoch, not {type(value).__name__}")
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        moment = datetime.fromtimestamp(value, UTC)
    if len(format) > 100:
        raise ValueError("a date format is at most 100 characters")
    return moment.strftime(format)


def b64encode(value: Any) -> str:
    return base64.b64encode(_text(value, "b64encode").encode()).decode()


def b64decode(value: Any) -> str:
    try:
        return base64.b64decode(_text(value, "b64decode"), validate=True).decode("utf-8", errors="replace")
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None


def sha256(value: Any) -> str:
    return hashlib.sha256(_text(value, "sha256").encode()).hexdigest()


def hmac_sha256(context, value: Any, secret_name: str) -> str:
    key = (context.get("secrets") or {}).get(secret_name)
    if key is None:
        raise ValueError(f"this project has no secret named {secret_name!r}")
    return hmac.new(key.encode(), _text(value, "hmac_sha256").encode(), hashlib.sha256).hexdigest()


FILTERS = {"date": date, "b64encode": b64encode, "b64decode": b64decode, "sha256": sha256}
GLOBALS = {"now": now, "uuid4": uuid4}

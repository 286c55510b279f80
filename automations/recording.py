"""What a run records: bounded, JSON-only copies, with header values redacted.

A header value is treated as a credential unless its name is one of a few harmless ones:
`Authorization`, `X-Api-Key`, a signature or a session cookie can hide behind any name. So the
inbound headers a run keeps, the headers an `http_request` sends and gets back and the headers a
flow answers with are recorded (runs API, debug page, admin, logs) with their values replaced by
"[redacted]", except ALLOWED_HEADERS. The flow itself reads the real values: they travel in
`Headers` dicts, which every recorded copy redacts, also when the flow copied the whole dict into a
variable or a step output (what the flow takes out of it value by value is its author's doing)."""

from __future__ import annotations

import json
from typing import Any

ALLOWED_HEADERS = frozenset({"content-type", "accept", "user-agent", "content-length", "host"})
REDACTED = "[redacted]"
# What one recorded value (a step's input, output or variables) keeps, in characters of JSON.
TRACE_VALUE_LIMIT = 16 * 1024
# Nesting kept in a recorded copy; deeper parts are cut (inbound JSON is at most 32 deep).
RECORD_DEPTH = 64


class Headers(dict):
    """Header names and values as a flow reads them; recorded copies show only ALLOWED_HEADERS."""


def redacted_headers(headers: dict) -> dict:
    return {name: value if str(name).lower() in ALLOWED_HEADERS else REDACTED for name, value in headers.items()}


class _Copy:
    """A JSON copy that counts what it writes and stops adding once past `limit` characters."""

    def __init__(self, limit: int | None):
        self.limit = limit
        self.size = 0
        self.truncated = False

    def full(self) -> bool:
        return self.limit is not None and self.size > self.limit

    def of(self, value: Any, depth: int = 0) -> Any:
        if value is None or isinstance(value, bool | int | float):
            self.size += 5
            return value
        if isinstance(value, str):
            self.size += len(value) + 2
            if self.full():
                self.truncated = True
                return value[: max(0, self.limit - (self.size - len(value) - 2))]
            return value
        if depth >= RECORD_DEPTH:
            self.truncated = True
            return "..."
        if isinstance(value, dict):
            if isinstance(value, Headers):
                value = redacted_headers(value)
            copy = {}
            for key, item in value.items():
                if self.full():
                    self.truncated = True
                    break
                self.size += len(str(key)) + 4
                copy[str(key)] = self.of(item, depth + 1)
            return copy
        if isinstance(value, list | tuple):
            items = []
            for item in value:
                if self.full():
                    self.truncated = True
                    break
                self.size += 1
                items.append(self.of(item, depth + 1))
            return items
        return self.of(str(value), depth)


def recorded(value: Any) -> Any:
    """`value` as JSON types, with Headers redacted (the run's response, a log line)."""
    return _Copy(None).of(value)


def snapshot(value: Any, limit: int = TRACE_VALUE_LIMIT) -> Any:
    """A recorded copy (variables change later) up to `limit` characters; a larger value becomes a
    preview of its start, so runs stay small."""
    copy = _Copy(limit)
    data = copy.of(value)
    if copy.truncated or copy.full():
        return {"truncated": True, "preview": json.dumps(data, ensure_ascii=False)[:limit]}
    return data

"""Text from outside made storable, for every app that writes it.

PostgreSQL refuses NUL in `text` columns and in `jsonb` strings (`\\u0000`), and neither backend's
driver can encode a lone surrogate (what `json.loads('"\\ud800"')` gives) as UTF-8: either makes
the INSERT fail, and the row that should have recorded the problem is lost with it. Whatever a
caller, a receiver or an error message put in a value, `storable()` gives the same value with
those characters made visible instead."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    """`text` with NUL replaced by U+FFFD and anything that is not valid UTF-8 (lone surrogates)
    written as a backslash escape (`\\udc80`)."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable_bytes(data: bytes) -> str:
    """Bytes as text: valid UTF-8 decoded, invalid bytes escaped (`\\xff`), NUL replaced."""
    return storable_text(data.decode("utf-8", "backslashreplace"))


def storable(value: Any) -> Any:
    """A copy of a JSON-like value with every string in it (object keys included) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, bytes):
        return storable_bytes(value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def unstorable_at(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where the first string that cannot be stored as it is sits in a JSON-like value, and why:
    ("attributes.note", "null characters are not allowed"), or None. A key is named by its parent."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if (problem := _problem(item)) is not None:
                return where, problem
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if isinstance(key, str) and (problem := _problem(key)) is not None:
                    return where, f"{problem} (in a key)"
                stack.append((child, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
    return None


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "null characters are not allowed"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "lone surrogates (\\ud800-\\udfff) are not valid Unicode"
    return None

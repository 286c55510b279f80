"""Which paths under `payload`, `query` and `headers` a render read but did not find.

A missing key renders as null (so `default`, `exists` and `is defined` work), which hides typos:
`payload.emial` is silently null. While a step's fields render, the sandbox reports every lookup
in a JSON object here; a lookup in one of those roots (or in an object found under them) that finds
nothing is kept as its dotted path, and the step's trace entry lists them as `missing`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import Undefined

_tracked: ContextVar[tuple[dict, list] | None] = ContextVar("tracked_reads", default=None)


@contextmanager
def tracking(roots: dict[str, Any], missing: list[str]) -> Iterator[None]:
    """Within the block, missing reads under `roots` (name -> object) are appended to `missing`."""
    paths = {id(value): name for name, value in roots.items() if isinstance(value, dict)}
    token = _tracked.set((paths, missing))
    try:
        yield
    finally:
        _tracked.reset(token)


def note(obj: dict, key: Any, value: Any) -> None:
    """A lookup of `key` in `obj` gave `value` (Undefined when missing)."""
    state = _tracked.get()
    if state is None:
        return
    paths, missing = state
    path = paths.get(id(obj))
    if path is None:
        return
    if isinstance(value, Undefined):
        missing.append(f"{path}.{key}")
    elif isinstance(value, dict):
        paths[id(value)] = f"{path}.{key}"

"""A project's secrets as a run uses them: their values for `{{ secrets.NAME }}` and inbound
authentication, and the scrubbing that keeps those values out of everything a run records.

Values are loaded (and decrypted) only for a flow that names `secrets` and for an automation whose
inbound `auth` needs one: a flow without them pays nothing. Whatever a run records (its trace,
variables, response, error, the event of its failure) has each loaded value replaced by
`[secret NAME]`, wherever it appears inside a string. A value transformed by the flow (encoded,
hashed, cut) is not recognised: such a copy is its author's doing."""

from __future__ import annotations

import json
from typing import Any

from core.crypto import UnreadableSecret

from .models import Secret

# Shorter values would scrub ordinary text ("a", "ok"); they are refused when saved.
MIN_SCRUBBED_LENGTH = 4


def values_of(project_id: str, names: list[str] | None = None) -> dict[str, str]:
    """name -> plain value of the project's secrets (only `names` when given). A value the
    configured key cannot decrypt is left out (the flow sees null, as for a missing name)."""
    secrets = Secret.objects.filter(project_id=project_id)
    if names is not None:
        secrets = secrets.filter(name__in=names)
    found = {}
    for secret in secrets:
        try:
            found[secret.name] = secret.value
        except UnreadableSecret:
            continue
    return found


def mentions_secrets(flow: Any) -> bool:
    return "secrets" in json.dumps(flow)


class Scrubber:
    """Replaces the given secrets' values inside any JSON value."""

    def __init__(self, values: dict[str, str]):
        # Longest first: a value containing another is replaced whole.
        self.pairs = sorted(
            ((value, f"[secret {name}]") for name, value in values.items() if len(value) >= MIN_SCRUBBED_LENGTH),
            key=lambda pair: -len(pair[0]),
        )

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __call__(self, value: Any) -> Any:
        if not self.pairs:
            return value
        if isinstance(value, str):
            for secret, mark in self.pairs:
                if secret in value:
                    value = value.replace(secret, mark)
            return value
        if isinstance(value, dict):
            return type(value)({key: self(item) for key, item in value.items()}) if value else value
        if isinstance(value, list):
            return [self(item) for item in value]
        return value


NO_SCRUBBING = Scrubber({})

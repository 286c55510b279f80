"""What an attempt's log row may show of the credentials that went out with it.

The request's own secret header is replaced. A receiver may also send back what it got (request
inspectors and echo endpoints do), and not always verbatim: URL-encoded (`%2B` for `+`, in a
query string it logs), JSON-escaped (`\\/` for `/`, `\\u0041` for `A`). Every form of every
credential (the subscription's secrets and the envelope's token) is replaced wherever it appears
in the response's headers, body and error text, so the logs API never shows it."""

import re
from functools import lru_cache

REDACTED = "[redacted]"
# The request headers whose values a log row shows; every other one (the secret, a subscription's
# own headers and its Authorization) is redacted.
LOGGED_HEADERS = frozenset(
    {"content-type", "user-agent", "x-hook-id", "webhook-id", "webhook-timestamp", "webhook-signature"}
)


def redacted_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: value if name.lower() in LOGGED_HEADERS else REDACTED for name, value in headers.items()}


def _char_forms(char: str) -> str:
    """A pattern for one character as itself, percent-encoded or JSON-escaped (hex in any case)."""
    forms = [re.escape(char)]
    forms.append("".join(f"%(?i:{byte:02x})" for byte in char.encode()))
    if len(char) == 1 and ord(char) < 0x10000:
        forms.append(rf"\\u(?i:{ord(char):04x})")
    if char == "/":
        forms.append(r"\\/")
    return "(?:" + "|".join(forms) + ")"


@lru_cache(maxsize=1024)
def _pattern(credentials: tuple[str, ...]) -> re.Pattern[str]:
    longest_first = sorted(credentials, key=len, reverse=True)
    return re.compile("|".join("".join(_char_forms(c) for c in credential) for credential in longest_first))


def scrubbed(value, credentials: list[str]):
    """`value` (text, or a JSON-like dict or list of texts) with every form of every credential
    replaced by [redacted]."""
    credentials = tuple(dict.fromkeys(c for c in credentials if c))
    if not credentials:
        return value
    return _scrub(value, _pattern(credentials))


def _scrub(value, pattern: re.Pattern[str]):
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, pattern) for item in value]
    return value

"""The headers of every answer under /webhook/: what a flow may set, and what the server always sets.

An automation's answer comes from the same origin as the console and the API, and its body and
headers are written by a tenant. A `text/html` answer with a `<script>` would run with the session
of any member who opens the URL (list their projects, create a subscription, read its secret), and
a `Set-Cookie` could replace their session. So:
- every answer under /webhook/ (production and /dev, every status, refusals and 404s included)
  carries FORCED_HEADERS, whatever the flow says: `nosniff`, and a Content-Security-Policy with
  `sandbox` (the document gets an opaque origin: no cookies, no storage, no same-origin requests)
  and `default-src 'none'` (no script, style, image or request at all);
- a flow may not set the headers that act on the browser's or a proxy's trust in this origin
  (`refusal`): refused when the flow is saved (names are literal) and dropped at run time (values
  may be templates, and flows saved earlier exist).
Cross-origin headers (`Access-Control-*`) are the server's alone: `server_headers` is where the
server adds them for an automation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

FORCED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}
WEBHOOK_PATH = "/webhook/"

# Connection-level headers: they describe one hop, and the server writes them for the answer it sends.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "trailers", "content-length"}
)
# Headers that change what the browser lets this origin do, or what it keeps for it.
SECURITY = frozenset(
    {
        "set-cookie",
        "set-cookie2",
        "content-security-policy",
        "content-security-policy-report-only",
        "strict-transport-security",
        "x-content-type-options",
        "clear-site-data",
    }
)


def refusal(name: str, value: Any = None) -> str | None:
    """Why a flow may not answer with this header, or None. `value` is checked only for Location,
    and only when given (a template is checked when it has been rendered)."""
    lowered = name.lower()
    if lowered in SECURITY:
        return f"the response header {name!r} is not allowed in an automation's answer"
    if lowered in HOP_BY_HOP or lowered.startswith("proxy-"):
        return f"the response header {name!r} is set by the server"
    if lowered.startswith("access-control-"):
        return f"the response header {name!r} is set by the server (cross-origin access)"
    if (
        lowered == "location"
        and isinstance(value, str)
        and urlsplit(value.strip()).scheme.lower() not in ("http", "https")
    ):
        return f"the response header {name!r} must be an http(s) URL"
    return None


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def allowed(headers: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The headers a flow may send, and the names of those dropped."""
    kept, dropped = {}, []
    for name, value in headers.items():
        if refusal(name, value) is None:
            kept[name] = value
        else:
            dropped.append(name)
    return kept, dropped


PREFLIGHT_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_MAX_AGE_S = 600


def cors_origin_problem(origin: Any) -> str | None:
    """Why `origin` cannot be one of an automation's `cors_origins` (`*` or scheme://host[:port])."""
    if origin == "*":
        return None
    if not isinstance(origin, str):
        return "an origin is a string"
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or origin != f"{parts.scheme}://{parts.netloc}":
        return f"{origin!r} is not an origin like https://site.example (scheme and host, no path)"
    return None


def server_headers(automation, request: HttpRequest) -> dict[str, str]:
    """Headers the server adds to every answer of `automation` (after the flow's, which cannot set
    them): the cross-origin ones, when the caller's Origin is one of the automation's
    `cors_origins` (or they include `*`), and a preflight's answers to what it asks."""
    origin = request.headers.get("Origin")
    origins = automation.cors_origins or []
    if not origin or not origins:
        return {}
    if "*" in origins:
        headers = {"Access-Control-Allow-Origin": "*"}
    elif origin in origins:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    else:
        return {}
    if request.method == "OPTIONS":
        headers["Access-Control-Allow-Methods"] = PREFLIGHT_METHODS
        requested = request.headers.get("Access-Control-Request-Headers", "")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested[:1000]
        headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    return headers


class WebhookAnswerHeaders:
    """Middleware, outermost: sets FORCED_HEADERS on every answer under /webhook/, whichever code
    made it (the endpoint, a 404 of the URL resolver, an error page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path_info.startswith(WEBHOOK_PATH):
            for name, value in FORCED_HEADERS.items():
                response[name] = value
        return response

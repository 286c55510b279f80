"""Reading an inbound webhook call into what the flow sees, refusing what cannot be used.

JSON and form bodies are parsed; text (text/*, XML) is kept as a string; binary types are refused
with 415. Every refusal is an `InboundRefused` carrying the status and a message for the caller.
The same parsing serves the web view (from the request) and the worker (from a RunRequest)."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import load_handler
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.http import parse_header_parameters

from core.nesting import depth
from core.text import storable_text

from .context import Inbound
from .models import RunRequest
from .recording import Headers

_TEXT_TYPES = ("application/xml", "application/javascript", "application/x-ndjson")


class InboundRefused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def read_body(request: HttpRequest) -> bytes:
    """At most AUTOMATION_MAX_BODY_BYTES; more is 413 (refused before reading when declared)."""
    limit = settings.AUTOMATION_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InboundRefused(400, "Content-Length is not a number.") from None
    too_large = InboundRefused(413, f"The body is larger than {limit} bytes.")
    if declared > limit:
        raise too_large
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Django reads only Content-Length bytes; a server that decodes chunked bodies itself
        # (gunicorn) says so with wsgi.input_terminated, and then the stream is read to its end.
        if not request.META.get("wsgi.input_terminated"):
            raise InboundRefused(411, "Send the body with a Content-Length; this server does not take chunked bodies.")
        body = request.META["wsgi.input"].read(limit + 1)
    else:
        body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def headers_of(request: HttpRequest) -> Headers:
    return Headers({name.lower(): value for name, value in request.headers.items()})


def query_of(request: HttpRequest) -> dict:
    return _flatten(request.GET)


def recorded_call(run, request: HttpRequest, headers: dict, body: bytes) -> RunRequest:
    """The call as a worker will read it (not saved)."""
    return RunRequest(
        run=run,
        method=run.method,
        content_type=storable_text(request.META.get("CONTENT_TYPE", "")),
        query_string=request.GET.urlencode(),
        headers=dict(headers),
        body=body,
    )


def replayed(call: RunRequest, path: str = "") -> Inbound:
    """What the flow sees of a recorded call (InboundRefused as for the call itself)."""
    query = _flatten(QueryDict(call.query_string, encoding="utf-8"))
    return parse(call.method, call.content_type, query, Headers(call.headers), bytes(call.body), path)


def _flatten(data: QueryDict) -> dict:
    """One value per key, or a list when the key came several times."""
    return {key: values[0] if len(values) == 1 else values for key, values in data.lists()}


def parse(method: str, content_type_header: str, query: dict, headers: Headers, body: bytes, path: str = "") -> Inbound:
    """`content_type_header` is the whole header (with its parameters: a multipart boundary)."""
    content_type = parse_header_parameters(content_type_header)[0] if content_type_header else ""
    raw_body = body.decode("utf-8", errors="replace") if body else ""
    inbound = Inbound(method=method or "GET", query=query, headers=headers, raw_body=raw_body, path=path)
    if not body:
        inbound.payload = {}
    elif content_type == "application/json" or content_type.endswith("+json"):
        inbound.payload = parse_json(body)
    elif content_type == "application/x-www-form-urlencoded":
        _utf8(body)
        inbound.payload = _flatten(QueryDict(body, encoding="utf-8"))
    elif content_type == "multipart/form-data":
        inbound.payload = _multipart(content_type_header, body)
    elif content_type.startswith("text/") or content_type in _TEXT_TYPES or content_type.endswith("+xml"):
        inbound.payload = _utf8(body)
    elif not content_type:
        # No type given: JSON if it is JSON, else the text.
        text = _utf8(body)
        try:
            inbound.payload = parse_json(body)
        except InboundRefused:
            inbound.payload = text
    else:
        raise InboundRefused(
            415, f"Unsupported content type {content_type!r}: send JSON, a form, or text (text/*, XML)."
        )
    return inbound


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InboundRefused(400, f"The body is not valid UTF-8 (byte {exc.start}).") from None


def parse_json(body: bytes) -> Any:
    text = _utf8(body)
    try:
        value = json.loads(text)
    except RecursionError:
        raise InboundRefused(400, f"The JSON is nested deeper than {settings.AUTOMATION_MAX_JSON_DEPTH} levels.")
    except ValueError as exc:
        raise InboundRefused(400, f"Invalid JSON: {exc}.") from None
    if depth(value) > settings.AUTOMATION_MAX_JSON_DEPTH:
        raise InboundRefused(400, f"The JSON is nested deeper than {settings.AUTOMATION_MAX_JSON_DEPTH} levels.")
    return value


def _multipart(content_type_header: str, body: bytes) -> dict:
    meta = {"CONTENT_TYPE": content_type_header, "CONTENT_LENGTH": str(len(body))}
    handlers = [load_handler(handler) for handler in settings.FILE_UPLOAD_HANDLERS]
    try:
        fields, files = MultiPartParser(meta, BytesIO(body), handlers, "utf-8").parse()
    except (MultiPartParserError, UnicodeDecodeError, ValueError) as exc:
        raise InboundRefused(400, f"Invalid multipart form: {exc}") from None
    payload = _flatten(fields)
    for name, upload in files.items():
        payload[name] = {"filename": upload.name, "content_type": upload.content_type, "size": upload.size}
    return payload


def stored_body(body: bytes) -> tuple[str, bool]:
    """What a run keeps of the body: text up to AUTOMATION_RUN_BODY_LIMIT characters."""
    limit = settings.AUTOMATION_RUN_BODY_LIMIT
    text = body[: limit + 4].decode("utf-8", errors="replace")
    return text[:limit], len(body) > limit

"""The actions a flow can use: one table (`ACTIONS`) saying, for each, its fields and its handler,
read both by the validation of flows (flow.py) and by the engine, so the two cannot disagree.

A handler renders its step's templates, acts, and returns what the trace shows as the step's input
and output; a problem is a `StepFailed` with a message for the author.

Domain actions go through the support API's serializers and models, exactly like an API call: the
same validation, the same events published (and so the same REST Hooks deliveries)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex
import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from rest_framework.renderers import JSONRenderer

from subscriptions import outbound
from subscriptions.targets import url_problem
from support.conversation_serializers import EventSerializer, MessageSerializer, RequestSerializer
from support.models import Request
from support.routing import create_routed
from support.services import close_request

from . import answer_headers
from .context import Context, Result, RunTimedOut, StepFailed
from .recording import Headers, recorded

HTTP_READ_LIMIT = 256 * 1024
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OPS = ("==", "!=", "<", ">", "contains", "exists", "matches")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


def as_json(data: Any) -> Any:
    """What an API client would parse (serializer data holds datetimes and the like)."""
    return json.loads(JSONRenderer().render(data))


def _errors_text(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {_errors_text(messages)}" for field, messages in errors.items())
    if isinstance(errors, list):
        return " ".join(_errors_text(message) for message in errors)
    return str(errors)


def _fields(step: dict, names: tuple[str, ...], ctx: Context) -> dict:
    """The step's fields among `names`, rendered together (one template budget)."""
    return ctx.render({name: step[name] for name in names if name in step})


def do_set(step: dict, ctx: Context) -> Result:
    value = ctx.render(step["value"])
    ctx.assign(step["name"], value)
    return Result(input={"name": step["name"]}, output=value)


def do_log(step: dict, ctx: Context) -> Result:
    message = ctx.render(step["message"])
    return Result(output=message if isinstance(message, str) else json.dumps(recorded(message)))


def do_condition(step: dict, ctx: Context) -> Result:
    condition = step["if"]
    sides = ctx.render({"left": condition.get("left"), "right": condition.get("right")})
    left, right, op = sides["left"], sides["right"], condition["op"]
    outcome = compare(left, op, right, ctx)
    branch = "then" if outcome else "else"
    return Result(input={"left": left, "op": op, "right": right}, output=outcome, branch=branch)


def compare(left: Any, op: str, right: Any, ctx: Context) -> bool:
    if op == "exists":
        return left is not None and left != ""
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op in ("<", ">"):
        try:
            return left < right if op == "<" else left > right
        except TypeError:
            raise StepFailed(f"cannot compare {type(left).__name__} {op} {type(right).__name__}") from None
    if op == "contains":
        if isinstance(left, str):
            return isinstance(right, str) and right in left
        if isinstance(left, list | dict):
            return right in left
        return False
    if op == "matches":
        try:
            return (
                regex.search(str(right), "" if left is None else str(left), timeout=min(1.0, ctx.remaining()))
                is not None
            )
        except regex.error as exc:
            raise StepFailed(f"not a valid regular expression: {exc}") from None
        except TimeoutError:
            raise StepFailed("the regular expression took too long") from None
    raise StepFailed(f"unknown operator {op!r}")


def do_http_request(step: dict, ctx: Context) -> Result:
    fields = _fields(step, ("method", "url", "headers", "body"), ctx)
    method = str(fields.get("method") or "GET").upper()
    url = fields["url"]
    if method not in HTTP_METHODS:
        raise StepFailed(f"method {method!r} is not one of {', '.join(HTTP_METHODS)}")
    if not isinstance(url, str) or (problem := url_problem(url)):
        raise StepFailed(f"url {url!r}: {problem if isinstance(url, str) else 'must be a string'}")
    headers = fields.get("headers") or {}
    if not isinstance(headers, dict):
        raise StepFailed("headers must be an object")
    headers = Headers({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in headers.items()})
    timeout = min(float(step.get("timeout_s", settings.AUTOMATION_HTTP_TIMEOUT_S)), ctx.remaining())
    if timeout <= 0:
        raise RunTimedOut("the run reached AUTOMATION_MAX_RUNTIME_S")
    sent = {"method": method, "url": url, "headers": headers, "body": fields.get("body"), "timeout_s": timeout}
    body = None
    if "body" in fields:
        if isinstance(fields["body"], str):
            body = fields["body"].encode()
        else:
            body = json.dumps(fields["body"]).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
    try:
        fetched = outbound.fetch(method, url, headers=headers, body=body, timeout_s=timeout, read_limit=HTTP_READ_LIMIT)
    except outbound.TargetRefused as exc:
        raise StepFailed(str(exc)) from None
    except requests.Timeout:
        if ctx.remaining() <= 0:
            raise RunTimedOut("the run reached AUTOMATION_MAX_RUNTIME_S during an http_request") from None
        raise StepFailed(f"no answer from {url} within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise StepFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
    answer = {"status": fetched.status_code, "headers": Headers(fetched.headers), "body": _decode(fetched.body)}
    ctx.assign(step["save_as"], answer)
    return Result(input=sent, output=answer)


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def do_create_request(step: dict, ctx: Context) -> Result:
    data = _fields(step, ("first_text", "lead", "department", "attributes"), ctx)
    if data.get("department") in (None, ""):
        data.pop("department", None)
    context = {"project": ctx.project}
    serializer = RequestSerializer(data=data, context=context)
    if not serializer.is_valid():
        raise StepFailed(f"cannot create the request: {_errors_text(serializer.errors)}")
    # The same path as the API: the conversation is routed (and operator.select asked) as usual.
    created = create_routed(serializer, ctx.project)
    output = as_json(RequestSerializer(created, context=context).data)
    ctx.assign(step["save_as"], output)
    return Result(input=data, output=output)


def _conversation(reference: Any, ctx: Context) -> Request:
    if isinstance(reference, dict):
        reference = reference.get("id") or reference.get("request_id")
    if not isinstance(reference, str) or not reference:
        raise StepFailed(f"'request' must be a request id, not {reference!r}")
    found = Request.objects.filter(project=ctx.project).filter(Q(pk=reference) | Q(request_id=reference)).first()
    if found is None:
        raise StepFailed(f"no request {reference!r} in this project")
    return found


def do_send_message(step: dict, ctx: Context) -> Result:
    fields = _fields(step, ("request", "text", "sender", "attributes"), ctx)
    conversation = _conversation(fields.pop("request"), ctx)
    context = {"project": ctx.project}
    serializer = MessageSerializer(data=fields, context=context)
    if not serializer.is_valid():
        raise StepFailed(f"cannot send the message: {_errors_text(serializer.errors)}")
    with transaction.atomic():
        message = serializer.save(
            project=ctx.project,
            request=conversation,
            channel_name=conversation.channel_name,
            sender=serializer.validated_data.get("sender") or f"automation-{ctx.automation.pk}",
            sender_fullname=serializer.validated_data.get("sender_fullname") or ctx.automation.name,
        )
    output = as_json(MessageSerializer(message, context=context).data)
    if "save_as" in step:
        ctx.assign(step["save_as"], output)
    return Result(input={**fields, "request": conversation.pk}, output=output)


def do_close_request(step: dict, ctx: Context) -> Result:
    conversation = _conversation(ctx.render(step["request"]), ctx)
    with transaction.atomic():
        closed = close_request(conversation)
    output = as_json(RequestSerializer(closed, context={"project": ctx.project}).data)
    if "save_as" in step:
        ctx.assign(step["save_as"], output)
    return Result(input={"request": conversation.pk}, output=output)


def do_emit_event(step: dict, ctx: Context) -> Result:
    data = _fields(step, ("name", "attributes"), ctx)
    context = {"project": ctx.project}
    serializer = EventSerializer(data=data, context=context)
    if not serializer.is_valid():
        raise StepFailed(f"cannot emit the event: {_errors_text(serializer.errors)}")
    with transaction.atomic():
        event = serializer.save(project=ctx.project, created_by=ctx.automation.created_by)
    output = as_json(EventSerializer(event, context=context).data)
    if "save_as" in step:
        ctx.assign(step["save_as"], output)
    return Result(input=data, output=output)


def do_response(step: dict, ctx: Context) -> Result:
    fields = _fields(step, ("status", "body", "headers"), ctx)
    try:
        status = int(fields["status"])
    except (TypeError, ValueError):
        status = 0
    if not 100 <= status <= 599:
        raise StepFailed(f"status {fields['status']!r} is not an HTTP status code")
    headers = fields.get("headers") or {}
    if not isinstance(headers, dict):
        raise StepFailed("headers must be an object")
    clean = {}
    for name, value in headers.items():
        value = value if isinstance(value, str) else json.dumps(value)
        if not HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            raise StepFailed(f"invalid response header {name!r}")
        clean[name] = value
    # Saved flows cannot name these headers, but a value is known only now (a Location template).
    clean, dropped = answer_headers.allowed(clean)
    response = {"status": status, "headers": Headers(clean), "body": fields.get("body")}
    shown = {**fields, "headers": Headers(clean)} if "headers" in fields else fields
    if dropped:
        shown["dropped_headers"] = dropped
    return Result(input=shown, output=response, response=response, end=step.get("end") is True)


def do_for_each(step: dict, ctx: Context) -> Result:
    items = ctx.render(step["items"])
    if items is None:
        items = []
    if not isinstance(items, list):
        raise StepFailed(f"'items' must be a list, not {type(items).__name__}")
    if len(items) > settings.AUTOMATION_MAX_ITEMS:
        raise StepFailed(f"'items' has {len(items)} items; AUTOMATION_MAX_ITEMS is {settings.AUTOMATION_MAX_ITEMS}")
    return Result(input={"as": step["as"], "count": len(items)}, output=len(items), items=items)


def do_stop(step: dict, ctx: Context) -> Result:
    return Result(output="stopped")


@dataclass(frozen=True)
class Action:
    """An action's fields (besides `action`, `id` and `description`) and the function doing it."""

    handler: Callable[[dict, Context], Result]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.required + self.optional)


ACTIONS: dict[str, Action] = {
    "set": Action(do_set, required=("name", "value")),
    "condition": Action(do_condition, required=("if",), optional=("then", "else")),
    "http_request": Action(
        do_http_request, required=("url", "save_as"), optional=("method", "headers", "body", "timeout_s")
    ),
    "create_request": Action(
        do_create_request, required=("first_text", "lead", "save_as"), optional=("department", "attributes")
    ),
    "send_message": Action(do_send_message, required=("request", "text"), optional=("sender", "attributes", "save_as")),
    "close_request": Action(do_close_request, required=("request",), optional=("save_as",)),
    "emit_event": Action(do_emit_event, required=("name",), optional=("attributes", "save_as")),
    "response": Action(do_response, required=("status",), optional=("body", "headers", "end")),
    "for_each": Action(do_for_each, required=("items", "as", "steps")),
    "log": Action(do_log, required=("message",)),
    "stop": Action(do_stop),
}

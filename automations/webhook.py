"""The inbound endpoints `/webhook/{webhook_id}` and `/webhook/{webhook_id}/dev`.

Not wrapped in ATOMIC_REQUESTS: a run is recorded even when the flow fails, and each domain action
commits on its own (so the events it publishes go out as soon as it is done). A flow with a
reachable `response` step runs here until it responds; the caller gets that answer and the rest of
the flow runs after the response is sent (automations/after_answer.py: handed to a thread once the
body is out, in the response's `close()`, so the caller's connection is free at once). A flow
without one is queued for the django-q2 worker and the caller is told so
at once: the call is kept in a RunRequest row and the task carries only the run's id.

Every answer's headers are the flow's that answer_headers allows, then the server's for this
automation (answer_headers.server_headers), then, for every answer under /webhook/, the forced
security headers (answer_headers.WebhookAnswerHeaders)."""

from __future__ import annotations

import json
import logging
import math
import time
from functools import partial

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_q.tasks import async_task

from core.text import storable

from . import after_answer, answer_headers
from .after_answer import finish_later
from .engine import Execution
from .flow import has_response
from .inbound import InboundRefused, headers_of, parse, query_of, read_body, recorded_call, stored_body
from .inbound_auth import check_caller
from .models import Automation, Run
from .recording import recorded, redacted_headers
from .tasks import EXECUTE
from .throttling import throttled

logger = logging.getLogger(__name__)

AUTOMATION_BY_WEBHOOK_ID = f"SELECT * FROM {Automation._meta.db_table} WHERE webhook_id = %s LIMIT 1"


class ContinuingResponse(HttpResponse):
    """An HTTP response after which the flow goes on: the WSGI server calls close() once the body
    has been sent, and the remaining steps run then."""

    def __init__(self, *args, then, **kwargs):
        super().__init__(*args, **kwargs)
        self._then = then
        after_answer.answer_opened()

    def close(self) -> None:
        try:
            self._then()
        finally:
            after_answer.answer_closed()
            super().close()


def detail(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": message, **extra}, status=status)


@csrf_exempt
@transaction.non_atomic_requests
def webhook(request: HttpRequest, webhook_id: str, dev: bool = False, rest: str = "") -> HttpResponse:
    started = time.monotonic()
    # One plain indexed lookup (the project is loaded only if a domain action needs it), written
    # as SQL: building it through the query builder cost 0.32 ms of CPU per call, this 0.18 ms.
    found = list(Automation.objects.raw(AUTOMATION_BY_WEBHOOK_ID, [webhook_id]))
    if not found:
        return detail(404, "No automation has this webhook URL.")
    automation = found[0]
    if request.method == "OPTIONS":
        # A browser's preflight (or a probe): answered here, the flow does not run, no run is made.
        response = HttpResponse(status=204)
        response["Allow"] = answer_headers.PREFLIGHT_METHODS
    else:
        response = _answer(request, automation, dev, started, rest)
    for name, value in answer_headers.server_headers(automation, request).items():
        response[name] = value
    return response


def _answer(request: HttpRequest, automation: Automation, dev: bool, started: float, path: str) -> HttpResponse:
    if (wait := throttled(request, automation.pk)) is not None:
        response = detail(429, "Too many calls to this automation; slow down and try again.")
        response["Retry-After"] = str(math.ceil(wait))
        return response
    headers = headers_of(request)
    run = Run(
        automation=automation,
        project_id=automation.project_id,
        mode=Run.Mode.DEVELOPMENT if dev else Run.Mode.PRODUCTION,
        method=(request.method or "GET")[:12],
        query=query_of(request),
        headers=redacted_headers(headers),
        content_type=(request.content_type or "")[:200],
        path=path[:1000],
    )
    try:
        body = read_body(request)
        run.body, run.body_truncated = stored_body(body)
        if not automation.enabled:
            raise InboundRefused(422, "This automation is disabled; enable it to accept calls.")
        check_caller(automation, request, headers, body)
        inbound = parse(run.method, request.META.get("CONTENT_TYPE", ""), run.query, headers, body, run.path)
    except InboundRefused as refused:
        if refused.status in (401, 403):
            # An unauthenticated caller's body is not kept.
            run.body, run.body_truncated = "", False
        return _refuse(run, refused.status, refused.detail)

    if not has_response((automation.flow or {}).get("steps", [])):
        return _fire_and_forget(run, request, headers, body)

    execution = Execution(run, automation, inbound, started=started)
    if execution.live:
        Run.objects.insert(run)
    answer = execution.next_response()
    if answer is None:
        return ended_without_response(run)
    run.response = recorded(answer)
    then = execution.run_to_end if execution.ctx.nothing_after else partial(finish_later, execution)
    return _flow_response(answer, request.method, then=then)


def _flow_response(answer: dict, method: str, then) -> ContinuingResponse:
    """JSON by default; a string body with its own Content-Type (e.g. text/plain for a provider's
    verification challenge) is sent as that text. Headers the flow may not set are dropped here
    too (the response step dropped them already; this is the last word)."""
    status, body = answer["status"], answer["body"]
    headers, _ = answer_headers.allowed(dict(answer["headers"]))
    content_type = next((headers.pop(k) for k in list(headers) if k.lower() == "content-type"), "application/json")
    if isinstance(body, str) and "json" not in content_type.lower():
        content = body.encode()
    else:
        content = json.dumps(body).encode()
    if status in (204, 304) or method == "HEAD":
        content = b""
    response = ContinuingResponse(content, status=status, content_type=content_type, then=then)
    for name, value in headers.items():
        response[name] = value
    return response


def _refuse(run: Run, status: int, message: str) -> JsonResponse:
    """Calls that reached an automation but could not run are runs too (failed), so the owner sees them."""
    body = {"detail": message}
    run.status, run.error = Run.Status.FAILED, message
    run.response = {"status": status, "headers": {}, "body": body}
    run.finished_at = timezone.now()
    run.duration_ms = 0
    Run.objects.insert(run)
    return JsonResponse(body, status=status)


def _fire_and_forget(run: Run, request: HttpRequest, headers: dict, body: bytes) -> JsonResponse:
    """Queue the run: its call goes in a RunRequest row, the task gets the run id only (django-q2
    keeps tasks, arguments included, in its tables and the admin shows them)."""
    answer = {"success": True, "run_id": run.pk}
    run.response = {"status": 200, "headers": {}, "body": answer}
    call = recorded_call(run, request, storable(headers), body)
    with transaction.atomic():
        Run.objects.insert(run)
        call.save(force_insert=True)
    try:
        async_task(EXECUTE, run.pk, task_name=f"automation-run-{run.pk}", group="automations")
    except Exception:
        logger.exception("could not queue automation run %s", run.pk)
        message = "The automation could not be queued; try again later."
        with transaction.atomic():
            Run.objects.filter(pk=run.pk).update(
                status=Run.Status.FAILED,
                error=message,
                response={"status": 503, "headers": {}, "body": {"detail": message}},
                finished_at=timezone.now(),
            )
            call.delete()
        return detail(503, message)
    return JsonResponse(answer)


PRODUCTION_FAILURE = "the automation failed"


def ended_without_response(run: Run) -> JsonResponse:
    """A flow that ended without answering: 502 when it failed, 504 when it ran out of time. The
    production URL's caller is a third party: it gets the run id and nothing of the flow (step ids,
    templates, domain messages); the development URL, the runs API and the debug page say why."""
    if run.status == Run.Status.SUCCEEDED:
        status, body = 200, {"success": True, "run_id": run.pk}
    else:
        status = 504 if run.status == Run.Status.TIMED_OUT else 502
        if run.mode == Run.Mode.PRODUCTION:
            body = {"success": False, "error": PRODUCTION_FAILURE, "run_id": run.pk}
        elif status == 504:
            body = {"success": False, "detail": "The automation did not respond in time.", "run_id": run.pk}
        else:
            detail = f"The automation failed before responding: {run.error}"
            body = {"success": False, "detail": detail, "run_id": run.pk}
    run.response = {"status": status, "headers": {}, "body": body}
    Run.objects.filter(pk=run.pk).update(response=run.recordable(run.response))
    return JsonResponse(body, status=status)

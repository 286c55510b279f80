"""The synchronous `operator.select` webhook: the selector `support.routing` asks before it applies
its built-in choice (plugged in by `settings.SUPPORT_OPERATOR_SELECTOR`).

It is one POST of the standard envelope (same headers and signature as every delivery) with a hard
deadline of `HOOKS_OPERATOR_SELECT_TIMEOUT_S`, never retried (the moment has passed), and recorded
as a `Delivery` with exactly one `Attempt` and the `decision` it led to: "webhook", or
"fallback: <reason>" when the built-in suggestion stood. Nothing is written before the call, so the
call holds no lock and leaves nothing pending if the process dies during it."""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from core.per_process import PerProcess
from support import serializers as api
from support.conversation_serializers import RequestSerializer
from support.routing import RoutingQuestion, SelectorAnswer

from . import sequences
from .envelope import envelope_bytes, request_headers
from .events import OPERATOR_SELECT
from .models import Attempt, Delivery, EventPayload, Subscription
from .outcomes import record_attempt
from .sender import Exchange, post
from .signals import payload_of

logger = logging.getLogger(__name__)

# Slack for the thread hand-off on top of the HTTP timeout before the caller stops waiting.
_DEADLINE_SLACK_S = 0.05
_callers = PerProcess(lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="operator-select"))


def enabled_subscription(project_id: str) -> Subscription | None:
    return (
        Subscription.objects.select_related("project")
        .filter(project_id=project_id, event=OPERATOR_SELECT, enabled=True)
        .first()
    )


class OperatorSelectWebhook:
    """The selector: asked only for projects with an enabled `operator.select` subscription."""

    def consulted_for(self, project_id: str) -> bool:
        return Subscription.objects.filter(project_id=project_id, event=OPERATOR_SELECT, enabled=True).exists()

    def select(self, question: RoutingQuestion) -> SelectorAnswer | None:
        subscription = enabled_subscription(question.request.project_id)
        if subscription is None:  # disabled since consulted_for: routing is built-in at once
            return None
        return call(subscription, question)


def build_payload(question: RoutingQuestion) -> dict:
    project = question.request.project
    context = {"project": project}
    agents = {agent.pk: dict(api.ProjectUserSerializer(agent, context=context).data) for agent in question.agents}
    return {
        "agents": list(agents.values()),
        "available_agents": [agents[agent.pk] for agent in question.available_agents],
        "operators": [{"id_user": uid} for uid in question.suggestion],
        "department": _plain(api.DepartmentSerializer, question.department, context),
        "group": _plain(api.GroupSerializer, question.group, context),
        "id_project": project.pk,
        "project": {"_id": project.pk, "id": project.pk, "name": project.name},
        "context": {
            "request": payload_of(RequestSerializer, question.request),
            "previous_operator_id": question.previous_operator_id,
        },
    }


def _plain(serializer_class, instance, context: dict) -> dict | None:
    """As the API serializes it, in plain JSON types (the payload is stored as JSON)."""
    if instance is None:
        return None
    return json.loads(JSONRenderer().render(serializer_class(instance, context=context).data))


def call(subscription: Subscription, question: RoutingQuestion) -> SelectorAnswer:
    """POST, interpret the answer, record the delivery; the answer honoured or the fallback reason."""
    now = timezone.now()
    payload = EventPayload(project_id=subscription.project_id, payload=build_payload(question), occurred_at=now)
    delivery = Delivery(
        project_id=subscription.project_id,
        subscription=subscription,
        event=OPERATOR_SELECT,
        event_payload=payload,
        next_attempt_at=None,
        created_at=now,
    )
    sequences.assign([delivery])
    body = envelope_bytes(delivery)
    headers = request_headers(delivery, body, int(time.time()))
    timeout_s = settings.HOOKS_OPERATOR_SELECT_TIMEOUT_S
    exchange = post_within(subscription.target, body, headers, timeout_s)
    operators, problem = interpret(exchange, question.eligible(), timeout_s)
    if problem and exchange.ok:
        # The HTTP exchange worked but its answer was unusable: the attempt shows why it failed.
        exchange.error = problem
    decision = "webhook" if problem is None else f"fallback: {problem}"
    _record(delivery, payload, body, headers, exchange, decision)
    logger.info("operator.select for request %s: %s", question.request.pk, decision)
    return SelectorAnswer(operators if problem is None else None, decision)


def interpret(exchange: Exchange, eligible: set[str], timeout_s: float) -> tuple[list[str] | None, str | None]:
    """The operators chosen, or the reason the built-in suggestion stands."""
    if exchange.status_code == 504 and exchange.error == "Gateway Timeout":
        return None, f"timeout after {timeout_s:g}s"
    if exchange.status_code is None:
        return None, exchange.error or "no response"
    if not exchange.ok:
        return None, exchange.error or f"HTTP {exchange.status_code}"
    try:
        answer = json.loads(exchange.response_body)
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(answer, dict) or "operators" not in answer:
        return None, "no operators in the answer"
    chosen = answer["operators"]
    if not isinstance(chosen, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id_user"), str | int) and not isinstance(item["id_user"], bool)
        for item in chosen
    ):
        return None, 'operators must be a list of {"id_user": ...}'
    ids = [str(item["id_user"]) for item in chosen]
    strangers = [uid for uid in ids if uid not in eligible]
    if strangers:
        return None, f"not an eligible teammate or a bot of the project: {', '.join(strangers)}"[:250]
    return ids, None


def post_within(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Exchange:
    """`sender.post` under a wall-clock deadline: the client's own deadline covers connecting,
    sending and reading, but not name resolution, so a slow DNS could otherwise hold the caller."""
    started = time.monotonic()
    future = _callers.get().submit(post, url, body, headers, timeout_s)
    try:
        return future.result(timeout=timeout_s + _DEADLINE_SLACK_S)
    except FutureTimeout:
        future.cancel()  # if it is still running it ends at its own deadline
        return Exchange(status_code=504, error="Gateway Timeout", duration_ms=int((time.monotonic() - started) * 1000))


def _record(
    delivery: Delivery, payload: EventPayload, body: bytes, headers: dict[str, str], exchange: Exchange, decision: str
) -> Attempt:
    """The delivery, its payload and its single attempt, written together after the call."""
    delivery.status = Delivery.Status.SUCCESS if exchange.ok else Delivery.Status.FAILED
    delivery.decision = decision[:300]
    delivery.last_error = "" if decision == "webhook" else decision[:500]
    with transaction.atomic():
        payload.save()
        delivery.save()
        attempt = record_attempt(delivery, body, headers, exchange)
        delivery.save(update_fields=["attempt_count", "updated_at"])
    return attempt

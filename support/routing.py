"""Routing: who serves a conversation, decided when it is created, moved to another department,
re-routed, or taken by hand.

The department's `routing` decides (built-in):
- `assigned`: one available agent of the department's group (of the project if it has none), the
  one with the fewest open conversations, ties going to whoever was served least recently
  (round-robin). Agents with `user_available: false` or at their `max_assigned_chat` are skipped;
  when nobody is left the conversation waits `pooled`.
- `pooled`: no participant; every agent of the department may take it (`assign`).
- `fixed`: the department's bot is the participant (`bot_<id>`, as Tiledesk names it).

An outside *selector* may overrule `assigned` and `pooled` routing. The domain does not know what it
is: `settings.SUPPORT_OPERATOR_SELECTOR` names it (the webhook layer's `operator.select` call), and
it is asked with a `RoutingQuestion` and answers a `SelectorAnswer`: eligible teammates or the
project's bots (`bot_<id>`); anyone else leaves the built-in choice. Because a selector may be slow
(an HTTP call), it is only ever asked outside a database transaction: the conversation is committed
first (a receiver may read it back through the API), the selector is asked with no lock held, and
the decision is applied in a short transaction of its own. Every applied decision saves the
`Request`, which publishes `request.update` as any change does."""

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils.module_loading import import_string

from core import sql

from .models import Department, FaqKb, Group, Project, ProjectUser, Request

logger = logging.getLogger(__name__)

BOT_PREFIX = "bot_"
# How many recently served conversations are read to find who was served least recently.
RECENCY_WINDOW = 500
_UNCHANGED = object()


@dataclass(frozen=True)
class Decision:
    """What routing does to a conversation."""

    participants: list[str]
    status: int  # a Request.Status
    routed_by: str
    reason: str


@dataclass
class RoutingQuestion:
    """Everything a selector needs to choose, with the built-in suggestion."""

    request: Request | None  # None: a conversation about to be created
    department: Department | None
    group: Group | None
    routing: str
    agents: list[ProjectUser]  # every teammate eligible in the department
    available_agents: list[ProjectUser]  # those who may get a conversation now
    suggestion: list[str]  # user ids: the built-in choice ([] when it would stay pooled)
    previous_operator_id: str | None = None
    builtin: Decision | None = field(default=None, repr=False)

    @property
    def agent_ids(self) -> set[str]:
        return {str(agent.user_id) for agent in self.agents}

    def eligible(self) -> set[str]:
        """Who a selector may choose: the eligible teammates, or the project's bots (`bot_<id>`), as
        Tiledesk's requestService takes an operator named `bot_<id>` for a bot. Selectors are asked
        about committed conversations only, so `request` is set."""
        return self.agent_ids | project_bots(self.request.project_id)


@dataclass(frozen=True)
class SelectorAnswer:
    """`operators` None: the built-in suggestion stands, for `reason` ("fallback: ...").
    A list (possibly empty, meaning pooled): the selector's choice."""

    operators: list[str] | None
    reason: str


class OperatorSelector(Protocol):
    def consulted_for(self, project_id: str) -> bool:
        """Whether this project's routing asks the selector at all (cheap; called first)."""

    def select(self, question: RoutingQuestion) -> SelectorAnswer | None:
        """The choice, or None to say nothing (built-in routing, nothing recorded)."""


@lru_cache(maxsize=4)
def _load_selector(path: str) -> OperatorSelector:
    target = import_string(path)
    return target() if isinstance(target, type) else target


def configured_selector() -> OperatorSelector | None:
    path = getattr(settings, "SUPPORT_OPERATOR_SELECTOR", "")
    return _load_selector(path) if path else None


# --- who may serve ---------------------------------------------------------------------------


def eligible_agents(project_id: str, department: Department | None) -> list[ProjectUser]:
    """Active teammates of the department's group, or of the whole project when it has none."""
    teammates = ProjectUser.objects.filter(
        project_id=project_id, status=ProjectUser.Status.ACTIVE, user__isnull=False
    ).order_by("created_at", "id")
    group = department.group if department is not None else None
    if group is not None:
        members = {str(member) for member in group.members}
        return [teammate for teammate in teammates if str(teammate.user_id) in members]
    return list(teammates)


def project_bots(project_id: str) -> set[str]:
    """The project's bots as participants name them (`bot_<id>`)."""
    return {f"{BOT_PREFIX}{pk}" for pk in FaqKb.objects.filter(project_id=project_id).values_list("pk", flat=True)}


def eligible_participants(project_id: str, department: Department | None) -> set[str]:
    """Who may be chosen to serve a conversation of the department: its eligible teammates (user
    ids) and the project's bots (`bot_<id>`)."""
    return {str(agent.user_id) for agent in eligible_agents(project_id, department)} | project_bots(project_id)


def open_conversations(project_id: str, exclude_request_id: str | None = None) -> Counter:
    """Assigned, not closed conversations per participant id. Counted by the database: a busy
    project has thousands open, and every new conversation asks (reading them all into Python made
    a create cost 12 µs more for each one open)."""
    exclude = bool(exclude_request_id)
    text = sql.statement(("open_conversations", exclude), lambda: _open_conversations_statement(exclude))
    params = [project_id, Request.Status.ASSIGNED, *([exclude_request_id] if exclude else [])]
    return Counter({str(participant): count for participant, count in sql.select(text, params)})


def last_served_rank(project_id: str, exclude_request_id: str | None = None) -> dict[str, int]:
    """For round-robin: 0 for the participant of the most recently changed conversation, 1 for the
    next one back, ...; someone absent from the recent window was served longest ago. The window is
    read in `request_recency_idx` order and ranked by the database."""
    exclude = bool(exclude_request_id)
    text = sql.statement(("last_served_rank", exclude), lambda: _last_served_statement(exclude))
    params = [project_id, *([exclude_request_id] if exclude else []), RECENCY_WINDOW]
    return {str(participant): rank for rank, (participant,) in enumerate(sql.select(text, params))}


def _participants_of(alias: str) -> tuple[str, str, str]:
    """A FROM item with one row per participant of `alias`'s conversation, the condition that its
    participants are a list, and the expression of a participant's place in the list (the
    participant itself is `participant.value`)."""
    participants = f"{alias}.{sql.column(Request, 'participants')}"
    if connection.vendor == "postgresql":
        return (
            f"jsonb_array_elements_text({participants}) WITH ORDINALITY AS participant(value, place)",
            f"jsonb_typeof({participants}) = 'array'",
            "participant.place",
        )
    return f"json_each({participants}) AS participant", f"json_type({participants}) = 'array'", "participant.key"


def _open_conversations_statement(exclude: bool) -> str:
    column = {name: sql.column(Request, name) for name in ("id", "project", "status")}
    each, is_list, _ = _participants_of("request")
    return (
        f"SELECT participant.value, COUNT(*) FROM {sql.table(Request)} AS request, {each} "
        f"WHERE request.{column['project']} = %s AND request.{column['status']} = %s AND {is_list}"
        + (f" AND request.{column['id']} <> %s" if exclude else "")
        + " GROUP BY participant.value"
    )


def _last_served_statement(exclude: bool) -> str:
    column = {name: sql.column(Request, name) for name in ("id", "project", "participants", "updated_at")}
    newest_first = f"{column['updated_at']} DESC, {column['id']} DESC"
    each, is_list, place = _participants_of("recent")
    # Participants of one conversation are few: a participant's first appearance, newest
    # conversation first and in list order within it, is the smallest position * 1,000,000 + place.
    return (
        f"WITH recent AS (SELECT {column['participants']}, ROW_NUMBER() OVER (ORDER BY {newest_first}) AS position "
        f"FROM {sql.table(Request)} WHERE {column['project']} = %s AND {column['participants']} <> '[]'"
        + (f" AND {column['id']} <> %s" if exclude else "")
        + f" ORDER BY {newest_first} LIMIT %s) "
        f"SELECT participant.value FROM recent, {each} WHERE {is_list} "
        f"GROUP BY participant.value ORDER BY MIN(recent.position * 1000000 + {place})"
    )


def is_available(agent: ProjectUser, load: Counter) -> bool:
    if not agent.user_available:
        return False
    return agent.max_assigned_chat is None or load[str(agent.user_id)] < agent.max_assigned_chat


def fairest(agents: list[ProjectUser], load: Counter, rank: dict[str, int]) -> ProjectUser:
    """Fewest open conversations first; then whoever was served least recently (never served
    first); then the oldest membership, so the order is stable."""

    def key(indexed: tuple[int, ProjectUser]):
        position, agent = indexed
        uid = str(agent.user_id)
        served = rank.get(uid)
        return (load[uid], served is not None, -(served or 0), position)

    return min(enumerate(agents), key=key)[1]


# --- the built-in decision -------------------------------------------------------------------


def build_question(
    project_id: str,
    department: Department | None,
    request: Request | None = None,
    previous_operator_id: str | None = None,
) -> RoutingQuestion:
    """The built-in decision for a conversation (`request`, or one about to be created), and what
    a selector is told about it."""
    routing = department.routing if department is not None else Department.Routing.ASSIGNED
    exclude = request.pk if request is not None and not request._state.adding else None
    agents = eligible_agents(project_id, department)
    load = open_conversations(project_id, exclude_request_id=exclude)
    available = [agent for agent in agents if is_available(agent, load)]
    if routing == Department.Routing.FIXED and department.bot_id:
        decision = Decision(
            [f"{BOT_PREFIX}{department.bot_id}"],
            Request.Status.ASSIGNED,
            Request.RoutedBy.BUILTIN,
            f"fixed: the department's bot {department.bot_id}",
        )
    elif routing == Department.Routing.FIXED:  # its bot was deleted: people must pick it up
        decision = Decision([], Request.Status.POOLED, Request.RoutedBy.BUILTIN, "fixed: the bot is gone, pooled")
    elif routing == Department.Routing.POOLED:
        decision = Decision([], Request.Status.POOLED, Request.RoutedBy.BUILTIN, "pooled: the department's routing")
    elif available:
        chosen = fairest(available, load, last_served_rank(project_id, exclude_request_id=exclude))
        uid = str(chosen.user_id)
        decision = Decision(
            [uid],
            Request.Status.ASSIGNED,
            Request.RoutedBy.BUILTIN,
            f"assigned: {uid} had the fewest open conversations ({load[uid]}) of {len(available)} available",
        )
    else:
        decision = Decision([], Request.Status.POOLED, Request.RoutedBy.BUILTIN, "assigned: no agent available, pooled")
    return RoutingQuestion(
        request=request,
        department=department,
        group=department.group if department is not None else None,
        routing=routing,
        agents=agents,
        available_agents=available,
        suggestion=list(decision.participants) if routing == Department.Routing.ASSIGNED else [],
        previous_operator_id=previous_operator_id,
        builtin=decision,
    )


def current_operator(request: Request) -> str | None:
    return str(request.participants[0]) if request.participants else None


def default_department(project_id: str) -> Department | None:
    """Where a conversation created without a department goes (the default one, else the oldest)."""
    return Department.objects.filter(project_id=project_id).order_by("-default", "created_at").first()


def asks_selector(project_id: str, department: Department | None) -> bool:
    """Whether routing in this department waits for the selector (never for a bot's department)."""
    if department is not None and department.routing == Department.Routing.FIXED:
        return False
    selector = configured_selector()
    return selector is not None and selector.consulted_for(project_id)


def _lock_project(project_id: str) -> None:
    """Serialize routing decisions per project, so that two conversations routed at the same moment
    see each other's load (a no-op on SQLite, whose writers are serialized anyway)."""
    Project.objects.select_for_update(no_key=True).filter(pk=project_id).exists()


def fields_for_new(project_id: str, department: Department | None) -> dict:
    """The built-in routing of a conversation about to be created, as model fields, so that it is
    created routed and `request.create` carries its operator. Call inside the creating transaction,
    and only when `asks_selector` is false (otherwise create it, commit, then `route` it)."""
    _lock_project(project_id)
    return _fields(build_question(project_id, department).builtin)


def _fields(decision: Decision) -> dict:
    return {
        "participants": decision.participants,
        "status": decision.status,
        "routed_by": decision.routed_by,
        "routing_reason": decision.reason[:300],
    }


# --- routing an existing conversation --------------------------------------------------------


def route(
    request: Request, *, department=_UNCHANGED, previous_operator_id: str | None = None, _after_commit: bool = False
) -> Request:
    """Route a committed conversation (moving it to `department` if given); returns it as routed.

    Called inside a transaction it waits for the commit and returns the request as it is: a
    selector must see a committed conversation and must never hold a transaction open."""
    in_transaction = transaction.get_connection().in_atomic_block
    if in_transaction and not _after_commit:
        transaction.on_commit(
            partial(_route_logged, request, department=department, previous_operator_id=previous_operator_id),
            robust=True,
        )
        return request
    target = request.department if department is _UNCHANGED else department
    answer = None
    if asks_selector(request.project_id, target):
        if in_transaction:
            # Only reachable when a test runs deferred callbacks inside its own transaction.
            logger.warning("request %s: selector not asked inside a transaction", request.pk)
        else:
            question = build_question(request.project_id, target, request, previous_operator_id)
            answer = _ask(configured_selector(), question)
    return _apply(request, target, answer, previous_operator_id)


def create_routed(serializer, project: Project) -> Request:
    """Save a validated `RequestSerializer` as a routed conversation: the one way conversations are
    created (the API and automations both come here).

    Without a selector to ask, the conversation is created already routed (one `request.create`
    carries its operator); with one, it is committed first, then routed (`request.update`). Routing
    never makes the create fail: whatever goes wrong, the conversation exists."""
    with transaction.atomic():
        data = serializer.validated_data
        department = data["department"] if "department" in data else default_department(project.pk)
        asks = asks_selector(project.pk, department)
        initial = {} if asks else _initial_fields(project.pk, department)
        conversation = serializer.save(project=project, department=department, **initial)
    return route_safely(conversation) if asks else conversation


def _initial_fields(project_id: str, department: Department | None) -> dict:
    try:
        with transaction.atomic():  # a savepoint: a failure here leaves the create usable
            return fields_for_new(project_id, department)
    except Exception:
        logger.exception("routing a new request in project %s failed; it is created unrouted", project_id)
        return {}


def route_safely(request: Request, **options) -> Request:
    """`route`, except that a failure is logged and the conversation returned as it is."""
    try:
        return route(request, **options)
    except Exception:
        logger.exception("routing request %s failed", request.pk)
        return Request.objects.select_related("lead", "department").get(pk=request.pk)


def _route_logged(request: Request, **kwargs) -> None:
    try:
        route(request, _after_commit=True, **kwargs)
    except Exception:
        logger.exception("routing request %s after commit failed", request.pk)


def _ask(selector: OperatorSelector, question: RoutingQuestion) -> SelectorAnswer | None:
    try:
        return selector.select(question)
    except Exception:  # a selector's bug must not lose the conversation: built-in routing stands
        logger.exception("operator selector failed for request %s", question.request.pk)
        return SelectorAnswer(None, "fallback: selector error")


def _apply(
    request: Request, department: Department | None, answer: SelectorAnswer | None, previous_operator_id: str | None
) -> Request:
    """Decide and save in one short transaction. The built-in choice is recomputed under the lock
    (load may have moved while the selector was asked); a selector's choice is checked again."""
    with transaction.atomic():
        _lock_project(request.project_id)
        current = Request.objects.select_for_update(of=("self",)).select_related("project", "lead").get(pk=request.pk)
        if current.status == Request.Status.CLOSED:
            return current
        decision = None
        if answer is not None and answer.operators is not None:
            eligible = eligible_participants(request.project_id, department)
            strangers = [uid for uid in answer.operators if uid not in eligible]
            if strangers:
                answer = SelectorAnswer(None, f"fallback: {', '.join(strangers)} no longer eligible")
            else:
                decision = _selected(answer.operators)
        if decision is None:
            decision = build_question(request.project_id, department, current, previous_operator_id).builtin
        if answer is not None and answer.operators is None:
            decision = Decision(
                decision.participants,
                decision.status,
                decision.routed_by,
                f"{decision.reason} (operator.select {answer.reason})",
            )
        current.department = department
        for name, value in _fields(decision).items():
            setattr(current, name, value)
        current.save()
    return current


def _selected(operators: list[str]) -> Decision:
    if not operators:
        return Decision([], Request.Status.POOLED, Request.RoutedBy.WEBHOOK, "operator.select: left pooled")
    chosen = list(dict.fromkeys(operators))
    return Decision(
        chosen, Request.Status.ASSIGNED, Request.RoutedBy.WEBHOOK, f"operator.select: chose {', '.join(chosen)}"
    )


# --- taking and handing over ---------------------------------------------------------------


def is_eligible(request: Request, user_id: str) -> bool:
    return any(str(agent.user_id) == str(user_id) for agent in eligible_agents(request.project_id, request.department))


def assign(request: Request, user_id: str, by_user_id: str) -> Request:
    """An agent takes a conversation (`user_id` is the caller) or hands it over; availability
    limits do not apply to a person's explicit choice. The caller checks eligibility."""
    user_id, by_user_id = str(user_id), str(by_user_id)
    with transaction.atomic():
        current = Request.objects.select_for_update().get(pk=request.pk)
        previous = current_operator(current)
        if user_id == by_user_id:
            reason = f"taken by {user_id}"
        elif previous == by_user_id:
            reason = f"handed over by {by_user_id} to {user_id}"
        else:
            reason = f"assigned by {by_user_id} to {user_id}"
        current.participants = [user_id]
        current.status = Request.Status.ASSIGNED
        current.routing_reason = reason
        current.save()
    return current

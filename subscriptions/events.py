"""The event catalog: the single source of truth for every event name a subscription may name.

The names are those Tiledesk's server delivers to a project's subscriptions (its
services/subscriptionNotifier.js and subscriptionNotifierQueued.js). Three families are open-ended:
`message.create.request.channel.<channel>` (a message in a conversation of that channel),
`message.create.channel.<channel>` (a message sent on that channel) and `event.emit.<name>` (an
emitted event of that name). Tiledesk names that never reach a project's subscriptions are not
accepted: `user.signup` and `project.create` (no project subscription can exist yet),
`...request.channelOutbound.<channel>` (its notifier's pattern does not match it), `project.downgrade`
(plans do not exist here)."""

import re
from dataclasses import dataclass

CHANNEL_PREFIX = "message.create.request.channel."
MESSAGE_CHANNEL_PREFIX = "message.create.channel."
EMIT_PREFIX = "event.emit."
FAMILIES = (CHANNEL_PREFIX, MESSAGE_CHANNEL_PREFIX, EMIT_PREFIX)
OPERATOR_SELECT = "operator.select"

# A channel or emitted-event name: what Tiledesk accepts in practice, with no spaces.
_SUFFIX = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,99}$")


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    payload: str  # the model (API resource) the payload is
    example: dict


_STAMP = {"createdAt": "2026-11-23T10:00:00.000000Z", "updatedAt": "2026-11-23T10:00:00.000000Z"}
_PROJECT = {"id_project": "6553a1f0aaaabbbbccccdddd"}


def _obj(oid: str, **fields) -> dict:
    return {"_id": oid, "id": oid, **fields, **_PROJECT, **_STAMP}


_LEAD = _obj(
    "6553a1f0aaaa000011112222",
    lead_id="8f14e45f-ceea-467f-a8f2-7b2f8a1d3c9e",
    fullname="Ann Smith",
    email="ann@example.com",
    attributes={},
)
_FAQ_KB = _obj("6553a1f0ffff000011112222", name="Orders bot", description="Answers order questions")
_FAQ = _obj(
    "6553a1f0ffff000033334444",
    id_faq_kb="6553a1f0ffff000011112222",
    question="Where is my order?",
    answer="Check the tracking link in your e-mail.",
)
_DEPARTMENT = _obj(
    "6553a1f0dddd000011112222",
    name="Sales",
    routing="assigned",
    id_bot=None,
    id_group="6553a1f0bbbb000011112222",
    default=False,
    hasBot=False,
)
_GROUP = _obj("6553a1f0bbbb000011112222", name="Tier 1", members=["2", "3"])
_AGENT = {"_id": "2", "id": "2", "email": "bob@example.com", "firstname": "Bob", "lastname": "Agent"}
_PROJECT_USER = _obj(
    "6553a1f0cccc000011112222",
    id_user="3",
    email="carol@example.com",
    role="agent",
    user_available=True,
    max_assigned_chat=None,
    status="active",
)
_PROJECT_OBJECT = {
    "_id": "6553a1f0aaaabbbbccccdddd",
    "id": "6553a1f0aaaabbbbccccdddd",
    "name": "Acme support",
    "createdBy": "2",
    **_PROJECT,
    **_STAMP,
}
_EVENT = _obj("6553a1f0abab000011112222", name="typing.start", attributes={"text": "Hel"}, createdBy="2")
_REQUEST_ID = "support-group-6553a1f0aaaabbbbccccdddd-0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _request_example() -> dict:
    """A conversation assigned to agent 2 (status 200), as Tiledesk's notifier sends it: `lead`,
    `department` and the participating teammates and bots as objects."""
    return _obj(
        "6553a1f0c1d2e3f4a5b6c7d8",
        request_id=_REQUEST_ID,
        status=200,
        first_text="Hello, I need help with my order",
        lead=_LEAD,
        requester_id=_LEAD["_id"],
        department=_DEPARTMENT,
        participants=["2"],
        participantsAgents=["2"],
        participantsBots=[],
        participatingAgents=[_AGENT],
        participatingBots=[],
        hasBot=False,
        channel={"name": "chat21"},
        channelOutbound={"name": "chat21"},
        closed_at=None,
        duration=None,
        attributes={},
        sourcePage="https://shop.example.com/orders",
        routed_by="builtin",
        routing_reason="assigned: 2 had the fewest open conversations (0) of 2 available",
    )


_MESSAGE_ROW = _obj(
    "6553a1f0eeee000011112222",
    recipient=_REQUEST_ID,
    sender="2",
    senderFullname="Bob Agent",
    text="Your order ships today",
    type="text",
    channel_type="group",
    channel={"name": "chat21"},
    attributes={},
)
_MESSAGE = {**_MESSAGE_ROW, "request": _request_example()}
_CLOSED_REQUEST = {
    **_request_example(),
    "status": 1000,
    "closed_at": "2026-11-23T10:30:00.000000Z",
    "duration": 1800000,
    "messages": [_MESSAGE_ROW],
}
_OPERATOR_SELECT = {
    "agents": [
        {**_PROJECT_USER, "_id": "6553a1f0cccc000022223333", "id": "6553a1f0cccc000022223333", "id_user": "2"},
        {**_PROJECT_USER, "user_available": False},
    ],
    "available_agents": [
        {**_PROJECT_USER, "_id": "6553a1f0cccc000022223333", "id": "6553a1f0cccc000022223333", "id_user": "2"}
    ],
    "operators": [{"id_user": "2"}],
    "department": _DEPARTMENT,
    "group": _GROUP,
    "id_project": "6553a1f0aaaabbbbccccdddd",
    "project": {"_id": "6553a1f0aaaabbbbccccdddd", "id": "6553a1f0aaaabbbbccccdddd", "name": "Acme support"},
    "context": {
        "request": {
            **_request_example(),
            "status": 50,
            "participants": [],
            "participantsAgents": [],
            "participatingAgents": [],
            "routed_by": "",
            "routing_reason": "",
        },
        "previous_operator_id": None,
    },
}

AUTOMATION_RUN_FAILED = "automation.run.failed"
_FAILED_RUN = _obj(
    "6553a1f0eeee000011112222",
    run_id="6553a1f0eeee000011112222",
    automation={"_id": "6553a1f0eeee000033334444", "id": "6553a1f0eeee000033334444", "name": "Inbound lead"},
    mode="production",
    status="failed",
    step={"id": "create", "action": "create_request"},
    error="step 'create' (create_request) failed: cannot create the request: first_text: This field is required.",
)
_SUBSCRIPTION = _obj(
    "6553a1f0abcd000011112222",
    event="request.create",
    events=["request.create"],
    filter=None,
    headers={},
    auth=None,
    target="https://crm.example.com/hooks/tiledesk",
    enabled=False,
    ordering="none",
    rate_limit=None,
    disabled_reason="The target answered 410 Gone.",
    secret="whsec_••••a1b2",
    createdBy="2",
    __v=0,
)
_LAST_ATTEMPT = {
    "id": "6553a1f0abcd000033334444",
    "delivery": "6553a1f0abcd000055556666",
    "subscription": "6553a1f0abcd000011112222",
    "event": "request.create",
    "attempt": 1,
    "target": "https://crm.example.com/hooks/tiledesk",
    "request_headers": {
        "Content-Type": "application/json",
        "User-Agent": "tiledesk-webhooks/1.0",
        "x-hook-id": "6553a1f0abcd000055556666",
        "webhook-id": "6553a1f0abcd000055556666",
        "webhook-timestamp": "1763892000",
        "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        "x-hook-secret": "[redacted]",
    },
    "request_body": "{...}",
    "status_code": 410,
    "response_headers": {"Content-Type": "text/plain"},
    "response_body": "Gone",
    "error": "subscription disabled: The target answered 410 Gone.",
    "duration_ms": 42,
    "outcome": "failed",
    "createdAt": "2026-11-23T10:00:00.000000Z",
}
_SUBSCRIPTION_DISABLED = {
    "subscription": _SUBSCRIPTION,
    "reason": "The target answered 410 Gone.",
    "last_attempt": _LAST_ATTEMPT,
    **_PROJECT,
}
_SUBSCRIPTION_ENABLED = {"subscription": {**_SUBSCRIPTION, "enabled": True, "disabled_reason": ""}, **_PROJECT}

CATALOG: tuple[EventType, ...] = (
    EventType("request.create", "A conversation was created.", "request", _request_example()),
    EventType(
        "request.update",
        "A conversation changed (assignment, department, attributes...).",
        "request",
        _request_example(),
    ),
    EventType(
        "request.close",
        "A conversation was closed (status 1000); `messages` are its messages, oldest first, without their `request`.",
        "request",
        _CLOSED_REQUEST,
    ),
    EventType(
        "message.create", "A message was sent in a conversation; `request` is that conversation.", "message", _MESSAGE
    ),
    EventType(
        CHANNEL_PREFIX + "<channel>",
        "A message was sent in a conversation of that channel (chat21, telegram, whatsapp...).",
        "message",
        _MESSAGE,
    ),
    EventType(
        MESSAGE_CHANNEL_PREFIX + "<channel>",
        "A message was sent on that channel (chat21, telegram, whatsapp...).",
        "message",
        _MESSAGE,
    ),
    EventType("lead.create", "A lead (requester) was created.", "lead", _LEAD),
    EventType("faq.create", "A FAQ was added to a bot.", "faq", _FAQ),
    EventType("faq.update", "A FAQ changed.", "faq", _FAQ),
    EventType("faq.delete", "A FAQ was deleted.", "faq", _FAQ),
    EventType("faqbot.create", "A bot (faq_kb) was created.", "faq_kb", _FAQ_KB),
    EventType("faqbot.update", "A bot changed.", "faq_kb", _FAQ_KB),
    EventType("faqbot.delete", "A bot was deleted.", "faq_kb", _FAQ_KB),
    EventType("department.create", "A department was created.", "department", _DEPARTMENT),
    EventType("department.update", "A department changed.", "department", _DEPARTMENT),
    EventType("department.delete", "A department was deleted.", "department", _DEPARTMENT),
    EventType("project_user.invite", "A teammate was added or invited.", "project_user", _PROJECT_USER),
    EventType("project_user.update", "A teammate changed (role, availability...).", "project_user", _PROJECT_USER),
    EventType(
        "project_user.update.agent",
        "A teammate changed (sent with every project_user.update: every project user here is a teammate).",
        "project_user",
        _PROJECT_USER,
    ),
    EventType("project_user.delete", "A teammate was removed.", "project_user", _PROJECT_USER),
    EventType("project.update", "The project changed (its name...).", "project", _PROJECT_OBJECT),
    EventType(
        "project.delete",
        "The project was deleted: sent from the deletion's own transaction, once it is closed and "
        "before anything is erased; its data is erased once this and every other delivery is done.",
        "project",
        _PROJECT_OBJECT,
    ),
    EventType("group.create", "A group of teammates was created.", "group", _GROUP),
    EventType("group.update", "A group changed.", "group", _GROUP),
    EventType("group.delete", "A group was deleted.", "group", _GROUP),
    EventType("event.emit", "An event was emitted (POST .../events/).", "event", _EVENT),
    EventType(
        EMIT_PREFIX + "<name>", "An event of that name was emitted (e.g. event.emit.typing.start).", "event", _EVENT
    ),
    EventType(
        AUTOMATION_RUN_FAILED,
        "An automation run failed or timed out (also after the caller was answered): the step and the error, "
        "never the call's body. `mode` says whether it was the production or the development URL.",
        "automation_run",
        _FAILED_RUN,
    ),
    EventType(
        "subscription.disabled",
        "One of the project's subscriptions stopped (its target answered 410, it failed for too long, or an "
        "operator disabled it): the subscription, why, and its last attempt (null if it had none).",
        "subscription_disabled",
        _SUBSCRIPTION_DISABLED,
    ),
    EventType(
        "subscription.enabled",
        "One of the project's subscriptions was enabled again.",
        "subscription_enabled",
        _SUBSCRIPTION_ENABLED,
    ),
    EventType(
        OPERATOR_SELECT,
        "Synchronous: asked which operator gets a conversation. At most one per project.",
        "operator_selection",
        _OPERATOR_SELECT,
    ),
)

_EXACT = {event.name: event for event in CATALOG if "<" not in event.name}


def is_valid_event_name(name: str) -> bool:
    if name in _EXACT:
        return True
    for prefix in FAMILIES:
        if name.startswith(prefix):
            return bool(_SUFFIX.match(name[len(prefix) :]))
    return False


def lookup(name: str) -> EventType | None:
    """The catalog entry an event name belongs to (its family for the open-ended forms)."""
    if name in _EXACT:
        return _EXACT[name]
    for event in CATALOG:
        if "<" in event.name and name.startswith(event.name.split("<")[0]):
            return event
    return None


def example_payload(name: str) -> dict:
    event = lookup(name)
    if event is None:
        raise KeyError(name)
    if name.startswith(EMIT_PREFIX):
        return {**event.example, "name": name[len(EMIT_PREFIX) :]}
    for prefix in (CHANNEL_PREFIX, MESSAGE_CHANNEL_PREFIX):
        if name.startswith(prefix):
            channel = {"name": name[len(prefix) :]}
            return {**event.example, "channel": channel, "request": {**event.example["request"], "channel": channel}}
    return event.example


def names_for_message(channel_name: str) -> list[str]:
    """As Tiledesk's messageEvent.js emits them: the conversation's channel and the message's own
    (the same channel here: a message is sent on its conversation's)."""
    return ["message.create", CHANNEL_PREFIX + channel_name, MESSAGE_CHANNEL_PREFIX + channel_name]


def names_for_emitted(event_name: str) -> list[str]:
    return ["event.emit", EMIT_PREFIX + event_name]

"""Every event's payload, delivered over real HTTP to a receiver on 127.0.0.1, compared field by
field (names and JSON types) with what Tiledesk's server 2.19 sends for the same event.

The tables are read from Tiledesk's source (paths under its package root, `file:line` of each
field). Each payload is checked against three layers: Tiledesk's fields carried here, the few whose
type differs on purpose (`CHANGED`), and the fields only this project adds (`ONLY_HERE`). The
Tiledesk fields not carried at all, and why, are in the README ("Payloads compared with
Tiledesk's"). Tiledesk leaves an unset field out where this project sends null: the types below
say which fields may be null."""

from contextlib import nullcontext

import pytest

from support.models import Department, FaqKb, Group
from tests.conftest import received
from tests.factories import subscribed

STR, INT, BOOL, OBJECT, NULL = str, int, bool, dict, type(None)
STAMPS = {"createdAt": STR, "updatedAt": STR}  # every model's `timestamps: true`


def nullable(spec) -> tuple:
    return (*(spec if isinstance(spec, tuple) else (spec,)), NULL)


# --- Tiledesk's documents, as its notifier JSON-encodes them ------------------------------------

# models/lead.js (no toJSON virtuals, so no `id`); the payload of lead.create is the saved lead,
# services/subscriptionNotifierQueued.js:99.
LEAD = {
    "_id": STR,
    "lead_id": STR,  # models/lead.js:17
    "fullname": STR,  # models/lead.js:22
    "email": STR,  # models/lead.js:26
    "attributes": OBJECT,  # models/lead.js:68
    "id_project": STR,  # models/lead.js:71
    **STAMPS,  # models/lead.js:95
}
LEAD_ONLY_HERE = {"id": STR}  # API.md: every resource carries `id`

# models/department.js (toJSON with virtuals, :66); department.* payloads are the saved department,
# services/subscriptionNotifier.js:434-447.
DEPARTMENT = {
    "_id": STR,
    "id": STR,  # the `id` virtual, models/department.js:66
    "id_bot": nullable(STR),  # models/department.js:10 (left out when unset)
    "routing": STR,  # models/department.js:17
    "name": STR,  # models/department.js:22
    "id_project": STR,  # models/department.js:31
    "id_group": nullable(STR),  # models/department.js:36 (left out when unset)
    "default": BOOL,  # models/department.js:47
    "hasBot": BOOL,  # virtual, models/department.js:78
    **STAMPS,  # models/department.js:65
}

# models/user.js: a teammate in `participatingAgents` (populated, event/requestEvent.js:34).
USER = {"_id": STR, "email": STR, "firstname": STR, "lastname": STR}  # models/user.js:8, :20, :24
USER_ONLY_HERE = {"id": STR}

# models/faq_kb.js (no toJSON virtuals); faqbot.* payloads, services/subscriptionNotifier.js:317-329;
# a bot in `participatingBots` (populated, event/requestEvent.js:33).
FAQ_KB = {
    "_id": STR,
    "name": STR,  # models/faq_kb.js:11
    "description": STR,  # models/faq_kb.js:16
    "id_project": STR,  # models/faq_kb.js:33
    **STAMPS,  # models/faq_kb.js:166
}
FAQ_KB_ONLY_HERE = {"id": STR}

# models/request.js (toJSON with virtuals, :311-313), with `lead`, `department`,
# `participatingBots` and `participatingAgents` populated (event/requestEvent.js:28-36 for
# request.create; services/requestService.js:318-322 and :1094-1098 for request.update).
REQUEST = {
    "_id": STR,
    "id": STR,  # the `id` virtual, models/request.js:313
    "request_id": STR,  # models/request.js:44
    "lead": {**LEAD, **LEAD_ONLY_HERE},  # models/request.js:69, populated
    "first_text": STR,  # models/request.js:97
    "status": INT,  # models/request.js:101, models/requestConstants.js
    "hasBot": BOOL,  # models/request.js:115
    "participants": [STR],  # models/request.js:128
    "participantsAgents": [STR],  # models/request.js:144
    "participantsBots": [STR],  # models/request.js:149
    "department": nullable(DEPARTMENT),  # models/request.js:154, populated
    "closed_at": nullable(STR),  # models/request.js:195 (left out while open)
    "duration": nullable(INT),  # models/request.js:201 (left out while open)
    "sourcePage": STR,  # models/request.js:238
    "channel": {"name": STR},  # models/request.js:253, models/channel.js
    "channelOutbound": {"name": STR},  # models/request.js:259
    "attributes": OBJECT,  # models/request.js:267
    "id_project": STR,  # models/request.js:276
    "requester_id": STR,  # virtual: the lead's _id, models/request.js:326
    "participatingAgents": [{**USER, **USER_ONLY_HERE}],  # virtual, models/request.js:335
    "participatingBots": [{**FAQ_KB, **FAQ_KB_ONLY_HERE}],  # virtual, models/request.js:406
    **STAMPS,  # models/request.js:311
}
REQUEST_ONLY_HERE = {"routed_by": STR, "routing_reason": STR}  # README, "Routing"

# models/message.js (no toJSON virtuals).
MESSAGE_ROW = {
    "_id": STR,
    "sender": STR,  # models/message.js:15
    "senderFullname": STR,  # models/message.js:20
    "recipient": STR,  # the request_id, models/message.js:25
    "type": STR,  # models/message.js:34
    "channel_type": STR,  # models/message.js:40
    "text": STR,  # models/message.js:46
    "channel": {"name": STR},  # models/message.js:61
    "id_project": STR,  # models/message.js:67
    "attributes": OBJECT,  # models/message.js:78
    **STAMPS,  # models/message.js:89
}
MESSAGE_ONLY_HERE = {"id": STR}
# message.create: the message with its request, event/messageEvent.js:62-70 (populated) and :147.
MESSAGE = {**MESSAGE_ROW, "request": {**REQUEST, **REQUEST_ONLY_HERE}}
# request.close: the request and its messages, services/subscriptionNotifierQueued.js:78-84.
CLOSED_REQUEST = {**REQUEST, "messages": [{**MESSAGE_ROW, **MESSAGE_ONLY_HERE}]}

# models/group.js (no toJSON virtuals); group.* payloads, services/subscriptionNotifier.js:454-467.
GROUP = {
    "_id": STR,
    "name": STR,  # models/group.js:7
    "members": [STR],  # models/group.js:11
    "id_project": STR,  # models/group.js:16
    **STAMPS,  # models/group.js:38
}
GROUP_ONLY_HERE = {"id": STR}

# models/faq.js (toJSON with virtuals, :122); faq.* payloads, services/subscriptionNotifier.js:335-346.
FAQ = {
    "_id": STR,
    "id": STR,
    "id_faq_kb": STR,  # models/faq.js:17
    "question": STR,  # models/faq.js:37
    "answer": STR,  # models/faq.js:47
    "id_project": STR,  # models/faq.js:61
    **STAMPS,  # models/faq.js:121
}

# models/project_user.js (toJSON with virtuals, :89); project_user.* payloads with `id_user`
# populated, routes/project_user.js:133-140, services/subscriptionNotifier.js:364, :386.
PROJECT_USER = {
    "_id": STR,
    "id": STR,
    "id_project": STR,  # models/project_user.js:13
    "id_user": OBJECT,  # models/project_user.js:19, populated with the user
    "role": STR,  # models/project_user.js:29
    "user_available": BOOL,  # models/project_user.js:38
    "max_assigned_chat": nullable(INT),  # models/project_user.js:51 (left out when unset)
    "status": STR,  # models/project_user.js:75
    **STAMPS,  # models/project_user.js:88
}
# API.md: a user id is a string (null for an invitation nobody accepted yet); an invitation's e-mail.
PROJECT_USER_CHANGED = {"id_user": nullable(STR)}
PROJECT_USER_ONLY_HERE = {"email": STR}

# pubmodules/events/event.js (no toJSON virtuals); event.emit payloads,
# pubmodules/events/eventService.js:64-79.
EVENT = {
    "_id": STR,
    "name": STR,  # pubmodules/events/event.js:19
    "attributes": OBJECT,  # pubmodules/events/event.js:24
    "id_project": STR,  # pubmodules/events/event.js:34
    "createdBy": STR,  # pubmodules/events/event.js:50
    **STAMPS,  # pubmodules/events/event.js:56
}
EVENT_ONLY_HERE = {"id": STR}

# services/departmentService.js:414 (the object built for operator.select) with its `context`
# ({request}, services/requestService.js:526-533) and roundRobin's `operators`
# (services/departmentService.js:171).
OPERATOR_SELECT = {
    "available_agents": [{**PROJECT_USER, **PROJECT_USER_CHANGED, **PROJECT_USER_ONLY_HERE}],
    "agents": [{**PROJECT_USER, **PROJECT_USER_CHANGED, **PROJECT_USER_ONLY_HERE}],
    "operators": [OBJECT],
    "department": DEPARTMENT,
    "group": nullable({**GROUP, **GROUP_ONLY_HERE}),
    "id_project": STR,
    "project": {"_id": STR, "id": STR, "name": STR},  # models/project.js: its name
    "context": {"request": {**REQUEST, **REQUEST_ONLY_HERE}, "previous_operator_id": nullable(STR)},
}
# Tiledesk's `operators` are whole project_users; here `{"id_user"}` (API.md), what a receiver reads.
OPERATOR_SELECT_OPERATOR = {"id_user": STR}

EXPECTED = {
    "request.create": {**REQUEST, **REQUEST_ONLY_HERE},
    "request.update": {**REQUEST, **REQUEST_ONLY_HERE},
    "request.close": {**CLOSED_REQUEST, **REQUEST_ONLY_HERE},
    "message.create": {**MESSAGE, **MESSAGE_ONLY_HERE},
    "message.create.request.channel.chat21": {**MESSAGE, **MESSAGE_ONLY_HERE},
    "lead.create": {**LEAD, **LEAD_ONLY_HERE},
    "department.create": DEPARTMENT,
    "department.update": DEPARTMENT,
    "department.delete": DEPARTMENT,
    "faqbot.create": {**FAQ_KB, **FAQ_KB_ONLY_HERE},
    "faqbot.update": {**FAQ_KB, **FAQ_KB_ONLY_HERE},
    "faqbot.delete": {**FAQ_KB, **FAQ_KB_ONLY_HERE},
    "faq.create": FAQ,
    "faq.update": FAQ,
    "faq.delete": FAQ,
    "group.create": {**GROUP, **GROUP_ONLY_HERE},
    "group.update": {**GROUP, **GROUP_ONLY_HERE},
    "group.delete": {**GROUP, **GROUP_ONLY_HERE},
    "project_user.invite": {**PROJECT_USER, **PROJECT_USER_CHANGED, **PROJECT_USER_ONLY_HERE},
    "project_user.update": {**PROJECT_USER, **PROJECT_USER_CHANGED, **PROJECT_USER_ONLY_HERE},
    "project_user.delete": {**PROJECT_USER, **PROJECT_USER_CHANGED, **PROJECT_USER_ONLY_HERE},
    "event.emit": {**EVENT, **EVENT_ONLY_HERE},
    "event.emit.typing.start": {**EVENT, **EVENT_ONLY_HERE},
}


def mismatches(value, spec, path: str = "payload") -> list[str]:
    """Where `value` (parsed JSON) differs from `spec`: a type or tuple of types, an object's exact
    fields (dict), or a list whose items all match its one element."""
    if isinstance(spec, tuple) and any(isinstance(s, dict) for s in spec):
        if value is None and NULL in spec:
            return []
        spec = next(s for s in spec if isinstance(s, dict))
    if isinstance(spec, dict):
        if type(value) is not dict:
            return [f"{path}: {type(value).__name__}, Tiledesk sends an object"]
        problems = []
        if set(value) != set(spec):
            extra, missing = sorted(set(value) - set(spec)), sorted(set(spec) - set(value))
            problems.append(f"{path}: not Tiledesk's fields {extra}, missing {missing}")
        for key in sorted(set(value) & set(spec)):
            problems += mismatches(value[key], spec[key], f"{path}.{key}")
        return problems
    if isinstance(spec, list):
        if type(value) is not list:
            return [f"{path}: {type(value).__name__}, Tiledesk sends an array"]
        return [problem for i, item in enumerate(value) for problem in mismatches(item, spec[0], f"{path}[{i}]")]
    allowed = spec if isinstance(spec, tuple) else (spec,)
    if type(value) in allowed:
        return []
    return [f"{path}: {type(value).__name__}, Tiledesk sends {' or '.join(t.__name__ for t in allowed)}"]


def test_the_comparison_sees_a_wrong_type_a_missing_and_an_extra_field():
    assert mismatches({"a": "1", "c": 1}, {"a": INT, "b": STR}) == [
        "payload: not Tiledesk's fields ['c'], missing ['b']",
        "payload.a: str, Tiledesk sends int",
    ]
    assert mismatches({"l": [{"x": True}]}, {"l": [{"x": INT}]}) == ["payload.l[0].x: bool, Tiledesk sends int"]
    assert mismatches(None, nullable({"x": INT})) == [] and mismatches(3, nullable(STR)) != []


# --- a project like a real one, and each event made happen -----------------------------------------


def base(project) -> str:
    return f"/api/projects/{project.pk}"


@pytest.fixture
def world(api, project, add_member):
    """An agent (Bob) in the group of the default `assigned` department Sales, and a bot."""
    bob = add_member("bob")
    bob.first_name, bob.last_name = "Bob", "Agent"
    bob.save()
    group = Group.objects.create(project=project, name="Tier 1", members=[str(bob.pk)])
    sales = Department.objects.create(project=project, name="Sales", routing="assigned", group=group, default=True)
    bot = FaqKb.objects.create(project=project, name="Orders bot")
    return {"bob": bob, "group": group, "sales": sales, "bot": bot}


def subscribe_receiver(api, project, httpserver, event: str) -> None:
    """The receiver answers on /hooks/<event>, subscribed to that event."""
    path = f"/hooks/{event}"
    httpserver.expect_request(path).respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for(path), event)


def new_request(api, project) -> dict:
    response = api.post(
        f"{base(project)}/requests/",
        {"first_text": "Where is my order?", "lead": {"fullname": "Ann", "email": "ann@example.com"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def happen(name: str, api, project, world, on_commit) -> None:
    """Make `name` happen (once, inside `on_commit`, so that its delivery goes out)."""
    b = base(project)
    family, _, verb = name.partition(".")
    if family in ("request", "message") and name != "request.create":
        request = new_request(api, project)
        url = f"{b}/requests/{request['id']}"
        if name == "request.close":
            api.post(f"{url}/messages/", {"text": "It left yesterday"}, format="json")
        with on_commit():
            if name == "request.update":  # Bob and the bot both in: participating agents and bots
                participants = [str(world["bob"].pk), f"bot_{world['bot'].pk}"]
                api.patch(f"{url}/", {"participants": participants}, format="json")
            elif name == "request.close":
                api.post(f"{url}/close/")
            else:
                api.post(f"{url}/messages/", {"text": "Thanks"}, format="json")
        return
    if name == "request.create":
        with on_commit():
            new_request(api, project)
        return
    if name == "lead.create":
        with on_commit():
            api.post(f"{b}/leads/", {"fullname": "Ann", "lead_id": "telegram-42"}, format="json")
        return
    if family == "event":
        with on_commit():
            api.post(f"{b}/events/", {"name": "typing.start", "attributes": {"text": "Hel"}}, format="json")
        return
    path, body, change = {
        "department": ("departments", {"name": "Support", "id_group": world["group"].pk}, {"name": "Help"}),
        "faqbot": ("faq_kb", {"name": "Bot", "description": "Answers"}, {"name": "Renamed"}),
        "faq": ("faqs", {"id_faq_kb": world["bot"].pk, "question": "Q", "answer": "A"}, {"answer": "B"}),
        "group": ("groups", {"name": "Tier 2", "members": [str(world["bob"].pk)]}, {"name": "Renamed"}),
        "project_user": ("project_users", {"email": "carol@example.com", "role": "agent"}, {"role": "admin"}),
    }[family]
    with on_commit() if verb in ("create", "invite") else nullcontext():
        created = api.post(f"{b}/{path}/", body, format="json").json()
    if verb in ("update", "delete"):
        with on_commit():
            if verb == "update":
                api.patch(f"{b}/{path}/{created['id']}/", change, format="json")
            else:
                api.delete(f"{b}/{path}/{created['id']}/")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_events_payload_has_tiledesks_fields_and_types(name, api, project, world, httpserver, on_commit):
    subscribe_receiver(api, project, httpserver, name)
    happen(name, api, project, world, on_commit)
    [got] = received(httpserver, f"/hooks/{name}")
    assert got["json"]["hook"]["event"] == name
    assert mismatches(got["json"]["payload"], EXPECTED[name]) == []


def test_request_status_is_tiledesks_number_for_each_situation(api, project, world, httpserver, on_commit):
    """models/requestConstants.js: 100 unassigned, 200 assigned (to an agent or a bot), 1000 closed."""
    for event in ("request.create", "request.update", "request.close"):
        subscribe_receiver(api, project, httpserver, event)
    pooled = Department.objects.create(project=project, name="Queue", routing="pooled")
    fixed = Department.objects.create(project=project, name="Bot desk", routing="fixed", bot=world["bot"])
    with on_commit():
        to_bob = new_request(api, project)
        waiting = api.post(
            f"{base(project)}/requests/",
            {"first_text": "hi", "lead": {"fullname": "Cy"}, "department": pooled.pk},
            format="json",
        ).json()
        to_bot = api.post(
            f"{base(project)}/requests/",
            {"first_text": "hi", "lead": {"fullname": "Di"}, "department": {"_id": fixed.pk}},
            format="json",
        ).json()
    with on_commit():
        api.post(f"{base(project)}/requests/{to_bob['id']}/close/")
    created = {g["json"]["payload"]["id"]: g["json"]["payload"] for g in received(httpserver, "/hooks/request.create")}
    assert created[to_bob["id"]]["status"] == 200 and created[to_bob["id"]]["hasBot"] is False
    assert created[waiting["id"]]["status"] == 100 and created[waiting["id"]]["participants"] == []
    bot_request = created[to_bot["id"]]
    assert bot_request["status"] == 200 and bot_request["hasBot"] is True
    assert bot_request["participantsBots"] == [world["bot"].pk]
    assert bot_request["participatingBots"][0]["name"] == "Orders bot"
    [closed] = received(httpserver, "/hooks/request.close")
    assert closed["json"]["payload"]["status"] == 1000
    assert 0 <= closed["json"]["payload"]["duration"] < 60_000  # milliseconds, as Tiledesk counts them


def test_payloads_carry_the_populated_objects_a_receiver_reads(api, project, world, httpserver, on_commit):
    """event/requestEvent.js:28-36: department, lead and participating agents are objects; a
    message's request is the request (event/messageEvent.js:147); request.close carries the
    messages (services/subscriptionNotifierQueued.js:78-84)."""
    for event in ("request.create", "message.create", "request.close"):
        subscribe_receiver(api, project, httpserver, event)
    with on_commit():
        request = new_request(api, project)
    url = f"{base(project)}/requests/{request['id']}"
    with on_commit():
        message = api.post(f"{url}/messages/", {"text": "It left yesterday"}, format="json").json()
    with on_commit():
        api.post(f"{url}/close/")
    [created] = [g["json"]["payload"] for g in received(httpserver, "/hooks/request.create")]
    assert created["department"]["name"] == "Sales" and created["department"]["id_group"] == world["group"].pk
    assert created["lead"]["fullname"] == "Ann" and created["lead"]["lead_id"]
    assert created["requester_id"] == created["lead"]["_id"]
    assert created["participatingAgents"] == [
        {"_id": str(world["bob"].pk), "id": str(world["bob"].pk), "email": "bob@example.com"}
        | {"firstname": "Bob", "lastname": "Agent"}
    ]
    [sent] = [g["json"]["payload"] for g in received(httpserver, "/hooks/message.create")]
    assert sent["request"]["request_id"] == sent["recipient"] == created["request_id"]
    assert sent["request"]["department"]["_id"] == world["sales"].pk
    [closed] = [g["json"]["payload"] for g in received(httpserver, "/hooks/request.close")]
    assert [row["_id"] for row in closed["messages"]] == [message["_id"]]
    assert "request" not in closed["messages"][0]


@pytest.mark.django_db(transaction=True)
def test_operator_select_payload_has_tiledesks_fields_and_types(api, project, world, httpserver):
    """Asked with no transaction open, as in production."""
    httpserver.expect_request("/select").respond_with_json({"operators": [{"id_user": str(world["bob"].pk)}]})
    api.post(
        f"{base(project)}/subscriptions/",
        {"event": "operator.select", "target": httpserver.url_for("/select")},
        format="json",
    )
    new_request(api, project)
    [got] = received(httpserver, "/select")
    payload = got["json"]["payload"]
    assert mismatches(payload, OPERATOR_SELECT) == []
    assert [mismatches(operator, OPERATOR_SELECT_OPERATOR) for operator in payload["operators"]] == [[]]
    assert payload["context"]["request"]["status"] == 50  # temp: created, not routed yet

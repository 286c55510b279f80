"""Calling back as a receiver written for Tiledesk does, through `@tiledesk/tiledesk-client`'s calls
(index.js 0.10.13), with its envelope's token or a teammate's credentials: each test sends what the
client sends and expects what Tiledesk's server (2.19.16) answers, citing its source, and the events
the same change publishes through /api/. Where Tiledesk differs on purpose, the test says so."""

import uuid
from collections.abc import Callable
from typing import NamedTuple

import pytest

from subscriptions.models import Subscription
from support.models import Event, FaqKb, Lead, Message, Project, ProjectUser, Request, Role
from tests.conftest import client_for, received
from tests.factories import subscribed

from .conftest import basic

PREFIXES = ["", "/v3"]
EVENTS = ("message.create", "request.update", "request.close", "event.emit", "event.emit.ping")


@pytest.fixture
def listening(api, project, httpserver):
    """Subscriptions of `project` to what the calls below publish, all sent to one receiver; returns
    `events()`: [(event name, payload)] received so far."""
    httpserver.expect_request("/events").respond_with_json({"ok": True})
    for event in EVENTS:
        subscribed(api, project.pk, httpserver.url_for("/events"), event=event)

    def events() -> list[tuple[str, dict]]:
        return [(got["json"]["hook"]["event"], got["json"]["payload"]) for got in received(httpserver, "/events")]

    return events


def new_request(project, lead=None, status=Request.Status.POOLED, **fields) -> Request:
    lead = lead or Lead.objects.create(project=project, fullname="Ann", email="ann@example.com")
    return Request.objects.create(
        project=project,
        lead=lead,
        first_text="Where is my order?",
        request_id=f"support-group-{project.pk}-{uuid.uuid4().hex}",
        status=status,
        **fields,
    )


@pytest.fixture
def conversation(project) -> Request:
    return new_request(project)


@pytest.fixture
def bot(project) -> FaqKb:
    return FaqKb.objects.create(project=project, name="Orders bot")


class Caller(NamedTuple):
    send: Callable
    author: str  # who the messages it posts are from
    user: str | None  # the user it is, if a person


@pytest.fixture(params=["subscription", "teammate"])
def caller(request, as_subscription, tiledesk, subscription, owner) -> Caller:
    """The same calls with the envelope's token and with a teammate's basic auth."""
    if request.param == "subscription":
        return Caller(as_subscription, subscription.pk, None)
    return Caller(tiledesk, str(owner.pk), str(owner.pk))


def api_view_of(api, conversation: Request) -> dict:
    return api.get(f"/api/projects/{conversation.project_id}/requests/{conversation.pk}/").json()


# --- getAllRequests: GET /{pid}/requests ---------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_all_requests_answers_per_page_count_and_requests(caller, api, project, conversation, prefix):
    """routes/request.js:1815-1822: `res.json({perPage: limit, count, requests})`, each request
    populated (routes/request.js:1785-1791) as /api/ serializes it."""
    send = caller.send
    response = send("get", f"{prefix}/{project.pk}/requests")

    assert response.status_code == 200
    assert response.json() == {"perPage": 40, "count": 1, "requests": [api_view_of(api, conversation)]}


def test_without_a_status_only_open_routed_requests_are_listed(as_subscription, project, conversation):
    """routes/request.js:1240: `status: {$lt: 1000, $nin: [50, 150]}` unless `status` is given;
    `status=all` lists every one, `status=1000,100` those (routes/request.js:1285-1296)."""
    closed = new_request(project, status=Request.Status.CLOSED)
    unrouted = new_request(project, status=Request.Status.TEMP)

    def listed(query: str = "") -> set[str]:
        rows = as_subscription("get", f"/{project.pk}/requests{query}").json()["requests"]
        return {row["request_id"] for row in rows}

    assert listed() == {conversation.request_id}
    assert listed("?status=all") == {conversation.request_id, closed.request_id, unrouted.request_id}
    assert listed("?status=1000,100") == {conversation.request_id, closed.request_id}


def test_limit_and_page_count_pages_of_limit_from_0(as_subscription, project):
    """routes/request.js:1219-1237: `limit` (40 by default, more than 100 reads as 40), `page` from 0,
    `skip = page * limit`; newest first (routes/request.js:1455-1466)."""
    made = [new_request(project) for _ in range(3)]

    second_page = as_subscription("get", f"/{project.pk}/requests?limit=2&page=1").json()
    too_many = as_subscription("get", f"/{project.pk}/requests?limit=500").json()

    assert (second_page["perPage"], second_page["count"]) == (2, 3)
    assert [row["id"] for row in second_page["requests"]] == [made[0].pk]
    assert too_many["perPage"] == 40 and len(too_many["requests"]) == 3


def test_direction_1_lists_oldest_first(as_subscription, project):
    made = [new_request(project) for _ in range(3)]
    listed = as_subscription("get", f"/{project.pk}/requests?direction=1").json()["requests"]
    assert [row["id"] for row in listed] == [request.pk for request in made]


@pytest.mark.parametrize("query", ["limit=zero", "limit=0", "page=-1", "direction=up", "sort=secret", "status=9"])
def test_a_bad_query_is_400_in_tiledesks_error_shape(as_subscription, project, query):
    """Tiledesk reads these without checking (a NaN limit, any sort field); here they are refused."""
    response = as_subscription("get", f"/{project.pk}/requests?{query}")
    assert response.status_code == 400
    assert response.json()["success"] is False and query.split("=")[0] in response.json()["msg"]


# --- getRequestById: GET /{pid}/requests/{request_id} ----------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_request_by_id_finds_it_by_its_request_id(caller, api, project, conversation, prefix):
    """routes/request.js:2438-2467: `Request.findOne({request_id, id_project})`, populated, any status."""
    send = caller.send
    Request.objects.filter(pk=conversation.pk).update(status=Request.Status.CLOSED)

    response = send("get", f"{prefix}/{project.pk}/requests/{conversation.request_id}")

    assert response.status_code == 200
    assert response.json() == api_view_of(api, conversation) and response.json()["status"] == 1000


def test_an_unknown_request_id_is_404_in_tiledesks_shape(as_subscription, project, conversation):
    """routes/request.js:2463: `404 {success: false, msg: 'Object not found.'}` (the client's
    getRequestById resolves null on it, index.js:628-633). The id of /api/ is not a request_id."""
    for unknown in ("support-group-nothing", conversation.pk):
        response = as_subscription("get", f"/{project.pk}/requests/{unknown}")
        assert response.status_code == 404 and response.json()["success"] is False


def test_another_projects_request_is_404(as_subscription, owner, project):
    theirs = Project.objects.create(name="Elsewhere", created_by=owner)
    ProjectUser.objects.create(project=theirs, user=owner, email=owner.email, role=Role.OWNER)
    elsewhere = new_request(theirs)
    assert as_subscription("get", f"/{project.pk}/requests/{elsewhere.request_id}").status_code == 404


# --- sendSupportMessage: POST /{pid}/requests/{request_id}/messages ------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_send_support_message_answers_200_with_the_message_and_its_request(
    caller, api, project, conversation, listening, on_commit, prefix
):
    """routes/message.js:226-300: the message is created with `sender || req.user._id` (for a
    subscription's token, the subscription's id: passport.js:329-331 makes it `req.user`) and
    `senderFullname`, and answered (`res.json`, 200) with its `request` populated. It is published as
    through /api/: message.create (and message.create.request.channel.chat21)."""
    send, author = caller.send, caller.author
    with on_commit():
        response = send(
            "post",
            f"{prefix}/{project.pk}/requests/{conversation.request_id}/messages",
            {"text": "Your order left today.", "senderFullname": "Orders desk", "attributes": {"k": 1}},
        )

    assert response.status_code == 200
    message = response.json()
    assert (message["text"], message["sender"], message["senderFullname"]) == (
        "Your order left today.",
        author,
        "Orders desk",
    )
    assert message["recipient"] == conversation.request_id and message["attributes"] == {"k": 1}
    assert message["request"] == api_view_of(api, conversation)
    assert listening() == [("message.create", message)]


def test_a_message_names_its_sender_when_it_gives_one(as_subscription, project, conversation):
    """routes/message.js:36: `req.body.sender` when given."""
    body = {"text": "hi", "sender": "bot_orders"}
    response = as_subscription("post", f"/{project.pk}/requests/{conversation.request_id}/messages", body)
    assert response.json()["sender"] == "bot_orders"


def test_a_message_without_text_is_400(as_subscription, project, conversation):
    """routes/message.js:66-68 asks for text (422 there; 400 here, with the field)."""
    response = as_subscription("post", f"/{project.pk}/requests/{conversation.request_id}/messages", {"type": "text"})
    assert response.status_code == 400 and "text" in response.json()["msg"]


def test_a_message_to_an_unknown_request_is_404(as_subscription, project):
    """routes/message.js:56-220 creates the request when it does not exist; here a message is posted
    to an existing conversation (create one with POST /api/projects/{pid}/requests/)."""
    response = as_subscription("post", f"/{project.pk}/requests/support-group-nothing/messages", {"text": "hi"})
    assert response.status_code == 404 and not Message.objects.exists()


def test_the_messages_are_listed_oldest_first_as_plain_rows(as_subscription, project, conversation):
    """routes/message.js:532-537: `Message.find({recipient: request_id}).sort({createdAt: 'asc'})`."""
    path = f"/{project.pk}/requests/{conversation.request_id}/messages"
    sent = [as_subscription("post", path, {"text": text}).json() for text in ("one", "two")]

    listed = as_subscription("get", path).json()

    assert [row["text"] for row in listed] == ["one", "two"]
    assert listed[0] == {key: value for key, value in sent[0].items() if key != "request"}


# --- closeRequest: PUT /{pid}/requests/{request_id}/close ----------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_close_request_is_a_put_answering_the_closed_request(
    caller, api, project, conversation, listening, on_commit, prefix
):
    """routes/request.js:330-370: `PUT /:requestid/close` (the client sends `{}`, index.js:920-935),
    answered with the closed request (200). It publishes request.close, as /api/'s close does."""
    send = caller.send
    with on_commit():
        response = send("put", f"{prefix}/{project.pk}/requests/{conversation.request_id}/close", {})

    assert response.status_code == 200
    assert response.json()["status"] == 1000 and response.json()["closed_at"]
    assert response.json() == api_view_of(api, conversation)
    assert [name for name, _ in listening()] == ["request.close"]
    assert listening()[0][1]["request_id"] == conversation.request_id


def test_closing_a_closed_request_answers_it_and_publishes_nothing_more(
    as_subscription, project, conversation, listening, on_commit
):
    path = f"/{project.pk}/requests/{conversation.request_id}/close"
    with on_commit():
        as_subscription("put", path, {})
        again = as_subscription("put", path, {})
    assert again.status_code == 200 and again.json()["status"] == 1000
    assert [name for name, _ in listening()] == ["request.close"]


# --- updateRequestParticipants: PUT /{pid}/requests/{request_id}/participants ----------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_update_request_participants_sets_them_from_an_array(
    caller, project, conversation, bot, add_member, listening, on_commit, prefix
):
    """routes/request.js:434-455 reads the body as the array itself (index.js:657-670 sends it so);
    requestService.js:1551-1680 sets the participants, splits agents and bots, makes the request
    assigned (200) and answers it populated. It publishes request.update, as a change through /api/."""
    send = caller.send
    agent = add_member("agent")
    with on_commit():
        response = send(
            "put",
            f"{prefix}/{project.pk}/requests/{conversation.request_id}/participants",
            [f"bot_{bot.pk}", str(agent.pk)],
        )

    assert response.status_code == 200
    body = response.json()
    assert body["participants"] == [f"bot_{bot.pk}", str(agent.pk)] and body["status"] == 200
    assert (body["participantsBots"], body["participantsAgents"], body["hasBot"]) == ([bot.pk], [str(agent.pk)], True)
    assert [row["id"] for row in body["participatingBots"]] == [bot.pk]
    assert [(name, payload["participants"]) for name, payload in listening()] == [
        ("request.update", body["participants"])
    ]


def test_no_participants_leaves_the_request_unassigned(as_subscription, project, bot):
    """requestService.js:1648-1653: assigned with participants, unassigned (100) without."""
    conversation = new_request(project, status=Request.Status.ASSIGNED, participants=[f"bot_{bot.pk}"])
    response = as_subscription("put", f"/{project.pk}/requests/{conversation.request_id}/participants", [])
    assert response.status_code == 200
    assert (response.json()["participants"], response.json()["status"]) == ([], 100)


def test_the_same_participants_again_change_nothing(as_subscription, project, bot, listening, on_commit):
    """requestService.js:1597-1611: equal participants are answered without saving."""
    conversation = new_request(project, status=Request.Status.ASSIGNED, participants=[f"bot_{bot.pk}"])
    with on_commit():
        path = f"/{project.pk}/requests/{conversation.request_id}/participants"
        response = as_subscription("put", path, [f"bot_{bot.pk}"])
    assert response.status_code == 200 and listening() == []


def test_participants_must_be_eligible_teammates_or_the_projects_bots(
    as_subscription, project, conversation, make_user, owner
):
    """Tiledesk sets whatever it is given (requestService.js:1551-1553, "TODO validate participants");
    here a stranger, another project's bot or a non-array body is 400."""
    stranger = make_user("mallory")
    theirs = Project.objects.create(name="Elsewhere", created_by=owner)
    foreign_bot = FaqKb.objects.create(project=theirs, name="Theirs")
    path = f"/{project.pk}/requests/{conversation.request_id}/participants"
    for body in ([str(stranger.pk)], [f"bot_{foreign_bot.pk}"], {"member": str(owner.pk)}):
        response = as_subscription("put", path, body)
        assert response.status_code == 400 and response.json()["success"] is False, body
    assert Request.objects.get(pk=conversation.pk).participants == []


def test_an_agent_sets_no_participants_by_hand(tiledesk, project, conversation, add_member):
    """Agents change who serves a conversation through assign (as on /api/), owners, admins and
    subscriptions by setting participants."""
    agent = add_member("agent")
    response = tiledesk(
        "put", f"/{project.pk}/requests/{conversation.request_id}/participants", [str(agent.pk)], auth=basic("agent")
    )
    assert response.status_code == 403


def test_a_closed_requests_participants_are_not_changed(as_subscription, project, bot):
    conversation = new_request(project, status=Request.Status.CLOSED)
    response = as_subscription("put", f"/{project.pk}/requests/{conversation.request_id}/participants", [])
    assert response.status_code == 400


# --- fireEvent: POST /{pid}/events -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_fire_event_saves_and_publishes_it(caller, project, listening, on_commit, prefix):
    """pubmodules/events/eventRoute.js:15-50: `{name, attributes}` (index.js:2236-2250), saved and
    answered (200); published as event.emit and event.emit.<name>, as through /api/. Tiledesk's
    `createdBy` is the caller's id; here it names a user, so it is null for a subscription."""
    send = caller.send
    with on_commit():
        response = send("post", f"{prefix}/{project.pk}/events", {"name": "ping", "attributes": {"order": 7}})

    assert response.status_code == 200
    event = response.json()
    assert (event["name"], event["attributes"], event["id_project"]) == ("ping", {"order": 7}, project.pk)
    assert event["createdBy"] == caller.user
    assert sorted(name for name, _ in listening()) == ["event.emit", "event.emit.ping"]
    assert all(payload == event for _, payload in listening())


def test_an_event_without_a_name_is_400(as_subscription, project):
    """eventRoute.js:24-31: `check('name').notEmpty()` (422 there, 400 here)."""
    response = as_subscription("post", f"/{project.pk}/events", {"attributes": {}})
    assert response.status_code == 400 and not Event.objects.exists()


# --- getLeadById, updateLead: GET and PUT /{pid}/leads/{id} ----------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_lead_by_id(caller, api, project, conversation, prefix):
    """routes/lead.js:449-460: `Lead.findById(leadid)`, 200 with it, 404 `{success: false}` without."""
    send = caller.send
    response = send("get", f"{prefix}/{project.pk}/leads/{conversation.lead_id}")
    assert response.status_code == 200
    assert response.json() == api.get(f"/api/projects/{project.pk}/leads/{conversation.lead_id}/").json()
    missing = send("get", f"{prefix}/{project.pk}/leads/ffffffffffffffffffffffff")
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_another_projects_lead_is_404(as_subscription, owner, project):
    """Tiledesk finds a lead by its id in any project (routes/lead.js:452); here only in the caller's."""
    theirs = Project.objects.create(name="Elsewhere", created_by=owner)
    lead = Lead.objects.create(project=theirs, fullname="Zed")
    assert as_subscription("get", f"/{project.pk}/leads/{lead.pk}").status_code == 404


@pytest.mark.parametrize("prefix", PREFIXES)
def test_update_lead_changes_what_the_body_names(caller, project, conversation, prefix):
    """routes/lead.js:25-101: each field is set only when the body has it; the client's updateLead
    sends the native attributes, `attributes` and `tags` (index.js:2378-2395). Tags do not exist
    here and are ignored."""
    send = caller.send
    body = {"email": "ann@example.org", "attributes": {"tier": "gold"}, "tags": ["vip"]}

    response = send("put", f"{prefix}/{project.pk}/leads/{conversation.lead_id}", body)

    assert response.status_code == 200
    lead = response.json()
    assert (lead["fullname"], lead["email"], lead["attributes"]) == ("Ann", "ann@example.org", {"tier": "gold"})
    assert "tags" not in lead
    assert Lead.objects.get(pk=conversation.lead_id).attributes == {"tier": "gold"}


def test_a_bad_lead_update_is_400(as_subscription, project, conversation):
    response = as_subscription("put", f"/{project.pk}/leads/{conversation.lead_id}", {"attributes": ["x"]})
    assert response.status_code == 400 and "attributes" in response.json()["msg"]


# --- getAllBots: GET /{pid}/faq_kb -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["faq_kb", "bots", "v3-faq_kb"])
def test_get_all_bots_answers_a_plain_array(caller, api, project, bot, path):
    """routes/faq_kb.js:595-656: `res.json(faq_kbs)`, a plain array; app.js:598-599 mounts the same
    routes at /bots too."""
    send = caller.send
    url = f"/v3/{project.pk}/faq_kb" if path == "v3-faq_kb" else f"/{project.pk}/{path}"
    response = send("get", url)
    assert response.status_code == 200
    assert response.json() == api.get(f"/api/projects/{project.pk}/faq_kb/").json()["results"]
    assert [row["id"] for row in response.json()] == [bot.pk]
    assert send("get", f"{url}/{bot.pk}").json()["name"] == "Orders bot"


# --- what a subscription's token may not do on these paths -------------------------------------------


def test_a_subscriptions_token_manages_no_subscriptions(as_subscription, project):
    """Its rights end at what a receiver does with conversations: 403 for the rest of its project
    (Tiledesk's subscriptions routes need an admin: app.js:588)."""
    created = as_subscription(
        "post", f"/{project.pk}/subscriptions", {"event": "lead.create", "target": "https://x.io"}
    )
    listed = as_subscription("get", f"/v3/{project.pk}/subscriptions")
    assert created.status_code == listed.status_code == 403 and created.json()["success"] is False
    assert not Subscription.objects.filter(event="lead.create").exists()


def test_a_teammate_of_another_project_gets_404(project, conversation, make_user):
    outsider = make_user("outsider")
    theirs = Project.objects.create(name="Theirs", created_by=outsider)
    ProjectUser.objects.create(project=theirs, user=outsider, email=outsider.email, role=Role.OWNER)
    client = client_for(outsider)
    for path in (
        f"/{project.pk}/requests",
        f"/{project.pk}/requests/{conversation.request_id}",
        f"/{project.pk}/leads/{conversation.lead_id}",
        f"/{project.pk}/faq_kb",
    ):
        assert client.get(path).status_code == 404, path

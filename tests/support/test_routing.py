"""Built-in routing: who serves a conversation when it is created, moved or re-routed.

These tests commit for real (transactional), as the API does in production: the request views
manage their own transactions so that routing can ask the operator.select webhook outside them."""

import time
from collections import Counter

import pytest
from django.db import transaction

from support import routing
from support.models import Department, FaqKb, Group, Lead, Project, Request, Role
from tests.conftest import received

pytestmark = pytest.mark.django_db(transaction=True)


def base(project) -> str:
    return f"/api/projects/{project.pk}"


def create(api, project, **extra) -> dict:
    response = api.post(
        f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}, **extra}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def agents(project, owner, add_member):
    """Three agents in a group; the owner is no agent of it."""
    members = [add_member(name) for name in ("alice", "bob", "carol")]
    return members


@pytest.fixture
def sales(project, agents) -> Department:
    group = Group.objects.create(project=project, name="Sales", members=[str(a.pk) for a in agents])
    return Department.objects.create(project=project, name="Sales", routing="assigned", group=group, default=True)


def ids(users) -> list[str]:
    return [str(user.pk) for user in users]


def test_a_new_request_is_assigned_to_an_available_agent_of_the_departments_group(api, project, agents, sales):
    body = create(api, project)
    assert body["status"] == 200
    assert body["department"]["_id"] == sales.pk
    assert body["participants"] in [[uid] for uid in ids(agents)]
    assert body["routed_by"] == "builtin"
    assert body["routing_reason"].startswith("assigned:")


def test_thirty_requests_over_three_available_agents_land_ten_each(api, project, agents, sales):
    served = Counter(create(api, project)["participants"][0] for _ in range(30))
    assert served == {uid: 10 for uid in ids(agents)}


def test_unavailable_agents_are_never_chosen(api, project, agents, sales):
    away = agents[1]
    away.memberships.filter(project=project).update(user_available=False)
    served = {create(api, project)["participants"][0] for _ in range(6)}
    assert served == {str(agents[0].pk), str(agents[2].pk)}


def test_an_agent_at_max_assigned_chat_is_skipped_and_when_all_are_full_the_request_is_pooled(
    api, project, agents, sales
):
    for agent in agents:
        agent.memberships.filter(project=project).update(max_assigned_chat=1)
    first_three = [create(api, project) for _ in range(3)]
    assert sorted(r["participants"][0] for r in first_three) == sorted(ids(agents))
    fourth = create(api, project)
    assert fourth["status"] == 100 and fourth["participants"] == []
    assert "no agent available" in fourth["routing_reason"]


def test_closing_a_conversation_frees_a_place_under_max_assigned_chat(api, project, agents, sales):
    for agent in agents:
        agent.memberships.filter(project=project).update(max_assigned_chat=1)
    first = [create(api, project) for _ in range(3)]
    assert api.post(f"{base(project)}/requests/{first[1]['id']}/close/").status_code == 200
    assert create(api, project)["participants"] == first[1]["participants"]


def test_equally_loaded_agents_take_turns(api, project, agents, sales):
    """When every conversation is closed at once, load is always 0: round-robin decides."""
    order = []
    for _ in range(6):
        body = create(api, project)
        order.append(body["participants"][0])
        api.post(f"{base(project)}/requests/{body['id']}/close/")
    assert order[:3] == order[3:] and sorted(order[:3]) == sorted(ids(agents))


def test_a_department_without_group_routes_to_every_teammate(api, project, owner, add_member):
    agent = add_member("dave")
    Department.objects.create(project=project, name="All", routing="assigned", default=True)
    served = {create(api, project)["participants"][0] for _ in range(4)}
    assert served == {str(owner.pk), str(agent.pk)}


def test_an_invited_teammate_without_account_is_never_chosen(api, project, owner):
    project.project_users.create(email="invited@example.com", role=Role.AGENT, status="invited")
    Department.objects.create(project=project, name="All", routing="assigned", default=True)
    assert {create(api, project)["participants"][0] for _ in range(3)} == {str(owner.pk)}


def test_a_pooled_department_leaves_the_request_pooled_without_participant(api, project, agents):
    pool = Department.objects.create(project=project, name="Pool", routing="pooled")
    body = create(api, project, department=pool.pk)
    assert body["status"] == 100 and body["participants"] == []
    assert body["routed_by"] == "builtin" and body["routing_reason"].startswith("pooled")


def test_fixed_routing_puts_the_departments_bot_in(api, project, agents):
    bot = FaqKb.objects.create(project=project, name="Orders bot")
    desk = Department.objects.create(project=project, name="Bot desk", routing="fixed", bot=bot)
    body = create(api, project, department=desk.pk)
    assert body["participants"] == [f"bot_{bot.pk}"]
    assert body["status"] == 200 and body["routing_reason"].startswith("fixed")


def test_the_created_request_is_published_already_routed(api, project, agents, sales, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post(
        f"{base(project)}/subscriptions/",
        {"event": "request.create", "target": httpserver.url_for("/hook")},
        format="json",
    )
    body = create(api, project)
    [got] = received(httpserver)
    assert got["json"]["payload"]["participants"] == body["participants"]
    assert got["json"]["payload"]["status"] == 200


def test_patching_the_department_routes_the_request_again_and_publishes_request_update(
    api, project, agents, sales, httpserver
):
    pool = Department.objects.create(project=project, name="Pool", routing="pooled")
    body = create(api, project, department=pool.pk)
    httpserver.expect_request("/hook").respond_with_data("ok")
    api.post(
        f"{base(project)}/subscriptions/",
        {"event": "request.update", "target": httpserver.url_for("/hook")},
        format="json",
    )
    response = api.patch(f"{base(project)}/requests/{body['id']}/", {"department": sales.pk}, format="json")
    assert response.status_code == 200
    moved = response.json()
    assert moved["department"]["_id"] == sales.pk and moved["status"] == 200
    assert moved["participants"][0] in ids(agents)
    updates = [g["json"]["payload"] for g in received(httpserver)]
    assert updates[-1]["participants"] == moved["participants"]


def test_patching_something_else_does_not_reroute(api, project, agents, sales):
    body = create(api, project)
    response = api.patch(f"{base(project)}/requests/{body['id']}/", {"attributes": {"vip": True}}, format="json")
    assert response.json()["participants"] == body["participants"]
    assert response.json()["routing_reason"] == body["routing_reason"]


def test_reroute_moves_the_request_to_another_department(api, project, agents, sales, add_member):
    support_agent = add_member("erin")
    group = Group.objects.create(project=project, name="Support", members=[str(support_agent.pk)])
    desk = Department.objects.create(project=project, name="Support", routing="assigned", group=group)
    body = create(api, project)
    response = api.post(f"{base(project)}/requests/{body['id']}/reroute/", {"department": desk.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["department"]["_id"] == desk.pk
    assert response.json()["participants"] == [str(support_agent.pk)]


def test_reroute_takes_the_department_object_a_client_was_given(api, project, agents, sales):
    body = create(api, project)
    response = api.post(
        f"{base(project)}/requests/{body['id']}/reroute/", {"department": body["department"]}, format="json"
    )
    assert response.status_code == 200 and response.json()["department"]["_id"] == sales.pk


def test_reroute_without_department_routes_again_in_the_same_one(api, project, agents, sales):
    body = create(api, project)
    operator = body["participants"][0]
    Request.objects.filter(pk=body["id"]).update(participants=[], status=Request.Status.POOLED)
    response = api.post(f"{base(project)}/requests/{body['id']}/reroute/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["department"]["_id"] == sales.pk and response.json()["participants"] == [operator]


def test_reroute_to_another_projects_department_is_a_400_on_department(api, project, agents, sales, make_user):
    from support.models import Project

    other = Project.objects.create(name="Other", created_by=make_user("zed"))
    theirs = Department.objects.create(project=other, name="Theirs")
    body = create(api, project)
    response = api.post(f"{base(project)}/requests/{body['id']}/reroute/", {"department": theirs.pk}, format="json")
    assert response.status_code == 400 and "department" in response.json()


def test_a_closed_request_is_not_rerouted(api, project, agents, sales):
    body = create(api, project)
    api.post(f"{base(project)}/requests/{body['id']}/close/")
    response = api.post(f"{base(project)}/requests/{body['id']}/reroute/", {}, format="json")
    assert response.status_code == 400 and "status" in response.json()


def test_rerouting_another_projects_request_is_404(api, project, agents, sales, stranger_api):
    body = create(api, project)
    assert stranger_api.post(f"{base(project)}/requests/{body['id']}/reroute/", {}, format="json").status_code == 404


def test_routing_inside_a_transaction_waits_for_the_commit(project, agents, sales):
    """A domain caller inside a transaction (an automation) gets its conversation routed after it
    commits, never with the transaction open."""
    lead = Lead.objects.create(project=project, fullname="Ann")
    with transaction.atomic():
        conversation = Request.objects.create(
            project=project, lead=lead, first_text="hi", request_id="r-1", department=sales
        )
        assert routing.route(conversation).status == Request.Status.TEMP
        assert Request.objects.get(pk=conversation.pk).participants == []
    routed = Request.objects.get(pk=conversation.pk)
    assert routed.status == Request.Status.ASSIGNED and routed.participants[0] in ids(agents)


# --- taking and handing over -----------------------------------------------------------------


@pytest.fixture
def pooled(api, project, agents) -> dict:
    pool = Department.objects.create(
        project=project,
        name="Pool",
        routing="pooled",
        group=Group.objects.create(project=project, name="Pool", members=[str(a.pk) for a in agents]),
    )
    return create(api, project, department=pool.pk)


def assign(client, project, request_id: str, user) -> object:
    uid = user if isinstance(user, str) else str(user.pk)
    return client.post(f"{base(project)}/requests/{request_id}/assign/", {"id_user": uid}, format="json")


def test_an_agent_takes_a_pooled_request(project, agents, pooled):
    from tests.conftest import client_for

    response = assign(client_for(agents[0]), project, pooled["id"], agents[0])
    assert response.status_code == 200
    assert response.json()["participants"] == [str(agents[0].pk)] and response.json()["status"] == 200
    assert response.json()["routing_reason"] == f"taken by {agents[0].pk}"


def test_an_agent_hands_over_their_request_to_a_teammate(project, agents, pooled):
    from tests.conftest import client_for

    assign(client_for(agents[0]), project, pooled["id"], agents[0])
    response = assign(client_for(agents[0]), project, pooled["id"], agents[1])
    assert response.status_code == 200 and response.json()["participants"] == [str(agents[1].pk)]
    assert response.json()["routing_reason"] == f"handed over by {agents[0].pk} to {agents[1].pk}"


def test_an_agent_cannot_give_someone_elses_request_to_a_third_teammate(project, agents, pooled):
    from tests.conftest import client_for

    assign(client_for(agents[0]), project, pooled["id"], agents[0])
    response = assign(client_for(agents[1]), project, pooled["id"], agents[2])
    assert response.status_code == 403
    assert Request.objects.get(pk=pooled["id"]).participants == [str(agents[0].pk)]


def test_an_owner_assigns_any_request_to_any_eligible_teammate(api, project, agents, pooled):
    response = assign(api, project, pooled["id"], agents[2])
    assert response.status_code == 200 and response.json()["participants"] == [str(agents[2].pk)]


def test_assigning_to_someone_outside_the_departments_group_is_a_400_on_id_user(api, project, owner, pooled):
    response = assign(api, project, pooled["id"], owner)
    assert response.status_code == 400 and "id_user" in response.json()


def test_assigning_to_a_user_of_no_project_is_a_400_on_id_user(api, project, pooled, make_user):
    assert assign(api, project, pooled["id"], make_user("nobody")).status_code == 400
    assert assign(api, project, pooled["id"], "not-a-user").status_code == 400
    response = api.post(f"{base(project)}/requests/{pooled['id']}/assign/", {}, format="json")
    assert response.status_code == 400 and "id_user" in response.json()


def test_an_unavailable_agent_may_still_take_a_request_by_hand(project, agents, pooled):
    from tests.conftest import client_for

    agents[0].memberships.filter(project=project).update(user_available=False)
    assert assign(client_for(agents[0]), project, pooled["id"], agents[0]).status_code == 200


def test_a_closed_request_cannot_be_assigned(api, project, agents, pooled):
    api.post(f"{base(project)}/requests/{pooled['id']}/close/")
    response = assign(api, project, pooled["id"], agents[0])
    assert response.status_code == 400 and "status" in response.json()


def test_a_stranger_gets_404_on_assign(project, agents, pooled, stranger_api):
    assert assign(stranger_api, project, pooled["id"], agents[0]).status_code == 404


def test_concurrent_creates_still_spread_evenly(project, owner, agents, sales, monkeypatch):
    """Routing decisions are serialized per project, so simultaneous creates see each other's load.
    Reading the load is slowed down to widen the window in which two decisions could overlap."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.conftest import client_for

    read_load = routing.open_conversations

    def slow_read(*args, **kwargs):
        load = read_load(*args, **kwargs)
        time.sleep(0.1)
        return load

    monkeypatch.setattr(routing, "open_conversations", slow_read)

    def create_in_thread(_) -> str:
        try:
            return create(client_for(owner), project)["participants"][0]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        served = Counter(pool.map(create_in_thread, range(9)))
    assert served == {uid: 3 for uid in ids(agents)}


def test_a_routing_failure_never_fails_the_create(api, project, agents, sales, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("routing bug")

    monkeypatch.setattr(routing, "eligible_agents", broken)
    body = create(api, project)
    assert body["status"] == 50 and body["participants"] == []
    assert Request.objects.filter(pk=body["id"]).exists()


def conversation(project, status: int, participants, changed_at=None) -> Request:
    from datetime import UTC, datetime

    lead = Lead.objects.create(project=project, lead_id=f"lead-{Request.objects.count()}", fullname="Ann")
    made = Request.objects.create(
        project=project, lead=lead, request_id=f"support-group-{lead.lead_id}", first_text="hi",
        status=status, participants=participants,
    )  # fmt: skip
    if changed_at is not None:
        Request.objects.filter(pk=made.pk).update(updated_at=datetime.fromtimestamp(changed_at, UTC))
    return made


@pytest.fixture
def elsewhere(owner):
    return Project.objects.create(name="Elsewhere", created_by=owner)


def test_the_load_counts_each_participants_assigned_conversations_only(project, elsewhere):
    assigned, pooled, closed = Request.Status.ASSIGNED, Request.Status.POOLED, Request.Status.CLOSED
    conversation(project, assigned, ["u1"])
    conversation(project, assigned, ["u1", "bot_7"])
    excluded = conversation(project, assigned, ["u2"])
    conversation(project, assigned, [])
    conversation(project, pooled, ["u3"])
    conversation(project, closed, ["u1"])
    conversation(elsewhere, assigned, ["u1"])

    assert routing.open_conversations(project.pk) == {"u1": 2, "bot_7": 1, "u2": 1}
    assert routing.open_conversations(project.pk, exclude_request_id=excluded.pk) == {"u1": 2, "bot_7": 1}


def test_round_robin_ranks_participants_by_their_latest_conversation_then_place_in_it(project, elsewhere):
    assigned, closed = Request.Status.ASSIGNED, Request.Status.CLOSED
    conversation(project, closed, ["u3"], changed_at=1_000)
    conversation(project, assigned, ["u2", "u1"], changed_at=2_000)
    newest = conversation(project, assigned, ["u1"], changed_at=3_000)
    conversation(project, assigned, [], changed_at=4_000)
    conversation(elsewhere, assigned, ["u4"], changed_at=5_000)

    assert routing.last_served_rank(project.pk) == {"u1": 0, "u2": 1, "u3": 2}
    assert routing.last_served_rank(project.pk, exclude_request_id=newest.pk) == {"u2": 0, "u1": 1, "u3": 2}


def test_round_robin_looks_back_only_over_the_recency_window(project, monkeypatch):
    monkeypatch.setattr(routing, "RECENCY_WINDOW", 2)
    for changed_at, served in enumerate(["u1", "u2", "u3"]):
        conversation(project, Request.Status.ASSIGNED, [served], changed_at=1_000 + changed_at)

    assert routing.last_served_rank(project.pk) == {"u3": 0, "u2": 1}

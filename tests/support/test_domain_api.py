"""The support domain's REST API: CRUD per resource, roles, project isolation, input errors."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from support.models import Department, FaqKb, Group, Lead, ProjectUser, Request, Role
from tests.conftest import client_for


def base(project) -> str:
    return f"/api/projects/{project.pk}"


# --- projects ---------------------------------------------------------------------------------


def test_creating_a_project_makes_the_caller_its_owner(api, owner):
    response = api.post("/api/projects/", {"name": "New"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == body["_id"] and isinstance(body["id"], str)
    assert body["role"] == "owner" and body["createdBy"] == str(owner.pk)
    assert {"createdAt", "updatedAt"} <= set(body)
    assert ProjectUser.objects.get(project_id=body["id"], user=owner).role == Role.OWNER


def test_project_list_shows_only_the_callers_projects(api, project, stranger_api):
    assert [p["id"] for p in api.get("/api/projects/").json()["results"]] == [project.pk]
    assert stranger_api.get("/api/projects/").json()["results"] == []


def test_a_non_member_gets_404_for_the_project_and_everything_under_it(stranger_api, project):
    assert stranger_api.get(f"/api/projects/{project.pk}/").status_code == 404
    assert stranger_api.get(f"{base(project)}/requests/").status_code == 404
    assert stranger_api.post(f"{base(project)}/leads/", {"fullname": "x"}, format="json").status_code == 404


def test_anonymous_callers_get_401(client, project):
    assert client.get(f"{base(project)}/requests/").status_code == 401
    assert client.get("/api/projects/").status_code == 401


def test_an_agent_cannot_rename_or_delete_the_project(agent_api, project):
    assert agent_api.patch(f"/api/projects/{project.pk}/", {"name": "x"}, format="json").status_code == 403
    assert agent_api.delete(f"/api/projects/{project.pk}/").status_code == 403


def test_project_lists_are_paginated_with_page_size(api):
    for i in range(3):
        api.post("/api/projects/", {"name": f"P{i}"}, format="json")
    page = api.get("/api/projects/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


# --- teammates and groups ---------------------------------------------------------------------


def test_inviting_an_unknown_email_creates_a_pending_invitation(api, project):
    response = api.post(f"{base(project)}/project_users/", {"email": "new@example.com", "role": "agent"}, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "invited" and response.json()["id_user"] is None


def test_inviting_an_existing_user_adds_them_as_a_teammate(api, project, make_user):
    user = make_user("carol")
    response = api.post(f"{base(project)}/project_users/", {"email": user.email, "role": "admin"}, format="json")
    assert response.status_code == 201
    assert response.json()["id_user"] == str(user.pk) and response.json()["status"] == "active"


def test_inviting_the_same_email_twice_is_a_400_on_email(api, project):
    api.post(f"{base(project)}/project_users/", {"email": "x@example.com", "role": "agent"}, format="json")
    response = api.post(f"{base(project)}/project_users/", {"email": "x@example.com", "role": "agent"}, format="json")
    assert response.status_code == 400 and "email" in response.json()


def test_an_invalid_role_is_a_400_on_role(api, project):
    response = api.post(f"{base(project)}/project_users/", {"email": "y@example.com", "role": "boss"}, format="json")
    assert response.status_code == 400 and "role" in response.json()


def test_the_last_owner_cannot_be_removed(api, project, owner):
    membership = ProjectUser.objects.get(project=project, user=owner)
    response = api.delete(f"{base(project)}/project_users/{membership.pk}/")
    assert response.status_code == 400
    assert ProjectUser.objects.filter(pk=membership.pk).exists()


def test_an_agent_cannot_invite_teammates(agent_api, project):
    response = agent_api.post(f"{base(project)}/project_users/", {"email": "z@example.com"}, format="json")
    assert response.status_code == 403


def test_group_members_must_be_teammates(api, project, add_member, make_user):
    member = add_member("dave")
    outsider = make_user("eve")
    ok = api.post(f"{base(project)}/groups/", {"name": "Tier 1", "members": [str(member.pk)]}, format="json")
    assert ok.status_code == 201 and ok.json()["members"] == [str(member.pk)]
    bad = api.post(f"{base(project)}/groups/", {"name": "T2", "members": [str(outsider.pk)]}, format="json")
    assert bad.status_code == 400 and "members" in bad.json()


# --- departments, bots, faqs ------------------------------------------------------------------


def test_department_crud(api, project):
    created = api.post(f"{base(project)}/departments/", {"name": "Sales", "routing": "pooled"}, format="json")
    assert created.status_code == 201
    url = f"{base(project)}/departments/{created.json()['id']}/"
    assert api.get(url).json()["routing"] == "pooled"
    assert api.patch(url, {"name": "Sales EU"}, format="json").json()["name"] == "Sales EU"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404


def test_an_agent_cannot_edit_a_department(agent_api, project):
    department = Department.objects.create(project=project, name="Sales")
    url = f"{base(project)}/departments/{department.pk}/"
    assert agent_api.get(url).status_code == 200
    assert agent_api.patch(url, {"name": "x"}, format="json").status_code == 403
    assert agent_api.post(f"{base(project)}/departments/", {"name": "x"}, format="json").status_code == 403


def test_department_routing_must_be_a_known_mode(api, project):
    response = api.post(f"{base(project)}/departments/", {"name": "X", "routing": "random"}, format="json")
    assert response.status_code == 400 and "routing" in response.json()


def test_fixed_routing_needs_a_bot(api, project):
    response = api.post(f"{base(project)}/departments/", {"name": "X", "routing": "fixed"}, format="json")
    assert response.status_code == 400 and "id_bot" in response.json()


def test_a_department_cannot_point_at_another_projects_bot(api, project, make_user):
    from support.models import Project

    other = Project.objects.create(name="Other", created_by=make_user("zed"))
    bot = FaqKb.objects.create(project=other, name="theirs")
    response = api.post(f"{base(project)}/departments/", {"name": "X", "id_bot": bot.pk}, format="json")
    assert response.status_code == 400 and "id_bot" in response.json()


def test_bot_and_faq_crud(api, project):
    bot = api.post(f"{base(project)}/faq_kb/", {"name": "Helper"}, format="json")
    assert bot.status_code == 201
    faq = api.post(
        f"{base(project)}/faqs/", {"id_faq_kb": bot.json()["id"], "question": "Q?", "answer": "A."}, format="json"
    )
    assert faq.status_code == 201 and faq.json()["id_faq_kb"] == bot.json()["id"]
    faq_url = f"{base(project)}/faqs/{faq.json()['id']}/"
    assert (
        api.put(faq_url, {"id_faq_kb": bot.json()["id"], "question": "Q2?", "answer": "A2."}, format="json").status_code
        == 200
    )
    assert api.delete(faq_url).status_code == 204
    assert api.delete(f"{base(project)}/faq_kb/{bot.json()['id']}/").status_code == 204


def test_a_faq_needs_question_answer_and_bot(api, project):
    response = api.post(f"{base(project)}/faqs/", {}, format="json")
    assert response.status_code == 400
    assert {"id_faq_kb", "question", "answer"} <= set(response.json())


# --- leads, requests, messages, events --------------------------------------------------------


def test_an_agent_can_create_leads(agent_api, project):
    response = agent_api.post(f"{base(project)}/leads/", {"fullname": "Ann", "email": "ann@example.com"}, format="json")
    assert response.status_code == 201 and response.json()["fullname"] == "Ann"


def test_a_lead_with_a_bad_email_is_a_400_on_email(api, project):
    response = api.post(f"{base(project)}/leads/", {"fullname": "Ann", "email": "not-an-email"}, format="json")
    assert response.status_code == 400 and "email" in response.json()


def test_creating_a_request_with_a_new_lead(api, project):
    response = api.post(
        f"{base(project)}/requests/",
        {
            "first_text": "hello",
            "lead": {"fullname": "Ann", "email": "ann@example.com"},
            "channel": {"name": "telegram"},
            "attributes": {"plan": "pro"},
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["request_id"].startswith(f"support-group-{project.pk}-")
    assert body["lead"]["fullname"] == "Ann" and body["channel"] == {"name": "telegram"}
    assert body["id_project"] == project.pk and body["attributes"] == {"plan": "pro"}
    for key in ("id", "_id", "status", "first_text", "department", "participants", "closed_at", "createdAt"):
        assert key in body


def test_creating_a_request_for_an_existing_lead_by_id(api, project):
    lead = Lead.objects.create(project=project, fullname="Bob")
    response = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": lead.pk}, format="json")
    assert response.status_code == 201 and response.json()["lead"]["id"] == lead.pk
    assert Lead.objects.count() == 1


def test_a_lead_object_sent_back_names_that_lead(api, project):
    lead = api.post(f"{base(project)}/leads/", {"fullname": "Bob"}, format="json").json()
    response = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": lead}, format="json")
    assert response.status_code == 201 and response.json()["lead"] == lead
    assert Lead.objects.count() == 1


def test_a_lead_gets_a_lead_id_or_keeps_the_one_given(api, project):
    given = api.post(f"{base(project)}/leads/", {"fullname": "Ann", "lead_id": "telegram-42"}, format="json").json()
    made = api.post(f"{base(project)}/leads/", {"fullname": "Bob"}, format="json").json()
    assert given["lead_id"] == "telegram-42"
    assert made["lead_id"] and made["lead_id"] != made["id"]


def test_a_leads_lead_id_cannot_change(api, project):
    lead = api.post(f"{base(project)}/leads/", {"fullname": "Ann", "lead_id": "telegram-42"}, format="json").json()
    response = api.patch(f"{base(project)}/leads/{lead['id']}/", {"lead_id": "other"}, format="json")
    assert response.status_code == 400 and "lead_id" in response.json()


def test_a_new_requests_lead_with_a_known_lead_id_is_that_lead(api, project):
    """As Tiledesk finds a requester by its lead_id, rather than making a second lead."""
    known = Lead.objects.create(project=project, fullname="Ann", lead_id="telegram-42")
    response = api.post(
        f"{base(project)}/requests/",
        {"first_text": "hi again", "lead": {"fullname": "Ann B.", "lead_id": "telegram-42"}},
        format="json",
    )
    assert response.status_code == 201 and response.json()["lead"]["id"] == known.pk
    assert Lead.objects.count() == 1 and Lead.objects.get().fullname == "Ann"


def test_a_request_takes_its_department_as_an_id_or_as_the_object(api, project):
    sales = Department.objects.create(project=project, name="Sales", routing="pooled")
    support = Department.objects.create(project=project, name="Support", routing="pooled")
    created = new_request(api, project, department=sales.pk)
    assert created["department"]["_id"] == sales.pk and created["department"]["name"] == "Sales"
    url = f"{base(project)}/requests/{created['id']}/"
    support_object = api.get(f"{base(project)}/departments/{support.pk}/").json()
    assert api.patch(url, {"department": support_object}, format="json").json()["department"] == support_object
    by_id = api.patch(url, {"department": {"id": sales.pk}}, format="json")
    assert by_id.status_code == 200 and by_id.json()["department"]["_id"] == sales.pk


@pytest.mark.parametrize("department", [{"name": "Sales"}, {"_id": "nope"}, 7])
def test_a_department_that_names_none_of_the_projects_is_a_400(api, project, department):
    response = api.post(
        f"{base(project)}/requests/",
        {"first_text": "hi", "lead": {"fullname": "A"}, "department": department},
        format="json",
    )
    assert response.status_code == 400 and "department" in response.json()


def test_a_request_status_is_read_only(api, project):
    request = new_request(api, project)
    response = api.patch(f"{base(project)}/requests/{request['id']}/", {"status": 1000}, format="json")
    assert response.status_code == 200 and response.json()["status"] == request["status"] != 1000


def test_requests_filter_by_tiledesks_status_numbers_and_the_old_names(api, project):
    pooled = Department.objects.create(project=project, name="Queue", routing="pooled", default=True)
    waiting, done = new_request(api, project), new_request(api, project)
    api.post(f"{base(project)}/requests/{done['id']}/close/")
    assert waiting["status"] == 100 and waiting["department"]["_id"] == pooled.pk

    def ids(status: str) -> set[str]:
        response = api.get(f"{base(project)}/requests/", {"status": status})
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("100") == ids("pooled") == ids("unassigned") == {waiting["id"]}
    assert ids("1000") == ids("closed") == {done["id"]}
    assert ids("100,1000") == ids("all") == {waiting["id"], done["id"]}
    assert ids("200") == ids("assigned") == ids("50") == set()


@pytest.mark.parametrize("status", ["open-ish", "300", "100,x", "%s", "%(x)s 100%"])
def test_an_unknown_status_filter_is_a_400_on_status(api, project, status):
    response = api.get(f"{base(project)}/requests/", {"status": status})
    assert response.status_code == 400 and "status" in response.json()
    assert repr(status.split(",")[-1]) in response.json()["status"][0]


def test_a_request_needs_first_text_and_lead(api, project):
    response = api.post(f"{base(project)}/requests/", {}, format="json")
    assert response.status_code == 400 and {"first_text", "lead"} <= set(response.json())


def test_a_request_cannot_name_another_projects_lead(api, project, make_user):
    from support.models import Project

    other = Project.objects.create(name="Other", created_by=make_user("zed"))
    lead = Lead.objects.create(project=other, fullname="Theirs")
    response = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": lead.pk}, format="json")
    assert response.status_code == 400 and "lead" in response.json()


def test_malformed_json_is_a_400(api, project):
    response = api.generic("POST", f"{base(project)}/requests/", b"{not json", content_type="application/json")
    assert response.status_code == 400


def new_request(api, project, **extra) -> dict:
    body = {"first_text": "hello", "lead": {"fullname": "Ann"}, **extra}
    response = api.post(f"{base(project)}/requests/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_patching_a_request_updates_its_writable_fields(api, project):
    request = new_request(api, project)
    response = api.patch(f"{base(project)}/requests/{request['id']}/", {"attributes": {"vip": True}}, format="json")
    assert response.status_code == 200 and response.json()["attributes"] == {"vip": True}


def test_closing_a_request_sets_status_and_closed_at(api, project):
    request = new_request(api, project)
    response = api.post(f"{base(project)}/requests/{request['id']}/close/")
    assert response.status_code == 200
    assert response.json()["status"] == 1000 and response.json()["closed_at"]


def test_an_agent_cannot_delete_a_request(agent_api, api, project):
    request = new_request(api, project)
    assert agent_api.delete(f"{base(project)}/requests/{request['id']}/").status_code == 403
    assert Request.objects.filter(pk=request["id"]).exists()


def test_messages_are_posted_and_listed_in_a_request(agent_api, api, project):
    request = new_request(api, project, channel={"name": "whatsapp"})
    url = f"{base(project)}/requests/{request['id']}/messages/"
    created = agent_api.post(url, {"text": "hi there"}, format="json")
    assert created.status_code == 201
    assert created.json()["channel"] == {"name": "whatsapp"}
    assert created.json()["recipient"] == request["request_id"]
    listed = agent_api.get(url).json()
    assert [m["text"] for m in listed["results"]] == ["hi there"]


def test_a_text_message_needs_text(api, project):
    request = new_request(api, project)
    response = api.post(f"{base(project)}/requests/{request['id']}/messages/", {"text": ""}, format="json")
    assert response.status_code == 400 and "text" in response.json()


def test_messages_of_another_projects_request_are_404(api, project, make_user):
    from support.models import Project

    stranger = make_user("zed")
    other = Project.objects.create(name="Other", created_by=stranger)
    ProjectUser.objects.create(project=other, user=stranger, email=stranger.email, role=Role.OWNER)
    theirs = new_request(client_for(stranger), other)
    assert api.get(f"{base(project)}/requests/{theirs['id']}/messages/").status_code == 404
    assert api.get(f"{base(project)}/requests/{theirs['id']}/").status_code == 404


def test_emitting_an_event(agent_api, project, add_member):
    response = agent_api.post(
        f"{base(project)}/events/", {"name": "typing.start", "attributes": {"x": 1}}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["name"] == "typing.start" and response.json()["createdBy"]


@pytest.mark.parametrize("name", ["", "has space"])
def test_an_event_name_must_be_one_word(api, project, name):
    response = api.post(f"{base(project)}/events/", {"name": name}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_groups_are_listed_per_project(api, project):
    Group.objects.create(project=project, name="G")
    assert api.get(f"{base(project)}/groups/").json()["count"] == 1


def test_a_page_of_requests_reads_its_participants_in_the_same_queries_whatever_its_length(api, project, add_member):
    """`participatingAgents`/`participatingBots` are read for the whole page, not per request."""
    bob = add_member("bob")
    bot = FaqKb.objects.create(project=project, name="Bot")

    def queries_for_a_page_of(count: int) -> int:
        while Request.objects.count() < count:
            request = new_request(api, project)
            participants = [str(bob.pk), f"bot_{bot.pk}"]
            api.patch(f"{base(project)}/requests/{request['id']}/", {"participants": participants}, format="json")
        with CaptureQueriesContext(connection) as queries:
            page = api.get(f"{base(project)}/requests/").json()
        assert len(page["results"]) == count and page["results"][0]["participatingBots"][0]["name"] == "Bot"
        return len(queries.captured_queries)

    assert queries_for_a_page_of(2) == queries_for_a_page_of(6)


def test_only_the_projects_own_teammates_and_bots_are_shown_as_participating(api, project, add_member, make_user):
    from support.models import Project

    bob, stranger = add_member("bob"), make_user("stranger")
    other = Project.objects.create(name="Other", created_by=stranger)
    theirs, ours = (
        FaqKb.objects.create(project=other, name="Theirs"),
        FaqKb.objects.create(project=project, name="Ours"),
    )
    request = new_request(api, project)
    participants = [str(bob.pk), str(stranger.pk), "nobody", f"bot_{ours.pk}", f"bot_{theirs.pk}"]
    Request.objects.filter(pk=request["id"]).update(participants=participants)  # whatever wrote them
    body = api.get(f"{base(project)}/requests/{request['id']}/").json()
    assert [agent["id"] for agent in body["participatingAgents"]] == [str(bob.pk)]
    assert [bot["id"] for bot in body["participatingBots"]] == [ours.pk]
    assert body["participantsAgents"] == [str(bob.pk), str(stranger.pk), "nobody"]
    assert body["participantsBots"] == [ours.pk, theirs.pk] and body["hasBot"] is True

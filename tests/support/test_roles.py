"""Who may set a conversation's participants, and who may change an owner's role."""

import pytest

from support.models import FaqKb, Project, ProjectUser, Request, Role
from tests.conftest import client_for


def base(project) -> str:
    return f"/api/projects/{project.pk}"


@pytest.fixture
def conversation(api, project) -> dict:
    response = api.post(f"{base(project)}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json")
    assert response.status_code == 201
    return response.json()


def patch_participants(client, project, conversation, participants):
    return client.patch(
        f"{base(project)}/requests/{conversation['id']}/", {"participants": participants}, format="json"
    )


# --- participants ---------------------------------------------------------------------------------


def test_an_agent_cannot_write_participants(project, add_member, make_user, conversation):
    agent = add_member("agent")
    stranger = make_user("stranger")
    response = patch_participants(client_for(agent), project, conversation, [str(stranger.pk)])
    assert response.status_code == 403
    assert Request.objects.get(pk=conversation["id"]).participants == conversation["participants"]


def test_an_agent_cannot_write_participants_even_to_a_teammate(project, add_member, conversation):
    agent, other = add_member("agent"), add_member("other")
    response = patch_participants(client_for(agent), project, conversation, [str(other.pk)])
    assert response.status_code == 403


def test_an_agent_takes_a_conversation_through_assign(project, add_member, conversation):
    agent = add_member("agent")
    response = client_for(agent).post(
        f"{base(project)}/requests/{conversation['id']}/assign/", {"id_user": str(agent.pk)}, format="json"
    )
    assert response.status_code == 200 and response.json()["participants"] == [str(agent.pk)]


def test_an_agent_may_still_update_other_fields_sending_participants_unchanged(project, add_member, conversation):
    agent = add_member("agent")
    response = client_for(agent).patch(
        f"{base(project)}/requests/{conversation['id']}/",
        {"attributes": {"vip": True}, "participants": conversation["participants"]},
        format="json",
    )
    assert response.status_code == 200 and response.json()["attributes"] == {"vip": True}


def test_an_agent_cannot_create_a_conversation_with_participants(project, add_member):
    agent = add_member("agent")
    response = client_for(agent).post(
        f"{base(project)}/requests/",
        {"first_text": "hi", "lead": {"fullname": "Ann"}, "participants": [str(agent.pk)]},
        format="json",
    )
    assert response.status_code == 403


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_may_set_active_teammates_and_the_projects_bots(api, project, add_member, conversation, role):
    caller = api if role == Role.OWNER else client_for(add_member("admin", Role.ADMIN))
    teammate = add_member("teammate")
    bot = FaqKb.objects.create(project=project, name="Bot")
    response = patch_participants(caller, project, conversation, [str(teammate.pk), f"bot_{bot.pk}"])
    assert response.status_code == 200
    assert response.json()["participants"] == [str(teammate.pk), f"bot_{bot.pk}"]


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_may_not_set_anyone_else(api, project, add_member, make_user, conversation, role):
    caller = api if role == Role.OWNER else client_for(add_member("admin", Role.ADMIN))
    stranger = make_user("stranger")
    pending = make_user("pending")
    ProjectUser.objects.create(project=project, user=pending, email=pending.email, status=ProjectUser.Status.INVITED)
    elsewhere = Project.objects.create(name="Other")
    their_bot = FaqKb.objects.create(project=elsewhere, name="Their bot")
    for participants in (
        [str(stranger.pk)],
        ["99999"],
        [str(pending.pk)],
        [f"bot_{their_bot.pk}"],
        ["bot_nope"],
        ["anyone"],
    ):
        response = patch_participants(caller, project, conversation, participants)
        assert response.status_code == 400, participants
        assert set(response.json()) == {"participants"}
    assert Request.objects.get(pk=conversation["id"]).participants == conversation["participants"]


def test_a_teammate_who_left_may_stay_but_not_be_added_again(api, project, add_member, conversation):
    leaving = add_member("leaving")
    assert patch_participants(api, project, conversation, [str(leaving.pk)]).status_code == 200
    ProjectUser.objects.filter(project=project, user=leaving).delete()
    stay = api.patch(f"{base(project)}/requests/{conversation['id']}/", {"attributes": {"a": 1}}, format="json")
    assert stay.status_code == 200 and stay.json()["participants"] == [str(leaving.pk)]
    again = patch_participants(api, project, conversation, [str(leaving.pk), str(leaving.pk)])
    assert again.status_code == 200 and again.json()["participants"] == [str(leaving.pk)]


# --- owners ---------------------------------------------------------------------------------------


def membership(project, user) -> ProjectUser:
    return ProjectUser.objects.get(project=project, user=user)


def test_an_admin_cannot_demote_an_owner_even_with_two_owners(project, owner, add_member):
    add_member("second_owner", Role.OWNER)
    admin = client_for(add_member("admin", Role.ADMIN))
    url = f"{base(project)}/project_users/{membership(project, owner).pk}/"

    response = admin.patch(url, {"role": "agent"}, format="json")

    assert response.status_code == 403
    assert membership(project, owner).role == Role.OWNER


def test_an_admin_cannot_remove_an_owner_even_with_two_owners(project, owner, add_member):
    add_member("second_owner", Role.OWNER)
    admin = client_for(add_member("admin", Role.ADMIN))
    response = admin.delete(f"{base(project)}/project_users/{membership(project, owner).pk}/")
    assert response.status_code == 403
    assert membership(project, owner).role == Role.OWNER


def test_an_admin_may_still_change_an_owners_availability(project, owner, add_member):
    admin = client_for(add_member("admin", Role.ADMIN))
    url = f"{base(project)}/project_users/{membership(project, owner).pk}/"
    response = admin.patch(url, {"user_available": False}, format="json")
    assert response.status_code == 200 and response.json()["user_available"] is False


def test_an_owner_may_demote_another_owner(api, project, add_member):
    second = add_member("second_owner", Role.OWNER)
    response = api.patch(f"{base(project)}/project_users/{membership(project, second).pk}/", {"role": "admin"})
    assert response.status_code == 200 and membership(project, second).role == Role.ADMIN


def test_the_last_owner_cannot_step_down(api, project, owner):
    response = api.patch(f"{base(project)}/project_users/{membership(project, owner).pk}/", {"role": "admin"})
    assert response.status_code == 400 and set(response.json()) == {"role"}
    assert membership(project, owner).role == Role.OWNER


def test_an_invited_owner_does_not_count_as_the_one_owner_left(api, project, owner):
    ProjectUser.objects.create(
        project=project, email="maybe@example.com", role=Role.OWNER, status=ProjectUser.Status.INVITED
    )
    response = api.patch(f"{base(project)}/project_users/{membership(project, owner).pk}/", {"role": "admin"})
    assert response.status_code == 400
    assert api.delete(f"{base(project)}/project_users/{membership(project, owner).pk}/").status_code == 400

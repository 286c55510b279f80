"""`PUT /api/projects/{pid}/requests/{id}/participants/`: who takes part in a conversation, set by
hand by the project's managers (and by a subscription with its envelope's token: tests/tiledesk)."""

import pytest

from support.models import Department, FaqKb, Group, Request, Role
from tests.conftest import client_for


@pytest.fixture
def conversation(api, project) -> dict:
    response = api.post(
        f"/api/projects/{project.pk}/requests/",
        {"first_text": "hi", "lead": {"fullname": "Ann"}, "department": sales(project).pk},
        format="json",
    )
    assert response.status_code == 201
    return response.json()


def sales(project) -> Department:
    group = Group.objects.create(project=project, name="Sales")
    return Department.objects.create(project=project, name="Sales", routing="pooled", group=group)


def participants_path(conversation: dict) -> str:
    return f"/api/projects/{conversation['id_project']}/requests/{conversation['id']}/participants/"


def test_an_owner_sets_a_bot_and_an_eligible_teammate(api, project, conversation, add_member, owner):
    bot = FaqKb.objects.create(project=project, name="Bot")
    agent = add_member("agent")
    Group.objects.filter(project=project).update(members=[str(agent.pk)])

    response = api.put(participants_path(conversation), {"participants": [str(agent.pk), f"bot_{bot.pk}"]}, "json")

    assert response.status_code == 200
    assert response.json()["participants"] == [str(agent.pk), f"bot_{bot.pk}"] and response.json()["status"] == 200
    assert Request.objects.get(pk=conversation["id"]).routing_reason == f"participants set by {owner.pk}"


def test_a_teammate_outside_the_departments_group_is_400(api, conversation, add_member):
    outside = add_member("outside")
    response = api.put(participants_path(conversation), {"participants": [str(outside.pk)]}, "json")
    assert response.status_code == 400 and str(outside.pk) in response.json()["participants"][0]


def test_an_agent_is_403(conversation, add_member):
    agent = client_for(add_member("agent", Role.AGENT))
    assert agent.put(participants_path(conversation), {"participants": []}, "json").status_code == 403


def test_an_empty_list_leaves_it_pooled(api, project, conversation):
    bot = FaqKb.objects.create(project=project, name="Bot")
    api.put(participants_path(conversation), {"participants": [f"bot_{bot.pk}"]}, "json")
    response = api.put(participants_path(conversation), {"participants": []}, "json")
    assert (response.json()["participants"], response.json()["status"]) == ([], 100)

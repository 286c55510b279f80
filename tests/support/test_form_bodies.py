"""Form-encoded bodies are read like JSON, everywhere in the API."""

import pytest


def form(body: str) -> dict:
    return {"data": body, "content_type": "application/x-www-form-urlencoded"}


@pytest.fixture
def conversation(api, project) -> dict:
    return api.post(
        f"/api/projects/{project.pk}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json"
    ).json()


@pytest.mark.parametrize("encode", ["participants={a}&participants={b}", "participants[]={a}&participants[]={b}"])
def test_a_repeated_key_or_a_key_with_brackets_is_a_list(api, project, add_member, conversation, encode):
    a, b = add_member("a"), add_member("b")
    response = api.patch(
        f"/api/projects/{project.pk}/requests/{conversation['id']}/", **form(encode.format(a=a.pk, b=b.pk))
    )
    assert response.status_code == 200 and response.json()["participants"] == [str(a.pk), str(b.pk)]


def test_one_value_with_brackets_is_a_list_of_one(api, project, add_member, conversation):
    a = add_member("a")
    response = api.patch(f"/api/projects/{project.pk}/requests/{conversation['id']}/", **form(f"participants[]={a.pk}"))
    assert response.status_code == 200 and response.json()["participants"] == [str(a.pk)]


def test_a_field_left_out_of_a_form_is_left_alone(api, project):
    created = api.post(
        f"/api/projects/{project.pk}/departments/", {"name": "Sales", "default": True}, format="json"
    ).json()
    response = api.patch(f"/api/projects/{project.pk}/departments/{created['id']}/", **form("name=Renamed"))
    assert response.status_code == 200 and response.json()["default"] is True

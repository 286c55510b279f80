"""The admin answers "who got this conversation, and why?" for departments and requests."""

import pytest
from django.contrib.admin.sites import site

from support.models import Department, Event, Faq, FaqKb, Group, Lead, Message, Project, ProjectUser, Request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def routed(api, project, add_member) -> tuple[Department, dict]:
    agent = add_member("alice")
    group = Group.objects.create(project=project, name="Sales", members=[str(agent.pk)])
    desk = Department.objects.create(project=project, name="Sales", routing="assigned", group=group, default=True)
    body = api.post(
        f"/api/projects/{project.pk}/requests/", {"first_text": "hi", "lead": {"fullname": "Ann"}}, format="json"
    ).json()
    return desk, body


def test_every_support_model_is_in_the_admin():
    for model in (Project, ProjectUser, Group, Department, FaqKb, Faq, Lead, Request, Message, Event):
        assert site.is_registered(model), model


def test_the_department_page_shows_its_routing_and_last_decisions(admin_client, routed):
    desk, body = routed
    page = admin_client.get(f"/admin/support/department/{desk.pk}/change/").content.decode()
    assert "Last 10 routing decisions" in page and body["routing_reason"] in page
    listing = admin_client.get("/admin/support/department/").content.decode()
    assert "assigned" in listing and f"builtin: {body['routing_reason']}" in listing


def test_the_request_list_shows_who_routed_it_and_why_and_filters_on_it(admin_client, routed):
    _, body = routed
    listing = admin_client.get("/admin/support/request/", {"routed_by__exact": "builtin"}).content.decode()
    assert body["request_id"] in listing and body["routing_reason"] in listing
    assert (
        body["request_id"]
        not in admin_client.get("/admin/support/request/", {"routed_by__exact": "webhook"}).content.decode()
    )
    detail = admin_client.get(f"/admin/support/request/{body['id']}/change/")
    assert detail.status_code == 200 and body["routing_reason"] in detail.content.decode()

"""The studio pages as served: who may open them, what each role gets, and the policy that keeps
a caller's values from running as script. (What the pages do in a browser: test_studio_browser.py.)"""

import json

import pytest
from django.test import Client

from support.models import Role

FLOW = [{"id": "hello", "action": "response", "status": 200, "body": {"ok": True}}]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index(">", html.index('id="studio-config"')) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_studio_needs_login(client, make_automation):
    automation = make_automation(FLOW)
    response = client.get(f"/automations/{automation.pk}/studio/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_studio_and_list_are_404_for_non_members(make_automation, make_user, project):
    automation = make_automation(FLOW)
    stranger = logged_in(make_user("stranger"))
    assert stranger.get(f"/automations/{automation.pk}/studio/").status_code == 404
    assert stranger.get(f"/projects/{project.pk}/automations/").status_code == 404


def test_studio_of_an_unknown_automation_is_404(owner):
    assert logged_in(owner).get("/automations/nope/studio/").status_code == 404


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_get_the_studio_to_edit(make_automation, add_member, owner, role):
    automation = make_automation(FLOW, name="Greeter")
    user = owner if role == Role.OWNER else add_member("admin", Role.ADMIN)
    response = logged_in(user).get(f"/automations/{automation.pk}/studio/")
    assert response.status_code == 200
    config = page_config(response)
    assert config["can_edit"] is True
    assert config["automation"] == f"/api/projects/{automation.project_id}/automations/{automation.pk}/"
    assert b'id="save"' in response.content and b"Read-only" not in response.content


def test_agents_get_the_studio_read_only(make_automation, add_member):
    automation = make_automation(FLOW)
    response = logged_in(add_member("agent", Role.AGENT)).get(f"/automations/{automation.pk}/studio/")
    assert response.status_code == 200
    assert page_config(response)["can_edit"] is False
    assert b'id="save"' not in response.content and b"Read-only (agent)" in response.content


def test_studio_page_allows_only_its_own_origin_s_scripts(make_automation, owner):
    automation = make_automation(FLOW)
    policy = logged_in(owner).get(f"/automations/{automation.pk}/studio/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy and "unsafe-inline" not in policy


def test_automation_names_are_escaped_in_the_pages(make_automation, owner, project):
    automation = make_automation(FLOW, name="<script>alert(1)</script>")
    for path in (f"/automations/{automation.pk}/studio/", f"/projects/{project.pk}/automations/"):
        html = logged_in(owner).get(path).content
        assert b"<script>alert(1)</script>" not in html and b"&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_project_list_shows_its_automations_with_links_to_the_studio(make_automation, owner, project):
    first = make_automation(FLOW, name="Inbound lead")
    second = make_automation(FLOW, name="Order status")
    response = logged_in(owner).get(f"/projects/{project.pk}/automations/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Order status") < html.index("Inbound lead")
    for automation in (first, second):
        assert f'href="/automations/{automation.pk}/studio/"' in html
    assert 'id="new-automation"' in html


def test_project_list_offers_no_new_automation_to_agents(make_automation, add_member, project):
    make_automation(FLOW, name="Inbound lead")
    html = logged_in(add_member("agent", Role.AGENT)).get(f"/projects/{project.pk}/automations/").content.decode()
    assert "Inbound lead" in html and 'id="new-automation"' not in html


def test_project_list_does_not_show_other_projects_automations(make_automation, owner, project, make_user):
    from support.models import Project, ProjectUser

    other = Project.objects.create(name="Other", created_by=owner)
    ProjectUser.objects.create(project=other, user=owner, email=owner.email, role=Role.OWNER)
    make_automation(FLOW, name="Elsewhere", target_project=other)
    html = logged_in(owner).get(f"/projects/{project.pk}/automations/").content.decode()
    assert "Elsewhere" not in html


def test_admin_links_each_automation_to_its_studio(make_automation, make_user):
    automation = make_automation(FLOW)
    admin = logged_in(make_user("operator", is_staff=True, is_superuser=True))
    change = admin.get(f"/admin/automations/automation/{automation.pk}/change/").content.decode()
    listing = admin.get("/admin/automations/automation/").content.decode()
    assert f'href="/automations/{automation.pk}/studio/"' in change
    assert f'href="/automations/{automation.pk}/studio/"' in listing


def test_studio_script_and_styles_are_served_by_the_app(live_server, db):
    import requests

    for asset in ("studio.js", "studio.css", "list.js"):
        answer = requests.get(f"{live_server.url}/static/automations/studio/{asset}", timeout=10)
        assert answer.status_code == 200 and answer.content

"""Deleting a project: it is gone for everyone at once, `project.delete` and every delivery still
pending for it go out, and then its rows are erased."""

from werkzeug import Response

from automations.models import Automation
from subscriptions.deleted_projects import erase_deleted_projects
from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from support.models import Department, Project
from tests.conftest import received
from tests.factories import create_request, subscribed

from .test_delivery import base, run_due_retries


def delete(api, project, on_commit):
    with on_commit():
        response = api.delete(f"/api/projects/{project.pk}/")
    assert response.status_code == 204
    return response


def nothing_left_of(project) -> bool:
    return (
        not any(
            model.objects.filter(project_id=project.pk).exists()
            for model in (Project.objects.model, Subscription, Delivery, Attempt, EventPayload, Department, Automation)
            if model is not Project
        )
        and not Project.objects.filter(pk=project.pk).exists()
    )


def test_project_delete_is_delivered_then_the_project_is_erased(api, project, httpserver, on_commit):
    """Tiledesk sends project.delete after marking the project deleted (routes/project.js:86-92, then
    services/subscriptionNotifier.js:510-515): the project's subscriptions still exist then. Here it
    is published in the deleting transaction, sent, and only then is anything erased."""
    httpserver.expect_request("/gone").respond_with_data("ok")
    subscription = subscribed(api, project.pk, httpserver.url_for("/gone"), event="project.delete")
    shown = api.get(f"/api/projects/{project.pk}/").json()

    delete(api, project, on_commit)

    [got] = received(httpserver, "/gone")
    assert got["json"]["hook"]["event"] == "project.delete"
    assert got["json"]["hook"]["id"] == subscription["id"] and got["json"]["hook"]["id_project"] == project.pk
    payload = got["json"]["payload"]
    assert payload == {**{k: v for k, v in shown.items() if k != "role"}, "id_project": project.pk}
    assert nothing_left_of(project)


def test_deliveries_still_pending_at_deletion_go_out_before_the_project_is_erased(
    api, project, httpserver, on_commit, clock
):
    answers = [Response("down", status=503), Response("ok")]
    httpserver.expect_request("/requests").respond_with_handler(lambda request: answers.pop(0))
    httpserver.expect_request("/gone").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/requests"), event="request.create")
    subscribed(api, project.pk, httpserver.url_for("/gone"), event="project.delete")
    create_request(api, project, on_commit)  # its delivery fails once: pending, to be retried

    delete(api, project, on_commit)

    assert [g["path"] for g in received(httpserver)] == ["/requests", "/gone"]
    assert Project.objects.filter(pk=project.pk).exists() and erase_deleted_projects() == 0
    run_due_retries(clock)
    assert [g["path"] for g in received(httpserver)] == ["/requests", "/gone", "/requests"]
    assert Delivery.objects.filter(status="pending").count() == 0
    assert erase_deleted_projects() == 1
    assert nothing_left_of(project)


def test_a_deleted_project_is_gone_for_everyone_at_once(api, client, owner, project, httpserver, on_commit):
    httpserver.expect_request("/slow").respond_with_data("down", status=503)
    subscribed(api, project.pk, httpserver.url_for("/slow"), event="project.delete")  # keeps the rows a while

    delete(api, project, on_commit)

    assert Project.objects.filter(pk=project.pk).exists()  # still sending
    assert api.get(f"/api/projects/{project.pk}/").status_code == 404
    assert api.get("/api/projects/").json()["results"] == []
    assert api.get(f"{base(project)}/subscriptions/").status_code == 404
    assert api.delete(f"/api/projects/{project.pk}/").status_code == 404
    auth = {"HTTP_AUTHORIZATION": f"Token {owner.auth_token.key}"}
    assert client.get(f"/v3/{project.pk}/subscriptions", **auth).status_code == 404


def test_a_deleted_projects_webhook_urls_stop_at_once(api, client, project, owner, httpserver, on_commit):
    httpserver.expect_request("/slow").respond_with_data("down", status=503)
    subscribed(api, project.pk, httpserver.url_for("/slow"), event="project.delete")
    automation = Automation.objects.create(project=project, name="Echo", flow={"steps": []}, created_by=owner)
    assert client.post(f"/webhook/{automation.webhook_id}", {}, content_type="application/json").status_code == 200

    delete(api, project, on_commit)

    assert client.post(f"/webhook/{automation.webhook_id}", {}, content_type="application/json").status_code == 404


def test_erasing_sends_nothing_for_what_it_erases(api, project, httpserver, on_commit):
    """The project's departments, teammates, bots... go with it without a department.delete (and so
    on) for each: Tiledesk sends none either (it never erases a project's contents)."""
    httpserver.expect_request("/hook").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/hook"), event="department.delete")
    with on_commit():
        api.post(f"{base(project)}/departments/", {"name": "Sales"}, format="json")

    delete(api, project, on_commit)

    assert received(httpserver, "/hook") == []
    assert nothing_left_of(project)


def test_the_admin_deletes_a_project_the_same_way(admin_client, project, api, httpserver, on_commit):
    httpserver.expect_request("/gone").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/gone"), event="project.delete")

    with on_commit():
        response = admin_client.post(f"/admin/support/project/{project.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert [g["json"]["hook"]["event"] for g in received(httpserver, "/gone")] == ["project.delete"]
    assert nothing_left_of(project)

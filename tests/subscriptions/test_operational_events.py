"""A project is told through its own subscriptions when one of them stops (`subscription.disabled`)
and comes back (`subscription.enabled`); the admin shows a banner for a disabled subscription."""

from subscriptions.models import Subscription
from tests.conftest import received
from tests.factories import create_request, subscribed


def test_a_410_disables_and_the_project_is_told_with_the_reason_and_last_attempt(api, project, httpserver, on_commit):
    httpserver.expect_request("/gone").respond_with_data("Gone", status=410)
    httpserver.expect_request("/ops").respond_with_data("ok")
    gone = subscribed(api, project.pk, httpserver.url_for("/gone"))
    subscribed(api, project.pk, httpserver.url_for("/ops"), events=["subscription.*"])
    create_request(api, project, on_commit)

    [told] = received(httpserver, "/ops")
    assert told["json"]["hook"]["event"] == "subscription.disabled"
    payload = told["json"]["payload"]
    assert payload["subscription"]["id"] == gone["id"] and payload["subscription"]["enabled"] is False
    assert payload["subscription"]["secret"].startswith("whsec_••••")
    assert payload["reason"] == "The target answered 410 Gone."
    assert payload["last_attempt"]["status_code"] == 410 and payload["last_attempt"]["subscription"] == gone["id"]
    assert gone["secret"] not in str(told["json"])


def test_enabling_it_again_tells_the_project(api, project, httpserver, on_commit):
    httpserver.expect_request("/ops").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/ops"), events=["subscription.disabled", "subscription.enabled"])
    other = subscribed(api, project.pk, "https://crm.example.com/in")
    with on_commit():
        api.patch(f"/api/projects/{project.pk}/subscriptions/{other['id']}/", {"enabled": False}, format="json")
    with on_commit():
        api.patch(f"/api/projects/{project.pk}/subscriptions/{other['id']}/", {"enabled": True}, format="json")
    with on_commit():  # not a change of state: nothing to tell
        api.patch(f"/api/projects/{project.pk}/subscriptions/{other['id']}/", {"enabled": True}, format="json")

    told = [
        (got["json"]["hook"]["event"], got["json"]["payload"]["subscription"]["id"])
        for got in received(httpserver, "/ops")
    ]
    assert told == [("subscription.disabled", other["id"]), ("subscription.enabled", other["id"])]


def test_the_admin_actions_tell_the_project_too(api, project, httpserver, on_commit, make_user, client):
    httpserver.expect_request("/ops").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/ops"), event="subscription.disabled")
    other = subscribed(api, project.pk, "https://crm.example.com/in")
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    with on_commit():
        client.post("/admin/subscriptions/subscription/", {"action": "disable", "_selected_action": [other["id"]]})

    [told] = received(httpserver, "/ops")
    assert told["json"]["payload"]["subscription"]["id"] == other["id"]
    assert told["json"]["payload"]["reason"] == "Disabled by an operator."


def test_the_admin_shows_a_banner_for_a_disabled_subscription(api, project, make_user, client):
    other = subscribed(api, project.pk, "https://crm.example.com/in")
    Subscription.objects.filter(pk=other["id"]).update(enabled=False, disabled_reason="The target answered 410 Gone.")
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))

    for page in ("/admin/subscriptions/subscription/", f"/admin/subscriptions/subscription/{other['id']}/change/"):
        html = client.get(page).content.decode()
        assert 'class="warning"' in html
        assert (
            f"Subscription {other['id']} to https://crm.example.com/in is disabled: The target answered 410 Gone."
            in html
        )

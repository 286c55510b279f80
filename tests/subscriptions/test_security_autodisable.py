"""Auto-disable: a 410 disables a subscription at once; failing for `HOOKS_DISABLE_AFTER_S` with at
least `HOOKS_DISABLE_AFTER_FAILURES` failed attempts disables it too. Either way the reason is
visible (field, API, admin, delivery and log row) and nothing more is sent until re-enabled."""

import pytest

from subscriptions.models import Attempt, Delivery, Subscription
from tests.factories import subscribed
from tests.reliability.hooks import emit


@pytest.fixture
def hook(api, project, httpserver):
    return subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")


def answers(httpserver, *statuses: int) -> None:
    for status in statuses:
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("{}", status=status)


def redeliver(api, project, delivery: Delivery) -> None:
    assert api.post(f"/api/projects/{project.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 202


def get_hook(api, project, hook) -> dict:
    return api.get(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/").json()


def test_410_disables_the_subscription_at_once_with_a_visible_reason(api, project, hook, httpserver, on_commit):
    answers(httpserver, 410)
    with on_commit():
        emit(api, project.pk)
    shown = get_hook(api, project, hook)
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and "subscription disabled" in delivery.last_error
    assert "410" in Attempt.objects.get().error
    [row] = api.get(f"/api/projects/{project.pk}/subscriptions/logs/").json()["results"]
    assert "subscription disabled" in row["error"]


def test_a_disabled_subscription_gets_nothing_until_re_enabled(api, project, hook, httpserver, on_commit):
    answers(httpserver, 410, 200)
    with on_commit():
        emit(api, project.pk)
    with on_commit():
        emit(api, project.pk, name="after")
    tried = Delivery.objects.exclude(status="skipped")  # "after" came while disabled: skipped
    redeliver(api, project, tried.get())
    assert len(httpserver.log) == 1 and tried.count() == 1
    assert "subscription disabled" in tried.get().last_error

    enabled = api.patch(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/", {"enabled": True}, format="json")
    assert enabled.status_code == 200 and enabled.json()["disabled_reason"] == ""
    with on_commit():
        emit(api, project.pk, name="again")
    assert len(httpserver.log) == 2 and httpserver.log[1][1].status_code == 200


def test_failing_for_the_period_with_enough_failures_disables(
    api, project, hook, httpserver, on_commit, settings, clock
):
    settings.HOOKS_DISABLE_AFTER_S = 1
    settings.HOOKS_DISABLE_AFTER_FAILURES = 3
    answers(httpserver, 500, 500, 500)
    with on_commit():
        emit(api, project.pk)
    delivery = Delivery.objects.get()
    clock.shift(1.1)
    redeliver(api, project, delivery)
    assert get_hook(api, project, hook)["enabled"] is True  # long enough, but only 2 failures
    redeliver(api, project, delivery)
    shown = get_hook(api, project, hook)
    assert shown["enabled"] is False and "failed" in shown["disabled_reason"]
    delivery.refresh_from_db()
    assert delivery.status == "failed" and shown["disabled_reason"] in delivery.last_error
    assert "subscription disabled" in Attempt.objects.order_by("-attempt").first().error


def test_many_failures_in_a_short_time_do_not_disable(api, project, hook, httpserver, on_commit, settings):
    settings.HOOKS_DISABLE_AFTER_S = 60
    settings.HOOKS_DISABLE_AFTER_FAILURES = 3
    answers(httpserver, 500, 500, 500, 500)
    with on_commit():
        emit(api, project.pk)
    for _ in range(3):
        redeliver(api, project, Delivery.objects.get())
    assert Attempt.objects.filter(outcome="failed").count() == 4
    assert Subscription.objects.get().enabled is True


def test_a_success_within_the_period_restarts_it(api, project, hook, httpserver, on_commit, settings, clock):
    settings.HOOKS_DISABLE_AFTER_S = 1
    settings.HOOKS_DISABLE_AFTER_FAILURES = 2
    answers(httpserver, 500, 200, 500, 500)
    with on_commit():
        emit(api, project.pk)
    clock.shift(1.1)
    with on_commit():
        emit(api, project.pk)  # 200: the subscription works again
    with on_commit():
        emit(api, project.pk)
    redeliver(api, project, Delivery.objects.order_by("created_at").last())
    assert Attempt.objects.filter(outcome="failed").count() == 3
    assert Subscription.objects.get().enabled is True


def test_re_enabling_gives_a_fresh_period(api, project, hook, httpserver, on_commit, settings, clock):
    settings.HOOKS_DISABLE_AFTER_S = 1
    settings.HOOKS_DISABLE_AFTER_FAILURES = 2
    answers(httpserver, 500, 500, 500)
    with on_commit():
        emit(api, project.pk)
    clock.shift(1.1)
    redeliver(api, project, Delivery.objects.get())
    assert Subscription.objects.get().enabled is False
    api.patch(f"/api/projects/{project.pk}/subscriptions/{hook['id']}/", {"enabled": True}, format="json")
    with on_commit():
        emit(api, project.pk)
    assert len(httpserver.log) == 3
    assert Subscription.objects.get().enabled is True


def test_the_admin_shows_why_a_subscription_was_disabled(api, project, hook, httpserver, on_commit, admin_client):
    answers(httpserver, 410)
    with on_commit():
        emit(api, project.pk)
    reason = Subscription.objects.get().disabled_reason
    assert reason
    changelist = admin_client.get("/admin/subscriptions/subscription/")
    assert changelist.status_code == 200 and reason in changelist.content.decode()
    change = admin_client.get(f"/admin/subscriptions/subscription/{hook['id']}/change/")
    assert change.status_code == 200 and reason in change.content.decode()

"""A subscription's lifecycle (enable, disable, rotate the secret) and whether a delivery may be
sent again are rules of the models, so the API, the admin and the commands cannot disagree."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from subscriptions import events
from subscriptions.models import Delivery, Subscription
from subscriptions.serializers import OPERATOR_DISABLED
from subscriptions.signing import SECRET_PREFIX
from tests.factories import failed_delivery, subscription


@pytest.fixture
def operator(make_user, client):
    client.force_login(make_user("operator", is_staff=True, is_superuser=True))
    return client


def changelist_form(subscription: Subscription, enabled: bool) -> dict:
    """The subscriptions list as posted with its "enabled" column edited for one row."""
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": subscription.pk,
        "_save": "Save",
    }
    if enabled:
        form["form-0-enabled"] = "on"
    return form


def test_the_enabled_checkbox_of_the_admin_list_clears_the_disabled_reason(operator, project):
    hook = subscription(project)
    hook.disable("The target answered 410 Gone.")
    response = operator.post("/admin/subscriptions/subscription/", changelist_form(hook, enabled=True))
    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.enabled, hook.disabled_reason) == (True, "")


def test_unticking_the_enabled_checkbox_disables_with_the_operator_as_reason(operator, project):
    hook = subscription(project)
    operator.post("/admin/subscriptions/subscription/", changelist_form(hook, enabled=False))
    hook.refresh_from_db()
    assert (hook.enabled, hook.disabled_reason) == (False, OPERATOR_DISABLED)


def test_the_admin_does_not_redeliver_an_operator_select_call(operator, project, httpserver):
    httpserver.expect_request("/select").respond_with_json({"operators": []})
    select = subscription(project, httpserver.url_for("/select"), event=events.OPERATOR_SELECT)
    call = failed_delivery(select, timedelta(minutes=5))
    response = operator.post(
        "/admin/subscriptions/delivery/", {"action": "redeliver", "_selected_action": [call.pk]}, follow=True
    )
    assert "operator.select calls are synchronous" in response.content.decode()
    assert httpserver.log == []
    assert Delivery.objects.get(pk=call.pk).status == Delivery.Status.FAILED


def test_the_command_refuses_the_same_deliveries_as_the_admin(project):
    call = failed_delivery(subscription(project, event=events.OPERATOR_SELECT), timedelta(minutes=5))
    assert not call.redeliverable
    with pytest.raises(CommandError, match="synchronous"):
        call_command("redeliver", call.pk)


def test_a_new_subscription_gets_its_secret_from_the_model(operator, project):
    operator.post(
        "/admin/subscriptions/subscription/add/",
        {
            "project": project.pk,
            "event": "request.create",
            "target": "https://hooks.example.com/in",
            "enabled": "on",
            "ordering": "none",
        },
    )
    made = Subscription.objects.get()
    assert made.secret.startswith(SECRET_PREFIX) and len(made.secret) == len(SECRET_PREFIX) + 44


def test_rotating_keeps_the_old_secret_signing_for_the_grace_period(project, settings):
    hook = subscription(project)
    old = hook.secret
    new = hook.rotate_secret()
    hook.refresh_from_db()
    assert new != old and hook.secret == new and hook.previous_secret == old
    assert hook.signing_secrets() == [new, old]

"""The operator's commands: redeliver one delivery or every failed one since a moment (with a dry
run), retry_pending and purge_logs, each showing progress."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from support.models import Project, ProjectUser, Role
from tests.conftest import received
from tests.factories import failed_delivery, logged_attempt


@pytest.fixture
def hook(project, httpserver):
    httpserver.expect_request("/hook").respond_with_json({"ok": True})
    return Subscription.objects.create(
        project=project, event="request.create", target=httpserver.url_for("/hook"), secret="whsec_x"
    )


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_redeliver_one_delivery_sends_it_again_with_the_next_attempt_number(hook, httpserver):
    delivery = failed_delivery(hook, timedelta(days=10), attempts=4)

    output = run("redeliver", delivery.pk)

    assert "queued again" in output
    assert [got["headers"]["x-hook-id"] for got in received(httpserver)] == [delivery.pk]
    assert Attempt.objects.get(delivery=delivery).attempt == 5


def test_redeliver_unknown_delivery_is_an_error(db):
    with pytest.raises(CommandError, match="No delivery"):
        run("redeliver", "nope")


def test_redeliver_failed_since_replays_only_those_since_then_with_a_progress_bar(hook, httpserver, capsys):
    recent = [failed_delivery(hook, timedelta(hours=h)) for h in (1, 2)]
    failed_delivery(hook, timedelta(days=3))

    output = run("redeliver", "--failed", "--since", (timezone.now() - timedelta(days=1)).isoformat())

    assert "2 failed delivery(ies) queued again" in output
    assert sorted(got["headers"]["x-hook-id"] for got in received(httpserver)) == sorted(d.pk for d in recent)
    assert "2/2" in capsys.readouterr().err


def test_redeliver_failed_dry_run_lists_and_changes_nothing(hook, httpserver):
    delivery = failed_delivery(hook, timedelta(hours=1))

    output = run("redeliver", "--failed", "--since", "2000-01-01T00:00:00Z", "--dry-run")

    assert delivery.pk in output and "1 failed delivery(ies) would be replayed (dry run)" in output
    assert received(httpserver) == []
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.FAILED


def test_redeliver_failed_can_be_limited_to_a_subscription_or_a_project(hook, httpserver, owner, project):
    other_sub = Subscription.objects.create(
        project=project, event="lead.create", target=httpserver.url_for("/hook"), secret="s"
    )
    other_project = Project.objects.create(name="Other", created_by=owner)
    ProjectUser.objects.create(project=other_project, user=owner, email=owner.email, role=Role.OWNER)
    foreign = Subscription.objects.create(
        project=other_project, event="lead.create", target=httpserver.url_for("/hook"), secret="s"
    )
    mine, sibling, elsewhere = (failed_delivery(s, timedelta(hours=1)) for s in (hook, other_sub, foreign))
    since = "2000-01-01T00:00:00Z"

    assert mine.pk in run("redeliver", "--failed", "--since", since, "--subscription", hook.pk, "--dry-run")
    by_sub = run("redeliver", "--failed", "--since", since, "--subscription", hook.pk, "--dry-run")
    assert sibling.pk not in by_sub and elsewhere.pk not in by_sub
    by_project = run("redeliver", "--failed", "--since", since, "--project", project.pk, "--dry-run")
    assert mine.pk in by_project and sibling.pk in by_project and elsewhere.pk not in by_project


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "either a delivery id or --failed"),
        (("--failed",), "needs --since"),
        (("--failed", "--since", "yesterday"), "needs --since"),
        (("--failed", "--since", "2026-01-01", "--subscription", "nope"), "No subscription"),
    ],
)
def test_redeliver_usage_errors(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("redeliver", *args)


def test_retry_pending_queues_overdue_pending_deliveries(hook, httpserver, capsys):
    payload = EventPayload.objects.create(project=hook.project, payload={"x": 1})
    overdue = Delivery.objects.create(
        project=hook.project,
        subscription=hook,
        event=hook.event,
        event_payload=payload,
        next_attempt_at=timezone.now() - timedelta(minutes=5),
    )

    output = run("retry_pending")

    assert "1 pending delivery(ies) queued" in output
    assert [got["headers"]["x-hook-id"] for got in received(httpserver)] == [overdue.pk]
    assert "1/1" in capsys.readouterr().err


def test_purge_logs_deletes_old_attempts_and_what_they_leave_behind(hook, capsys):
    old = failed_delivery(hook, timedelta(days=40))
    logged_attempt(old, created_at=timezone.now() - timedelta(days=40))
    recent = failed_delivery(hook, timedelta(days=1))
    logged_attempt(recent)

    output = run("purge_logs", "--older-than", "30")

    assert "1 log row(s) deleted" in output
    assert list(Attempt.objects.values_list("delivery_id", flat=True)) == [recent.pk]
    assert not Delivery.objects.filter(pk=old.pk).exists()
    assert not EventPayload.objects.filter(pk=old.event_payload_id).exists()
    assert "1/1" in capsys.readouterr().err


def test_operator_select_calls_are_not_redelivered(project, httpserver):
    selector = Subscription.objects.create(
        project=project, event="operator.select", target=httpserver.url_for("/select"), secret="s"
    )
    call = failed_delivery(selector, timedelta(hours=1))

    with pytest.raises(CommandError, match="cannot be redelivered"):
        run("redeliver", call.pk)
    assert "0 failed delivery(ies) queued again" in run("redeliver", "--failed", "--since", "2000-01-01T00:00:00Z")
    assert received(httpserver) == []

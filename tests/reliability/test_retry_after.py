"""429/503 with Retry-After delay the next attempt accordingly, within a bound; other statuses
follow the retry schedule."""

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone
from django_q.models import Schedule

from subscriptions import outcomes as sending
from subscriptions import tasks
from subscriptions.models import Delivery
from tests.factories import subscribed

from ..conftest import retries_come_due
from .hooks import emit


def first_attempt_answered(api, project, httpserver, on_commit, status: int, retry_after: str) -> Delivery:
    httpserver.expect_ordered_request("/hook").respond_with_data(
        "busy", status=status, headers={"Retry-After": retry_after}
    )
    httpserver.expect_request("/hook").respond_with_json({})
    subscribed(api, project.pk, httpserver.url_for("/hook"), "event.emit")
    with on_commit():
        emit(api, project.pk)
    return Delivery.objects.get()


def seconds_until_next_attempt(delivery: Delivery) -> float:
    return (delivery.next_attempt_at - timezone.now()).total_seconds()


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_delays_the_next_attempt(api, project, httpserver, on_commit, settings, clock, status):
    settings.HOOKS_RETRY_DELAYS_S = [10]
    delivery = first_attempt_answered(api, project, httpserver, on_commit, status, "120")
    assert delivery.status == "pending"
    assert 115 < seconds_until_next_attempt(delivery) <= 120 * 1.1
    [wake] = Schedule.objects.filter(func="subscriptions.tasks.deliver_due")  # the retry's slot
    assert delivery.next_attempt_at <= wake.next_run <= delivery.next_attempt_at + timedelta(seconds=1)
    clock.shift(12)  # past the normal delay: still not due
    assert tasks.deliver(delivery.pk) == "not due or taken"
    assert len(httpserver.log) == 1


def test_retry_after_as_an_http_date(api, project, httpserver, on_commit):
    when = format_datetime(timezone.now() + timedelta(seconds=90), usegmt=True)
    delivery = first_attempt_answered(api, project, httpserver, on_commit, 503, when)
    assert 80 < seconds_until_next_attempt(delivery) <= 91


def test_retry_after_is_bounded(api, project, httpserver, on_commit):
    delivery = first_attempt_answered(api, project, httpserver, on_commit, 429, str(10**9))
    assert sending.MAX_RETRY_AFTER_S - 60 < seconds_until_next_attempt(delivery) <= sending.MAX_RETRY_AFTER_S


@pytest.mark.parametrize("status,retry_after", [(500, "120"), (429, "soon")])
def test_retry_after_is_ignored_when_not_applicable(
    api, project, httpserver, on_commit, settings, clock, status, retry_after
):
    settings.HOOKS_RETRY_DELAYS_S = [10]
    delivery = first_attempt_answered(api, project, httpserver, on_commit, status, retry_after)
    assert seconds_until_next_attempt(delivery) <= 10 * (1 + settings.HOOKS_RETRY_JITTER)  # not 120
    retries_come_due(clock)
    assert tasks.deliver(delivery.pk) == "success"
    assert len(httpserver.log) == 2

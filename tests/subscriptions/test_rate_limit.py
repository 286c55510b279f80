"""`rate_limit` (deliveries per second): what would go too early waits its turn unattempted, and
other subscriptions are not slowed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions import pacing, tasks
from subscriptions.models import Attempt, Delivery, Subscription
from tests.factories import create_requests_unsent, subscribed


def url(project, rest: str = "") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{rest}"


def test_rate_limit_reads_back_null_by_default_and_the_number_given(api, project):
    plain = subscribed(api, project.pk, "https://hooks.example.com/a")
    paced = subscribed(api, project.pk, "https://hooks.example.com/b", rate_limit=2.5)

    assert plain["rate_limit"] is None and paced["rate_limit"] == 2.5
    patched = api.patch(url(project, f"{paced['id']}/"), {"rate_limit": None}, format="json")
    assert patched.status_code == 200 and patched.json()["rate_limit"] is None


@pytest.mark.parametrize("value", [0, -1, "fast", 10**9])
def test_a_rate_limit_that_is_not_a_positive_number_in_range_is_a_400_on_the_field(api, project, value):
    response = api.post(
        url(project), {"event": "request.create", "target": "https://hooks.example.com/", "rate_limit": value},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert "rate_limit" in response.json()


def test_a_burst_of_one_seconds_worth_goes_and_the_rest_is_spaced_one_interval_apart():
    now = timezone.now()
    waiting = [Delivery(pk=str(n), sequence=n) for n in range(1, 6)]

    going, later, next_free = pacing._turns(2.0, None, waiting, now)

    assert [d.pk for d in going] == ["1", "2"]
    assert [(d.pk, moment - now) for d, moment in later] == [
        ("3", timedelta(seconds=1)),
        ("4", timedelta(seconds=1.5)),
        ("5", timedelta(seconds=2)),
    ]
    assert next_free == now + timedelta(seconds=1)


def test_after_a_burst_the_next_delivery_waits_for_its_interval():
    now = timezone.now()
    going, later, _ = pacing._turns(2.0, now + timedelta(seconds=1), [Delivery(pk="next")], now)

    assert going == [] and [moment - now for _, moment in later] == [timedelta(seconds=1)]


def test_turns_taken_late_go_one_interval_apart_not_as_a_new_burst():
    now = timezone.now()
    overdue = [Delivery(pk=str(n), sequence=n) for n in range(1, 4)]

    going, later, next_free = pacing._turns(2.0, now - timedelta(seconds=0.3), overdue, now)

    assert [d.pk for d in going] == ["1"]
    assert [(d.pk, moment - now) for d, moment in later] == [
        ("2", timedelta(seconds=0.5)),
        ("3", timedelta(seconds=1)),
    ]
    assert next_free == now + timedelta(seconds=0.5)


def test_after_a_quiet_second_a_burst_goes_again():
    now = timezone.now()
    waiting = [Delivery(pk=str(n), sequence=n) for n in range(1, 4)]

    going, later, _ = pacing._turns(2.0, now - timedelta(seconds=1), waiting, now)

    assert [d.pk for d in going] == ["1", "2"] and [d.pk for d, _ in later] == ["3"]


def test_claimed_deliveries_beyond_the_rate_are_given_back_unattempted_due_at_their_turn(api, project, httpserver):
    httpserver.expect_request("/paced").respond_with_data("ok")
    paced = subscribed(api, project.pk, httpserver.url_for("/paced"), rate_limit=1)
    create_requests_unsent(api, project, 3)

    tasks.deliver_due()

    assert [request.get_json()["sequence"] for request, _ in httpserver.log] == [1]
    waiting = Delivery.objects.filter(status="pending").order_by("sequence")
    assert [(d.sequence, d.attempt_count, d.locked_until) for d in waiting] == [(2, 0, None), (3, 0, None)]
    first_turn = Subscription.objects.get(pk=paced["id"]).rate_next_at
    assert [d.next_attempt_at - first_turn for d in waiting] == [timedelta(0), timedelta(seconds=1)]
    assert Attempt.objects.count() == 1


def test_when_their_turn_comes_they_go_one_by_one(api, project, httpserver, clock):
    httpserver.expect_request("/paced").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/paced"), rate_limit=1)
    create_requests_unsent(api, project, 3)
    tasks.deliver_due()

    for sent in (2, 3):
        clock.shift(1)
        tasks.deliver_due()
        assert len(httpserver.log) == sent

    assert [request.get_json()["sequence"] for request, _ in httpserver.log] == [1, 2, 3]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"success"}


def test_a_paced_subscriptions_backlog_does_not_slow_other_subscriptions(api, project, httpserver):
    httpserver.expect_request("/paced").respond_with_data("ok")
    httpserver.expect_request("/free").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/paced"), rate_limit=1)
    subscribed(api, project.pk, httpserver.url_for("/free"))
    create_requests_unsent(api, project, 10)

    tasks.deliver_due()

    paths = [request.path for request, _ in httpserver.log]
    assert paths.count("/free") == 10 and paths.count("/paced") == 1


def test_lifting_the_limit_lets_what_waits_go_at_its_turn_without_further_pacing(api, project, httpserver, clock):
    httpserver.expect_request("/paced").respond_with_data("ok")
    paced = subscribed(api, project.pk, httpserver.url_for("/paced"), rate_limit=1)
    create_requests_unsent(api, project, 4)
    tasks.deliver_due()

    api.patch(url(project, f"{paced['id']}/"), {"rate_limit": None}, format="json")
    clock.shift(5)
    tasks.deliver_due()

    assert len(httpserver.log) == 4

"""`ordering: "fifo"`: one delivery of the subscription in flight at a time, in publish order; a
failing one holds those after it until it succeeds or fails finally, then the next goes."""

from django.utils import timezone
from werkzeug import Response

from subscriptions import tasks, transitions
from subscriptions.models import Attempt, Delivery
from tests.factories import create_request, create_requests_unsent, subscribed


def url(project, rest: str = "") -> str:
    return f"/api/projects/{project.pk}/subscriptions/{rest}"


def sequences_received(httpserver, path: str) -> list[tuple[int, int]]:
    """(sequence, status answered) of every POST the receiver got, in arrival order."""
    return [(request.get_json()["sequence"], response.status_code) for request, response in httpserver.log
            if request.path == path]  # fmt: skip


def test_ordering_reads_back_none_by_default_and_fifo_when_asked(api, project):
    plain = subscribed(api, project.pk, "https://hooks.example.com/a")
    ordered = subscribed(api, project.pk, "https://hooks.example.com/b", ordering="fifo")

    assert plain["ordering"] == "none" and ordered["ordering"] == "fifo"
    assert api.get(url(project, f"{ordered['id']}/")).json()["ordering"] == "fifo"


def test_an_unknown_ordering_is_a_400_on_the_field(api, project):
    response = api.post(
        url(project), {"event": "request.create", "target": "https://hooks.example.com/", "ordering": "lifo"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert "ordering" in response.json()


def test_only_the_oldest_pending_delivery_of_an_ordered_subscription_is_claimed(api, project):
    ordered = subscribed(api, project.pk, "https://hooks.example.com/ordered", ordering="fifo")
    plain = subscribed(api, project.pk, "https://hooks.example.com/plain")
    create_requests_unsent(api, project, 3)

    claimed = transitions.claim_due(10)

    assert [d.sequence for d in claimed if d.subscription_id == ordered["id"]] == [1]
    assert sorted(d.sequence for d in claimed if d.subscription_id == plain["id"]) == [1, 2, 3]
    assert transitions.claim_due(10) == []  # the first is in flight: the second is not next yet


def test_a_failing_delivery_holds_the_ones_after_it_until_it_succeeds(api, project, httpserver, on_commit, settings):
    settings.HOOKS_RETRY_DELAYS_S = [60]  # the retry comes due when the test says so, not mid-test
    answers = iter([500])
    httpserver.expect_request("/ordered").respond_with_handler(lambda request: Response("", status=next(answers, 200)))
    subscribed(api, project.pk, httpserver.url_for("/ordered"), ordering="fifo")
    for _ in range(3):
        create_request(api, project, on_commit)  # each commit wakes the (inline) worker

    assert sequences_received(httpserver, "/ordered") == [(1, 500)]  # 2 and 3 wait behind 1's retry
    Delivery.objects.filter(sequence=1).update(next_attempt_at=timezone.now())  # the retry is due
    tasks.deliver_due()

    assert sequences_received(httpserver, "/ordered") == [(1, 500), (1, 200), (2, 200), (3, 200)]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"success"}


def test_a_delivery_that_fails_finally_lets_the_next_go(api, project, httpserver, settings):
    settings.HOOKS_RETRY_DELAYS_S = []  # one attempt each
    answers = iter([500])
    httpserver.expect_request("/ordered").respond_with_handler(lambda request: Response("", status=next(answers, 200)))
    subscribed(api, project.pk, httpserver.url_for("/ordered"), ordering="fifo")
    create_requests_unsent(api, project, 3)

    tasks.deliver_due()

    assert sequences_received(httpserver, "/ordered") == [(1, 500), (2, 200), (3, 200)]
    assert sorted(Delivery.objects.values_list("sequence", "status")) == [(1, "failed"), (2, "success"), (3, "success")]


def test_deliveries_of_other_subscriptions_are_not_held_by_an_ordered_ones_retry(
    api, project, httpserver, on_commit, settings
):
    settings.HOOKS_RETRY_DELAYS_S = [60]  # the first one's retry stays ahead for the whole test
    httpserver.expect_request("/ordered").respond_with_data("down", status=503)
    httpserver.expect_request("/plain").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/ordered"), ordering="fifo")
    subscribed(api, project.pk, httpserver.url_for("/plain"))
    for _ in range(3):
        create_request(api, project, on_commit)

    assert [sequence for sequence, _ in sequences_received(httpserver, "/ordered")] == [1]
    assert sorted(sequence for sequence, _ in sequences_received(httpserver, "/plain")) == [1, 2, 3]


def test_switching_a_subscription_to_fifo_orders_what_is_still_waiting(api, project):
    hook = subscribed(api, project.pk, "https://hooks.example.com/later-ordered")
    create_requests_unsent(api, project, 3)

    response = api.patch(url(project, f"{hook['id']}/"), {"ordering": "fifo"}, format="json")

    assert response.status_code == 200
    assert set(Delivery.objects.values_list("in_order", flat=True)) == {True}
    assert [d.sequence for d in transitions.claim_due(10)] == [1]
    assert Attempt.objects.count() == 0

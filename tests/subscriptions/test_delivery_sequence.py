"""Every envelope carries `sequence`: given when the delivery row is made, increasing per
subscription, the same on every retry."""

import json

from werkzeug import Response

from subscriptions.models import Delivery, Subscription
from tests.conftest import received
from tests.factories import create_request, subscribed

from .test_delivery import run_due_retries


def test_each_subscription_numbers_its_deliveries_from_one(api, project, httpserver, on_commit):
    httpserver.expect_request("/a").respond_with_data("ok")
    httpserver.expect_request("/b").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/a"))
    subscribed(api, project.pk, httpserver.url_for("/b"), events=["request.create", "lead.create"])
    for _ in range(3):
        create_request(api, project, on_commit)

    assert [got["json"]["sequence"] for got in received(httpserver, "/a")] == [1, 2, 3]
    assert sorted(got["json"]["sequence"] for got in received(httpserver, "/b")) == [1, 2, 3, 4, 5, 6]


def test_one_transaction_publishing_twice_to_a_subscription_numbers_both(api, project, httpserver, on_commit):
    httpserver.expect_request("/both").respond_with_data("ok")
    subscribed(api, project.pk, httpserver.url_for("/both"), events=["request.create", "lead.create"])
    create_request(api, project, on_commit)  # lead.create and request.create in one transaction

    by_event = {got["json"]["hook"]["event"]: got["json"]["sequence"] for got in received(httpserver, "/both")}
    assert by_event == {"lead.create": 1, "request.create": 2}


def test_a_retry_carries_the_same_sequence(api, project, httpserver, on_commit, clock):
    seen: list[int] = []

    def first_try_of_the_first_fails(request):
        seen.append(json.loads(request.get_data())["sequence"])
        return Response("boom" if seen == [1] else "ok", status=500 if seen == [1] else 200)

    httpserver.expect_request("/retried").respond_with_handler(first_try_of_the_first_fails)
    subscribed(api, project.pk, httpserver.url_for("/retried"))
    create_request(api, project, on_commit)
    create_request(api, project, on_commit)
    run_due_retries(clock)

    # The retry of the first goes by its time, before or after the second (a worker takes the
    # longest-waiting first): either way it carries the first's number again.
    assert seen[0] == 1 and sorted(seen[1:]) == [1, 2]
    assert sorted(Delivery.objects.values_list("sequence", "status")) == [(1, "success"), (2, "success")]


def test_a_subscription_saved_from_a_read_older_than_a_publish_gives_no_number_twice(
    api, project, httpserver, on_commit
):
    httpserver.expect_request("/saved").respond_with_data("ok")
    read_before = Subscription.objects.get(pk=subscribed(api, project.pk, httpserver.url_for("/saved"))["id"])
    create_request(api, project, on_commit)
    read_before.save()  # e.g. a form opened before the request was created, saved after it
    create_request(api, project, on_commit)

    assert [got["json"]["sequence"] for got in received(httpserver, "/saved")] == [1, 2]

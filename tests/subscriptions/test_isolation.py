"""A slow target gets one delivery in flight at a time, so that it cannot hold every worker
(subscriptions/isolation.py; measured by bench/isolation.py). Real HTTP to a local receiver;
tasks run in-process (Q_SYNC) through the real queue calls."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug import Response

from subscriptions import isolation, tasks
from subscriptions.models import Delivery, EventPayload, Subscription
from subscriptions.signing import new_secret
from tests.conftest import deliver_batch_in_another_worker, wait_for
from tests.reliability.hooks import Receiver


@pytest.fixture
def subscription(project, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return Subscription.objects.create(
        project=project, event="request.create", target=httpserver.url_for("/hook"), secret=new_secret()
    )


def pending_delivery(subscription, **fields) -> Delivery:
    payload = EventPayload.objects.create(project=subscription.project, payload={"id": "r1"})
    project, event = subscription.project, subscription.event
    return Delivery.objects.create(
        project=project, subscription=subscription, event=event, event_payload=payload, **fields
    )


def in_flight(subscription) -> Delivery:
    return pending_delivery(subscription, locked_until=timezone.now() + timedelta(seconds=30))


def slow_attempt_ended(delivery: Delivery) -> None:
    """What the worker reports after an attempt whose HTTP exchange took 2 s."""
    isolation.after_attempt(delivery, exchange_s=2.0)


def hook_ids(httpserver) -> list[str]:
    return [request.headers["x-hook-id"] for request, _ in httpserver.log]


def test_a_delivery_to_a_slow_target_waits_while_another_is_in_flight(subscription, httpserver):
    slow_attempt_ended(in_flight(subscription))
    waiting = pending_delivery(subscription)

    assert tasks.deliver(waiting.pk) == "parked"

    waiting.refresh_from_db()
    assert hook_ids(httpserver) == []
    assert (waiting.status, waiting.attempt_count, waiting.locked_until) == ("pending", 0, None)
    assert waiting.parked_at is not None and waiting.last_error == ""
    assert waiting.next_attempt_at > timezone.now() + timedelta(seconds=isolation.PARK_S - 5)


def test_when_the_delivery_in_flight_ends_the_parked_ones_go_in_turn_oldest_first(subscription, httpserver):
    first = in_flight(subscription)
    slow_attempt_ended(first)
    newer, older = pending_delivery(subscription), pending_delivery(subscription)
    Delivery.objects.filter(pk=older.pk).update(created_at=newer.created_at - timedelta(seconds=1))
    assert tasks.deliver(newer.pk) == tasks.deliver(older.pk) == "parked"

    Delivery.objects.filter(pk=first.pk).update(status="success", locked_until=None)
    slow_attempt_ended(first)

    # Each one's end hands the next to the queue (tasks run in-process here, so all at once).
    assert hook_ids(httpserver) == [older.pk, newer.pk]
    assert set(Delivery.objects.filter(pk__in=[older.pk, newer.pk]).values_list("status", "parked_at")) == {
        ("success", None)
    }


def test_a_healthy_target_takes_deliveries_side_by_side(subscription, httpserver):
    in_flight(subscription)
    isolation.after_attempt(in_flight(subscription), exchange_s=0.01)
    other = pending_delivery(subscription)

    assert tasks.deliver(other.pk) == "success"
    assert hook_ids(httpserver) == [other.pk]


def test_of_deliveries_claimed_together_to_a_slow_target_the_oldest_goes_first_the_next_after_it(
    subscription, httpserver
):
    isolation.mark_slow([subscription.pk])
    older, newer = pending_delivery(subscription), pending_delivery(subscription)
    Delivery.objects.filter(pk=older.pk).update(created_at=newer.created_at - timedelta(seconds=1))

    assert tasks.deliver_batch([newer.pk, older.pk]) == {older.pk: "success", newer.pk: "parked"}
    assert hook_ids(httpserver) == [older.pk, newer.pk]  # its end let the parked one go (in-process)


def test_a_slow_target_is_forgotten_after_a_while(subscription, httpserver):
    Subscription.objects.filter(pk=subscription.pk).update(slow_until=timezone.now() - timedelta(seconds=1))
    in_flight(subscription)
    other = pending_delivery(subscription)

    assert tasks.deliver(other.pk) == "success"


@pytest.mark.django_db(transaction=True)
def test_a_target_still_answering_after_the_slow_threshold_is_known_slow_to_every_worker_at_once(
    project, httpserver, monkeypatch
):
    monkeypatch.setattr(isolation, "SLOW_AFTER_S", 0.3)
    answered = threading.Event()

    def hang(request):
        answered.wait(10)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(hang)
    subscription = Subscription.objects.create(
        project=project, event="request.create", target=httpserver.url_for("/slow"), secret=new_secret()
    )
    first, second = pending_delivery(subscription), pending_delivery(subscription)
    thread, results = deliver_batch_in_another_worker([first.pk])
    try:
        wait_for(lambda: Subscription.objects.get(pk=subscription.pk).slow_until, timeout=5)
        assert tasks.deliver(second.pk) == "parked"  # while the first attempt is still in flight
    finally:
        answered.set()
        thread.join(15)
    assert results == {first.pk: "success"}
    assert hook_ids(httpserver) == [first.pk, second.pk]  # the first one's end let the parked one go


@pytest.mark.django_db(transaction=True)
def test_a_draining_worker_sends_a_slow_targets_delivery_on_the_side_and_goes_on(project, httpserver):
    """The drain loop (deliver_due) hands a known-slow target's delivery to a thread of its own:
    the batch's other deliveries are logged and the worker free for its next claim while the slow
    exchange goes on, and its attempt is logged when it ends."""
    slow_receiver = Receiver(delay_s=1.5).start()  # a threaded server: the slow answer holds one thread
    httpserver.expect_request("/fast").respond_with_data("ok")
    slow, fast = (
        Subscription.objects.create(project=project, event="request.create", target=target, secret=new_secret())
        for target in (slow_receiver.url, httpserver.url_for("/fast"))
    )
    isolation.mark_slow([slow.pk])
    to_slow, to_fast = pending_delivery(slow), pending_delivery(fast)
    try:
        started = time.monotonic()
        outcome = tasks.send_claimed(tasks.claim_many([to_slow.pk, to_fast.pk]), detach_slow=True)
        took_s = time.monotonic() - started

        assert outcome == {to_fast.pk: "success", to_slow.pk: "sending"}
        assert took_s < 1.0 and Delivery.objects.get(pk=to_slow.pk).attempt_count == 0
        assert wait_for(lambda: Delivery.objects.get(pk=to_slow.pk).status == "success", timeout=10)
        assert hook_ids(httpserver) == [to_fast.pk] and slow_receiver.ids_received() == {to_slow.pk}
    finally:
        slow_receiver.down()


@pytest.mark.django_db(transaction=True)
def test_a_slow_targets_delivery_that_outlived_its_lease_before_its_thread_took_it_is_left_to_its_new_owner(
    project,
):
    """A delivery sent on the side may wait for a free thread; if its lease ran out meanwhile and
    another worker claimed it, the first worker's thread sends nothing: one send, by the owner."""
    slow_receiver = Receiver().start()
    slow = Subscription.objects.create(
        project=project, event="request.create", target=slow_receiver.url, secret=new_secret()
    )
    isolation.mark_slow([slow.pk])
    delivery = pending_delivery(slow)
    try:
        [claimed_first] = tasks.claim_many([delivery.pk])
        Delivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
        [claimed_again] = tasks.claim_many([delivery.pk])  # the lease ran out: another worker's now

        outcome = tasks.send_claimed([claimed_first], detach_slow=True)

        assert outcome == {delivery.pk: "sending"}
        time.sleep(1.0)  # the side thread has long decided by now
        assert slow_receiver.ids_received() == set()
        row = Delivery.objects.get(pk=delivery.pk)
        assert (row.status, row.attempt_count, row.locked_until) == ("pending", 0, claimed_again.locked_until)
        assert tasks.send_claimed([claimed_again]) == {delivery.pk: "success"}
        assert slow_receiver.ids_received() == {delivery.pk}
    finally:
        slow_receiver.down()


def parked_delivery(subscription) -> Delivery:
    now = timezone.now()
    return pending_delivery(subscription, parked_at=now, next_attempt_at=now + timedelta(seconds=isolation.PARK_S))


def test_a_slow_target_that_answers_quickly_again_is_forgotten_and_its_parked_deliveries_go_at_once(
    subscription, httpserver
):
    isolation.mark_slow([subscription.pk])
    parked = [parked_delivery(subscription), parked_delivery(subscription)]
    going = pending_delivery(subscription)

    assert tasks.deliver(going.pk) == "success"

    # The quick answer released both parked ones, and the queue (in-process here) sent them.
    assert sorted(hook_ids(httpserver)) == sorted([going.pk, *(d.pk for d in parked)])
    assert set(Delivery.objects.filter(subscription=subscription).values_list("status", "parked_at")) == {
        ("success", None)
    }
    assert Subscription.objects.get(pk=subscription.pk).slow_until is None


def test_an_answer_neither_quick_nor_slow_keeps_the_target_marked(subscription):
    isolation.mark_slow([subscription.pk])
    [claimed] = tasks.claim_many([pending_delivery(subscription).pk])
    marked = Subscription.objects.get(pk=subscription.pk).slow_until

    isolation.after_attempt(claimed, exchange_s=isolation.SLOW_AFTER_S * 0.75)

    assert Subscription.objects.get(pk=subscription.pk).slow_until == marked


def test_a_mark_set_again_by_another_worker_since_the_claim_outlives_a_quick_answer(subscription):
    isolation.mark_slow([subscription.pk])
    [claimed] = tasks.claim_many([pending_delivery(subscription).pk])
    waiting = parked_delivery(subscription)
    marked_again = timezone.now() + timedelta(seconds=isolation.REMEMBER_S + 5)
    Subscription.objects.filter(pk=subscription.pk).update(slow_until=marked_again)

    isolation.after_attempt(claimed, exchange_s=0.01)

    assert Subscription.objects.get(pk=subscription.pk).slow_until == marked_again
    assert Delivery.objects.get(pk=waiting.pk).parked_at is not None


def test_when_a_slow_targets_mark_has_run_out_the_next_claim_lets_its_parked_deliveries_go(subscription, httpserver):
    Subscription.objects.filter(pk=subscription.pk).update(slow_until=timezone.now() - timedelta(seconds=1))
    parked = parked_delivery(subscription)
    going = pending_delivery(subscription)

    assert tasks.deliver(going.pk) == "success"

    assert sorted(hook_ids(httpserver)) == sorted([going.pk, parked.pk])
    assert Delivery.objects.get(pk=parked.pk).status == "success"
    assert Subscription.objects.get(pk=subscription.pk).slow_until is None


def test_a_delivery_parked_just_after_its_target_recovered_goes_at_once(subscription, httpserver):
    """Its claim read the mark; the target's recovery released the parked deliveries before this
    one was parked: parking it finds the target no longer slow and lets it go."""
    isolation.mark_slow([subscription.pk])
    in_flight(subscription)
    waiting = pending_delivery(subscription)
    claimed = tasks.claim_many([waiting.pk])
    Subscription.objects.filter(pk=subscription.pk).update(slow_until=None)  # another worker's recovery

    assert tasks.send_claimed(claimed) == {waiting.pk: "parked"}

    assert hook_ids(httpserver) == [waiting.pk]
    assert Delivery.objects.get(pk=waiting.pk).status == "success"


def test_deliveries_parked_after_the_one_in_flight_ended_do_not_wait_for_the_sweep(subscription, httpserver):
    """The delivery in flight ended between another worker's claim and its parking: its end saw
    the claimed ones in flight and left the next turn to them; parking them finds nothing in
    flight and lets the oldest go."""
    isolation.mark_slow([subscription.pk])
    first = in_flight(subscription)
    waiting = pending_delivery(subscription)
    to_send, to_park = isolation.split_claimed(tasks.claim_many([waiting.pk]))
    assert (to_send, [d.pk for d in to_park]) == ([], [waiting.pk])

    Delivery.objects.filter(pk=first.pk).update(status="success", locked_until=None)
    slow_attempt_ended(first)
    assert hook_ids(httpserver) == []  # it left the turn to the claimed one
    isolation.park(to_park)

    assert hook_ids(httpserver) == [waiting.pk]
    assert Delivery.objects.get(pk=waiting.pk).status == "success"

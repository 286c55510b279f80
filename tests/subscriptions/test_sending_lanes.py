"""How a batch is sent: fast targets one after another on one sender thread, a slow target on a
thread of its own while the others go on, and the fast results logged before the slow one ends."""

import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from subscriptions import sender, tasks
from subscriptions.models import Attempt, Delivery, EventPayload, Subscription
from tests.conftest import deliver_batch_in_another_worker, wait_for
from tests.factories import subscription


def pending_delivery(subscription: Subscription) -> Delivery:
    payload = EventPayload.objects.create(project_id=subscription.project_id, payload={"n": 1})
    return Delivery.objects.create(
        project_id=subscription.project_id, subscription=subscription, event=subscription.event, event_payload=payload
    )


@pytest.fixture
def httpserver():
    """A receiver that answers requests side by side (pytest-httpserver's default answers one at a
    time, which would serialize what these tests look at)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def sending_threads(monkeypatch) -> set[str]:
    """The names of the threads the deliveries were sent from."""
    names: set[str] = set()
    real_send = sender.send

    def send(outgoing):
        names.add(threading.current_thread().name)
        return real_send(outgoing)

    monkeypatch.setattr(sender, "send", send)
    return names


def test_a_batch_whose_targets_answer_within_the_stagger_is_sent_on_one_thread(
    project, httpserver, sending_threads, monkeypatch
):
    monkeypatch.setattr(sender, "LANE_STAGGER_S", 5.0)  # every answer comes sooner than this
    httpserver.expect_request("/fast").respond_with_data("ok")
    deliveries = [pending_delivery(subscription(project, httpserver.url_for("/fast"))) for _ in range(20)]

    outcome = tasks.deliver_batch([d.pk for d in deliveries])

    assert set(outcome.values()) == {"success"}
    assert len(httpserver.log) == 20
    assert all(request.method == "POST" for request, _ in httpserver.log)
    assert len(sending_threads) == 1


def test_deliveries_to_slow_targets_in_one_batch_are_in_flight_side_by_side(project, httpserver, settings):
    settings.HOOKS_TIMEOUT_S = 5

    def slow(request):
        time.sleep(1)
        return Response("ok")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    deliveries = [pending_delivery(subscription(project, httpserver.url_for("/slow"))) for _ in range(4)]

    started = time.monotonic()
    outcome = tasks.deliver_batch([d.pk for d in deliveries])

    assert set(outcome.values()) == {"success"}
    assert time.monotonic() - started < 2.5  # not 4 s one after another


@pytest.mark.django_db(transaction=True)
def test_the_fast_results_of_a_batch_are_logged_while_a_slow_target_is_still_answering(project, httpserver):
    answer = threading.Event()

    def hang(request):
        answer.wait(10)
        return Response("late")

    httpserver.expect_request("/hang").respond_with_handler(hang)
    httpserver.expect_request("/fast").respond_with_data("ok")
    hanging = pending_delivery(subscription(project, httpserver.url_for("/hang")))  # first in the batch
    fast = [pending_delivery(subscription(project, httpserver.url_for("/fast"))) for _ in range(3)]
    thread, outcome = deliver_batch_in_another_worker([hanging.pk, *(d.pk for d in fast)])
    try:
        wait_for(lambda: Attempt.objects.filter(delivery__in=fast).count() == 3, timeout=5)
        logged = set(Attempt.objects.filter(outcome="success").values_list("delivery_id", flat=True))
        assert logged == {d.pk for d in fast}
        assert not Attempt.objects.filter(delivery=hanging).exists()
    finally:
        answer.set()
        thread.join(15)
    assert outcome == {hanging.pk: "success", **{d.pk: "success" for d in fast}}

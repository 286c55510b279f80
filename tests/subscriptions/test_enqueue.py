"""Waking workers after commit: one broker per process, wake-ups coalesced while one is queued or
a worker drains,
retries woken for by one schedule per slot, and no stored django-q result for a successful
delivery run (the attempt row is the log). Against a real Redis (db 5 of 127.0.0.1, a queue of
its own) when one answers."""

import ast
import math
import os
import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from subscriptions import queue as delivery_queue

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


@pytest.fixture
def redis_queue(monkeypatch):
    """The process's queue broker is a real Redis broker on a fresh list; tasks are queued, not run."""
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    broker = RedisBroker(list_key=f"test-enqueue-{uuid.uuid4().hex}")
    monkeypatch.setattr(delivery_queue, "queue_broker", lambda: broker)
    yield broker
    broker.delete_queue()


@pytest.fixture(autouse=True)
def short_linger(monkeypatch):
    """A draining worker whose claim finds nothing waits this long for more (LINGER_S)."""
    from subscriptions import tasks

    monkeypatch.setattr(tasks, "LINGER_S", 0.05)


@pytest.fixture(autouse=True)
def no_recent_nudge(monkeypatch):
    """This process has sent no nudge lately (a nudge covers its process's next commits)."""
    monkeypatch.setattr(delivery_queue, "_nudged_at", -math.inf)


def queued(broker) -> list[dict]:
    return [SignedPackage.loads(pack) for pack in broker.connection.lrange(broker.list_key, 0, -1)]


def test_a_commit_queues_one_wake_up_that_names_no_delivery(redis_queue, settings):
    settings.HOOKS_BATCH_SIZE = 50
    delivery_queue.enqueue_deliveries([f"{i:024x}" for i in range(120)])

    (task,) = queued(redis_queue)
    assert (task["func"], task["args"], task["kwargs"]) == (delivery_queue.DELIVER_DUE, (), {})


def test_a_burst_of_commits_queues_one_wake_up_until_a_worker_lets_go_of_it(redis_queue):
    for i in range(100):
        delivery_queue.enqueue_deliveries([f"{i:024x}"])
    assert len(queued(redis_queue)) == 1

    delivery_queue.hold_wake_ups()  # a worker took it and drains
    delivery_queue.enqueue_deliveries(["e" * 24])
    assert len(queued(redis_queue)) == 1

    assert delivery_queue.wait_for_nudge(1)  # it takes the commits' nudge
    time.sleep(delivery_queue.NUDGE_SPAN_S)  # and lets go no sooner than the nudge's span after
    assert delivery_queue.release_wake_ups()  # its claims found nothing more
    delivery_queue.enqueue_deliveries(["f" * 24])
    assert len(queued(redis_queue)) == 2


def test_commits_within_a_nudges_span_tell_the_broker_nothing(redis_queue):
    nudges = delivery_queue._nudge_key(redis_queue)
    delivery_queue.hold_wake_ups()  # a worker drains
    delivery_queue.enqueue_deliveries(["a" * 24])
    assert redis_queue.connection.llen(nudges) == 1
    assert delivery_queue.wait_for_nudge(1)

    delivery_queue.enqueue_deliveries(["b" * 24])  # within the span: no round trip
    assert redis_queue.connection.llen(nudges) == 0

    time.sleep(delivery_queue.NUDGE_SPAN_S)
    delivery_queue.enqueue_deliveries(["c" * 24])
    assert redis_queue.connection.llen(nudges) == 1
    assert queued(redis_queue) == []


def test_a_worker_does_not_let_go_of_the_flag_while_a_nudge_waits(redis_queue):
    delivery_queue.hold_wake_ups()
    delivery_queue.enqueue_deliveries(["a" * 24])  # nudged after the worker's wait ended

    assert not delivery_queue.release_wake_ups()
    assert redis_queue.connection.exists(delivery_queue._flag_key(redis_queue))
    assert delivery_queue.wait_for_nudge(1)
    assert delivery_queue.release_wake_ups()
    assert not redis_queue.connection.exists(delivery_queue._flag_key(redis_queue))


def test_a_worker_asking_for_help_queues_a_helper_past_the_flag(redis_queue):
    delivery_queue.hold_wake_ups()
    delivery_queue.call_for_help()
    (task,) = queued(redis_queue)
    assert (task["func"], task["args"], task["kwargs"]) == (delivery_queue.DELIVER_DUE, (), {"helping": True})


def test_a_known_backlog_wakes_as_many_workers_as_asked(redis_queue):
    delivery_queue.wake()
    delivery_queue.wake(3)
    assert len(queued(redis_queue)) == 4


def test_a_successful_delivery_run_is_not_stored_as_a_task_result(redis_queue):
    delivery_queue.enqueue_deliveries(["0" * 24])

    (task,) = queued(redis_queue)
    assert task["save"] is False and task["group"] == "deliveries"


def test_one_broker_serves_the_whole_process(monkeypatch, db):
    assert delivery_queue.queue_broker() is delivery_queue.queue_broker()


def test_retries_due_in_one_slot_share_one_scheduled_wake_up(db, settings):
    from django_q.models import Schedule

    settings.HOOKS_RETRY_WAKE_S = 1.0
    moment = timezone.now().replace(microsecond=100_000) + timedelta(minutes=5)
    delivery_queue.wake_at(moment)
    delivery_queue.wake_at(moment + timedelta(milliseconds=500))
    wakes = Schedule.objects.filter(func=delivery_queue.DELIVER_DUE)
    (wake,) = wakes
    assert wake.func == delivery_queue.DELIVER_DUE
    assert wake.next_run == moment.replace(microsecond=0) + timedelta(seconds=1)  # the slot's end
    # The scheduler reads the stored kwargs back with ast.literal_eval.
    assert ast.literal_eval(wake.kwargs) == {"q_options": {"save": False}}

    delivery_queue.wake_at(moment + timedelta(seconds=2))
    assert Schedule.objects.filter(func=delivery_queue.DELIVER_DUE).count() == 2


@pytest.fixture
def subscribed(transactional_db, project):
    from subscriptions.models import Subscription
    from subscriptions.signing import new_secret

    return Subscription.objects.create(
        project=project, event="request.create", target="https://example.com/hook", secret=new_secret()
    )


def publish(subscription) -> str:
    """One event to the subscription; returns the id of the delivery routing makes of it."""
    from subscriptions.publishing import publish_event
    from subscriptions.routing import delivery_id

    return delivery_id(publish_event(subscription.project_id, ["request.create"], {"id": "r1"}), subscription.pk)


class Rollback(Exception):
    pass


def test_a_transaction_publishing_many_events_wakes_a_worker_once_when_it_commits(redis_queue, subscribed):
    from django.db import transaction

    with transaction.atomic():
        for _ in range(120):
            publish(subscribed)
        assert queued(redis_queue) == []

    assert [task["func"] for task in queued(redis_queue)] == [delivery_queue.DELIVER_DUE]


def test_events_published_after_a_rolled_back_savepoint_still_wake_a_worker(redis_queue, subscribed):
    from django.db import transaction

    with transaction.atomic():
        with pytest.raises(Rollback), transaction.atomic():  # a savepoint
            publish(subscribed)
            raise Rollback
        publish(subscribed)

    assert len(queued(redis_queue)) == 1


def test_a_rolled_back_transaction_queues_nothing_and_the_next_one_queues_its_own(redis_queue, subscribed):
    from django.db import transaction

    with pytest.raises(Rollback), transaction.atomic():
        publish(subscribed)
        raise Rollback
    assert queued(redis_queue) == []
    with transaction.atomic():
        publish(subscribed)

    assert len(queued(redis_queue)) == 1


@pytest.fixture
def received(subscribed, httpserver):
    """The subscription's target is a real receiver; returns the delivery ids it got, in order."""
    httpserver.expect_request("/hook").respond_with_json({})
    subscribed.target = httpserver.url_for("/hook")
    subscribed.save()
    return lambda: [request.headers["x-hook-id"] for request, _ in httpserver.log]


def test_a_draining_worker_sends_what_is_committed_meanwhile_without_a_wake_up(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks

    first = publish(subscribed)
    redis_queue.connection.delete(redis_queue.list_key)  # a worker took the wake-up
    take_batch, later = tasks.take_batch, []

    def claim_while_commits_go_on(limit):
        batch = take_batch(limit)
        if len(later) < 2:  # a commit after each of the first two claims
            later.append(publish(subscribed))
        return batch

    monkeypatch.setattr(tasks, "take_batch", claim_while_commits_go_on)

    assert tasks.deliver_due() == 3
    assert received() == [first, *later]
    assert queued(redis_queue) == []  # the commits queued no task: the worker held the flag
    delivery_queue.enqueue_deliveries(["f" * 24])  # and let go of it at the end
    assert len(queued(redis_queue)) == 1


def test_a_commit_between_a_workers_empty_claim_and_its_letting_go_is_sent_by_its_last_claim(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks

    release, committed = delivery_queue.release_wake_ups, []

    def commit_then_release():
        if not committed:
            committed.append(publish(subscribed))  # the flag is still held: no task
        return release()

    monkeypatch.setattr(delivery_queue, "release_wake_ups", commit_then_release)

    assert tasks.deliver_due() == 1
    assert received() == committed
    assert queued(redis_queue) == []


def test_a_draining_worker_that_claims_a_full_batch_calls_one_helper(
    redis_queue, subscribed, received, settings, monkeypatch
):
    from subscriptions import tasks

    settings.HOOKS_BATCH_SIZE = 2
    monkeypatch.setattr(tasks, "_helped_at", float("-inf"))
    monkeypatch.setattr(tasks, "HELP_EVERY_S", 60.0)  # however slow the sends between the claims
    published = [publish(subscribed) for _ in range(5)]
    redis_queue.connection.delete(redis_queue.list_key)  # a worker took the wake-up

    assert tasks.deliver_due() == 5
    assert received() == published
    # Two full claims in a row, within HELP_EVERY_S: one helper.
    assert [task["kwargs"] for task in queued(redis_queue)] == [{"helping": True}]


def test_a_helper_stops_at_its_first_claim_of_less_than_half_a_batch_and_leaves_the_flag_to_the_draining_worker(
    redis_queue, subscribed, received, settings, monkeypatch
):
    from subscriptions import tasks

    settings.HOOKS_BATCH_SIZE = 4
    monkeypatch.setattr(tasks, "_helped_at", float("-inf"))
    published = [publish(subscribed) for _ in range(5)]
    redis_queue.connection.delete(redis_queue.list_key)
    delivery_queue.hold_wake_ups()  # the worker that took the wake-up drains
    claims = []
    take_batch = tasks.take_batch
    monkeypatch.setattr(tasks, "take_batch", lambda limit: claims.append(take_batch(limit)) or claims[-1])

    assert tasks.deliver_due(helping=True) == 5
    assert [len(batch) for batch in claims] == [4, 1]  # no claim after the one of less than half
    assert received() == published
    assert redis_queue.connection.exists(delivery_queue._flag_key(redis_queue))  # still the worker's


def test_a_draining_worker_whose_claim_finds_nothing_sends_a_commit_made_while_it_waits_without_a_task(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks
    from tests.conftest import in_another_connection

    monkeypatch.setattr(tasks, "LINGER_S", 1.0)
    made: list[str] = []

    def commit_later() -> None:
        time.sleep(0.3)
        made.append(publish(subscribed))  # autocommit: committed, and its wake-up sent

    publisher, _ = in_another_connection(commit_later)
    assert tasks.deliver_due() == 1
    publisher.join(5)

    assert received() == made
    assert queued(redis_queue) == []  # the commit nudged the waiting worker: no task


def test_a_draining_worker_lets_go_of_the_flag_after_waiting_linger_s_for_nothing(redis_queue, db, monkeypatch):
    from subscriptions import tasks

    monkeypatch.setattr(tasks, "LINGER_S", 0.3)
    started = time.monotonic()

    assert tasks.deliver_due() == 0
    assert 0.3 <= time.monotonic() - started < 2
    delivery_queue.enqueue_deliveries(["f" * 24])  # the next commit queues a wake-up
    assert len(queued(redis_queue)) == 1


def test_a_commit_within_a_nudges_span_is_sent_by_the_worker_that_took_the_nudge(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks
    from tests.conftest import in_another_connection

    monkeypatch.setattr(tasks, "LINGER_S", 0.0)  # the worker would let go as soon as it is idle
    monkeypatch.setattr(delivery_queue, "NUDGE_SPAN_S", 0.5)
    asked, register = [], redis_queue.connection.register_script
    monkeypatch.setattr(redis_queue.connection, "register_script", lambda text: asked.append(text) or register(text))
    made: list[str] = []

    def commit_twice() -> None:
        time.sleep(0.1)
        made.append(publish(subscribed))  # nudges the waiting worker
        time.sleep(0.2)
        made.append(publish(subscribed))  # within the nudge's span: tells the broker nothing

    publisher, _ = in_another_connection(commit_twice)
    assert tasks.deliver_due() == 2
    publisher.join(5)

    assert asked.count(delivery_queue._FLAG_OR_NUDGE) == 1
    assert received() == made
    assert queued(redis_queue) == []


def test_a_worker_that_has_drained_for_drain_s_passes_the_flag_to_a_queued_successor(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks

    monkeypatch.setattr(tasks, "DRAIN_S", 0.0)
    published = publish(subscribed)
    redis_queue.connection.delete(redis_queue.list_key)  # a worker took the wake-up

    assert tasks.deliver_due() == 1
    assert received() == [published]
    assert [task["kwargs"] for task in queued(redis_queue)] == [{}]
    assert redis_queue.connection.exists(delivery_queue._flag_key(redis_queue))  # kept for the successor


def test_a_drain_claiming_a_few_deliveries_at_a_time_pauses_before_its_next_claim(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks

    monkeypatch.setattr(tasks, "GATHER_S", 0.3)
    publish(subscribed)
    redis_queue.connection.delete(redis_queue.list_key)
    claims, take_batch = [], tasks.take_batch

    def timed_claim(limit):
        batch = take_batch(limit)
        claims.append((time.monotonic(), len(batch)))
        return batch

    monkeypatch.setattr(tasks, "take_batch", timed_claim)

    assert tasks.deliver_due() == 1
    (first, one), (second, _) = claims[:2]
    assert one == 1
    assert second - first >= 0.3


def test_a_commit_in_a_nudges_span_after_the_workers_empty_claim_is_sent_when_the_span_ends(
    redis_queue, subscribed, received, monkeypatch
):
    from subscriptions import tasks
    from tests.conftest import in_another_connection

    monkeypatch.setattr(tasks, "LINGER_S", 2.0)
    monkeypatch.setattr(delivery_queue, "NUDGE_SPAN_S", 0.3)
    made: list[str] = []
    waited: list[float] = []

    def commit_twice() -> None:
        time.sleep(0.1)
        made.append(publish(subscribed))  # nudges the waiting worker, which sends it
        time.sleep(0.15)
        made.append(publish(subscribed))  # no nudge: the worker is waiting for one
        committed = time.monotonic()
        while made[-1] not in received() and time.monotonic() - committed < 1.5:
            time.sleep(0.01)
        waited.append(time.monotonic() - committed)

    publisher, _ = in_another_connection(commit_twice)
    assert tasks.deliver_due() == 2
    publisher.join(5)

    assert received() == made
    assert waited[0] < 0.5  # at the span's end, not at the end of LINGER_S

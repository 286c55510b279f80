"""Handing deliveries to the queue after commit: one broker per process, the tasks of one commit
pushed together, and no stored django-q result for a successful delivery run (the attempt row is
the log). Against a real Redis (db 5 of 127.0.0.1, a queue of its own) when one answers."""

import ast
import os
import uuid

import pytest
import redis
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from subscriptions import queue as delivery_queue
from subscriptions import tasks

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


def queued(broker) -> list[dict]:
    return [SignedPackage.loads(pack) for pack in broker.connection.lrange(broker.list_key, 0, -1)]


def test_the_deliveries_of_a_commit_are_queued_in_order_in_tasks_of_the_batch_size(redis_queue, settings):
    settings.HOOKS_BATCH_SIZE = 50
    ids = [f"{i:024x}" for i in range(120)]

    delivery_queue.enqueue_deliveries(ids)

    queue = queued(redis_queue)
    assert [task["args"] for task in queue] == [(ids[:50],), (ids[50:100],), (ids[100:],)]
    assert {task["func"] for task in queue} == {delivery_queue.DELIVER_BATCH}
    assert [task["name"] for task in queue] == [
        f"deliver-{ids[0]}+49",
        f"deliver-{ids[50]}+49",
        f"deliver-{ids[100]}+19",
    ]


def test_more_tasks_than_one_push_takes_are_all_queued_once(redis_queue, settings):
    settings.HOOKS_BATCH_SIZE = 1
    ids = [f"{i:024x}" for i in range(750)]  # more than one push of 500

    delivery_queue.enqueue_deliveries(ids)

    queue = queued(redis_queue)
    assert [task["args"] for task in queue] == [([i],) for i in ids]
    assert queue[0]["name"] == f"deliver-{ids[0]}"


def test_a_successful_delivery_run_is_not_stored_as_a_task_result(redis_queue):
    delivery_queue.enqueue_deliveries(["0" * 24])

    (task,) = queued(redis_queue)
    assert task["save"] is False and task["group"] == "deliveries"


def test_one_broker_serves_the_whole_process(monkeypatch, db):
    assert delivery_queue.queue_broker() is delivery_queue.queue_broker()


def test_a_scheduled_retry_run_is_not_stored_as_a_task_result_either(project):
    from django_q.models import Schedule

    from subscriptions.models import Delivery, EventPayload, Subscription
    from subscriptions.signing import new_secret

    subscription = Subscription.objects.create(
        project=project, event="request.create", target="https://example.com/hook", secret=new_secret()
    )
    payload = EventPayload.objects.create(project=project, payload={})
    delivery = Delivery.objects.create(project=project, subscription=subscription, event=subscription.event,
                                       event_payload=payload, attempt_count=1)  # fmt: skip

    tasks.schedule_retry(delivery)

    retry = Schedule.objects.get(name=f"retry-{delivery.pk}-2")
    # The scheduler reads the stored kwargs back with ast.literal_eval.
    assert retry.func == delivery_queue.DELIVER and ast.literal_eval(retry.kwargs) == {"q_options": {"save": False}}


@pytest.fixture
def subscribed(transactional_db, project):
    from subscriptions.models import Subscription
    from subscriptions.signing import new_secret

    return Subscription.objects.create(
        project=project, event="request.create", target="https://example.com/hook", secret=new_secret()
    )


def publish(project) -> str:
    from subscriptions.publishing import publish_event

    (delivery_id,) = publish_event(project.pk, ["request.create"], {"id": "r1"})
    return delivery_id


def queued_ids(broker) -> list[str]:
    return [i for task in queued(broker) for i in task["args"][0]]


class Rollback(Exception):
    pass


def test_a_transaction_publishing_many_events_queues_them_together_when_it_commits(redis_queue, subscribed, settings):
    from django.db import transaction

    settings.HOOKS_BATCH_SIZE = 50
    with transaction.atomic():
        ids = [publish(subscribed.project) for _ in range(120)]
        assert queued(redis_queue) == []

    assert [len(task["args"][0]) for task in queued(redis_queue)] == [50, 50, 20]
    assert queued_ids(redis_queue) == ids


def test_events_published_after_a_rolled_back_savepoint_are_still_queued(redis_queue, subscribed):
    from django.db import transaction

    with transaction.atomic():
        with pytest.raises(Rollback), transaction.atomic():  # a savepoint
            publish(subscribed.project)
            raise Rollback
        kept = publish(subscribed.project)

    assert queued_ids(redis_queue) == [kept]


def test_a_rolled_back_transaction_queues_nothing_and_the_next_one_queues_its_own(redis_queue, subscribed):
    from django.db import transaction

    with pytest.raises(Rollback), transaction.atomic():
        publish(subscribed.project)
        raise Rollback
    assert queued(redis_queue) == []
    with transaction.atomic():
        kept = publish(subscribed.project)

    assert queued_ids(redis_queue) == [kept]

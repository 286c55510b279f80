"""What numbering deliveries locks, on PostgreSQL: a publish takes no number and no lock (routing
numbers its deliveries, subscriptions/routing.py), so an open publishing transaction holds up no
other publisher, and a rolled-back publish leaves no gap; routings of the same subscriptions, and
transactions taking numbers of their own (`sequences.take`, operator.select's), wait for each other
only while one commits, never deadlock and leave no gap; and nothing else waits: a worker
committing attempt rows of those subscriptions (whose foreign keys take key-share locks on them at
commit) is not held up by a transaction holding their numbers, so the two can never deadlock."""

import threading

import pytest
from django.db import connection, transaction

from subscriptions import routing, sequences
from subscriptions.models import Attempt, SequenceCounter
from tests.conftest import in_another_connection
from tests.factories import logged_attempt, pending_delivery, subscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite runs one writing transaction at a time)")


def test_a_publishing_transaction_does_not_hold_up_a_worker_logging_attempts_of_its_subscriptions(project):
    hooks = [subscription(project, f"https://hooks.example.com/{n}") for n in range(3)]
    deliveries = [pending_delivery(hook) for hook in reversed(hooks)]
    publishing_holds = threading.Event()
    release = threading.Event()

    def publisher() -> None:
        with transaction.atomic():
            sequences.take([hook.pk for hook in hooks])
            publishing_holds.set()
            release.wait(10)

    def worker() -> None:
        with transaction.atomic():  # the attempts' foreign keys are checked at this commit
            for delivery in deliveries:
                logged_attempt(delivery)

    publishing, _ = in_another_connection(publisher)
    assert publishing_holds.wait(10)
    logging, logged = in_another_connection(worker)
    logging.join(5)
    release.set()
    publishing.join(10)

    assert "ended_at" in logged, "the worker's commit waited for the publishing transaction"
    assert Attempt.objects.count() == 3


def test_two_publishers_to_the_same_subscriptions_take_their_numbers_one_after_the_other(project):
    hooks = [subscription(project, f"https://hooks.example.com/{n}") for n in range(3)]
    first_holds = threading.Event()
    release = threading.Event()
    taken: dict[str, dict[str, int]] = {}

    def first() -> None:
        with transaction.atomic():
            taken["first"] = sequences.take([hook.pk for hook in hooks])
            first_holds.set()
            release.wait(10)

    def second() -> None:
        with transaction.atomic():
            taken["second"] = sequences.take([hook.pk for hook in reversed(hooks)])

    one, _ = in_another_connection(first)
    assert first_holds.wait(10)
    two, second_ended = in_another_connection(second)
    two.join(0.5)
    waited = "ended_at" not in second_ended
    release.set()
    one.join(10)
    two.join(10)

    assert waited
    assert set(taken["first"].values()) == {0} and set(taken["second"].values()) == {1}


@pytest.mark.parametrize("subscriptions", [1, 3])
def test_publishers_racing_on_the_same_subscriptions_never_deadlock_and_leave_no_gap(project, subscriptions):
    hooks = [subscription(project, f"https://hooks.example.com/{n}") for n in range(subscriptions)]
    failures: list[Exception] = []

    def publisher(order: list) -> None:
        for _ in range(PUBLISHES):
            try:
                with transaction.atomic():
                    sequences.take([hook.pk for hook in order])
            except Exception as exc:  # a deadlock is rolled back and reported here
                failures.append(exc)

    orders = [hooks[n % 2 :] + hooks[: n % 2] for n in range(PUBLISHERS)]
    threads = [in_another_connection(lambda order=order: publisher(order))[0] for order in orders]
    for thread in threads:
        thread.join(60)

    assert failures == []
    for hook in hooks:
        assert SequenceCounter.objects.get(subscription=hook).last_sequence == PUBLISHERS * PUBLISHES


PUBLISHERS, PUBLISHES = 6, 100


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """Events are only published and routed here: no worker is woken to send them (after each
    commit, with tasks run in-process, it would try to reach the example targets)."""
    from subscriptions import queue

    monkeypatch.setattr(queue, "wake", lambda *args, **kwargs: None)


def publish(project, names: list[str] | None = None) -> str:
    from subscriptions.publishing import publish_event

    return publish_event(project.pk, names or ["request.create"], {"id": "r1"})


def numbers(hook, events: list[str]) -> list[int]:
    """The numbers of the subscription's deliveries of these events, in the events' order."""
    from subscriptions.models import Delivery

    by_event = dict(Delivery.objects.filter(subscription=hook).values_list("event_payload_id", "sequence"))
    return [by_event[event] for event in events if event in by_event]


def test_an_open_publishing_transaction_holds_up_no_other_publisher_and_routing_numbers_in_publish_order(project):
    hook = subscription(project, "https://hooks.example.com/one")
    first_published, release = threading.Event(), threading.Event()
    made: dict[str, str] = {}

    def first() -> None:
        with transaction.atomic():
            made["first"] = publish(project)
            first_published.set()
            release.wait(10)

    def second() -> None:
        with transaction.atomic():
            made["second"] = publish(project)

    one, _ = in_another_connection(first)
    assert first_published.wait(10)
    two, second_ended = in_another_connection(second)
    two.join(5)
    assert "ended_at" in second_ended, "the second publisher waited for a transaction still open"
    release.set()
    one.join(10)
    routing.route(10)

    assert numbers(hook, [made["first"], made["second"]]) == [1, 2]


def test_a_rolled_back_publish_leaves_no_gap(project):
    hook = subscription(project, "https://hooks.example.com/one")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        publish(project)
        raise Rollback
    kept = publish(project)
    routing.route(10)

    assert numbers(hook, [kept]) == [1]


@pytest.mark.parametrize("wildcard", [False, True], ids=["one-statement routing", "routing matched in Python"])
def test_workers_routing_the_same_subscriptions_at_once_never_deadlock_and_leave_no_gap(project, wildcard):
    hooks = [
        subscription(project, "https://hooks.example.com/a", event="request.create"),
        subscription(project, "https://hooks.example.com/b", event="*" if wildcard else "message.create"),
        subscription(project, "https://hooks.example.com/c", event="request.create"),
    ]
    for n in range(PUBLISHES):
        publish(project, [["request.create"], ["message.create"], ["request.create", "message.create"]][n % 3])
    failures: list[Exception] = []

    def router() -> None:
        try:
            while routing.route(3):  # small batches: the routers take turns on the counters
                pass
        except Exception as exc:  # a deadlock is rolled back and reported here
            failures.append(exc)

    threads = [in_another_connection(router)[0] for _ in range(PUBLISHERS)]
    for thread in threads:
        thread.join(60)
    routing.route(PUBLISHES)  # what a router took after the others had stopped

    from subscriptions.models import Delivery, EventPayload

    assert failures == []
    assert not EventPayload.objects.filter(names__isnull=False).exists()
    for hook in hooks:
        made = sorted(Delivery.objects.filter(subscription=hook).values_list("sequence", flat=True))
        assert made == list(range(1, len(made) + 1))  # gapless, none left unnumbered
    taking_request = sum(1 for n in range(PUBLISHES) if n % 3 != 1)
    taking_message = PUBLISHES if wildcard else sum(1 for n in range(PUBLISHES) if n % 3 != 0)
    expected = [taking_request, taking_message, taking_request]
    assert [Delivery.objects.filter(subscription=hook).count() for hook in hooks] == expected


def test_a_delivery_made_in_a_transaction_is_numbered_at_its_commit_and_routed_events_after_it(project):
    """A delivery inserted without a number (the ORM, a test event) takes one when its transaction
    commits; events published in the same transaction are numbered when they are routed, in the
    order they were published, and an event of a rolled-back savepoint is never routed."""
    first = subscription(project, "https://hooks.example.com/a", event="request.create")
    second = subscription(project, "https://hooks.example.com/b", event="*")

    class Rollback(Exception):
        pass

    with transaction.atomic():
        only_second = publish(project, ["message.create"])
        both_early = publish(project, ["request.create"])
        with pytest.raises(Rollback), transaction.atomic():
            publish(project, ["request.create"])
            raise Rollback
        made = pending_delivery(first)
        both_late = publish(project, ["request.create"])
    routing.route(10)

    made.refresh_from_db()
    assert (made.sequence, numbers(first, [both_early, both_late])) == (1, [2, 3])
    assert numbers(second, [only_second, both_early, both_late]) == [1, 2, 3]

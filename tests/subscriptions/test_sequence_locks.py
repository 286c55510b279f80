"""What numbering deliveries locks, on PostgreSQL: publishers to the same subscriptions wait for
each other (numbers follow commits), and nothing else does: a worker committing attempt rows of
those subscriptions (whose foreign keys take key-share locks on them at commit) is not held up by a
publishing transaction, so the two can never deadlock."""

import threading

import pytest
from django.db import connection, transaction

from subscriptions import sequences
from subscriptions.models import Attempt
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
        hook.refresh_from_db()
        assert hook.last_sequence == PUBLISHERS * PUBLISHES


PUBLISHERS, PUBLISHES = 6, 100

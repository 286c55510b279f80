"""What numbering deliveries locks, on PostgreSQL: a publish takes its numbers when its transaction
commits, so publishers to the same subscription wait for each other only for a commit, numbers
follow commits, and a rolled-back publish leaves no gap; taking numbers in a transaction of its own
(`sequences.take`, operator.select's) orders publishers the same way; and nothing else waits: a
worker committing attempt rows of those subscriptions (whose foreign keys take key-share locks on
them at commit) is not held up by a publishing transaction, so the two can never deadlock."""

import threading

import pytest
from django.db import connection, transaction

from subscriptions import sequences
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
    """Deliveries are only written here: no worker is woken to send them (after each commit, with
    tasks run in-process, it would try to reach the example targets)."""
    from subscriptions import queue

    monkeypatch.setattr(queue, "wake", lambda *args, **kwargs: None)


def publish(project, event: str = "request.create") -> str:
    from subscriptions.publishing import publish_event

    (delivery_id,) = publish_event(project.pk, [event], {"id": "r1"})
    return delivery_id


def sequence_of(delivery_id: str) -> int | None:
    from subscriptions.models import Delivery

    return Delivery.objects.get(pk=delivery_id).sequence


def test_a_publish_takes_its_number_at_commit_so_an_open_transaction_holds_up_no_other_publisher(project):
    subscription(project, "https://hooks.example.com/one")
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

    assert (sequence_of(made["second"]), sequence_of(made["first"])) == (1, 2)  # in commit order


def test_a_rolled_back_publish_takes_no_number(project):
    subscription(project, "https://hooks.example.com/one")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        publish(project)
        raise Rollback
    with transaction.atomic():
        kept = publish(project)

    assert sequence_of(kept) == 1


def test_transactions_publishing_to_the_same_subscriptions_in_crossed_orders_commit_without_deadlock(project):
    """One transaction publishes to B and then to A and B; the others to A and B at once: the
    counters are locked at commit in one order, whatever the order of the publishes."""
    first = subscription(project, "https://hooks.example.com/a", event="request.create")
    second = subscription(project, "https://hooks.example.com/b", event="*")
    failures: list[Exception] = []

    def publisher(crossed: bool) -> None:
        for _ in range(PUBLISHES // 4):
            try:
                with transaction.atomic():
                    if crossed:
                        publish_event_names(project, ["message.create"])  # B only
                    publish_event_names(project, ["request.create"])  # A and B
            except Exception as exc:  # a deadlock is rolled back and reported here
                failures.append(exc)

    threads = [in_another_connection(lambda n=n: publisher(n % 2 == 0))[0] for n in range(PUBLISHERS)]
    for thread in threads:
        thread.join(60)

    assert failures == []
    from subscriptions.models import Delivery

    for hook in (first, second):
        numbers = sorted(Delivery.objects.filter(subscription=hook).values_list("sequence", flat=True))
        assert numbers == list(range(1, len(numbers) + 1))  # gapless, none left unnumbered


def publish_event_names(project, names: list[str]) -> list[str]:
    from subscriptions.publishing import publish_event

    return publish_event(project.pk, names, {"id": "r1"})


def test_a_transaction_numbers_its_deliveries_at_commit_in_the_order_it_made_them(project):
    """Per subscription, when the transaction commits: those of a rolled-back savepoint take no
    number, and a delivery made without publishing (the ORM) takes one too."""
    from subscriptions.models import Delivery

    first = subscription(project, "https://hooks.example.com/a", event="request.create")
    second = subscription(project, "https://hooks.example.com/b", event="*")

    class Rollback(Exception):
        pass

    with transaction.atomic():
        only_second = publish_event_names(project, ["message.create"])
        both_early = publish_event_names(project, ["request.create"])
        with pytest.raises(Rollback), transaction.atomic():
            publish_event_names(project, ["request.create"])
            raise Rollback
        made = pending_delivery(first).pk
        both_late = publish_event_names(project, ["request.create"])
        assert Delivery.objects.filter(sequence__isnull=False).count() == 0  # not before the commit

    def numbered(hook, published: list[str]) -> list[int]:
        """The numbers of the subscription's deliveries among these, in publish order."""
        sequence_by_id = dict(Delivery.objects.filter(subscription=hook).values_list("id", "sequence"))
        return [sequence_by_id[d] for d in published if d in sequence_by_id]

    assert numbered(first, [*both_early, made, *both_late]) == [1, 2, 3]
    assert numbered(second, [*only_second, *both_early, *both_late]) == [1, 2, 3]
    assert Delivery.objects.count() == 6

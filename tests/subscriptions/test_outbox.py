"""What publishing writes: one event row (its payload, stored exactly as the ORM would store it, and
the names it was published under) when a subscription of the project may take the event, and
nothing otherwise; a worker is woken once its transaction commits. Routing makes the deliveries
(tests/subscriptions/test_routing.py)."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from subscriptions.models import Delivery, EventPayload
from subscriptions.publishing import publish_event
from support.models import Project
from tests.factories import subscription

PAYLOAD = {
    "text": "Grüße, 你好 — \"quoted\" and 'single' \\ backslash",
    "nested": {"list": [1, 2.5, None, True, {"deep": []}], "empty": {}},
    "big": 2**53,
}


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[str]:
    """The ids handed to the queue after commit (nothing is routed or sent here)."""
    handed: list[str] = []
    monkeypatch.setattr("subscriptions.publishing.enqueue_deliveries", handed.extend)
    return handed


def test_an_event_a_subscription_takes_is_written_once_with_its_names_and_wakes_a_worker_after_commit(
    project, queued, on_commit
):
    subscription(project, target="https://hooks.example.com/1")
    subscription(project, target="https://hooks.example.com/2")
    occurred_at = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)

    with on_commit(), transaction.atomic():
        event_id = publish_event(project.pk, ["request.create", "message.create"], PAYLOAD, occurred_at)
        assert queued == []

    stored = EventPayload.objects.get()
    assert (stored.pk, stored.project_id, stored.payload, stored.occurred_at) == (
        event_id, project.pk, PAYLOAD, occurred_at,
    )  # fmt: skip
    assert stored.names == ["request.create", "message.create"]
    assert stored.published_at is not None
    assert not Delivery.objects.exists()  # routing makes them
    assert queued == [event_id]


def test_a_transaction_publishing_many_events_hands_them_to_the_queue_together(project, queued, on_commit):
    subscription(project)

    with on_commit(), transaction.atomic():
        published = [publish_event(project.pk, ["request.create"], PAYLOAD) for _ in range(3)]

    assert queued == published


def test_an_event_nobody_subscribes_to_writes_nothing(project, make_user, queued, on_commit):
    subscription(project, event="lead.create")
    other_project = Project.objects.create(name="Other", created_by=make_user("other"))
    subscription(other_project)

    with on_commit(), transaction.atomic():
        assert publish_event(project.pk, ["request.create"], PAYLOAD) is None

    assert not EventPayload.objects.exists()
    assert queued == []


@pytest.mark.parametrize(
    "fields",
    [{"enabled": False}, {"filter": {"big": {"$lt": 1}}}, {"events": ["message.*", "lead.create"]}],
    ids=["disabled", "filtered", "several events"],
)
def test_an_event_a_subscription_may_take_is_written_and_routing_decides(project, queued, on_commit, fields):
    """A disabled subscription takes it as `skipped` (for replay_missing); a filter and a list of
    events are matched when the event is routed."""
    subscription(project, **fields)

    with on_commit(), transaction.atomic():
        event_id = publish_event(project.pk, ["request.create"], PAYLOAD)

    assert EventPayload.objects.filter(pk=event_id).exists()
    assert queued == [event_id]


def test_operator_select_subscriptions_are_never_published_to(project):
    subscription(project, event="operator.select")

    with transaction.atomic():
        assert publish_event(project.pk, ["operator.select"], PAYLOAD) is None

    assert not EventPayload.objects.exists()


def test_on_postgresql_a_publish_is_one_statement(project):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite asks for a subscription, then writes")
    subscription(project, target="https://hooks.example.com/1")

    with CaptureQueriesContext(connection) as statements, transaction.atomic():
        publish_event(project.pk, ["request.create"], PAYLOAD)

    sent = [q["sql"] for q in statements.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(sent) == 1
    assert EventPayload.objects.count() == 1


def test_event_ids_are_time_ordered_object_ids(project):
    subscription(project)

    with transaction.atomic():
        event_id = publish_event(project.pk, ["request.create"], PAYLOAD)

    assert len(event_id) == 24 and set(event_id) <= set("0123456789abcdef")
    assert abs(int(event_id[:8], 16) - datetime.now(UTC).timestamp()) < 60


def test_django_keeps_pending_commit_callbacks_where_the_commit_batch_looks_for_them(db):
    """publishing.enqueue_after_commit joins the batch whose callback is still registered with the
    transaction, read from `connection.run_on_commit` as (savepoint ids, callback, robust): a
    Django that stores them otherwise fails here rather than enqueueing each event alone."""
    from django.db import connection, transaction

    def callback() -> None:
        pass

    with transaction.atomic():
        transaction.on_commit(callback, robust=True)
        assert any(entry[1] is callback for entry in connection.run_on_commit)
        with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back
            transaction.on_commit(callback)
            raise RuntimeError
        assert sum(entry[1] is callback for entry in connection.run_on_commit) == 1

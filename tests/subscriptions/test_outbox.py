"""What publishing writes: one payload row per event and one pending delivery per matching enabled
subscription of the project, stored exactly as the ORM would store them (publishing writes them in
plain SQL, subscriptions/publishing.py)."""

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
    """The delivery ids handed to the queue after commit (nothing is sent here)."""
    handed: list[str] = []
    monkeypatch.setattr("subscriptions.publishing.enqueue_deliveries", handed.extend)
    return handed


def test_an_event_writes_one_pending_delivery_per_matching_enabled_subscription(project, make_user, queued, on_commit):
    matching = [
        subscription(project, target="https://hooks.example.com/1"),
        subscription(project, target="https://hooks.example.com/2"),
    ]
    subscription(project, enabled=False)
    subscription(project, event="lead.create")
    other_project = Project.objects.create(name="Other", created_by=make_user("other"))
    subscription(other_project)
    occurred_at = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)

    with on_commit(), transaction.atomic():
        ids = publish_event(project.pk, ["request.create"], PAYLOAD, occurred_at)

    deliveries = Delivery.objects.filter(pk__in=ids)
    assert sorted(d.subscription_id for d in deliveries) == sorted(s.pk for s in matching)
    assert queued == ids
    for delivery in deliveries:
        assert (delivery.project_id, delivery.event, delivery.status) == (project.pk, "request.create", "pending")
        assert (delivery.attempt_count, delivery.round_started_after, delivery.locked_until) == (0, 0, None)
        assert delivery.next_attempt_at == delivery.created_at == occurred_at
        assert delivery.updated_at is not None
        assert (delivery.last_error, delivery.decision) == ("", "")
    assert Delivery.objects.filter(status="pending").count() == 2


def test_the_deliveries_of_one_event_share_one_payload_row_that_reads_back_as_published(project):
    subscription(project, target="https://hooks.example.com/1")
    subscription(project, event="message.create", target="https://hooks.example.com/2")
    occurred_at = datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC)

    with transaction.atomic():
        ids = publish_event(project.pk, ["request.create", "message.create"], PAYLOAD, occurred_at)

    assert len(ids) == 2
    stored = EventPayload.objects.get()
    assert stored.payload == PAYLOAD
    assert stored.occurred_at == occurred_at
    assert stored.project_id == project.pk
    assert set(Delivery.objects.values_list("event_payload_id", flat=True)) == {stored.pk}


def test_an_event_nobody_subscribes_to_writes_nothing(project, queued, on_commit):
    subscription(project, event="lead.create")

    with on_commit(), transaction.atomic():
        assert publish_event(project.pk, ["request.create"], PAYLOAD) == []

    assert not EventPayload.objects.exists()
    assert not Delivery.objects.exists()
    assert queued == []


def test_plain_filtered_and_many_event_subscriptions_of_one_event_share_one_payload_row(project, queued, on_commit):
    taking = [
        subscription(project, target="https://hooks.example.com/plain"),
        subscription(project, target="https://hooks.example.com/filtered", filter={"big": {"$gt": 1}}),
        subscription(project, target="https://hooks.example.com/many", events=["message.*", "request.create"]),
        subscription(project, target="https://hooks.example.com/paused", enabled=False),
    ]
    subscription(project, target="https://hooks.example.com/not-met", filter={"big": {"$lt": 1}})

    with on_commit(), transaction.atomic():
        ids = publish_event(project.pk, ["request.create"], PAYLOAD)

    stored = EventPayload.objects.get()
    made = {d.subscription_id: d for d in Delivery.objects.all()}
    assert sorted(made) == sorted(s.pk for s in taking)
    assert {d.event_payload_id for d in made.values()} == {stored.pk}
    assert {d.event for d in made.values()} == {"request.create"}
    assert made.pop(taking[3].pk).status == "skipped"
    assert sorted(ids) == sorted(queued) == sorted(d.pk for d in made.values())
    assert {d.status for d in made.values()} == {"pending"}


def test_on_postgresql_matching_and_writing_a_publish_to_plain_subscriptions_is_one_statement(project):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite reads the subscriptions, then writes")
    subscription(project, target="https://hooks.example.com/1")
    subscription(project, target="https://hooks.example.com/2", enabled=False)

    with CaptureQueriesContext(connection) as statements, transaction.atomic():
        publish_event(project.pk, ["request.create"], PAYLOAD)

    sent = [q["sql"] for q in statements.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(sent) == 1
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["pending", "skipped"]


def test_an_event_only_a_filtered_subscription_takes_writes_its_payload_once(project):
    subscription(project, filter={"big": {"$gt": 1}})

    with transaction.atomic():
        [delivery_id] = publish_event(project.pk, ["request.create"], PAYLOAD)

    assert Delivery.objects.get().event_payload_id == EventPayload.objects.get().pk
    assert Delivery.objects.get().pk == delivery_id


def test_an_event_no_filter_lets_through_writes_nothing(project, queued, on_commit):
    subscription(project, filter={"big": {"$lt": 1}})
    subscription(project, events=["message.*", "request.create"], filter={"text": "other"})

    with on_commit(), transaction.atomic():
        assert publish_event(project.pk, ["request.create"], PAYLOAD) == []

    assert not EventPayload.objects.exists()
    assert not Delivery.objects.exists()
    assert queued == []


def test_operator_select_subscriptions_are_never_published_to(project):
    subscription(project, event="operator.select")

    with transaction.atomic():
        assert publish_event(project.pk, ["operator.select"], PAYLOAD) == []

    assert not Delivery.objects.exists()


def test_more_subscriptions_than_one_insert_statement_carries_all_get_their_delivery(project):
    subscriptions = [
        subscription(project, target=f"https://hooks.example.com/{n}") for n in range(150)
    ]  # SQLite: 999 parameters a statement

    with transaction.atomic():
        ids = publish_event(project.pk, ["request.create"], PAYLOAD)

    assert len(ids) == len(set(ids)) == 150
    assert sorted(Delivery.objects.values_list("subscription_id", flat=True)) == sorted(s.pk for s in subscriptions)


def test_delivery_ids_are_time_ordered_object_ids(project):
    subscription(project)

    with transaction.atomic():
        first = publish_event(project.pk, ["request.create"], PAYLOAD)[0]

    assert len(first) == 24 and set(first) <= set("0123456789abcdef")
    assert abs(int(first[:8], 16) - datetime.now(UTC).timestamp()) < 60


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

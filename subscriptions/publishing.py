"""Publishing a domain event: the one function the webhook layer consumes events through.

Inside the caller's transaction it writes the outbox (an `EventPayload` and one `Delivery` per
matching enabled subscription); only after commit are the deliveries handed to the queue, so a
rolled-back change sends nothing and a committed one is never lost.

Because it runs inside every domain write, the outbox is read and written with plain SQL statements
rather than through the ORM's query builder: the same statements built by QuerySet and bulk_create
cost about 1.05 ms of CPU per event, these about 0.45 ms, on PostgreSQL (bench/README.md, publishing
cost). On PostgreSQL one statement matches the subscriptions and writes the rows
(`_match_and_write_outbox`); elsewhere the subscriptions are read (`_matching_subscriptions`), then
the rows written (`sequences.insert_numbered`)."""

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from core import sql
from support.ids import new_object_id

from . import events, matching, payload_filter, sequences
from .events import OPERATOR_SELECT
from .models import Delivery, EventPayload, Subscription
from .queue import enqueue_deliveries

logger = logging.getLogger(__name__)

# Sent after commit for every published event, with project_id, names, payload and occurred_at.
# Observers (metrics, tests) listen here; deliveries do not depend on it.
event_published = Signal()


def publish_event(
    project_id: str, names: Iterable[str], payload: dict, occurred_at: datetime | None = None
) -> list[str]:
    """Publish one occurrence under one or more names (e.g. `message.create` and its channel
    sub-event). Returns the ids of the deliveries it created."""
    names = list(dict.fromkeys(names))
    occurred_at = occurred_at or timezone.now()
    # operator.select is asked synchronously, never published (subscriptions/operator_select.py).
    # (id, event) pairs, not models: this runs in every domain write's transaction.
    wanted = [name for name in names if name != OPERATOR_SELECT]
    if connection.vendor == "postgresql":
        delivery_ids = _match_and_write_outbox(project_id, wanted, payload, occurred_at)
    else:
        delivery_ids = _write_outbox(
            project_id, _matching_subscriptions(project_id, wanted, payload), payload, occurred_at
        )
    transaction.on_commit(
        lambda: event_published.send(
            sender=publish_event, project_id=project_id, names=names, payload=payload, occurred_at=occurred_at
        ),
        robust=True,
    )
    return delivery_ids


def publish_to_subscription(
    subscription: Subscription, payload: dict, occurred_at: datetime | None = None, event: str | None = None
) -> str:
    """Publish one payload to one subscription only, whatever its events and state: the "send test
    event" of the API and the admin. It takes the same outbox and queue path as a real event, so
    it is delivered, retried and logged like any delivery. Returns the delivery id."""
    name = event or matching.example_event(subscription.event)
    subscribed = Subscribed(subscription.pk, name, enabled=True, in_order=subscription.in_order)
    return _write_outbox(subscription.project_id, [subscribed], payload, occurred_at or timezone.now())[0]


@dataclass(frozen=True)
class TestEvent:
    delivery_id: str
    event: str
    # Whether the example meets the subscription's filter: sent either way, so the target can be
    # tried, but a real event like it would make no delivery when this is false.
    filter_matches: bool


def publish_test_event(subscription: Subscription) -> TestEvent:
    """An example of the subscription's first event (the first catalog name a wildcard takes)."""
    name = matching.example_event(subscription.event)
    payload = events.example_payload(name)
    delivery_id = publish_to_subscription(subscription, payload, event=name)
    return TestEvent(delivery_id, name, payload_filter.matches(subscription.filter, payload))


@dataclass(frozen=True)
class Subscribed:
    """A subscription an event is published to, as its delivery needs it."""

    subscription_id: str
    event: str  # the delivery's event name
    enabled: bool
    in_order: bool


def _matching_subscriptions(project_id: str, names: list[str], payload: dict) -> list[Subscribed]:
    """The project's subscriptions that take one of these names and whose filter the payload
    meets: those whose one `event` is among the names (the index), and those whose `events` take
    more (several names or a wildcard: `matches_many`), matched here. One per subscription, named
    by the most specific name it takes. Disabled ones come in the same statement (their deliveries
    are made `skipped`, for replay_missing), so a project without disabled subscriptions pays
    nothing for them."""
    if not names:
        return []
    rows = sql.select(
        sql.statement(("matching", len(names)), lambda: _matching_statement(len(names))), [project_id, *names]
    )
    return _matched(rows, names, payload)


def _matched(rows: list[tuple], names: list[str], payload: dict) -> list[Subscribed]:
    """The subscriptions of these rows (id, event, matches_many, events, filter, enabled,
    ordering) that take one of the names and whose filter the payload meets."""
    matched = []
    for subscription_id, event, many, patterns, conditions, enabled, ordering in rows:
        name = matching.most_specific_match(_json(patterns), names) if many else event
        if name and (conditions is None or payload_filter.matches(_json(conditions), payload)):
            matched.append(Subscribed(subscription_id, name, bool(enabled), ordering == Subscription.Ordering.FIFO))
    return matched


def _subscription_columns() -> dict[str, str]:
    return {
        name: sql.column(Subscription, name)
        for name in ("id", "event", "events", "filter", "project", "enabled", "matches_many", "ordering")
    }


def _matching_statement(names: int) -> str:
    column = _subscription_columns()
    return (
        f"SELECT {column['id']}, {column['event']}, {column['matches_many']}, {column['events']}, "
        f"{column['filter']}, {column['enabled']}, {column['ordering']} FROM {sql.table(Subscription)} "
        f"WHERE {column['project']} = %s "
        f"AND ({column['event']} IN ({', '.join(['%s'] * names)}) OR {column['matches_many']} = {sql.literal(True)})"
    )


# A delivery's columns as the one-statement publish writes them (`sequence` is the commit's), and
# those of them that every delivery of an event shares (the others come from its subscription's row).
_DELIVERY_FIELDS = [field for field in Delivery._meta.concrete_fields if field.name != "sequence"]
_SHARED_FIELDS = [
    field for field in _DELIVERY_FIELDS if field.name not in {"subscription", "event", "status", "in_order"}
]


def _match_and_write_outbox(project_id: str, names: list[str], payload: dict, occurred_at: datetime) -> list[str]:
    """On PostgreSQL, matching and writing the outbox are one statement: a publish pays one round
    trip for them, not two (the matching SELECT's was about a tenth of a one-subscription publish's
    CPU, bench/README.md). The subscriptions whose one `event` is among the names and that have no
    filter, most of them, get their deliveries (and the event its payload row) from the statement
    itself; the others (several events, a wildcard, a filter) come back from it, are matched here
    as `_matching_subscriptions` does, and those that match get theirs from a second statement."""
    if not names:
        return []
    stored = EventPayload(project_id=project_id, payload=payload, occurred_at=occurred_at)
    # What every delivery of this event shares; the rest comes from its subscription's row.
    shared = Delivery(project_id=project_id, event_payload=stored, next_attempt_at=occurred_at, created_at=occurred_at)
    payload_values = [column[0] for column in sql.unnest_values([stored], EventPayload._meta.concrete_fields)]
    # The delivery ids: new_object_id's shape, the random part made by the database for each row.
    id_prefix = new_object_id()[:8]
    shared_values = [
        id_prefix if field.name == "id" else column[0]
        for field, column in zip(_SHARED_FIELDS, sql.unnest_values([shared], _SHARED_FIELDS), strict=True)
    ]
    text = sql.statement(("match_and_write", len(names)), lambda: _match_and_write_statement(len(names)))
    delivery_ids, others, written = [], [], False
    rows = sql.select(text, [project_id, *names, *payload_values, *shared_values])
    for made, row_id, event_or_status, patterns, conditions, enabled, ordering, many in rows:
        if made:  # a delivery the statement wrote (row_id), with its status
            written = True
            if event_or_status == Delivery.Status.PENDING:
                delivery_ids.append(row_id)
        else:  # a subscription (row_id) to match here, with its event
            others.append((row_id, event_or_status, many, patterns, conditions, enabled, ordering))
    if written:
        sql.mark_saved([stored])
    if delivery_ids:
        enqueue_after_commit(delivery_ids)
    matched = _matched(others, names, payload) if others else []
    return delivery_ids + _write_outbox(project_id, matched, payload, occurred_at, stored, payload_written=written)


def _match_and_write_statement(names: int) -> str:
    sub = _subscription_columns()
    plain = (
        f"SELECT {sub['id']} AS id, {sub['event']} AS event, {sub['enabled']} AS enabled, "
        f"{sub['ordering']} AS ordering FROM candidates "
        f"WHERE {sub['matches_many']} = {sql.literal(False)} AND {sub['filter']} IS NULL"
    )
    payload_fields = EventPayload._meta.concrete_fields
    payload = (
        f"INSERT INTO {sql.table(EventPayload)} ({', '.join(sql.quote(field.column) for field in payload_fields)}) "
        f"SELECT {', '.join(f'%s::{field.db_type(connection)}' for field in payload_fields)} "
        "WHERE EXISTS (SELECT 1 FROM plain)"
    )
    pending, skipped = sql.literal(Delivery.Status.PENDING), sql.literal(Delivery.Status.SKIPPED)
    due_type = Delivery._meta.get_field("next_attempt_at").db_type(connection)
    made_from = {
        "id": "%s || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)",
        "subscription": "plain.id",
        "event": "plain.event",
        "status": f"CASE WHEN plain.enabled THEN {pending} ELSE {skipped} END",
        "next_attempt_at": f"CASE WHEN plain.enabled THEN %s::{due_type} END",
        "in_order": f"plain.ordering = {sql.literal(Subscription.Ordering.FIFO)}",
    }
    values = [made_from.get(field.name, f"%s::{field.db_type(connection)}") for field in _DELIVERY_FIELDS]
    numbered = "(SELECT string_agg(id, ',' ORDER BY id) FROM plain)"
    made = (
        f"INSERT INTO {sql.table(Delivery)} ({', '.join(sql.quote(field.column) for field in _DELIVERY_FIELDS)}) "
        f"SELECT {', '.join(values)} FROM plain, publishing "
        f"RETURNING {sql.column(Delivery, 'id')}, {sql.column(Delivery, 'status')}"
    )
    return (
        f"WITH candidates AS ({_matching_statement(names)}), plain AS ({plain}), stored AS ({payload}), "
        f"publishing AS ({sequences.publishing(numbered)}), "
        f"made AS ({made}) "
        "SELECT TRUE, id, status, NULL::jsonb, NULL::jsonb, NULL::boolean, NULL::text, NULL::boolean FROM made "
        f"UNION ALL SELECT FALSE, {sub['id']}, {sub['event']}, {sub['events']}, {sub['filter']}, {sub['enabled']}, "
        f"{sub['ordering']}, {sub['matches_many']} FROM candidates "
        f"WHERE {sub['matches_many']} = {sql.literal(True)} OR {sub['filter']} IS NOT NULL"
    )


def _json(value):
    """A JSON column read by plain SQL: text on SQLite, already decoded by some drivers."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _write_outbox(
    project_id: str,
    subscriptions: list[Subscribed],
    payload: dict,
    occurred_at: datetime,
    stored: EventPayload | None = None,
    payload_written: bool = False,
) -> list[str]:
    """The payload once (unless `payload_written`: `stored` is in the outbox already) and one
    delivery per subscription; the enabled subscriptions' deliveries are queued after commit, the
    others are made `skipped`."""
    if not subscriptions:
        return []
    stored = stored or EventPayload(project_id=project_id, payload=payload, occurred_at=occurred_at)
    deliveries = [
        Delivery(
            project_id=project_id,
            subscription_id=subscribed.subscription_id,
            event=subscribed.event,
            event_payload=stored,
            status=Delivery.Status.PENDING if subscribed.enabled else Delivery.Status.SKIPPED,
            next_attempt_at=occurred_at if subscribed.enabled else None,
            in_order=subscribed.in_order,
            created_at=occurred_at,
        )
        for subscribed in subscriptions
    ]
    # The payload and the deliveries in one statement on PostgreSQL, where the deliveries take their
    # numbers when the transaction commits (sequences.py).
    sequences.insert_numbered(deliveries, along_with=None if payload_written else sql.values_insert([stored]))
    sql.mark_saved([stored])
    delivery_ids = [d.pk for d in deliveries if d.status == Delivery.Status.PENDING]
    if delivery_ids:
        enqueue_after_commit(delivery_ids)
    return delivery_ids


class _CommitBatch:
    """The deliveries one transaction published so far, queued together when it commits: a
    transaction that publishes 100 events queues two tasks of 50, not 100 tasks of one."""

    def __init__(self) -> None:
        self.delivery_ids: list[str] = []
        self.sent = False

        def enqueue() -> None:
            self.sent = True
            enqueue_deliveries(self.delivery_ids)

        self.callback = enqueue


def enqueue_after_commit(delivery_ids: list[str]) -> None:
    """Queue the deliveries once the current transaction commits, together with the others it
    published. The batch joins a callback still registered with this transaction: after a
    rollback (of the transaction, or of the savepoint that registered it) Django has dropped the
    callback, and a new batch starts. Ids added from a savepoint that later rolls back stay in the
    batch and are queued; their rows do not exist, so the worker's claim simply finds nothing."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:  # autocommit: committed already
        enqueue_deliveries(delivery_ids)
        return
    batch: _CommitBatch | None = getattr(connection, "hooks_commit_batch", None)
    # run_on_commit holds (savepoint ids, callback, robust) for every callback still pending.
    if batch is None or batch.sent or not any(entry[1] is batch.callback for entry in connection.run_on_commit):
        batch = _CommitBatch()
        connection.hooks_commit_batch = batch
        transaction.on_commit(batch.callback, robust=True)
    batch.delivery_ids.extend(delivery_ids)

"""Publishing a domain event: the one function the webhook layer consumes events through.

Inside the caller's transaction it writes the event alone: its payload and the names it was
published under, in one `EventPayload` row, and only if the project has a subscription that may
take one of those names. After commit a worker is woken, which routes it (subscriptions/routing.py):
it makes one delivery per matching subscription and sends them. So a rolled-back change sends
nothing, a committed one is never lost, and an API call pays for one row, whatever the number of
subscriptions.

Because it runs inside every domain write, the row is written with one plain SQL statement on
PostgreSQL, which also asks whether a subscription may take the event: the ORM's query builder
costs several times the statement's CPU on this path (bench/README.md, publishing cost)."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from core import sql
from support.ids import new_object_id

from . import events, matching, payload_filter, sequences
from .events import OPERATOR_SELECT
from .models import EventPayload, Subscription
from .queue import enqueue_deliveries
from .routing import Subscribed, new_delivery

logger = logging.getLogger(__name__)

# Sent after commit for every published event, with project_id, names, payload and occurred_at.
# Observers (metrics, tests) listen here; deliveries do not depend on it.
event_published = Signal()


def publish_event(
    project_id: str, names: Iterable[str], payload: dict, occurred_at: datetime | None = None
) -> str | None:
    """Publish one occurrence under one or more names (e.g. `message.create` and its channel
    sub-event). Returns the id of the event written, or None when no subscription of the project
    may take any of the names (nothing is written then)."""
    names = list(dict.fromkeys(names))
    occurred_at = occurred_at or timezone.now()
    # operator.select is asked synchronously, never published (subscriptions/operator_select.py).
    wanted = [name for name in names if name != OPERATOR_SELECT]
    event_id = _write_event(project_id, wanted, payload, occurred_at) if wanted else None
    if event_id:
        enqueue_after_commit([event_id])
    transaction.on_commit(
        lambda: event_published.send(
            sender=publish_event, project_id=project_id, names=names, payload=payload, occurred_at=occurred_at
        ),
        robust=True,
    )
    return event_id


# The event row's fields whose values the ORM prepares for the database (JSON, an aware datetime).
_PAYLOAD, _OCCURRED_AT, _NAMES = (EventPayload._meta.get_field(name) for name in ("payload", "occurred_at", "names"))


def _write_event(project_id: str, names: list[str], payload: dict, occurred_at: datetime) -> str | None:
    """The event's row, if a subscription of the project may take one of the names: one whose one
    `event` is among them, or one whose `events` take more (matched when routed). Disabled ones
    count: routing makes them `skipped` deliveries, for replay_missing."""
    event_id = new_object_id()
    if connection.vendor != "postgresql":
        may_take = Q(event__in=names) | Q(matches_many=True)
        if not Subscription.objects.filter(may_take, project_id=project_id).exists():
            return None
        EventPayload.objects.create(
            id=event_id, project_id=project_id, payload=payload, occurred_at=occurred_at, names=names,
            published_at=timezone.now(),
        )  # fmt: skip
        return event_id
    values = [
        event_id,
        project_id,
        _PAYLOAD.get_db_prep_save(payload, connection),
        _OCCURRED_AT.get_db_prep_save(occurred_at, connection),
        _NAMES.get_db_prep_save(names, connection),
    ]
    written = sql.select(sql.statement(("publish",), _publish_statement), [*values, project_id, names])
    return event_id if written else None


def _publish_statement() -> str:
    column = {name: sql.column(Subscription, name) for name in ("project", "event", "matches_many")}
    written = [EventPayload._meta.get_field(name) for name in ("id", "project", "payload", "occurred_at", "names")]
    return (
        f"INSERT INTO {sql.table(EventPayload)} "
        f"({', '.join(sql.quote(field.column) for field in written)}, {sql.column(EventPayload, 'published_at')}) "
        f"SELECT {', '.join(f'%s::{field.db_type(connection)}' for field in written)}, clock_timestamp() "
        f"WHERE EXISTS (SELECT 1 FROM {sql.table(Subscription)} WHERE {column['project']} = %s "
        f"AND ({column['event']} = ANY(%s::text[]) OR {column['matches_many']} = {sql.literal(True)})) "
        f"RETURNING {sql.column(EventPayload, 'id')}"
    )


def publish_to_subscription(
    subscription: Subscription, payload: dict, occurred_at: datetime | None = None, event: str | None = None
) -> str:
    """Publish one payload to one subscription only, whatever its events and state: the "send test
    event" of the API and the admin. Its delivery is made at once, in the caller's transaction
    (not routed), and then takes the same queue path as a real event's, so it is delivered,
    retried and logged like any delivery. Returns the delivery id."""
    name = event or matching.example_event(subscription.event)
    subscribed = Subscribed(subscription.pk, name, enabled=True, in_order=subscription.in_order)
    stored = EventPayload(
        project_id=subscription.project_id, payload=payload, occurred_at=occurred_at or timezone.now()
    )
    delivery = new_delivery(stored, subscribed)
    # The payload and the delivery in one statement on PostgreSQL, where the delivery takes its
    # number when the transaction commits (sequences.py).
    sequences.insert_numbered(delivery, along_with=sql.values_insert([stored]))
    sql.mark_saved([stored])
    enqueue_after_commit([delivery.pk])
    return delivery.pk


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


class _CommitBatch:
    """What one transaction published so far (events, or a test event's delivery), handed to the
    queue together when it commits: one wake-up for the transaction, not one per event."""

    def __init__(self) -> None:
        self.delivery_ids: list[str] = []
        self.sent = False

        def enqueue() -> None:
            self.sent = True
            enqueue_deliveries(self.delivery_ids)

        self.callback = enqueue


def enqueue_after_commit(delivery_ids: list[str]) -> None:
    """Wake a worker for these ids (events, or a test event's delivery) once the current
    transaction commits, together with the others it published. The batch joins a callback still
    registered with this transaction: after a rollback (of the transaction, or of the savepoint
    that registered it) Django has dropped the callback, and a new batch starts. Ids added from a
    savepoint that later rolls back stay in the batch; their rows do not exist, so the woken worker
    simply finds nothing for them."""
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

"""Routing: a worker makes a published event's deliveries, a batch of events at a time.

Publishing (subscriptions/publishing.py) writes the event alone in the caller's transaction: its
payload and the names it was published under, and only if the project has a subscription that
may take one of them. A worker then routes the oldest unrouted events: it marks them routed and
writes one delivery per matching subscription (`skipped` for a disabled one, kept for
replay_missing), each numbered as it is made from its subscription's counter
(subscriptions/sequences.py), in one transaction. The deliveries a draining worker makes come
back leased to it, so they are sent without a claim of their own (`route(lease=True)`). A
committed event is never lost: it stays unrouted until a routing commits, and the sweep wakes a
worker for one left waiting (`overdue`); a rolled-back publish left nothing to route.

Why in the worker: an API call then pays for one row, not for the matching, the deliveries' rows,
their numbering at its commit and its subscription counter's lock; the worker writes the
deliveries of many events with one statement, numbered and leased as they are made, so a
delivery's row is written twice (made, then its outcome) instead of four times (made, numbered,
claimed, outcome). bench/README.md, "Routing in the worker", has the figures.

A subscription gets the events published after it was created (`published_at` is the database's
clock at the insert) and routed while it exists: one made during a backlog does not receive the
events queued before it. An ordered (`fifo`) subscription's deliveries are made pending and left to
the claim (subscriptions/transitions.py), which keeps them one at a time.

On PostgreSQL the events are taken `FOR UPDATE SKIP LOCKED`, so workers routing at the same moment
take different events, and an event whose subscriptions each take one `event` without a filter
(most of them) is routed by one statement on its own (`_route_plain`). That statement's commit
does not wait for the disk, as the claim's does not: a database crash can undo a routing, and the
event is then routed again into deliveries of the same ids (`delivery_id`), so a receiver sees a
delivery it may already have had with the same webhook-id, as after an undone claim. An event
with a subscription of several events, a wildcard or a filter, and the events after it in the
batch, are matched here, in Python, in a transaction of their own (`_route_matched`), as every
event is on SQLite (one writing transaction at a time): each subscription's numbers follow the
order the events were published, as one worker routes them."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import sql

from . import matching, payload_filter, sequences, transitions
from .models import Delivery, EventPayload, SequenceCounter, Subscription


@dataclass(frozen=True)
class Subscribed:
    """A subscription an event is routed to, as its delivery needs it."""

    subscription_id: str
    event: str  # the delivery's event name
    enabled: bool
    in_order: bool


def route(limit: int, lease: bool = False) -> list[Delivery]:
    """Route up to `limit` of the oldest unrouted events. With `lease`, up to `limit` of the
    enabled deliveries made for subscriptions without ordering are leased to the caller and
    returned, with their subscriptions and payloads, to be sent (a batch); the others (an event
    with many subscriptions makes more) are left due for any worker's claim."""
    lease_until = timezone.now() + timedelta(seconds=settings.HOOKS_CLAIM_LEASE_S) if lease else None
    if connection.vendor == "postgresql":
        leased, left = _route_plain(limit, lease_until)
        if left:
            leased += _route_matched(lease_until, limit - len(leased), event_ids=left)
    else:
        leased = _route_matched(lease_until, limit, limit=limit)
    return sorted(leased, key=lambda d: (d.next_attempt_at, d.created_at))


def overdue(grace_s: float) -> int:
    """How many events have waited unrouted for at least `grace_s`."""
    published_before = sql.datetime_param(timezone.now() - timedelta(seconds=grace_s))
    names, published_at = sql.column(EventPayload, "names"), sql.column(EventPayload, "published_at")
    return sql.select(
        f"SELECT COUNT(*) FROM {sql.table(EventPayload)} WHERE {names} IS NOT NULL AND {published_at} <= %s",
        [published_before],
    )[0][0]


def delivery_id(event_id: str, subscription_id: str) -> str:
    """The id of an event's delivery to a subscription: the same whenever the event is routed,
    and shaped like every id (24 hex characters, beginning with the event's time)."""
    digest = hashlib.md5(f"{event_id}{subscription_id}".encode(), usedforsecurity=False).hexdigest()
    return event_id[:8] + digest[:16]


# --- PostgreSQL: one statement ----------------------------------------------------------------
def _route_plain(limit: int, lease_until: datetime | None) -> tuple[list[Delivery], list[str]]:
    """Route the oldest unrouted events, up to the first one with a subscription to be matched in
    Python (several events, a wildcard, a filter); returns the leased deliveries it made, and the
    ids of the events it took and left unrouted for `_route_matched` (that one and those after
    it). Outside a caller's transaction (a task run inline) its commit does not wait for the disk
    (the module's docstring)."""
    unflushed = not connection.in_atomic_block
    fields, defaults = _defaults()
    text = sql.statement(("route", int(limit), unflushed), lambda: _plain_statement(int(limit), fields, unflushed))
    lease = sql.datetime_param(lease_until) if lease_until else None
    leased, left = [], []
    for row in sql.select(text, [lease, *defaults]):
        if row[-1] is None:
            leased.append(transitions.joined(row[:-1]))
        else:
            left.append(row[-1])
    return leased, left


@cache
def _defaults() -> tuple[list, list]:
    """The delivery fields the statement does not fill, and their default values (the same for
    every new delivery), prepared once."""
    fields = [field for field in Delivery._meta.concrete_fields if field.name not in _MADE_FROM]
    template = Delivery(project_id="", subscription_id="", event_payload_id="")
    return fields, [column[0] for column in sql.unnest_values([template], fields)]


# How the statement fills a delivery's columns; the others take their defaults (`_defaults`).
_MADE_FROM = {
    "id": "substr(plain.event_id, 1, 8) || substr(md5(plain.event_id || plain.subscription_id), 1, 16)",
    "project": "plain.project_id",
    "subscription": "plain.subscription_id",
    "event": "plain.event",
    "event_payload": "plain.event_id",
    "status": "CASE WHEN plain.enabled THEN {pending} ELSE {skipped} END",
    "sequence": "counters.taken_to - plain.taken + plain.nth",
    "in_order": "plain.ordering = {fifo}",
    "next_attempt_at": "CASE WHEN plain.enabled THEN plain.occurred_at END",
    "locked_until": "CASE WHEN plain.enabled AND plain.ordering <> {fifo} AND plain.made_nth <= {limit} "
    "THEN %s::{timestamp} END",
    "created_at": "plain.occurred_at",
    "updated_at": "now()",
}


def _plain_statement(limit: int, default_fields: list, unflushed: bool) -> str:
    table, subscriptions, counters = sql.table(EventPayload), sql.table(Subscription), sql.table(SequenceCounter)
    e = {name: sql.column(EventPayload, name) for name in ("id", "project", "occurred_at", "names", "published_at")}
    s = {
        name: sql.column(Subscription, name)
        for name in ("id", "project", "event", "filter", "enabled", "ordering", "matches_many", "created_at")
    }
    counter, last = sql.column(SequenceCounter, "subscription"), sql.column(SequenceCounter, "last_sequence")
    literals = {
        "fifo": sql.literal(Subscription.Ordering.FIFO),
        "pending": sql.literal(Delivery.Status.PENDING),
        "skipped": sql.literal(Delivery.Status.SKIPPED),
        "timestamp": Delivery._meta.get_field("locked_until").db_type(connection),
        "limit": limit,
    }
    made = [field for field in Delivery._meta.concrete_fields if field.name in _MADE_FROM]
    made_columns = ", ".join(sql.quote(field.column) for field in made + default_fields)
    made_values = ", ".join(
        [_MADE_FROM[field.name].format(**literals) for field in made]
        + [f"%s::{field.db_type(connection)}" for field in default_fields]
    )
    matches_many, no_filter = f"s.{s['matches_many']} = {sql.literal(True)}", f"s.{s['filter']} IS NULL"
    return (
        f"WITH events AS MATERIALIZED (SELECT {e['id']} AS event_id, {e['project']} AS project_id, "
        f"{e['occurred_at']} AS occurred_at, {e['published_at']} AS published_at, {e['names']} AS names "
        f"FROM {table} WHERE {e['names']} IS NOT NULL ORDER BY {e['published_at']}, {e['id']} "
        f"LIMIT {limit} FOR UPDATE SKIP LOCKED), "
        # Each event's subscriptions: made before it was published, taking one of its names.
        f"candidates AS MATERIALIZED (SELECT events.*, s.{s['id']} AS subscription_id, "
        f"s.{s['event']} AS event, s.{s['enabled']} AS enabled, s.{s['ordering']} AS ordering, "
        f"NOT {matches_many} AND {no_filter} AS plain "
        f"FROM events JOIN {subscriptions} s ON s.{s['project']} = events.project_id "
        f"AND s.{s['created_at']} <= events.published_at AND ({matches_many} OR events.names ? s.{s['event']})), "
        # From the first event a subscription of which is matched in Python on, every event is
        # left to `_route_matched`, which routes them in order: numbers follow the events' order.
        "first_left AS (SELECT published_at, event_id FROM candidates WHERE NOT plain "
        "ORDER BY published_at, event_id LIMIT 1), "
        "left_here AS (SELECT events.event_id FROM events, first_left "
        "WHERE (events.published_at, events.event_id) >= (first_left.published_at, first_left.event_id)), "
        f"routed AS (UPDATE {table} SET {e['names']} = NULL FROM events WHERE {table}.{e['id']} = events.event_id "
        "AND events.event_id NOT IN (SELECT event_id FROM left_here)), "
        "plain AS MATERIALIZED (SELECT candidates.*, "
        "row_number() OVER (PARTITION BY subscription_id ORDER BY published_at, event_id) AS nth, "
        "count(*) OVER (PARTITION BY subscription_id) AS taken, "
        "row_number() OVER (ORDER BY published_at, event_id, subscription_id) AS made_nth FROM candidates "
        "WHERE event_id NOT IN (SELECT event_id FROM left_here)), "
        # The counters in id order: two routings of the same subscriptions queue, never cross.
        f"counters AS (INSERT INTO {counters} AS counter ({counter}, {last}) "
        "SELECT subscription_id, taken FROM plain WHERE nth = 1 ORDER BY subscription_id "
        f"ON CONFLICT ({counter}) DO UPDATE SET {last} = counter.{last} + excluded.{last} "
        f"RETURNING {counter} AS subscription_id, {last} AS taken_to), "
        f"made AS (INSERT INTO {sql.table(Delivery)} ({made_columns}) SELECT {made_values} "
        "FROM plain JOIN counters USING (subscription_id) RETURNING *)"
        + (f", unflushed AS ({transitions.COMMIT_UNFLUSHED})" if unflushed else "")
        + f" SELECT {transitions.joined_columns('made')}, NULL FROM made, "
        + ("unflushed, " if unflushed else "")
        + f"{transitions.JOINED_TABLES} WHERE {transitions.joins('made')} "
        f"AND made.{sql.column(Delivery, 'locked_until')} IS NOT NULL "
        f"UNION ALL SELECT {', '.join(['NULL'] * transitions.JOINED_WIDTH)}, event_id FROM left_here"
    )


# --- matching here: SQLite, and on PostgreSQL the events `_route_plain` leaves --------------------
def _route_matched(
    lease_until: datetime | None, lease_at_most: int, limit: int = 0, event_ids: list[str] | None = None
) -> list[Delivery]:
    """Route these events (or the oldest `limit` unrouted ones), matching each one's
    subscriptions here, in one transaction; returns the deliveries leased (`lease_at_most`)."""
    with transaction.atomic():
        unrouted = EventPayload.objects.filter(names__isnull=False)
        if event_ids is not None:
            events = list(unrouted.filter(pk__in=event_ids).select_for_update(skip_locked=True))
        else:
            events = list(unrouted.order_by("published_at", "id")[:limit])
        if not events:
            return []
        EventPayload.objects.filter(pk__in=[event.pk for event in events]).update(names=None)
        deliveries = [
            new_delivery(event, subscribed, lease_until)
            for event in sorted(events, key=lambda event: (event.published_at, event.pk))
            for subscribed in matched(_candidates(event), event.names, event.payload)
        ]
        if not deliveries:
            return []
        leased = [delivery for delivery in deliveries if delivery.locked_until is not None]
        for delivery in leased[max(0, lease_at_most) :]:
            delivery.locked_until = None  # past a batch: due for any worker
        sequences.assign(deliveries)
        sql.insert_all(deliveries)
        sql.mark_saved(deliveries)
        return transitions.load([delivery.pk for delivery in leased[: max(0, lease_at_most)]])


def _candidates(event: EventPayload) -> list[tuple]:
    """The subscriptions of the event's project made before it was published that may take one of
    its names: those whose one `event` is among them, and those whose `events` take more."""
    names = event.names
    text = sql.statement(("route_candidates", len(names)), lambda: _candidates_statement(len(names)))
    return sql.select(text, [event.project_id, sql.datetime_param(event.published_at), *names])


def _candidates_statement(names: int) -> str:
    column = {
        name: sql.column(Subscription, name)
        for name in ("id", "event", "matches_many", "events", "filter", "enabled", "ordering", "project", "created_at")
    }
    return (
        f"SELECT {column['id']}, {column['event']}, {column['matches_many']}, {column['events']}, "
        f"{column['filter']}, {column['enabled']}, {column['ordering']} FROM {sql.table(Subscription)} "
        f"WHERE {column['project']} = %s AND {column['created_at']} <= %s "
        f"AND ({column['event']} IN ({', '.join(['%s'] * names)}) OR {column['matches_many']} = {sql.literal(True)})"
    )


def matched(rows: list[tuple], names: list[str], payload: dict) -> list[Subscribed]:
    """The subscriptions of these rows (id, event, matches_many, events, filter, enabled,
    ordering) that take one of the names and whose filter the payload meets, each named by the
    most specific name it takes."""
    found = []
    for subscription_id, event, many, patterns, conditions, enabled, ordering in rows:
        name = matching.most_specific_match(sql.json_value(patterns), names) if many else event
        if name and (conditions is None or payload_filter.matches(sql.json_value(conditions), payload)):
            found.append(Subscribed(subscription_id, name, bool(enabled), ordering == Subscription.Ordering.FIFO))
    return found


def new_delivery(event: EventPayload, subscribed: Subscribed, lease_until: datetime | None = None) -> Delivery:
    """The delivery of an event to a subscription (not saved): pending and due at once, or
    `skipped` for a disabled subscription; leased until `lease_until`, if given, unless the
    subscription keeps an order."""
    enabled = subscribed.enabled
    return Delivery(
        id=delivery_id(event.pk, subscribed.subscription_id),
        project_id=event.project_id,
        subscription_id=subscribed.subscription_id,
        event=subscribed.event,
        event_payload=event,
        status=Delivery.Status.PENDING if enabled else Delivery.Status.SKIPPED,
        next_attempt_at=event.occurred_at if enabled else None,
        locked_until=lease_until if enabled and not subscribed.in_order else None,
        in_order=subscribed.in_order,
        created_at=event.occurred_at,
    )

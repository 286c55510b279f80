"""Every change of a delivery's state, in one place.

    pending --claim--> pending, leased (locked_until) --succeed--> success
                                   |--retry_at--> pending, due later
                                   |--fail / stop--> failed
                                   |--park--> pending, parked (parked_at), due PARK_S later
    parked --release--> pending, due now
    leased --defer--> pending, due when its subscription's rate allows (no attempt)
    leased --renew--> leased again from now, if the lease is still this worker's
    success | failed --redeliver--> pending, due now (a new round of attempts)

A worker owns a delivery from its claim until it writes the outcome: the claim is one
`UPDATE ... RETURNING`, so the rows it returns are exactly those this worker owns, even when another
worker claims some of the same ids at the same moment. Texts are cut to their column here, once."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import sql

from .models import Delivery, EventPayload, Subscription

Status = Delivery.Status
_ERROR_LENGTH = Delivery._meta.get_field("last_error").max_length
# What `write_outcomes` and `write_outcome` store of a delivery the worker moved on.
OUTCOME_FIELDS = ["status", "attempt_count", "next_attempt_at", "locked_until", "parked_at", "last_error", "updated_at"]


def _error(text: str) -> str:
    return text[:_ERROR_LENGTH]


def _claimable(now: datetime, due_by: datetime | None = None) -> tuple[str, list]:
    """The condition (and its parameters) a delivery row must meet to be claimed: pending, due,
    not leased to a live worker, and, for a subscription with `ordering: "fifo"`, the pending
    delivery of lowest `sequence`. So an ordered subscription has one delivery in flight at a time,
    in publish order, and one waiting for a retry holds those after it until it succeeds or fails
    finally. Due by `due_by` (default: now). Columns are qualified with the table's name, for
    statements that join another.

    The status and the ordering flag are written into the text, not passed as parameters: a
    prepared statement's generic plan (PostgreSQL's after five runs) cannot prove a parameter
    equal to a partial index's predicate, so it scanned the whole table for "an earlier pending
    delivery", or hashed every pending row to join the claim, at a cost that grew with the backlog
    (bench/README.md)."""
    table = sql.table(Delivery)
    status, due, locked, in_order, subscription, sequence = (
        sql.column(Delivery, name)
        for name in ("status", "next_attempt_at", "locked_until", "in_order", "subscription", "sequence")
    )
    moment, due_moment = sql.datetime_param(now), sql.datetime_param(due_by or now)
    pending, ordered, unordered = sql.literal(Status.PENDING), sql.literal(True), sql.literal(False)
    condition = (
        f"{table}.{status} = {pending} AND {table}.{due} <= %s AND ({table}.{locked} IS NULL OR {table}.{locked} < %s) "
        f"AND ({table}.{in_order} = {unordered} OR NOT EXISTS (SELECT 1 FROM {table} earlier "
        f"WHERE earlier.{subscription} = {table}.{subscription} AND earlier.{in_order} = {ordered} "
        f"AND earlier.{status} = {pending} AND earlier.{sequence} < {table}.{sequence}))"
    )
    return condition, [due_moment, moment]


def claim(delivery_ids: Sequence[str]) -> list[Delivery]:
    """Own, for one lease, those of the deliveries that are claimable (`_claimable`); returns them
    with their subscriptions and payloads, in the order asked."""
    ids = list(dict.fromkeys(delivery_ids))
    now = timezone.now()
    lease = sql.datetime_param(now + timedelta(seconds=settings.HOOKS_CLAIM_LEASE_S))
    pk, locked, parked = (sql.column(Delivery, name) for name in ("id", "locked_until", "parked_at"))
    claimable, claimable_params = _claimable(now)
    claimed: list[str] = []
    for chunk in sql.chunks(ids, sql.parameter_limit() - 16):
        rows = sql.update_returning(
            Delivery,
            f"{locked} = %s, {parked} = NULL",
            f"{pk} IN ({sql.in_list(chunk)}) AND {claimable}",
            [lease, *chunk, *claimable_params],
            returning=pk,
        )
        claimed += [row[0] for row in rows]
    if not claimed:
        return []
    rows = {delivery.pk: delivery for delivery in load(claimed)}
    return [rows[pk] for pk in ids if pk in rows]


def claim_due(limit: int) -> list[Delivery]:
    """Own, for one lease, up to `limit` of the claimable deliveries (`_claimable`), the
    longest-waiting first: what a worker woken by the queue sends next.

    On PostgreSQL the rows are chosen `FOR UPDATE SKIP LOCKED`, so workers claiming at the same
    moment take different rows instead of waiting on each other's; SQLite runs one writing
    statement at a time, so the same UPDATE is atomic there as it is. A subscription's rate limit
    is applied to what was claimed (subscriptions/pacing.py), not here: only paced subscriptions'
    rows pay for it.

    On PostgreSQL the claim's commit does not wait for the disk (`COMMIT_UNFLUSHED`): the
    delivery goes out that much sooner (0.2-0.3 ms at a light load, bench/README.md), and nothing
    it guards against happens more often. Other workers see the claim at once, as with any
    commit; only a database crash can undo it, and a crash while a claimed delivery is being sent
    loses its attempt's log in any case (the log is written after the POST), so the delivery is
    sent again either way, with the same webhook-id; an undone claim only lets that happen when
    the database is back rather than when the lease runs out. The log's commit, and every other,
    still waits for the disk."""
    now = timezone.now()
    lease = sql.datetime_param(now + timedelta(seconds=settings.HOOKS_CLAIM_LEASE_S))
    pk, due, locked, parked = (
        sql.column(Delivery, name) for name in ("id", "next_attempt_at", "locked_until", "parked_at")
    )
    claimable, claimable_params = _claimable(now)
    if connection.vendor == "postgresql":
        # The choice materialized first: as an IN (subquery) the planner may run it again for
        # later rows, and a claim could then take more than `limit`. The rows it locks were
        # claimable when locked (PostgreSQL checks a row changed meanwhile again) and stay so
        # until this statement ends, so the UPDATE finds them by id alone: with the condition
        # again, a generic plan scanned every pending delivery for them. The limit is in the text:
        # for LIMIT %s a generic plan guesses a tenth of the table. The claimed rows come back with
        # their subscriptions and payloads, joined in the UPDATE: no second statement to load them.
        # Inside a caller's transaction (a task run inline), its commit is left alone.
        unflushed = not connection.in_atomic_block

        def statement() -> str:
            table = sql.table(Delivery)
            return (
                f"WITH chosen AS MATERIALIZED (SELECT {pk} FROM {table} WHERE {claimable} ORDER BY {due} "
                f"LIMIT {int(limit)} FOR UPDATE SKIP LOCKED)"
                + (f", unflushed AS ({COMMIT_UNFLUSHED})" if unflushed else "")
                + f" UPDATE {table} SET {locked} = %s, {parked} = NULL "
                f"FROM chosen, {'unflushed, ' if unflushed else ''}{JOINED_TABLES} "
                f"WHERE {table}.{pk} = chosen.{pk} AND {joins(table)} RETURNING {joined_columns(table)}"
            )

        rows = sql.select(sql.statement(("claim_due", limit, unflushed), statement), [*claimable_params, lease])
        claimed = [joined(row) for row in rows]
    else:
        chosen = f"SELECT {pk} FROM {sql.table(Delivery)} WHERE {claimable} ORDER BY {due} LIMIT %s"
        rows = sql.update_returning(
            Delivery,
            f"{locked} = %s, {parked} = NULL",
            f"{pk} IN ({chosen}) AND {claimable}",
            [lease, *claimable_params, limit, *claimable_params],
            returning=pk,
        )
        claimed = load([row[0] for row in rows])
    return sorted(claimed, key=lambda d: (d.next_attempt_at, d.created_at))


# Joined into the claim: its transaction (the statement's own) commits without waiting for the disk.
# Only that transaction: `true` is SET LOCAL; the connection's own setting stays as it was.
COMMIT_UNFLUSHED = "SELECT set_config('synchronous_commit', 'off', true)"
_DELIVERY, _SUBSCRIPTION, _PAYLOAD = sql.Rows(Delivery), sql.Rows(Subscription), sql.Rows(EventPayload)
# What a claimed delivery is read with: its subscription `s` and its payload `p`.
JOINED_TABLES = f"{sql.table(Subscription)} s, {sql.table(EventPayload)} p"


def joins(delivery: str) -> str:
    to_subscription, to_payload = sql.column(Delivery, "subscription"), sql.column(Delivery, "event_payload")
    return (
        f"s.{sql.column(Subscription, 'id')} = {delivery}.{to_subscription} "
        f"AND p.{sql.column(EventPayload, 'id')} = {delivery}.{to_payload}"
    )


def joined_columns(delivery: str) -> str:
    return f"{_DELIVERY.columns(delivery)}, {_SUBSCRIPTION.columns('s')}, {_PAYLOAD.columns('p')}"


# How many columns `joined_columns` reads.
JOINED_WIDTH = len(_DELIVERY.fields) + len(_SUBSCRIPTION.fields) + len(_PAYLOAD.fields)


def joined(row: Sequence) -> Delivery:
    """A delivery with its subscription and payload from a row of `joined_columns`, as the
    ORM's select_related would make them."""
    subscription_ends = len(_DELIVERY.fields)
    payload_starts = subscription_ends + len(_SUBSCRIPTION.fields)
    delivery = _DELIVERY.make(row[:subscription_ends])
    Delivery.subscription.field.set_cached_value(delivery, _SUBSCRIPTION.make(row[subscription_ends:payload_starts]))
    Delivery.event_payload.field.set_cached_value(delivery, _PAYLOAD.make(row[payload_starts:]))
    return delivery


def load(delivery_ids: Sequence[str]) -> list[Delivery]:
    """The deliveries with their subscriptions and payloads, in one plain SELECT (the ORM's
    select_related took three times the CPU, per claim)."""

    def statement(matching: str) -> str:
        return (
            f"SELECT {joined_columns('d')} FROM {sql.table(Delivery)} d, {JOINED_TABLES} "
            f"WHERE {joins('d')} AND d.{sql.column(Delivery, 'id')} {matching}"
        )

    loaded = []
    for chunk in sql.chunks(list(delivery_ids), sql.parameter_limit()):
        if connection.vendor == "postgresql":
            text, params = sql.statement(("load_claimed",), lambda: statement("= ANY(%s)")), [list(chunk)]
        else:
            text, params = statement(f"IN ({sql.in_list(chunk)})"), list(chunk)
        loaded += [joined(row) for row in sql.select(text, params)]
    return loaded


def renew(deliveries: list[Delivery]) -> list[Delivery]:
    """Those of the claimed deliveries whose claim this worker still holds, each with a new lease
    from now. For a delivery that waited after its claim (on a thread of its own, behind others):
    if it outlived its lease, another worker may own it by now, and sending it too would be a
    second send of the same delivery."""
    lease = timezone.now() + timedelta(seconds=settings.HOOKS_CLAIM_LEASE_S)
    held = []
    for delivery in deliveries:
        ours = Delivery.objects.filter(pk=delivery.pk, status=Status.PENDING, locked_until=delivery.locked_until)
        if ours.update(locked_until=lease):
            delivery.locked_until = lease
            held.append(delivery)
    return held


def park(deliveries: list[Delivery], until: datetime) -> None:
    """Give the claims back without an attempt; the deliveries wait their turn (or, if the chain
    of releases breaks, the sweep at `until`). Only claims still held are touched."""
    _give_back([(delivery, until) for delivery in deliveries], parked=True)


def defer(deliveries: list[tuple[Delivery, datetime]]) -> None:
    """Give claims back without an attempt, each due at its own moment (its turn under its
    subscription's rate limit). Only claims still held are touched."""
    _give_back(deliveries, parked=False)


def _give_back(deliveries: list[tuple[Delivery, datetime]], parked: bool) -> None:
    now = timezone.now()
    parked_at = {"parked_at": now} if parked else {}
    for delivery, until in deliveries:
        Delivery.objects.filter(pk=delivery.pk, locked_until=delivery.locked_until).update(
            locked_until=None, next_attempt_at=until, updated_at=now, **parked_at
        )
        delivery.locked_until, delivery.next_attempt_at = None, until
        if parked:
            delivery.parked_at = now


def release_next(subscription_id: str, excluding: str | None = None) -> str | None:
    """Make the oldest parked delivery of the subscription (other than `excluding`) due now;
    returns its id, if any."""
    now = timezone.now()
    with transaction.atomic():
        parked = Delivery.objects.filter(subscription_id=subscription_id, status=Status.PENDING)
        parked = parked.filter(parked_at__isnull=False)
        if excluding is not None:
            parked = parked.exclude(pk=excluding)
        following = parked.order_by("created_at").select_for_update(skip_locked=True)
        following = following.values_list("pk", flat=True).first()
        if following is not None:
            Delivery.objects.filter(pk=following).update(parked_at=None, next_attempt_at=now, updated_at=now)
    return following


def release_parked(subscription_id: str) -> int:
    """Make every parked delivery of the subscription due now; returns how many there were."""
    now = timezone.now()
    parked = Delivery.objects.filter(subscription_id=subscription_id, status=Status.PENDING, parked_at__isnull=False)
    return parked.update(parked_at=None, next_attempt_at=now, updated_at=now)


def succeed(delivery: Delivery, now: datetime) -> None:
    delivery.status, delivery.next_attempt_at, delivery.last_error = Status.SUCCESS, None, ""
    delivery.locked_until, delivery.parked_at, delivery.updated_at = None, None, now


def retry_at(delivery: Delivery, when: datetime, error: str, now: datetime) -> None:
    delivery.next_attempt_at, delivery.last_error = when, _error(error)
    delivery.locked_until, delivery.parked_at, delivery.updated_at = None, None, now


def fail(delivery: Delivery, error: str, now: datetime) -> None:
    delivery.status, delivery.next_attempt_at, delivery.last_error = Status.FAILED, None, _error(error)
    delivery.locked_until, delivery.parked_at, delivery.updated_at = None, None, now


def write_outcomes(deliveries: list[Delivery], now: datetime) -> None:
    """Store a group of deliveries moved on by succeed/retry_at/fail: the successes in one UPDATE
    (the claim is ours, so the count read with it is still the row's), the others in one more."""
    succeeded = [d.pk for d in deliveries if d.status == Status.SUCCESS]
    others = [d for d in deliveries if d.status != Status.SUCCESS]
    if succeeded:
        _write_successes(succeeded, now)
    if others:
        Delivery.objects.bulk_update(others, OUTCOME_FIELDS)


def _write_successes(delivery_ids: list[str], now: datetime) -> None:
    with sql.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(*successes_update(delivery_ids, now))
            return
        for chunk in sql.chunks(delivery_ids, sql.parameter_limit() - 2):
            text = _successes_statement(f"IN ({sql.in_list(chunk)})")
            cursor.execute(text, [Status.SUCCESS, sql.datetime_param(now), *chunk])


def successes_update(delivery_ids: list[str], now: datetime) -> tuple[str, list]:
    """The UPDATE that stores these claimed deliveries' success, and its parameters (PostgreSQL):
    one text for any number of rows, so it is prepared once; the attempts' log can take it along
    in its INSERT (outcomes.py)."""
    text = sql.statement(("write_successes",), lambda: _successes_statement("= ANY(%s)"))
    return text, [Status.SUCCESS, sql.datetime_param(now), list(delivery_ids)]


def _successes_statement(matching: str) -> str:
    column = {name: sql.column(Delivery, name) for name in ("id", *OUTCOME_FIELDS)}
    cleared = ", ".join(f"{column[name]} = NULL" for name in ("next_attempt_at", "locked_until", "parked_at"))
    return (
        f"UPDATE {sql.table(Delivery)} SET {column['status']} = %s, "
        f"{column['attempt_count']} = {column['attempt_count']} + 1, {cleared}, {column['last_error']} = '', "
        f"{column['updated_at']} = %s WHERE {column['id']} {matching}"
    )


def write_outcome(delivery: Delivery) -> None:
    Delivery.objects.bulk_update([delivery], OUTCOME_FIELDS)


def stop(delivery: Delivery, note: str) -> None:
    """A claimed delivery that must not be sent (its subscription is disabled) fails, saying why."""
    fail(delivery, note, timezone.now())
    write_outcome(delivery)


def stop_pending(subscription_id: str, note: str) -> None:
    """Every delivery still waiting for the subscription fails, saying why (it can be redelivered)."""
    Delivery.objects.filter(subscription_id=subscription_id, status=Status.PENDING).update(
        status=Status.FAILED,
        next_attempt_at=None,
        locked_until=None,
        parked_at=None,
        last_error=_error(note),
        updated_at=timezone.now(),
    )


def note(delivery_id: str, text: str) -> None:
    """Say on a delivery why something happened to it (e.g. the attempt that disabled its subscription)."""
    Delivery.objects.filter(pk=delivery_id).update(last_error=_error(text))


def redeliver(delivery: Delivery) -> None:
    """Start a new round of attempts on the same delivery (same id; attempt numbers continue)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Status.PENDING,
        next_attempt_at=timezone.now(),
        locked_until=None,
        parked_at=None,
        round_started_after=delivery.attempt_count,
        last_error="",
        updated_at=timezone.now(),
    )


def overdue(grace_s: float) -> int:
    """How many deliveries have been claimable for at least `grace_s` (due that long ago, not leased
    to a live worker, not held behind an earlier delivery of an ordered subscription)."""
    now = timezone.now()
    claimable, params = _claimable(now, due_by=now - timedelta(seconds=grace_s))
    return sql.select(f"SELECT COUNT(*) FROM {sql.table(Delivery)} WHERE {claimable}", params)[0][0]


def in_flight_elsewhere(subscription_id: str, excluding: list[str], now: datetime) -> bool:
    """Whether another worker holds a delivery of this subscription right now."""
    return (
        Delivery.objects.filter(subscription_id=subscription_id, status=Status.PENDING, locked_until__gt=now)
        .exclude(pk__in=excluding)
        .exists()
    )

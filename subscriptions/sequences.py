"""Each delivery's `sequence`: a number given when its row is made, increasing per subscription,
the same on every retry, so any receiver can put deliveries back in order or see that one is
missing (retries and parallel workers deliver out of order).

The counter is the subscription's `SequenceCounter` row. Most deliveries are numbered by the
worker that routes their events (subscriptions/routing.py), as it makes them: it locks the counters
of a batch in one order (their ids) and takes a run of numbers from each, so workers routing the
same subscriptions queue for a moment and never deadlock, and numbers are gapless (a rolled-back
routing takes its numbers back with it) and follow the order the events were routed in.

A delivery made in a caller's transaction (a test event: `insert_numbered`) takes its number when
that transaction commits, on PostgreSQL from a deferred trigger (migrations 0012 and 0013), so the
counter's lock is held for the commit only, not to the end of the caller's transaction (with
ATOMIC_REQUESTS, the rest of an API call). The trigger locks the transaction's counters in one
order before taking any, so two commits never deadlock. Elsewhere (SQLite: one writing transaction
at a time) and for operator.select, the numbers are taken as the rows are made (`assign`)."""

from collections import Counter

from django.db import connection

from core import sql

from .models import Delivery, SequenceCounter


def insert_numbered(delivery: Delivery, along_with: tuple[str, list] | None = None) -> None:
    """Insert a new delivery, to take its subscription's next number, and `along_with` (a
    data-modifying statement and its parameters, e.g. the payload's INSERT) with it.

    On PostgreSQL, one statement, and the number is taken when the transaction commits (the
    deferred trigger of migration 0012), so the counter's row lock is held only for the commit
    itself; the statement adds the subscription to the transaction's `hooks.publishing` list, by
    which the trigger locks a transaction's counters in one order. Until the commit `sequence` is
    unset on the row (and stays so on this instance). Elsewhere `along_with` runs first, then the
    number is taken (`assign`) and the row inserted."""
    along_with = along_with or ("", [])
    if connection.vendor != "postgresql":
        if along_with[0]:
            sql.execute(*along_with)
        assign([delivery])
        sql.insert_all([delivery])
        return
    fields = [field for field in Delivery._meta.concrete_fields if field.name != "sequence"]
    # Its values as scalars: psycopg dumps a list of one element at many times a scalar's cost.
    values = [column[0] for column in sql.unnest_values([delivery], fields)]
    text = sql.statement(("insert_numbered", along_with[0]), lambda: _insert(fields, along_with[0]))
    sql.execute(text, [*along_with[1], delivery.subscription_id, *values])
    sql.mark_saved([delivery])


def _insert(fields: list, along_with: str) -> str:
    columns = [sql.quote(field.column) for field in fields]
    return (
        f"WITH {f'along AS ({along_with}), ' if along_with else ''}publishing AS ({publishing('%s::text')}) "
        f"INSERT INTO {sql.table(Delivery)} ({', '.join(columns)}) "
        f"SELECT {', '.join(f'%s::{field.db_type(connection)}' for field in fields)} FROM publishing"
    )


def publishing(subscription_ids: str) -> str:
    """A SELECT adding subscriptions (an SQL expression of their ids, comma-separated) to the
    transaction's `hooks.publishing` list, by which the numbering trigger locks them in one order
    (PostgreSQL). As a CTE that the INSERT reads, it is run once, before the INSERT: a CTE calling
    a volatile function is never inlined. (After the first transaction that set it, the setting
    reads '' in the session, not null: without the nullif, a one-subscription list would begin
    with a comma, and its commit would take the ordered locks that only several counters need.)"""
    return (
        "SELECT set_config('hooks.publishing', "
        f"concat_ws(',', nullif(current_setting('hooks.publishing', true), ''), {subscription_ids}), true)"
    )


def take(subscription_ids: list[str]) -> dict[str, int]:
    """The next number of each subscription (ids may repeat: each occurrence gets its own).

    One upsert per chunk of counters, its rows in id order: PostgreSQL takes the counters' locks
    in the order of the VALUES, so two transactions taking numbers of the same subscriptions queue
    behind each other instead of holding them crosswise (an UPDATE would lock them in the order of
    its scan, and deadlock)."""
    counts = Counter(subscription_ids)
    if not counts:
        return {}
    table = sql.table(SequenceCounter)
    key, last = sql.column(SequenceCounter, "subscription"), sql.column(SequenceCounter, "last_sequence")
    first: dict[str, int] = {}
    for ids in sql.chunks(sorted(counts), sql.parameter_limit() // 2):
        rows = sql.select(
            f"INSERT INTO {table} ({key}, {last}) VALUES {', '.join(['(%s, %s)'] * len(ids))} "
            f"ON CONFLICT ({key}) DO UPDATE SET {last} = {table}.{last} + excluded.{last} RETURNING {key}, {last}",
            [value for subscription_id in ids for value in (subscription_id, counts[subscription_id])],
        )
        first.update({subscription_id: value - counts[subscription_id] for subscription_id, value in rows})
    return first


def assign(deliveries: list[Delivery]) -> None:
    """Give each new delivery (not saved yet) its subscription's next number."""
    first = take([delivery.subscription_id for delivery in deliveries])
    for delivery in deliveries:
        first[delivery.subscription_id] += 1
        delivery.sequence = first[delivery.subscription_id]

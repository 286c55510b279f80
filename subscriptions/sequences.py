"""Each delivery's `sequence`: a number given when its row is made, increasing per subscription,
the same on every retry, so any receiver can put deliveries back in order or see that one is
missing (retries and parallel workers deliver out of order).

The counter is the subscription row's `last_sequence`, taken inside the publishing transaction:
the row lock it takes orders concurrent publishers to one subscription, so numbers are gapless as
committed (a rolled-back transaction takes its numbers back with it). The price: publishers to one
subscription commit one after another from the moment they take their numbers to their commit. So
on PostgreSQL the outbox takes them in the very statement that inserts the deliveries
(`insert_numbered`), the last before the commit: with the numbers taken by a statement of their
own and the INSERT after it, 4 publishers to one subscription committed about 10 % fewer events
(bench/README.md, "Publishing as arrays")."""

from collections import Counter

from django.db import connection

from core import sql

from .models import Delivery, Subscription


def insert_numbered(deliveries: list[Delivery], along_with: tuple[str, list] | None = None) -> None:
    """Insert new deliveries, each with its subscription's next number. On PostgreSQL one
    statement does both (an `UPDATE ... RETURNING` of the counters feeding the INSERT), and takes
    `along_with` (a data-modifying statement and its parameters, e.g. the payload's INSERT) in the
    same statement; elsewhere `along_with` runs first, the numbers are taken (`assign`), then the
    rows inserted."""
    if connection.vendor != "postgresql":
        if along_with:
            sql.execute(*along_with)
        assign(deliveries)
        sql.insert_all(deliveries)
        return
    counts = Counter(delivery.subscription_id for delivery in deliveries)
    ids = sorted(counts)
    if len(ids) > 1:
        _lock_in_order(ids)
    # Each row's distance from its subscription's new last number: the last of them gets it.
    seen: Counter = Counter()
    behind = []
    for delivery in deliveries:
        seen[delivery.subscription_id] += 1
        behind.append(counts[delivery.subscription_id] - seen[delivery.subscription_id])
    fields = [field for field in Delivery._meta.concrete_fields if field.name != "sequence"]
    values = sql.unnest_values(deliveries, fields)
    # One delivery, the most common publish: its values as scalars (psycopg dumps a list of one
    # element at many times a scalar's cost).
    single = len(deliveries) == 1
    text = sql.statement(
        ("insert_numbered", single, bool(along_with)), lambda: _numbered_insert(fields, single, along_with)
    )
    if single:
        params = [ids[0], 1, *(column[0] for column in values), 0]
    else:
        params = [ids, [counts[subscription_id] for subscription_id in ids], *values, behind]
    rows = sql.select(text, (along_with[1] if along_with else []) + params)
    numbers = dict(rows)
    for delivery in deliveries:
        delivery.sequence = numbers[delivery.pk]
    sql.mark_saved(deliveries)


def _numbered_insert(fields: list, single: bool, along_with: tuple[str, list] | None) -> str:
    columns = [sql.quote(field.column) for field in fields]
    table, pk, last = sql.table(Subscription), sql.column(Subscription, "id"), sql.column(Subscription, "last_sequence")
    subscription, sequence = sql.column(Delivery, "subscription"), sql.column(Delivery, "sequence")
    if single:
        types = [field.db_type(connection) for field in fields]
        counted = f"(VALUES (%s::{Subscription._meta.pk.db_type(connection)}, %s::bigint))"
        made = f"(VALUES ({', '.join(f'%s::{t}' for t in types)}, %s::bigint))"
    else:
        counted = f"unnest({_id_array()}, %s::bigint[])"
        made = f"unnest({sql.unnest_arguments(fields)}, %s::bigint[])"
    return (
        (f"WITH along AS ({along_with[0]}), " if along_with else "WITH ")
        + f"taken AS (UPDATE {table} SET {last} = {table}.{last} + counted.n "
        f"FROM {counted} AS counted(id, n) WHERE {table}.{pk} = counted.id "
        f"RETURNING {table}.{pk}, {table}.{last}) "
        f"INSERT INTO {sql.table(Delivery)} ({', '.join(columns)}, {sequence}) "
        f"SELECT {', '.join(f'made.{column}' for column in columns)}, taken.{last} - made.behind "
        f"FROM {made} AS made({', '.join(columns)}, behind) "
        f"JOIN taken ON taken.{pk} = made.{subscription} "
        f"RETURNING {sql.column(Delivery, 'id')}, {sequence}"
    )


def take(subscription_ids: list[str]) -> dict[str, int]:
    """The next number of each subscription (ids may repeat: each occurrence gets its own)."""
    counts = Counter(subscription_ids)
    if not counts:
        return {}
    pk, last = sql.column(Subscription, "id"), sql.column(Subscription, "last_sequence")
    first: dict[str, int] = {}
    # Three parameters per subscription; chunks taken in id order keep the locking order.
    for ids in sql.chunks(sorted(counts), sql.parameter_limit() // 3):
        if len(ids) > 1 and connection.features.has_select_for_no_key_update:
            _lock_in_order(ids)
        increments = " ".join(["WHEN %s THEN %s"] * len(ids))
        rows = sql.update_returning(
            Subscription,
            f"{last} = {last} + CASE {pk} {increments} END",
            f"{pk} IN ({sql.in_list(ids)})",
            [value for subscription_id in ids for value in (subscription_id, counts[subscription_id])] + list(ids),
            returning=f"{pk}, {last}",
        )
        first.update({subscription_id: value - counts[subscription_id] for subscription_id, value in rows})
    return first


def assign(deliveries: list[Delivery]) -> None:
    """Give each new delivery (not saved yet) its subscription's next number."""
    first = take([delivery.subscription_id for delivery in deliveries])
    for delivery in deliveries:
        first[delivery.subscription_id] += 1
        delivery.sequence = first[delivery.subscription_id]


def _lock_in_order(subscription_ids: list[str]) -> None:
    """Lock the subscriptions' rows in one order (their ids), by a statement of its own (PostgreSQL),
    so two transactions publishing to the same subscriptions queue behind each other instead of
    deadlocking: an UPDATE locks rows in its scan order, and one whose WHERE locks them in a
    subquery locks each row twice, against two snapshots, which can deadlock even on one row. NO
    KEY UPDATE is the lock the UPDATE takes anyway (a plain FOR UPDATE would also block the
    key-share locks that workers' attempt rows take on the subscription at commit, their foreign
    key, and deadlock with them)."""
    table, pk = sql.table(Subscription), sql.column(Subscription, "id")
    sql.select(
        f"SELECT {pk} FROM {table} WHERE {pk} = ANY({_id_array()}) ORDER BY {pk} FOR NO KEY UPDATE",
        [sorted(subscription_ids)],
    )


def _id_array() -> str:
    return f"%s::{Subscription._meta.pk.db_type(connection)}[]"

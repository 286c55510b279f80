"""Each delivery's `sequence`: a number given when its row is made, increasing per subscription,
the same on every retry, so any receiver can put deliveries back in order or see that one is
missing (retries and parallel workers deliver out of order).

The counter is the subscription row's `last_sequence`, taken for all of a publish's subscriptions
in one `UPDATE ... RETURNING` (after one statement locking their rows in order, when there are
several) inside the publishing transaction: the row lock it takes orders
concurrent publishers to one subscription, so numbers are gapless as committed (a rolled-back
transaction takes its numbers back with it). The price: publishers to one subscription commit one
after another from the moment they take their numbers, which is why publishing takes them as late
as it can (just before inserting the deliveries)."""

from django.db import connection

from core import sql

from .models import Subscription


def take(subscription_ids: list[str]) -> dict[str, int]:
    """The next number of each subscription (ids may repeat: each occurrence gets its own)."""
    counts: dict[str, int] = {}
    for subscription_id in subscription_ids:
        counts[subscription_id] = counts.get(subscription_id, 0) + 1
    if not counts:
        return {}
    table, pk, last = sql.table(Subscription), sql.column(Subscription, "id"), sql.column(Subscription, "last_sequence")
    ids = sorted(counts)
    if connection.vendor == "postgresql":
        # Arrays rather than one parameter per subscription: a statement of a few parameters is
        # parsed once by psycopg and kept (bench/README.md, publishing cost).
        id_array = f"%s::{Subscription._meta.pk.db_type(connection)}[]"
        if len(ids) > 1:
            # The rows locked first, in one order (their ids), by a statement of its own, so two
            # transactions publishing to the same subscriptions queue behind each other instead of
            # deadlocking: an UPDATE locks rows in its scan order, and one whose WHERE locks them
            # in a subquery locks each row twice, against two snapshots, which can deadlock even
            # on one row. NO KEY UPDATE is the lock the UPDATE takes anyway (a plain FOR UPDATE
            # would also block the key-share locks that workers' attempt rows take on the
            # subscription at commit, their foreign key, and deadlock with them).
            sql.select(f"SELECT {pk} FROM {table} WHERE {pk} = ANY({id_array}) ORDER BY {pk} FOR NO KEY UPDATE", [ids])
        rows = sql.select(
            f"UPDATE {table} SET {last} = {table}.{last} + taken.n FROM unnest({id_array}, %s::bigint[]) "
            f"AS taken(id, n) WHERE {table}.{pk} = taken.id RETURNING {table}.{pk}, {table}.{last}",
            [ids, [counts[subscription_id] for subscription_id in ids]],
        )
        return {subscription_id: value - counts[subscription_id] for subscription_id, value in rows}
    first: dict[str, int] = {}
    # SQLite: three parameters per subscription, in chunks within its parameter limit.
    for chunk in sql.chunks(ids, sql.parameter_limit() // 3):
        increments = " ".join(["WHEN %s THEN %s"] * len(chunk))
        rows = sql.update_returning(
            Subscription,
            f"{last} = {last} + CASE {pk} {increments} END",
            f"{pk} IN ({sql.in_list(chunk)})",
            [value for subscription_id in chunk for value in (subscription_id, counts[subscription_id])] + list(chunk),
            returning=f"{pk}, {last}",
        )
        first.update({subscription_id: value - counts[subscription_id] for subscription_id, value in rows})
    return first


def assign(deliveries) -> None:
    """Give each new delivery (not saved yet) its subscription's next number."""
    first = take([delivery.subscription_id for delivery in deliveries])
    for delivery in deliveries:
        first[delivery.subscription_id] += 1
        delivery.sequence = first[delivery.subscription_id]

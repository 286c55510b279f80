"""Each delivery's `sequence`: a number given when its row is made, increasing per subscription,
the same on every retry, so any receiver can put deliveries back in order or see that one is
missing (retries and parallel workers deliver out of order).

The counter is the subscription row's `last_sequence`, taken for all of a publish's subscriptions
in one `UPDATE ... RETURNING` inside the publishing transaction: the row lock it takes orders
concurrent publishers to one subscription, so numbers are gapless as committed (a rolled-back
transaction takes its numbers back with it)."""

from django.db import connection

from .models import Subscription


def take(subscription_ids: list[str]) -> dict[str, int]:
    """The next number of each subscription (ids may repeat: each occurrence gets its own)."""
    counts: dict[str, int] = {}
    for subscription_id in subscription_ids:
        counts[subscription_id] = counts.get(subscription_id, 0) + 1
    if not counts:
        return {}
    quote = connection.ops.quote_name
    meta = Subscription._meta
    pk, last = quote(meta.pk.column), quote(meta.get_field("last_sequence").column)
    taken: dict[str, int] = {}
    with connection.cursor() as cursor:
        # One statement per distinct count: a publish takes one number per subscription.
        for count in sorted(set(counts.values())):
            ids = [subscription_id for subscription_id, n in counts.items() if n == count]
            cursor.execute(
                f"UPDATE {quote(meta.db_table)} SET {last} = {last} + %s "
                f"WHERE {pk} IN ({', '.join(['%s'] * len(ids))}) RETURNING {pk}, {last}",
                [count, *ids],
            )
            taken.update({subscription_id: value - count for subscription_id, value in cursor.fetchall()})
    return taken


def assign(deliveries) -> None:
    """Give each new delivery (not saved yet) its subscription's next number."""
    first = take([delivery.subscription_id for delivery in deliveries])
    for delivery in deliveries:
        first[delivery.subscription_id] += 1
        delivery.sequence = first[delivery.subscription_id]

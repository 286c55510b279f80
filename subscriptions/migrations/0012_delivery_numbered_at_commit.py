"""On PostgreSQL a delivery inserted without a `sequence` takes its number when its transaction
commits, from a deferred trigger (subscriptions/sequences.py says why)."""

from django.db import migrations

NUMBER_AT_COMMIT = """
CREATE FUNCTION subscriptions_number_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The deliveries this transaction published, in publish order (subscriptions.sequences keeps
    -- the list in `hooks.unnumbered`); the first firing at the commit takes the list.
    listed text := nullif(current_setting('hooks.unnumbered', true), '');
    unnumbered text[];
    taken bigint;
BEGIN
    IF listed IS NULL OR listed = NEW.id THEN
        -- This row alone: the transaction's only delivery, or one that a first firing numbered
        -- already (then nothing changes), or one inserted some other way than by publishing.
        IF listed IS NOT NULL THEN
            PERFORM set_config('hooks.unnumbered', '', true);
        END IF;
        UPDATE subscriptions_subscription SET last_sequence = last_sequence + 1
        WHERE id = NEW.subscription_id
          AND EXISTS (SELECT 1 FROM subscriptions_delivery WHERE id = NEW.id AND sequence IS NULL)
        RETURNING last_sequence INTO taken;
        IF FOUND THEN
            UPDATE subscriptions_delivery SET sequence = taken WHERE id = NEW.id;
        END IF;
        RETURN NULL;
    END IF;
    -- Several: all of them in one statement, this row with them if it was inserted some other way.
    PERFORM set_config('hooks.unnumbered', '', true);
    unnumbered := string_to_array(listed || ',' || NEW.id, ',');
    -- Their counters are locked in one order (their ids) before any is taken, so two commits
    -- never wait for each other's locks crosswise.
    PERFORM 1 FROM subscriptions_subscription
    WHERE id IN (SELECT subscription_id FROM subscriptions_delivery WHERE id = ANY(unnumbered) AND sequence IS NULL)
    ORDER BY id FOR NO KEY UPDATE;
    WITH listing AS (
        SELECT delivery.id, delivery.subscription_id,
               row_number() OVER (PARTITION BY delivery.subscription_id ORDER BY entry.position) AS place
        FROM (SELECT id, min(position) AS position
              FROM unnest(unnumbered) WITH ORDINALITY AS listed(id, position) GROUP BY id) AS entry
        JOIN subscriptions_delivery delivery ON delivery.id = entry.id
        WHERE delivery.sequence IS NULL
    ), counters AS (
        UPDATE subscriptions_subscription subscription
        SET last_sequence = subscription.last_sequence + counted.count
        FROM (SELECT subscription_id, count(*) AS count FROM listing GROUP BY subscription_id) AS counted
        WHERE subscription.id = counted.subscription_id
        RETURNING subscription.id, subscription.last_sequence - counted.count AS before
    )
    UPDATE subscriptions_delivery delivery SET sequence = counters.before + listing.place
    FROM listing JOIN counters ON counters.id = listing.subscription_id
    WHERE delivery.id = listing.id;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER subscriptions_delivery_numbered
AFTER INSERT ON subscriptions_delivery DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (NEW.sequence IS NULL) EXECUTE FUNCTION subscriptions_number_delivery();
"""

DROP = """
DROP TRIGGER IF EXISTS subscriptions_delivery_numbered ON subscriptions_delivery;
DROP FUNCTION IF EXISTS subscriptions_number_delivery();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NUMBER_AT_COMMIT)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0011_ordering_and_rate_limit")]

    operations = [migrations.RunPython(forwards, backwards)]

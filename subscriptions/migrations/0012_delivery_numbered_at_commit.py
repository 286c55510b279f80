"""On PostgreSQL a delivery inserted without a `sequence` takes its number when its transaction
commits, from a deferred trigger (subscriptions/sequences.py says why)."""

from django.db import migrations

NUMBER_AT_COMMIT = """
CREATE FUNCTION subscriptions_number_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    taken bigint;
BEGIN
    -- The first delivery numbered at this commit locks every counter the transaction published
    -- to (the list subscriptions.sequences keeps in `hooks.publishing`), in one order, so that
    -- two commits never wait for each other's locks crosswise.
    -- (One subscription, the most common commit, needs no order: its UPDATE below locks it.)
    IF current_setting('hooks.counters_locked', true) IS DISTINCT FROM 'yes' THEN
        IF position(',' IN current_setting('hooks.publishing', true)) > 0 THEN
            PERFORM 1 FROM subscriptions_subscription
            WHERE id = ANY(string_to_array(current_setting('hooks.publishing', true), ','))
            ORDER BY id FOR NO KEY UPDATE;
        END IF;
        PERFORM set_config('hooks.counters_locked', 'yes', true);
    END IF;
    UPDATE subscriptions_subscription SET last_sequence = last_sequence + 1
    WHERE id = NEW.subscription_id RETURNING last_sequence INTO taken;
    UPDATE subscriptions_delivery SET sequence = taken WHERE id = NEW.id;
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

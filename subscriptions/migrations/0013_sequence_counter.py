"""Each subscription's delivery counter moves from its row to a `SequenceCounter` row of its own
(the model says why), and the numbering trigger of migration 0012 takes its numbers there: it
makes a subscription's counter at its first delivery, and before locking a transaction's counters
in one order it makes those missing, in the same order."""

import django.db.models.deletion
from django.db import migrations, models

NUMBER_FROM_COUNTERS = """
CREATE OR REPLACE FUNCTION subscriptions_number_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    taken bigint;
BEGIN
    -- The first delivery numbered at this commit locks every counter the transaction published
    -- to (the list subscriptions.sequences keeps in `hooks.publishing`), in one order, so that
    -- two commits never wait for each other's locks crosswise; those not made yet are made first,
    -- in the same order (a commit waits for another's new counter as for a lock).
    -- (One subscription, the most common commit, needs no order: its UPDATE below locks it.)
    IF current_setting('hooks.counters_locked', true) IS DISTINCT FROM 'yes' THEN
        IF position(',' IN current_setting('hooks.publishing', true)) > 0 THEN
            INSERT INTO subscriptions_sequencecounter (subscription_id, last_sequence)
            SELECT DISTINCT id, 0 FROM unnest(string_to_array(current_setting('hooks.publishing', true), ',')) AS id
            ORDER BY id ON CONFLICT (subscription_id) DO NOTHING;
            PERFORM 1 FROM subscriptions_sequencecounter
            WHERE subscription_id = ANY(string_to_array(current_setting('hooks.publishing', true), ','))
            ORDER BY subscription_id FOR NO KEY UPDATE;
        END IF;
        PERFORM set_config('hooks.counters_locked', 'yes', true);
    END IF;
    UPDATE subscriptions_sequencecounter SET last_sequence = last_sequence + 1
    WHERE subscription_id = NEW.subscription_id RETURNING last_sequence INTO taken;
    IF NOT FOUND THEN
        INSERT INTO subscriptions_sequencecounter AS counter (subscription_id, last_sequence)
        VALUES (NEW.subscription_id, 1)
        ON CONFLICT (subscription_id) DO UPDATE SET last_sequence = counter.last_sequence + 1
        RETURNING last_sequence INTO taken;
    END IF;
    UPDATE subscriptions_delivery SET sequence = taken WHERE id = NEW.id;
    RETURN NULL;
END $$;
"""

NUMBER_FROM_SUBSCRIPTIONS = """
CREATE OR REPLACE FUNCTION subscriptions_number_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    taken bigint;
BEGIN
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
"""


def counters_from_subscriptions(apps, schema_editor):
    Subscription = apps.get_model("subscriptions", "Subscription")
    SequenceCounter = apps.get_model("subscriptions", "SequenceCounter")
    counted = Subscription.objects.filter(last_sequence__gt=0).values_list("pk", "last_sequence")
    SequenceCounter.objects.bulk_create(
        [SequenceCounter(subscription_id=pk, last_sequence=last) for pk, last in counted.iterator()], batch_size=1000
    )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NUMBER_FROM_COUNTERS)


def subscriptions_from_counters(apps, schema_editor):
    Subscription = apps.get_model("subscriptions", "Subscription")
    SequenceCounter = apps.get_model("subscriptions", "SequenceCounter")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NUMBER_FROM_SUBSCRIPTIONS)
    for pk, last in SequenceCounter.objects.values_list("subscription_id", "last_sequence").iterator():
        Subscription.objects.filter(pk=pk).update(last_sequence=last)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0012_delivery_numbered_at_commit")]

    operations = [
        migrations.CreateModel(
            name="SequenceCounter",
            fields=[
                (
                    "subscription",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="sequence_counter",
                        serialize=False,
                        to="subscriptions.subscription",
                    ),
                ),
                ("last_sequence", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(counters_from_subscriptions, subscriptions_from_counters),
        migrations.RemoveField(model_name="subscription", name="last_sequence"),
    ]

"""The outbox's copies of an ancestor's id lose their database constraints (subscriptions/models.py
says why); their indexes stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0013_sequence_counter'),
        ('support', '0004_request_routing_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='attempt',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='support.project'),
        ),
        migrations.AlterField(
            model_name='attempt',
            name='subscription',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='subscriptions.subscription'),
        ),
        migrations.AlterField(
            model_name='delivery',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='support.project'),
        ),
        migrations.AlterField(
            model_name='eventpayload',
            name='project',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='support.project'),
        ),
    ]

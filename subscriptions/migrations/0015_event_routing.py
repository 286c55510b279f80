"""A published event waits in its payload row, with the names it was published under, until a
worker routes it (subscriptions/routing.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0014_outbox_copies_unconstrained'),
        ('support', '0004_request_routing_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='eventpayload',
            name='names',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='eventpayload',
            name='published_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='eventpayload',
            index=models.Index(condition=models.Q(('names__isnull', False)), fields=['published_at', 'id'], name='eventpayload_unrouted_idx'),
        ),
    ]

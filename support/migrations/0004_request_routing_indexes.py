"""Indexes for routing, which reads a project's open conversations and its most recently changed
ones for every new conversation."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0003_tiledesk_status_numbers_and_lead_id"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="request",
            index=models.Index(fields=["project", "status"], name="request_status_idx"),
        ),
        migrations.AddIndex(
            model_name="request",
            index=models.Index(fields=["project", "-updated_at", "-id"], name="request_recency_idx"),
        ),
    ]

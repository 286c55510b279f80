"""A request's `status` becomes Tiledesk's number; a lead gets its `lead_id`."""

import uuid

from django.db import migrations, models

import support.ids

NUMBERS = {"open": "50", "pooled": "100", "assigned": "200", "closed": "1000"}


def status_names_to_numbers(apps, schema_editor):
    Request = apps.get_model("support", "Request")
    for name, number in NUMBERS.items():
        Request.objects.filter(status=name).update(status=number)


def status_numbers_to_names(apps, schema_editor):
    Request = apps.get_model("support", "Request")
    for name, number in NUMBERS.items():
        Request.objects.filter(status=number).update(status=name)


def give_each_lead_its_own_lead_id(apps, schema_editor):
    """AddField gave every existing lead the same default; each requester needs its own."""
    Lead = apps.get_model("support", "Lead")
    for pk in Lead.objects.values_list("pk", flat=True).iterator():
        Lead.objects.filter(pk=pk).update(lead_id=str(uuid.uuid4()))


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0002_project_deleted_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="lead",
            name="lead_id",
            field=models.CharField(default=support.ids.new_lead_id, max_length=200),
        ),
        migrations.RunPython(give_each_lead_its_own_lead_id, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(fields=["project", "lead_id"], name="lead_by_lead_id"),
        ),
        migrations.RunPython(status_names_to_numbers, status_numbers_to_names),
        migrations.AlterField(
            model_name="request",
            name="status",
            field=models.PositiveSmallIntegerField(
                choices=[(50, "temp (not routed yet)"), (100, "unassigned (pooled)"), (200, "assigned"), (1000, "closed")],
                db_index=True,
                default=50,
            ),
        ),
    ]

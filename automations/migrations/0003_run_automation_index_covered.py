import django.db.models.deletion
from django.db import migrations, models


def drop_run_pattern_indexes(apps, schema_editor):
    """PostgreSQL's varchar_pattern_ops ("_like") indexes beside the run table's id columns serve
    LIKE 'prefix%' lookups, which nothing makes; a run row is written on every call of an
    automation's URL, and each index is one more write (bench/automations.py)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'automations_run' "
            "AND indexdef LIKE '%%varchar_pattern_ops%%'"
        )
        names = [name for (name,) in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0002_run_running_since"),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="automation",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="runs",
                to="automations.automation",
            ),
        ),
        migrations.RunPython(drop_run_pattern_indexes, migrations.RunPython.noop),
    ]

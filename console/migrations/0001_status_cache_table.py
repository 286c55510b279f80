"""The database cache table that holds django-q2's cluster status with the ORM broker (settings:
CACHES["django_q"]), made by migrate so that the two README commands need no extra step."""

from django.core.management import call_command
from django.db import migrations

TABLE = "hooks_status_cache"


def create_table(apps, schema_editor):
    call_command("createcachetable", TABLE, database=schema_editor.connection.alias, verbosity=0)


def drop_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(create_table, drop_table)]

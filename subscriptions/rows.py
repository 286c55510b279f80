"""Writing whole new rows in one plain INSERT, on the hot paths: the outbox and automation runs.

Publishing (inside every domain write), logging attempts (once per group of results in the
worker) and writing a run row (once per call of an automation's URL) happen on every event or
call. `QuerySet.bulk_create` and `Model.save` spend most of their CPU building the statement:
about 0.3 ms per statement plus per-field work for each row, against 0.05 ms here (cProfile and
py-spy of bench/throughput.py; bench/README.md, "Third session"). The rows are still model
instances with their defaults applied by Django, and every value goes through its field's
`pre_save` and `get_db_prep_save`, as bulk_create does, so both backends store exactly what the
ORM would. Like bulk_create, no model signals are sent."""

from collections.abc import Sequence

from django.db import connection, models


def insert_all(objs: Sequence[models.Model]) -> None:
    """INSERT new instances of one model, in as few statements as the backend's parameter limit
    allows (SQLite takes 999 parameters a statement, PostgreSQL 65,535)."""
    if not objs:
        return
    meta = objs[0]._meta
    fields = meta.concrete_fields
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    size = max(1, connection.ops.bulk_batch_size(fields, objs))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), size):
            chunk = objs[start : start + size]
            params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in chunk for f in fields]
            cursor.execute(head + ", ".join([placeholders] * len(chunk)), params)
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias

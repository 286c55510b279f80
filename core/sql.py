"""The project's few statements in plain SQL, and what they need, in one place.

The ORM writes every other query. These are on hot paths (the outbox written in every domain
write, the worker's claim, attempt rows, run rows, the purge), where the ORM's query builder costs
more CPU than the statement (bench/README.md), or where the ORM has no form for them: an UPDATE
that returns the rows it changed is how a worker learns which rows it owns, even when another
worker claims some of the same ones at the same moment.

Both backends take `UPDATE ... RETURNING`: PostgreSQL, and SQLite from 3.35 (checked at start-up,
`check_sqlite_version`). Statements with many parameters are cut to the backend's limit."""

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connection, connections, models

SQLITE_MIN = (3, 35, 0)
# SQLite's default SQLITE_MAX_VARIABLE_NUMBER before 3.32 was 999; PostgreSQL takes 65,535.
_PARAMETER_LIMIT = {"sqlite": 999, "postgresql": 65535}


def check_sqlite_version(engine: str) -> None:
    """Refuse to start on a SQLite without `RETURNING` (the claim depends on it)."""
    if engine.endswith("sqlite3") and sqlite3.sqlite_version_info < SQLITE_MIN:
        raise ImproperlyConfigured(
            f"SQLite {sqlite3.sqlite_version} is too old: {'.'.join(map(str, SQLITE_MIN))} or later is needed "
            "(UPDATE ... RETURNING)."
        )


_statements: dict[tuple, str] = {}


def statement(key: tuple, build: Callable[[], str]) -> str:
    """A statement's text, built once per backend and `key`: the hot paths' texts do not change
    between calls, and building them again (quoting names, asking fields for their column types)
    was a tenth of a publish's CPU."""
    key = (connection.vendor, *key)
    text = _statements.get(key)
    if text is None:
        text = _statements[key] = build()
    return text


def parameter_limit() -> int:
    return _PARAMETER_LIMIT.get(connection.vendor, 999)


def chunks(values: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(values), max(1, size)):
        yield values[start : start + size]


def table(model: type[models.Model]) -> str:
    return quote(model._meta.db_table)


def column(model: type[models.Model], field: str) -> str:
    return quote(model._meta.get_field(field).column)


def in_list(values: Sequence) -> str:
    """`%s, %s, ...` for an IN (...) of these values."""
    return ", ".join(["%s"] * len(values))


def literal(value: bool | str) -> str:
    """A constant of a statement's text, for a value that never changes between its runs (a
    status, a flag), where a parameter would hide it from the planner of a prepared statement.
    Only plain words: never a value that comes from a request."""
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if connection.vendor == "postgresql" else str(int(value))
    if not value.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"not a plain word: {value!r}")
    return f"'{value}'"


def datetime_param(value) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def cursor():
    """A cursor for this module's statements. On PostgreSQL it binds parameters on the server, so
    a statement run again is prepared once per connection (`prepare_threshold`, settings.py) and
    PostgreSQL stops parsing and planning it: Django's own cursors merge every value into the
    statement's text in Python (client-side binding), which was a third of a publish's CPU, and a
    text that changes with its values can never be prepared. The ORM's queries keep Django's."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or db.settings_dict["OPTIONS"].get("server_side_binding"):
        return db.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        # What BaseDatabaseWrapper.cursor does, with this cursor class instead of create_cursor's.
        return db._prepare_cursor(ServerBindingCursor(db.connection))


def execute(sql: str, params: Sequence) -> None:
    with cursor() as cursor_:
        cursor_.execute(sql, params)


def select(sql: str, params: Sequence) -> list[tuple]:
    with cursor() as cursor_:
        cursor_.execute(sql, params)
        return [tuple(row) for row in cursor_.fetchall()]


def update_returning(
    model: type[models.Model], assignments: str, where: str, params: Sequence, returning: str = "id"
) -> list[tuple]:
    """`UPDATE <table> SET <assignments> WHERE <where> RETURNING <returning columns>`: the rows
    this statement changed, and only those."""
    sql = f"UPDATE {table(model)} SET {assignments} WHERE {where} RETURNING {returning}"
    return select(sql, params)


def delete_ids(model: type[models.Model], ids: Sequence) -> None:
    """DELETE rows by primary key without Django's cascade collector (which loads every row
    first): for rows chosen because nothing refers to them any more."""
    pk = quote(model._meta.pk.column)
    with cursor() as cursor_:
        for chunk in chunks(ids, parameter_limit()):
            cursor_.execute(f"DELETE FROM {table(model)} WHERE {pk} IN ({in_list(chunk)})", chunk)


def insert_all(objs: Sequence[models.Model], along_with: tuple[str, Sequence] | None = None) -> None:
    """INSERT new instances of one model in one plain statement (or as few as the parameter limit
    allows). `QuerySet.bulk_create` and `Model.save` spend most of their CPU building the statement:
    about 0.3 ms per statement plus per-field work for each row, against 0.05 ms here (cProfile and
    py-spy of bench/throughput.py). The rows are still model instances with their defaults applied
    by Django, and every value goes through its field's `pre_save` and `get_db_prep_save`, as
    bulk_create does, so both backends store exactly what the ORM would. Like bulk_create, no
    model signals are sent.

    On PostgreSQL several rows go as one array per column (`unnest`): the statement's text is then
    the same for any number of rows and has one parameter per column, so psycopg parses it once
    and keeps it (it caches statements of up to 50 parameters; a VALUES list of 20 deliveries has
    320, and parsing it again each time was a sixth of a publish). The arrays go in binary
    (`unnest_arguments`): in text, psycopg escaped every element in Python, and rows with long
    text (attempts' bodies) then cost more as arrays than as VALUES; in binary, 50 attempt rows
    took 4.2-4.6 ms of client CPU against 7.5-11.3 ms as VALUES.

    `along_with` (PostgreSQL): a data-modifying statement and its parameters, made part of this
    one as a WITH clause, so the two take effect together without a transaction of their own (a
    BEGIN and a COMMIT fewer); the rows must then fit one statement (`fits_one_insert`)."""
    if not objs:
        return
    if along_with and not fits_one_insert(objs):
        raise ValueError("rows joined with another statement must fit one statement")
    prefix, prefix_params = (f"WITH along AS ({along_with[0]}) ", list(along_with[1])) if along_with else ("", [])
    meta = objs[0]._meta
    fields = meta.concrete_fields
    db = connections[DEFAULT_DB_ALIAS]
    with cursor() as cursor_:
        if db.vendor == "postgresql" and len(objs) > 1:
            arrays = statement(
                ("unnest", meta.label),
                lambda: f"{_insert_head(meta)} SELECT * FROM unnest({unnest_arguments(fields)})",
            )
            cursor_.execute(prefix + arrays, prefix_params + unnest_values(objs, fields))
        else:
            size = max(1, min(db.ops.bulk_batch_size(fields, objs), parameter_limit() // len(fields)))
            for chunk in chunks(objs, size):
                text, params = values_insert(chunk)
                cursor_.execute(prefix + text, prefix_params + params)
    mark_saved(objs)


def values_insert(objs: Sequence[models.Model]) -> tuple[str, list]:
    """`INSERT ... VALUES` of these rows as one statement, and its parameters (for another
    statement to take along as a WITH clause, on PostgreSQL, the rows must fit one statement)."""
    meta, db = objs[0]._meta, connections[DEFAULT_DB_ALIAS]
    fields = meta.concrete_fields
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    text = statement(
        ("values_insert", meta.label, len(objs)),
        lambda: f"{_insert_head(meta)} VALUES {', '.join([placeholders] * len(objs))}",
    )
    columns = [_column(f, objs, db) for f in fields]
    return text, [column[row] for row in range(len(objs)) for column in columns]


def _insert_head(meta) -> str:
    return f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in meta.concrete_fields)})"


def fits_one_insert(objs: Sequence[models.Model]) -> bool:
    """Whether `insert_all` writes these rows in one statement, on PostgreSQL."""
    return connection.vendor == "postgresql" and len(objs) * len(objs[0]._meta.concrete_fields) <= parameter_limit()


def unnest_arguments(fields: Sequence[models.Field]) -> str:
    """The arguments of a PostgreSQL `unnest(...)` of rows of these fields: one typed array
    parameter per field (the values: `unnest_values`), sent in binary (`%b`): psycopg writes a
    text array by escaping each element with a regular expression, a binary one by copying it
    (20 deliveries' arrays: 0.71 ms against 0.20 ms)."""
    return ", ".join(f"%b::{field.db_type(connection)}[]" for field in fields)


def unnest_values(objs: Sequence[models.Model], fields: Sequence[models.Field]) -> list[list]:
    db = connections[DEFAULT_DB_ALIAS]
    return [_column(field, objs, db) for field in fields]


def json_value(value: Any) -> Any:
    """A JSON column read by a plain statement: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def mark_saved(objs: Sequence[models.Model]) -> None:
    """What Django records on instances it has inserted."""
    for obj in objs:
        obj._state.adding, obj._state.db = False, connection.alias


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(field: models.Field, objs: Sequence[models.Model], db) -> list:
    """The field's database values for these rows. The rows of one write mostly share their values
    (the same project, payload, status and moment), so a value that is the very object of the row
    before is prepared once."""
    values: list = []
    previous: object = values  # no field's value is this list
    prepared = None
    for obj in objs:
        value = field.pre_save(obj, add=True)
        if value is not previous:
            previous, prepared = value, field.get_db_prep_save(value, db)
        values.append(prepared)
    return values


class Rows:
    """Instances of a model made from the columns of a plain SELECT, as the ORM makes them: every
    concrete field, in the model's order, through the backend's and the field's converters. For
    the worker's load of what it claimed, a statement joining three tables that the ORM took
    about a millisecond of CPU to build and read (select_related + in_bulk)."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = model._meta.concrete_fields
        self._converters: dict[str, list[list[tuple]]] = {}

    def columns(self, alias: str) -> str:
        """The select list of every field, from the table named `alias` in the statement."""
        return ", ".join(f"{alias}.{quote(field.column)}" for field in self.fields)

    def make(self, values: Sequence) -> models.Model:
        """An instance from this model's part of a row (`len(self.fields)` values, in order)."""
        db = connections[DEFAULT_DB_ALIAS]
        converters = self._converters.get(db.vendor)
        if converters is None:
            converters = self._converters[db.vendor] = [self._field_converters(field, db) for field in self.fields]
        converted = list(values)
        for index, functions in enumerate(converters):
            for convert, column in functions:
                converted[index] = convert(converted[index], column, db)
        return self.model.from_db(db.alias, None, converted)

    def _field_converters(self, field: models.Field, db) -> list:
        column = field.get_col(self.model._meta.db_table)
        return [(convert, column) for convert in db.ops.get_db_converters(column) + column.get_db_converters(db)]

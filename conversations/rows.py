"""Rows of the hot paths read and written by fixed SQL, as model instances.

Building a query through the ORM costs more CPU than the database round trip it makes (a
``select_related`` of the conversation and its model: ~1-3 ms of compiling per call). The few
statements every turn runs are written out once here, from the models' own metadata, so a
column added to a model is picked up without touching them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.db.models import Model
from psycopg.types.json import Json, Jsonb

M = TypeVar("M", bound=Model)


@cache
def columns(model: type[Model], alias: str, fields: tuple[str, ...] | None = None) -> str:
    """``alias."column", …`` for every concrete field of ``model`` in ``_meta`` order, or for
    the ``fields`` named (attribute names), in that order."""
    return ", ".join(f'{alias}."{field.column}"' for field in _fields(model, fields))


def _fields(model: type[Model], names: tuple[str, ...] | None) -> list[Any]:
    if names is None:
        return list(model._meta.concrete_fields)
    by_name = {field.attname: field for field in model._meta.concrete_fields}
    return [by_name[name] for name in names]


def instance(model: type[M], values: Sequence[Any], fields: tuple[str, ...] | None = None) -> M:
    """A model instance from the values of :func:`columns` (with the same ``fields``: the
    others are deferred, loaded if ever read), as the ORM would build it."""
    names, converters = _conversion(model, connection.alias, fields)
    converted = list(values)
    for index, field, field_converters in converters:
        value = converted[index]
        for converter in field_converters:
            value = converter(value, field, connection)
        converted[index] = value
    return model.from_db(connection.alias, names, converted)


@cache
def _conversion(
    model: type[Model], alias: str, names: tuple[str, ...] | None
) -> tuple[list[str], list[tuple[int, Any, list[Any]]]]:
    """The attribute names of :func:`columns`, and the database converters of the fields that
    have any (most have none): looked up once per model and field list."""
    fields = _fields(model, names)
    converters = [
        (index, field, found)
        for index, field in enumerate(fields)
        if (found := field.get_db_converters(connection))
    ]
    return [field.attname for field in fields], converters


def split(row: Sequence[Any], *models: type[Model]) -> list[Model]:
    """One row of ``columns(A), columns(B), …`` as instances of A, B, …"""
    result: list[Model] = []
    start = 0
    for model in models:
        width = len(model._meta.concrete_fields)
        result.append(instance(model, row[start : start + width]))
        start += width
    return result


def insert_sql(objects: Sequence[Model], *, where: str = "") -> tuple[str, list[Any]]:
    """One INSERT of new, unsaved instances of one model whose primary key is set on the
    instance (a UUID): ``auto_now``/``auto_now_add`` fields are filled here. With ``where``
    the rows go in only if that SQL condition holds (``INSERT … SELECT … WHERE``), so the
    statement can sit in a larger one: then the rows travel as ONE parameter, a JSON array
    read back as rows of the table (``jsonb_populate_recordset``), and the SQL is the same
    for any number of rows (short, few parameters: psycopg and PostgreSQL keep its parse)."""
    model = type(objects[0])
    fields = model._meta.concrete_fields
    values: list[Any] = []
    for obj in objects:
        for field in fields:
            value = field.pre_save(obj, add=True)
            values.append(field.get_db_prep_save(value, connection))
        obj._state.adding = False
        obj._state.db = connection.alias
    if not where:
        names = ", ".join(f'"{field.column}"' for field in fields)
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        head = f'INSERT INTO "{model._meta.db_table}" ({names}) '
        return head + "VALUES " + ", ".join([one] * len(objects)), values
    width = len(fields)
    records = [
        {
            field.column: _as_json(value)
            for field, value in zip(fields, values[i : i + width], strict=True)
        }
        for i in range(0, len(values), width)
    ]
    return _insert_where_sql(model, where), [Jsonb(records)]


@cache
def _insert_where_sql(model: type[Model], where: str) -> str:
    table = model._meta.db_table
    names = ", ".join(f'"{field.column}"' for field in model._meta.concrete_fields)
    return (
        f'INSERT INTO "{table}" ({names}) SELECT {names}'  # noqa: S608 - names from _meta
        f' FROM jsonb_populate_recordset(NULL::"{table}", %s) AS new_rows WHERE {where}'
    )


def _as_json(value: Any) -> Any:
    """A column's database value (``get_db_prep_save``) as JSON that PostgreSQL reads back as
    that value: text for timestamps, UUIDs and decimals, the document of a JSON column."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Json | Jsonb):  # a JSON column's value, wrapped by Django for psycopg
        return value.obj
    raise TypeError(f"no JSON form for a column value of type {type(value).__name__}")


def server_bound_cursor() -> CursorWrapper:
    """Django's cursor (its errors, thread checks and query log) over a psycopg cursor with
    server-side binding, whose statements are prepared on their first run on each connection.

    Django turns psycopg's prepared statements off (``prepare_threshold=None``, for
    transaction-mode poolers such as PgBouncer; this deployment has none). Its own cursors
    bind client-side and are never prepared whatever the threshold, so setting it on the
    connection changes nothing but the statements run through this cursor (admission,
    settlement, the reply's checkpoints): they are planned once per connection, and their
    values (a reply's whole text) travel as parameters instead of being quoted into the SQL.
    """
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = 0
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        cursor = psycopg.Cursor(raw)
    if connection.queries_logged:
        return CursorDebugWrapper(cursor, connection)
    return CursorWrapper(cursor, connection)

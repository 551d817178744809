"""Writing many new rows at once: PostgreSQL's COPY rather than INSERTs.

`bulk_create()` on PostgreSQL sends each column as an array, which psycopg escapes character by
character in Python: for rows that carry JSON (an item's facts, an audit event's before and
after) that is most of the time of a launch or a bulk decision. COPY takes the same rows
several times faster. SQLite (the demo) gets `bulk_create()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial

from django.db import connection, models
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL

# PostgreSQL keeps jsonb in its own form, whatever the spacing it was sent with, and the rows
# are new objects that hold no cycles: without the spaces and the cycle check, JSON is encoded
# a tenth faster and sent shorter.
# A JSON field's text as `insert` sends it; `new(encoded=...)` takes text made by it.
encode_json = partial(json.dumps, separators=(",", ":"), check_circular=False)


def new(
    model: type[models.Model],
    values: dict,
    related: dict | None = None,
    encoded: dict[str, str] | None = None,
) -> models.Model:
    """An unsaved instance of `model` for `insert`: `values` by attribute name (`campaign_id`,
    not `campaign`), the defaults of the other fields, and `related` objects already at hand
    cached by field name. Nothing is checked: `Model.__init__` goes through each field's
    descriptor and default, which costs more than the rest of an item of a launch.

    `encoded`: the JSON text of JSON fields already encoded (by attribute name), which `insert`
    sends as it is rather than encoding the field's value again."""
    obj = model.__new__(model)
    obj._state = ModelState()
    row = obj.__dict__
    for attname, default, call in _defaults(model):
        row[attname] = default() if call else default
    row.update(values)
    if related:
        obj._state.fields_cache.update(related)
    if encoded:
        row[_ENCODED] = encoded
    return obj


_ENCODED = "_bulk_encoded_json"


_DEFAULTS: dict[type[models.Model], list[tuple[str, object, bool]]] = {}


def _defaults(model: type[models.Model]) -> list[tuple[str, object, bool]]:
    """Each concrete field's attribute and default: a callable default (uuid4, dict) is called
    for each instance, any other is the field's own value, worked out once."""
    if model not in _DEFAULTS:
        _DEFAULTS[model] = [
            (field.attname, field.default, True)
            if field.has_default() and callable(field.default)
            else (field.attname, field.get_default(), False)
            for field in model._meta.concrete_fields
        ]
    return _DEFAULTS[model]


def id_array(pks: list[int]):
    """Ids for `pk__in`: on PostgreSQL one array rather than a placeholder for each (psycopg
    parses a query of 10,000 placeholders for longer than PostgreSQL takes to run it)."""
    if connection.vendor != "postgresql":
        return pks
    return RawSQL("SELECT unnest(%s::bigint[])", [pks])


_NOTHING: dict = {}


def _no_query_during_copy(execute, sql, params, many, context):
    raise RuntimeError(f"a query while rows are copied in, which would wait forever: {sql[:200]}")


def _json(value, text: str | None):
    """A JSON field's value for COPY: its text, encoded already or now (COPY's text format
    takes jsonb as its text)."""
    return text if text is not None else encode_json(value)


def insert(
    model: type[models.Model], objects: Iterable[models.Model], *, ids: bool = False
) -> None:
    """Insert new instances of `model`. With `ids`, they get their ids first, in their order,
    from the table's own sequence (their order is then the order of their ids); without, they
    are left without (nobody reads them back), and `objects` may be made as they are written:
    PostgreSQL takes each row in while the next is made."""
    if ids or connection.vendor != "postgresql":
        objects = list(objects)
        if not objects:
            return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=1000)
        return
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    fields = [field for field in meta.concrete_fields if ids or not field.primary_key]
    names = [field.attname for field in fields]
    json_fields = {field.attname for field in fields if isinstance(field, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    alias = connection.alias  # read through Django's connection proxy: once, not once a row
    with connection.cursor() as cursor:
        if ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) "
                "FROM generate_series(1, %s) ORDER BY 1",
                [meta.db_table, meta.pk.column, len(objects)],
            )
            for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
                obj.pk = pk
        # The table and columns are the model's own, not input. While COPY runs, the
        # connection takes no other query: one made by whatever makes `objects` is refused
        # rather than left waiting for the COPY, which waits for it.
        with (
            connection.execute_wrapper(_no_query_during_copy),
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for obj in objects:
                row = obj.__dict__
                encoded = row.get(_ENCODED, _NOTHING)
                copy.write_row(
                    [
                        _json(row[name], encoded.get(name))
                        if name in json_fields and row[name] is not None
                        else row[name]
                        for name in names
                    ]
                )
                obj._state.adding = False
                obj._state.db = alias

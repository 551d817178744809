"""Writing many new rows at once: PostgreSQL's COPY rather than INSERTs.

`bulk_create()` on PostgreSQL sends each column as an array, which psycopg escapes character by
character in Python: for rows that carry JSON (an item's facts, an audit event's before and
after) that is most of the time of a launch or a bulk decision. COPY takes the same rows
several times faster. SQLite (the demo) gets `bulk_create()`.
"""

from __future__ import annotations

from django.db import connection, models


def insert(model: type[models.Model], objects: list[models.Model], *, ids: bool = False) -> None:
    """Insert new instances of `model`. With `ids`, they get their ids first, in their order,
    from the table's own sequence (their order is then the order of their ids); without, they
    are left without (nobody reads them back)."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=1000)
        return
    from psycopg.types.json import Jsonb

    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    fields = [field for field in meta.concrete_fields if ids or not field.primary_key]
    names = [field.attname for field in fields]
    json_fields = {field.attname for field in fields if isinstance(field, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with connection.cursor() as cursor:
        if ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) "
                "FROM generate_series(1, %s) ORDER BY 1",
                [meta.db_table, meta.pk.column, len(objects)],
            )
            for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
                obj.pk = pk
        # The table and columns are the model's own, not input.
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj in objects:
                row = obj.__dict__
                copy.write_row(
                    [
                        Jsonb(row[name])
                        if name in json_fields and row[name] is not None
                        else row[name]
                        for name in names
                    ]
                )
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias

"""Reading many rows out at once, as CSV or JSON lines: PostgreSQL's COPY TO where it can.

An evidence package holds every item, decision, remediation and audit event of a campaign:
hundreds of thousands of rows, some with kilobytes of JSON. Read into Python, each row is parsed
(its JSON too), turned into objects and written out again, which took ten times what COPY takes
to write the same rows. Here PostgreSQL writes each file's rows itself, from the query of a
queryset, and Python only passes the text on. SQLite (the demo) gets the same text from the same
queryset, written by Python.

Every cell has one text whatever writes it:
- times: UTC, ISO 8601 as Python's `isoformat()` writes them (`2026-11-29T08:34:00.123456+00:00`,
  without the fraction when it is zero);
- dates: ISO 8601; booleans: `true` or `false`; ids: as their model's field holds them;
- JSON: in a CSV cell, its JSON text; in JSON lines, the value itself;
- in CSV, text that a spreadsheet would run as a formula (it begins with = + - @, a tab or a
  carriage return) gets a leading `'`; JSON lines keep every value unchanged.

JSON text may differ in spacing and in the order of keys between the two writers (PostgreSQL
keeps jsonb's own order); what it says does not.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

from django.db import connection, models
from django.db.models import F

# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BLOCK = 1 << 16
# COPY's options that write each row's one column as it is: CSV with a quote and a delimiter
# that JSON text never holds as they are (it escapes every control character), so nothing is
# quoted or escaped.
_AS_IS = "DELIMITER E'\\x02', QUOTE E'\\x01'"

TEXT, NUMBER, BOOL, TIME, DATE, JSON, UUID = (
    "text",
    "number",
    "bool",
    "time",
    "date",
    "json",
    "uuid",
)


def csv_blocks(queryset: models.QuerySet, columns: dict) -> Iterator[bytes]:
    """The CSV of `queryset`'s rows, a header first: one column for each of `columns` (name:
    field path or expression), in `queryset`'s order."""
    select = _Select(queryset, columns)
    if by_copy():
        cells = ", ".join(
            f"{_csv_sql(_quote(name), kind)} AS {_quote(name)}" for name, kind in select.kinds
        )
        return select.copy(
            lambda query: f"SELECT {cells} FROM ({query}) AS t ({select.aliases})",  # noqa: S608
            "HEADER",
        )
    return _blocks(_csv_lines(select))


def jsonl_blocks(queryset: models.QuerySet, columns: dict) -> Iterator[bytes]:
    """`queryset`'s rows as JSON lines, one object a row with `columns` as its keys."""
    select = _Select(queryset, columns)
    if by_copy():
        cells = ", ".join(
            f"{_json_sql(_quote(name), kind)} AS {_quote(name)}" for name, kind in select.kinds
        )
        return select.copy(
            lambda query: (
                f"SELECT row_to_json(r) FROM (SELECT {cells} FROM ({query}) "  # noqa: S608
                f"AS t ({select.aliases})) AS r"
            ),
            _AS_IS,
        )
    return _blocks(
        json.dumps(
            {
                name: plain(value, kind)
                for (name, kind), value in zip(select.kinds, row, strict=True)
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        + "\n"
        for row in select.rows()
    )


def digest_lines(queryset: models.QuerySet, columns: dict) -> Iterator[bytes]:
    """Each row as a line of canonical JSON (no spaces, UTF-8): an array of its values as text,
    null for NULL. What a digest over rows hashes, so it is one text whoever writes it.
    Columns are text, ids, numbers or dates."""
    select = _Select(queryset, columns)
    unknown = {kind for _name, kind in select.kinds} - {TEXT, UUID, NUMBER, DATE}
    if unknown:
        raise ValueError(f"digest_lines takes text, ids, numbers and dates, not {unknown}")
    if by_copy():
        cells = " || ',' || ".join(
            f"coalesce(to_json({_json_sql(_quote(name), kind)}::text)::text, 'null')"
            for name, kind in select.kinds
        )
        return select.copy(
            lambda query: f"SELECT '[' || {cells} || ']' FROM ({query}) AS t ({select.aliases})",  # noqa: S608
            _AS_IS,
        )
    return _blocks(
        json.dumps(
            [None if value is None else str(value) for value in row],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for row in select.rows()
    )


def by_copy() -> bool:
    """Whether the database writes the rows itself."""
    return connection.vendor == "postgresql"


def csv_cell(value) -> str:
    """The text of a CSV cell for a value as Python holds it (see the module's docstring)."""
    value = plain(value, TEXT)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _neutralised(value if isinstance(value, str) else _json_text(value))


def _neutralised(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Select:
    """`queryset` narrowed to `columns`, each under a name of its own, in order."""

    def __init__(self, queryset: models.QuerySet, columns: dict):
        named = {
            f"dump_{number}": _expression(value) for number, value in enumerate(columns.values())
        }
        self.queryset = queryset.annotate(**named).values(*named)
        annotations = self.queryset.query.annotations
        self.kinds = [
            (name, _kind(annotations[key].output_field))
            for name, key in zip(columns, named, strict=True)
        ]
        self.aliases = ", ".join(_quote(name) for name in columns)

    def copy(self, around: Callable[[str], str], options: str) -> Iterator[bytes]:
        """COPY of `around(the queryset's SQL)`. The names in it are the caller's columns,
        quoted; the values are the queryset's parameters."""
        query, params = self.queryset.query.sql_with_params()
        statement = f"COPY ({around(query)}) TO STDOUT WITH (FORMAT csv, {options})"
        with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
            for block in copy:
                yield bytes(block)

    def rows(self) -> Iterator[tuple]:
        return self.queryset.values_list(*self.queryset.query.annotation_select).iterator(
            chunk_size=2000
        )


def _expression(value):
    return F(value) if isinstance(value, str) else value


def _kind(field: models.Field) -> str:
    if isinstance(field, models.JSONField):
        return JSON
    if isinstance(field, models.DateTimeField):
        return TIME
    if isinstance(field, models.DateField):
        return DATE
    if isinstance(field, models.BooleanField):
        return BOOL
    if isinstance(field, models.UUIDField):
        return UUID
    if isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
        return NUMBER
    return TEXT


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


_ISO = (
    "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
    "date_trunc('second', {c}) = {c} THEN '' ELSE to_char({c} AT TIME ZONE 'UTC', '.US') END "
    "|| '+00:00'"
)


def _json_sql(column: str, kind: str) -> str:
    if kind == TIME:
        return _ISO.format(c=column)
    if kind == DATE:
        return f"to_char({column}, 'YYYY-MM-DD')"
    return column


def _csv_sql(column: str, kind: str) -> str:
    if kind in (NUMBER, BOOL, UUID):
        return f"{column}::text"
    if kind in (TIME, DATE):
        return _json_sql(column, kind)
    text = f"{column}::text"
    return (
        f"CASE WHEN left({text}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
        f"THEN '''' || {text} ELSE {text} END"
    )


def plain(value, kind: str = TEXT):
    """A value as JSON holds it: times in UTC, ISO 8601; dates ISO 8601; ids as text."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if kind == BOOL:
        return bool(value)
    return value


def _csv_text(value, kind: str) -> str:
    """A cell's text as PostgreSQL writes it in `csv_blocks`."""
    value = plain(value, kind)
    if value is None:
        return ""
    if kind == JSON:
        return _neutralised(_json_text(value))
    if kind == TEXT:
        return _neutralised(str(value))
    if kind == BOOL:
        return "true" if value else "false"
    return str(value)


def _csv_lines(select: _Select) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([name for name, _kind in select.kinds])
    for row in select.rows():
        writer.writerow(
            [_csv_text(value, kind) for (_name, kind), value in zip(select.kinds, row, strict=True)]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _blocks(lines) -> Iterator[bytes]:
    """Lines of text as blocks of UTF-8 of about BLOCK bytes."""
    pending, size = [], 0
    for line in lines:
        data = line.encode()
        pending.append(data)
        size += len(data)
        if size >= BLOCK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)

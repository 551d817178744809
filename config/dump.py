"""Reading many rows out at once, as CSV and JSON lines: PostgreSQL's COPY TO where it can.

An evidence package holds every item, decision, remediation and audit event of a campaign:
hundreds of thousands of rows, some with kilobytes of JSON. Read into Python, each row is parsed
(its JSON too), turned into objects and written out again, which took ten times what COPY takes
to write the same rows. Here PostgreSQL writes each row's text itself, from the query of a
queryset, and Python only passes it on. SQLite (the demo) gets the same rows from the same
queryset, written by Python.

Every cell has one text whoever writes it:
- times: UTC, ISO 8601 as Python's `isoformat()` writes them (`2026-11-29T08:34:00.123456+00:00`,
  without the fraction when it is zero);
- dates: ISO 8601; booleans: `true` or `false`; ids: as their model's field holds them;
- JSON: in a CSV cell, its JSON text; in JSON lines, the value itself;
- in CSV, text that a spreadsheet would run as a formula (it begins with = + - @, a tab or a
  carriage return) gets a leading `'`; JSON lines keep every value unchanged.

JSON text may differ in spacing and in the order of keys between the two writers (PostgreSQL
keeps jsonb's own order), and CSV in which cells are quoted; what they say does not.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TypeVar

from django.db import connection, models, transaction
from django.db.models import F

T = TypeVar("T")

# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BLOCK = 1 << 16
# COPY's options that write each row's one column as it is: CSV with a quote and a delimiter
# that JSON text never holds as they are (it escapes every control character), so nothing is
# quoted or escaped.
_AS_IS = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"
# Two columns, each escaped with backslashes where it holds a tab, a newline or a backslash.
_TEXT = "FORMAT text"

TEXT, NUMBER, BOOL, TIME, DATE, JSON, UUID = (
    "text",
    "number",
    "bool",
    "time",
    "date",
    "json",
    "uuid",
)


def by_copy() -> bool:
    """Whether the database writes the rows itself."""
    return connection.vendor == "postgresql"


def csv_and_jsonl(
    queryset: models.QuerySet, columns: dict, *, json_only: tuple[str, ...] = ()
) -> tuple[bytes, Iterator[tuple[bytes, bytes]]]:
    """`queryset`'s rows as CSV and as JSON lines, read once: the CSV's header, and each row's
    CSV line and JSON line. `columns` name the columns (name: field path or expression), in
    order; the JSON lines hold them all, the CSV all but `json_only`."""
    select = _Select(queryset, columns)
    flat = [(name, kind) for name, kind in select.kinds if name not in json_only]
    header = (",".join(name for name, _kind in flat) + "\n").encode()
    if not by_copy():
        return header, _csv_and_json_lines(select, flat)
    # Each CSV cell's text is worked out once: OFFSET 0 keeps PostgreSQL from folding the
    # subquery into the outer one, which would work it out again at each use.
    texts = ", ".join(f"r.{_quote(name)}::text AS {_quote(name)}" for name, _kind in flat)
    # concat_ws, not ||: one string made once, rather than one for each cell added.
    line = "concat_ws(',', {})".format(
        ", ".join(
            _csv_sql(f"s.{_quote(name)}", kind, select.codes.get(name, ())) for name, kind in flat
        )
    )
    rows = select.copy(
        lambda rows: (
            f"SELECT {line}, s.json FROM (SELECT {texts}, row_to_json(r)::text AS json "  # noqa: S608
            f"FROM {rows} AS r OFFSET 0) AS s"
        ),
        _TEXT,
        made=_text_row,
    )
    return header, rows


def jsonl_blocks(queryset: models.QuerySet, columns: dict) -> Iterator[bytes]:
    """`queryset`'s rows as JSON lines, one object a row with `columns` as its keys."""
    select = _Select(queryset, columns)
    if by_copy():
        return select.copy(lambda rows: f"SELECT row_to_json(r) FROM {rows} AS r", _AS_IS)  # noqa: S608
    return _blocks(_json_line(select.kinds, row) for row in select.rows())


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
            f"coalesce(to_json(r.{_quote(name)}::text)::text, 'null')"
            for name, _kind in select.kinds
        )
        return select.copy(lambda rows: f"SELECT '[' || {cells} || ']' FROM {rows} AS r", _AS_IS)  # noqa: S608
    return _blocks(
        json.dumps(
            [None if value is None else str(value) for value in row],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        + "\n"
        for row in select.rows()
    )


def csv_cell(value) -> str:
    """The text of a CSV cell for a value as Python holds it (see the module's docstring)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _neutralised(value if isinstance(value, str) else _json_text(value))


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


# The query --------------------------------------------------------------------------------------


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
        self.codes = {
            name: _codes(annotations[key].output_field)
            for name, key in zip(columns, named, strict=True)
        }

    def copy(
        self, around: Callable[[str], str], options: str, *, made: Callable[[bytes], object] = bytes
    ) -> Iterator:
        """COPY of `around(rows)`: `rows` is the queryset's query, each column under its name
        and as JSON holds it (times and dates as ISO 8601 text). The names in the statement are
        the caller's columns, quoted; the values are the queryset's parameters. Each row of
        COPY's output comes out as `made(row)`."""
        query, params = self.queryset.query.sql_with_params()
        aliases = ", ".join(_quote(name) for name, _kind in self.kinds)
        cells = ", ".join(
            f"{_json_sql(f't.{_quote(name)}', kind)} AS {_quote(name)}" for name, kind in self.kinds
        )
        rows = f"(SELECT {cells} FROM ({query}) AS t ({aliases}))"  # noqa: S608
        statement = f"COPY ({around(rows)}) TO STDOUT WITH ({options})"
        with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
            for block in copy:
                yield made(bytes(block))

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


# A CSV cell that needs no quotes, and that no spreadsheet reads as a formula.
_CODE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/]*")


def _codes(field: models.Field) -> tuple[str, ...]:
    """The values of a field's choices that go into a CSV cell as they are."""
    return tuple(
        value
        for value, _label in field.flatchoices or ()
        if isinstance(value, str) and _CODE.fullmatch(value)
    )


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


# PostgreSQL's text of each cell ------------------------------------------------------------------

# One to_char, and the fraction dropped after it when it is zero: cheaper than a second to_char
# and a date_trunc to work out first whether there is one.
_ISO = (
    "replace(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'), "
    "'.000000+', '+')"
)
# A CSV cell of text: always quoted (looking for what needs quotes took longer than the quotes),
# and neutralised when a spreadsheet would run it as a formula.
_CSV_TEXT = (
    "CASE WHEN {c} IS NULL OR {c} = '' THEN '' "
    "WHEN left({c}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
    "THEN concat('\"''', replace({c}, '\"', '\"\"'), '\"') "
    "ELSE concat('\"', replace({c}, '\"', '\"\"'), '\"') END"
)


def _json_sql(column: str, kind: str) -> str:
    if kind == TIME:
        return _ISO.format(c=column)
    if kind == DATE:
        return f"to_char({column}, 'YYYY-MM-DD')"
    return column


def _csv_sql(text: str, kind: str, codes: tuple[str, ...] = ()) -> str:
    """The CSV cell of a column already as text (as JSON holds it). `codes` are values the
    column holds that go into a cell as they are (a field's choices): looking them up first is
    cheaper than quoting them."""
    if kind not in (TEXT, JSON):
        return f"coalesce({text}, '')"  # numbers, booleans, ids, times: nothing to quote
    cell = _CSV_TEXT.format(c=text)
    if not codes:
        return cell
    listed = ", ".join(f"'{code}'" for code in codes)  # codes hold no quote
    return f"CASE WHEN {text} IN ({listed}) THEN {text} ELSE {cell} END"


def _text_row(row: bytes) -> tuple[bytes, bytes]:
    """A row of COPY's text format, as (CSV line, JSON line) with their newlines. Tabs and
    newlines within the columns are escaped, so the raw tab divides them."""
    tab = row.index(b"\t")
    return _unescaped(row[:tab]) + b"\n", _unescaped(row[tab + 1 :])


def _unescaped(text: bytes) -> bytes:
    # COPY writes a backslash as \\, and the control characters \b \f \n \r \t \v as Python
    # writes them in a bytes literal.
    return codecs.escape_decode(text)[0] if b"\\" in text else text


# Python's text of each cell, where there is no COPY ----------------------------------------------


def _csv_and_json_lines(select: _Select, flat: list) -> Iterator[tuple[bytes, bytes]]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    in_csv = [name in dict(flat) for name, _kind in select.kinds]
    for row in select.rows():
        writer.writerow(
            [
                _csv_text(value, kind)
                for (_name, kind), value, wanted in zip(select.kinds, row, in_csv, strict=True)
                if wanted
            ]
        )
        line = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        yield line.encode(), _json_line(select.kinds, row).encode()


def _json_line(kinds: list[tuple[str, str]], row: tuple) -> str:
    record = {name: plain(value, kind) for (name, kind), value in zip(kinds, row, strict=True)}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


def _csv_text(value, kind: str) -> str:
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


def _neutralised(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


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


@contextmanager
def snapshot() -> Iterator[Snapshot]:
    """One transaction whose reads all see the database as it was at its first query (within
    a transaction already, that one's)."""
    nested = connection.in_atomic_block
    with transaction.atomic():
        exported = None
        if not nested and by_copy():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_export_snapshot()")
                exported = cursor.fetchone()[0]
        yield Snapshot(exported)


class Snapshot:
    """What the reads of a `snapshot()` see, and whether another connection can see it too:
    on PostgreSQL, in a transaction `snapshot()` began, its snapshot is exported by name. (A
    transaction that was open already may hold writes of its own, which no other connection
    sees.)"""

    _NAME = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")

    def __init__(self, exported: str | None):
        if exported is not None and not self._NAME.fullmatch(exported):
            raise ValueError(f"not the name of an exported snapshot: {exported!r}")
        self.exported = exported

    @contextmanager
    def beside(self, work: Callable[[], T]) -> Iterator[Future[T]]:
        """`work()` while the caller goes on: in a thread, on a connection of its own that
        reads this snapshot, where another connection can; else here, before the caller goes
        on. The future holds what it returned or raised; leaving waits for it."""
        if self.exported is None:
            future: Future[T] = Future()
            future.set_result(work())
            yield future
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot") as pool:
            yield pool.submit(self._within, work)

    def _within(self, work: Callable[[], T]) -> T:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    # SET takes no parameters; the name was checked to be one.
                    cursor.execute(f"SET TRANSACTION SNAPSHOT '{self.exported}'")
                return work()
        finally:
            connection.close()

"""Aggregates the reviews' pages and the evidence package share."""

import statistics

from django.db.models import Aggregate, FloatField


class Median(Aggregate):
    """The median of a column. PostgreSQL has percentile_cont; SQLite (the demo database) gets
    an aggregate of Python's registered on its connection when a query asks for one."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        connection.ensure_connection()
        connection.connection.create_aggregate("ATTEST_MEDIAN", 1, _SqliteMedian)
        return super().as_sql(
            compiler,
            connection,
            function="ATTEST_MEDIAN",
            template="%(function)s(%(expressions)s)",
            **extra_context,
        )


class _SqliteMedian:
    def __init__(self):
        self.values = []

    def step(self, value):
        if value is not None:
            self.values.append(value)

    def finalize(self):
        return statistics.median(self.values) if self.values else None

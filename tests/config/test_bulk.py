"""Rows written through COPY: as they are made, with their JSON encoded once."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from audit.models import AuditEvent
from config import bulk


def event(number: int, encoded=None, **values) -> AuditEvent:
    return bulk.new(
        AuditEvent,
        {
            "actor_name": "attest",
            "action": "test.row",
            "object_id": str(number),
            "prev_hash": "0" * 64,
            "hash": f"{number:064x}",
            **values,
        },
        encoded=encoded,
    )


@pytest.mark.django_db
def test_rows_are_written_as_they_are_made():
    made = []

    def rows():
        for number in range(3):
            made.append(number)
            yield event(number, after={"n": number})

    bulk.insert(AuditEvent, rows())

    assert made == [0, 1, 2]
    stored = AuditEvent.objects.filter(action="test.row").order_by("object_id")
    assert [(e.object_id, e.after) for e in stored] == [
        ("0", {"n": 0}),
        ("1", {"n": 1}),
        ("2", {"n": 2}),
    ]


@pytest.mark.django_db
def test_json_encoded_already_is_written_as_it_is():
    text = json.dumps({"b": [1, 2], "a": "ü"}, ensure_ascii=False)
    # The text goes in, not the value beside it.
    bulk.insert(AuditEvent, [event(7, after={"other": True}, encoded={"after": text})])

    assert AuditEvent.objects.get(action="test.row").after == {"a": "ü", "b": [1, 2]}


@pytest.mark.django_db
def test_a_query_while_rows_are_copied_in_is_refused_and_nothing_is_written():
    def rows():
        yield event(1)
        get_user_model().objects.count()  # the connection is busy with the COPY
        yield event(2)

    with (
        pytest.raises(RuntimeError, match="a query while rows are copied in"),
        transaction.atomic(),
    ):
        bulk.insert(AuditEvent, rows())

    assert not AuditEvent.objects.filter(action="test.row").exists()

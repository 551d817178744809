"""Writing the audit trail, and checking it.

`record()` is called inside the transaction of the change it records, so the change and its event
commit together or not at all; if the event cannot be written, the change fails with it.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from audit import webhooks
from audit.models import AuditCheckpoint, AuditEvent
from config import bulk

GENESIS = "0" * 64
# Serialises appends to the chain across processes until each appender's transaction ends.
_LOCK_KEY = 0x4154_5445_5354  # "ATTEST"


@dataclass(frozen=True)
class Context:
    request_id: str = ""
    source_ip: str | None = None
    actor: object | None = None


_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar("audit", default=None)


@contextmanager
def context(**values):
    """Events recorded inside carry this request id, source IP and (default) actor."""
    token = _context.set(Context(**values))
    try:
        yield
    finally:
        _context.reset(token)


def signed_in(actor) -> None:
    """Name the actor of the rest of the request once it is known later than at its start (an
    API token's user): the events it records are theirs."""
    ambient = _context.get()
    if ambient is not None:
        _context.set(replace(ambient, actor=actor))


def _plain(value):
    """The value as JSON will give it back, so the hash of a stored event can be recomputed."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    # SQLite (the demo) lets one writer at a time in anyway.


def record(
    action: str,
    obj=None,
    *,
    actor=None,
    actor_name: str = "",
    before=None,
    after=None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction."""
    ambient = _context.get() or Context()
    actor = actor if actor is not None else ambient.actor
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    with transaction.atomic():
        _lock()
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            occurred_at=timezone.now(),
            actor=actor,
            actor_name=actor.get_username() if actor is not None else (actor_name or "system"),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_repr=object_repr[:500],
            before=_plain(before),
            after=_plain(after),
            request_id=ambient.request_id,
            source_ip=ambient.source_ip,
            prev_hash=previous or GENESIS,
        )
        event.hash = event.compute_hash()
        event.save()
        webhooks.queue(event, obj)
    return event


def record_many(action: str, changes: list[tuple], *, actor=None) -> list[AuditEvent]:
    """Append one event for each (obj, before, after) of `changes`, in order, in the caller's
    transaction: the same events as `record()` one by one, chained under one lock and written in
    a few INSERTs (a bulk decision on thousands of items)."""
    ambient = _context.get() or Context()
    actor = actor if actor is not None else ambient.actor
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    actor_name = actor.get_username() if actor is not None else "system"
    with transaction.atomic():
        _lock()
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        previous = previous or GENESIS
        now = timezone.now()
        events = []
        # By identity: the events of a bulk change share their before and after, made plain
        # JSON and encoded for the COPY once each.
        plain: dict[int, tuple[object, str]] = {}

        def once(value) -> tuple[object, str]:
            if id(value) not in plain:
                made = _plain(value)
                plain[id(value)] = (made, bulk.encode_json(made))
            return plain[id(value)]

        related = {"actor": actor}
        for obj, before, after in changes:
            (before, before_json), (after, after_json) = once(before), once(after)
            # bulk.new rather than AuditEvent(...): Model.__init__ cost more than the hash.
            event = bulk.new(
                AuditEvent,
                {
                    "occurred_at": now,
                    "actor_id": actor.pk if actor is not None else None,
                    "actor_name": actor_name,
                    "action": action,
                    "object_type": obj._meta.label_lower,
                    "object_id": str(obj.pk),
                    "object_repr": str(obj)[:500],
                    "before": before,
                    "after": after,
                    "request_id": ambient.request_id,
                    "source_ip": ambient.source_ip,
                    "prev_hash": previous,
                },
                related,
                encoded={"before": before_json, "after": after_json},
            )
            event.hash = previous = event.compute_hash()
            events.append(event)
        # Ids taken in order under the lock, which keeps other appenders out until the
        # transaction ends: they follow the chain.
        bulk.insert(AuditEvent, events, ids=True)
        for event, (obj, _before, _after) in zip(events, changes, strict=True):
            webhooks.queue(event, obj)
    return events


def _signing_key() -> bytes:
    return settings.AUDIT_SIGNING_KEY.encode()


def key_id() -> str:
    return hashlib.sha256(_signing_key()).hexdigest()[:16]


def sign(message: bytes) -> str:
    return hmac.new(_signing_key(), message, hashlib.sha256).hexdigest()


def checkpoint() -> AuditCheckpoint | None:
    """Sign the head of the chain, if events came since the last checkpoint."""
    with transaction.atomic():
        _lock()
        head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
        last = AuditCheckpoint.objects.order_by("-id").first()
        if head is None or (last is not None and last.last_event_id == head[0]):
            return None
        mark = AuditCheckpoint(
            signed_at=timezone.now(),
            last_event_id=head[0],
            last_event_hash=head[1],
            event_count=AuditEvent.objects.filter(id__lte=head[0]).count(),
            key_id=key_id(),
        )
        mark.signature = sign(mark.message())
        mark.save()
        return mark


@dataclass(frozen=True)
class Finding:
    """The first place where the trail does not hold."""

    event_id: int | None
    message: str

    def __str__(self):
        where = f"event #{self.event_id}" if self.event_id is not None else "the audit trail"
        return f"{where}: {self.message}"


def verify() -> tuple[int, int, Finding | None]:
    """Walk the whole chain and every checkpoint: (events, checkpoints, first finding or None)."""
    marks = {}
    for mark in AuditCheckpoint.objects.order_by("id"):
        if not hmac.compare_digest(mark.signature, sign(mark.message())):
            return 0, 0, Finding(mark.last_event_id, f"checkpoint {mark.pk} has a bad signature")
        marks.setdefault(mark.last_event_id, []).append(mark)
    previous, previous_id, count = GENESIS, None, 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != previous:
            after = f"event #{previous_id}" if previous_id else "the start of the trail"
            return (
                count,
                len(marks),
                Finding(
                    event.pk,
                    f"does not follow {after}: "
                    "an event was deleted, inserted or rewritten before it",
                ),
            )
        if event.compute_hash() != event.hash:
            return (
                count,
                len(marks),
                Finding(event.pk, "its content was changed after it was written"),
            )
        count += 1
        for mark in marks.pop(event.pk, []):
            if mark.last_event_hash != event.hash or mark.event_count != count:
                return (
                    count,
                    len(marks),
                    Finding(
                        event.pk,
                        f"differs from checkpoint {mark.pk} signed {mark.signed_at:%Y-%m-%d %H:%M}",
                    ),
                )
        previous, previous_id = event.hash, event.pk
    if marks:
        missing = min(marks)
        return (
            count,
            len(marks),
            Finding(
                missing, "is missing, though a signed checkpoint covers it: the trail was cut short"
            ),
        )
    return count, AuditCheckpoint.objects.count(), None

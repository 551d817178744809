"""The audit trail: every state change in Attest, append-only and hash-chained.

Each event carries the SHA-256 of its own content and of the event before it, so an edited,
deleted, inserted or reordered row breaks the chain at that row. The database itself refuses
UPDATE and DELETE on these tables (triggers created by the migrations), and no code path tries.
Checkpoints sign the head of the chain with a key of the settings, so even a rewrite of the
whole chain from some row on shows against the last checkpoint.
"""

import hashlib
import json
import secrets
import uuid
from datetime import UTC

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def canonical_json(value) -> str:
    """The one text a value hashes as: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# The fields of an event its hash covers, in the order an extract lists them.
HASHED = (
    "occurred_at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "request_id",
    "source_ip",
    "prev_hash",
)


class AuditEventQuerySet(models.QuerySet):
    def for_object(self, object_type: str, object_id) -> "AuditEventQuerySet":
        return self.filter(object_type=object_type, object_id=str(object_id))


class AuditEvent(models.Model):
    """One state change: who, when, what, on which object, before and after."""

    occurred_at = models.DateTimeField(_("time (UTC)"), default=timezone.now)
    # No database constraint and no cascade: deleting a user must neither fail (the database
    # refuses updates here) nor change history. The name is copied for the same reason.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(_("actor"), max_length=150)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=500, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(_("source IP"), null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            # The audit page filtered by object: an item's or a run's history.
            models.Index(fields=["object_type", "object_id"], name="audit_event_object"),
            # The audit page filtered by action, newest first.
            models.Index(fields=["action", "-id"], name="audit_event_action"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def content(self) -> dict:
        """What the hash covers (HASHED): everything but the row's id (the chain orders the
        rows) and the hash itself."""
        content = {name: getattr(self, name) for name in HASHED}
        content["occurred_at"] = self.occurred_at.astimezone(UTC).isoformat()
        return content

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()


class AuditCheckpoint(models.Model):
    """A signature over the head of the chain at a moment, like CloudTrail's digest files."""

    signed_at = models.DateTimeField(default=timezone.now)
    last_event_id = models.BigIntegerField()
    last_event_hash = models.CharField(max_length=64)
    event_count = models.BigIntegerField()
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("audit checkpoint")

    def __str__(self):
        return f"checkpoint at event #{self.last_event_id} ({self.signed_at:%Y-%m-%d %H:%M})"

    def message(self) -> bytes:
        return canonical_json(
            {
                "signed_at": self.signed_at.astimezone(UTC).isoformat(),
                "last_event_id": self.last_event_id,
                "last_event_hash": self.last_event_hash,
                "event_count": self.event_count,
            }
        ).encode()


def _webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """An address told of chosen events as they happen: a ticketing system, a SIEM, a chat.

    Each delivery is signed with the webhook's secret (HMAC-SHA256 over the timestamp and the
    body), so the receiver can tell it came from Attest and was not replayed later.
    """

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(
        _("URL"),
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("HTTPS, in production."),
    )
    secret = models.CharField(
        _("signing secret"),
        max_length=100,
        default=_webhook_secret,
        help_text=_("Give it to the receiver, which checks each delivery's signature with it."),
    )
    events = models.JSONField(_("events"), default=list)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self):
        return self.name


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one webhook; tried until delivered or given up."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Given up")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    # No database constraint: audit events are never deleted, and their table refuses changes.
    event = models.ForeignKey(
        AuditEvent, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    name = models.CharField(_("event"), max_length=64)
    payload = models.JSONField()
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            # The sweeper's search for deliveries whose retry was lost.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="pending"),
                name="audit_delivery_pending",
            ),
        ]

    def __str__(self):
        return f"{self.name} to {self.webhook}"

"""The audit trail in the REST API, for the roles that may read it (a SIEM's service user)."""

from datetime import UTC

from django.db import transaction
from rest_framework import serializers

from audit.filters import AuditEventFilter, as_recorded
from audit.models import HASHED, AuditEvent
from audit.trail import record
from config.api import HasPermission, ReadOnlyViewSet


class HashedTime(serializers.DateTimeField):
    """A time as an event's hash covers it: UTC, as Python's isoformat() writes it."""

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat()


class AuditEventSerializer(serializers.ModelSerializer):
    """Everything an event's hash covers (HASHED), as it covers it, with the row's id and the
    hash: a client recomputes each hash as SHA-256 of the canonical JSON (sorted keys, no
    spaces) of the fields of HASHED."""

    occurred_at = HashedTime(read_only=True)
    actor_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = ["id", *HASHED, "hash"]


class AuditEventViewSet(ReadOnlyViewSet):
    """Audit events, newest first. Each event carries the hash of the one before: a client can
    check the chain over the pages it reads."""

    serializer_class = AuditEventSerializer
    lookup_url_kwarg = "event_id"
    permission_classes = [HasPermission]
    permission = "audit.view_auditevent"
    filterset_class = AuditEventFilter
    ordering = ("-id",)
    queryset = AuditEvent.objects.all()

    def list(self, request, *args, **kwargs):
        with transaction.atomic():
            # Who read the trail is part of the trail, as on the audit page.
            record(
                "audit.viewed", after={"filters": as_recorded(request.query_params), "api": True}
            )
        return super().list(request, *args, **kwargs)

"""The audit trail in the REST API, for the roles that may read it (a SIEM's service user)."""

from django.db import transaction
from rest_framework import serializers

from audit.filters import AuditEventFilter, as_recorded
from audit.models import AuditEvent
from audit.trail import record
from config.api import HasPermission, ReadOnlyViewSet


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
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
            "hash",
        ]


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

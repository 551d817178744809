import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(label=_("Action"), lookup_expr="startswith", max_length=64)
    actor = django_filters.CharFilter(
        label=_("Actor"), field_name="actor_name", lookup_expr="iexact", max_length=150
    )
    object = django_filters.CharFilter(
        label=_("Object contains"),
        field_name="object_repr",
        lookup_expr="icontains",
        max_length=200,
    )
    since = django_filters.DateFilter(
        label=_("From"),
        field_name="occurred_at",
        lookup_expr="date__gte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        label=_("Until"),
        field_name="occurred_at",
        lookup_expr="date__lte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "object", "since", "until"]


def as_recorded(query) -> dict[str, str]:
    """The filters of a query as the trail keeps them: a NUL, which PostgreSQL cannot store in
    JSON and only a hand-made URL holds, becomes U+FFFD rather than failing the page."""
    return {
        key.replace("\x00", "\ufffd"): value.replace("\x00", "\ufffd")
        for key, value in query.items()
    }

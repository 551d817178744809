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

"""Filters of the principals list."""

import django_filters
from django import forms
from django.utils.translation import gettext_lazy as _

from inventory.models import AwsAccount, Principal


class PrincipalFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Name or ARN contains"), method="filter_text", max_length=200
    )
    account = django_filters.ModelChoiceFilter(
        label=_("Account"),
        queryset=AwsAccount.objects.none(),
        to_field_name="account_id",
        empty_label=_("All accounts"),
    )
    kind = django_filters.ChoiceFilter(
        label=_("Type"), choices=Principal.Kind.choices, empty_label=_("All types")
    )
    unused_days = django_filters.NumberFilter(
        label=_("Unused for at least (days)"),
        method="filter_unused",
        min_value=1,
        max_value=3650,
        widget=forms.NumberInput(attrs={"min": 1, "max": 3650, "placeholder": "90"}),
    )
    order = django_filters.OrderingFilter(
        label=_("Sort by"),
        fields=(("name", "name"), ("last_used_at", "last_used"), ("created_at", "created")),
        field_labels={
            "name": _("Name"),
            "last_used_at": _("Last used"),
            "created_at": _("Created"),
            # django-filter words the reverse orders itself, but has no Japanese for them.
            "-name": _("Name (descending)"),
            "-last_used": _("Last used (descending)"),
            "-created": _("Created (descending)"),
        },
        empty_label=None,
    )

    class Meta:
        model = Principal
        fields = ["q", "account", "kind", "unused_days"]

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["account"].queryset = accounts

    def filter_text(self, queryset, name, value):
        return queryset.filter(arn__icontains=value)

    def filter_unused(self, queryset, name, value):
        return queryset.unused_for(int(value))

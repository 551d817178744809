"""What the lists of review items filter by, the same in the pages and the API."""

from django.db.models import Q


class ItemLookups:
    """Filter methods of a FilterSet over review items."""

    def filter_text(self, queryset, name, value):
        """Principal or right contains the text."""
        return queryset.filter(Q(principal_name__icontains=value) | Q(right_label__icontains=value))

    def filter_reviewer(self, queryset, name, value):
        """A username, or `none` for the items nobody reviews (orphans)."""
        if value == "none":
            return queryset.filter(reviewer__isnull=True)
        return queryset.filter(reviewer__username=value)

    def filter_decision(self, queryset, name, value):
        """A decision, or `undecided`."""
        return queryset.filter(decision="" if value == "undecided" else value)

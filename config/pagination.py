"""The REST API's pages (kept apart from its views, which Django REST framework's settings import
this from)."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable pages however large the list and however it changes meanwhile."""

    ordering = "pk"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_ordering(self, request, queryset, view):
        # Each view names its order (unique in the end, for stable cursors) as `ordering`.
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

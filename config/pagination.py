"""Pages of long lists: the numbered pages of the web pages, and the REST API's cursor pages
(kept apart from the API's views, which Django REST framework's settings import this from)."""

from django.core.paginator import Paginator
from rest_framework import pagination


def paginate(queryset, number, per_page: int, count: int | None = None):
    """The page `number` of the ordered queryset, in two queries besides the count: the ids of
    the page, sorted with nothing else, then the page's rows. Sorting whole items (each carries
    what its reviewer is shown) of a large campaign would spill to disk on every page. A
    `count` the caller already knows saves counting the rows again."""
    paginator = Paginator(queryset.values_list("pk", flat=True), per_page)
    if count is not None:
        paginator.count = count  # a cached_property: the instance's value takes its place
    page = paginator.get_page(number)
    rows = queryset.in_bulk(list(page.object_list))
    page.object_list = [rows[pk] for pk in page.object_list]
    return page


class CursorPagination(pagination.CursorPagination):
    """Stable pages however large the list and however it changes meanwhile."""

    ordering = "pk"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_ordering(self, request, queryset, view):
        # Each view names its order (unique in the end, for stable cursors) as `ordering`.
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

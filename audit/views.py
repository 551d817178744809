from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.filters import AuditEventFilter, as_recorded
from audit.models import AuditEvent
from audit.trail import record

PAGE_SIZE = 50


@require_GET
@permission_required("audit.view_auditevent", raise_exception=True)
def event_list(request):
    filters = AuditEventFilter(request.GET, queryset=AuditEvent.objects.all())
    page = Paginator(filters.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    with transaction.atomic():
        # Who looked at the trail is part of the trail.
        record("audit.viewed", after={"filters": as_recorded(request.GET)})
    return render(
        request,
        "audit/event_list.html",
        {"filter": filters, "page": page, "query": query.urlencode()},
    )

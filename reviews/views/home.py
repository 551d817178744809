"""The home page: what waits for the signed-in user, one section for each thing they hold.

A reviewer's open items per campaign, a manager's own campaigns with their progress, the
finished campaigns an auditor looks at; each section is one query, and someone who holds none
of these gets a word on where to go instead of an empty page.
"""

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from reviews import tallies
from reviews.models import Campaign, Remediation
from reviews.views.manager import MANAGE, OVERSEE, progress_of

FINISHED_SHOWN = 10


@require_GET
def home(request):
    user = request.user
    today = timezone.localdate()
    reviews = progress_of(
        list(
            tallies.of(reviewer=user, campaign__state=Campaign.State.ACTIVE)
            .values("campaign__uuid", "campaign__name", "campaign__due_date")
            .annotate(**tallies.progress())
            .order_by("campaign__due_date", "campaign__name")
        )
    )
    for row in reviews:
        row["days_left"] = (row["campaign__due_date"] - today).days
        row["days_overdue"] = max(-row["days_left"], 0)
    context = {
        "reviews": reviews,
        "waiting": sum(row["undecided"] for row in reviews),
        "can_manage": user.has_perm(MANAGE),
        "oversees": user.has_perm(OVERSEE),
        "managed": None,
        "finished": None,
    }
    if context["can_manage"]:
        # The campaigns still needing their manager: drafts to launch, reviews running, and
        # closed ones to sign off.
        failed = (
            Remediation.objects.filter(campaign=OuterRef("pk"), state=Remediation.State.FAILED)
            .values("campaign")
            .annotate(count=Count("pk"))
            .values("count")
        )
        context["managed"] = list(
            Campaign.objects.filter(owner=user)
            .exclude(state=Campaign.State.SIGNED_OFF)
            .with_progress()
            .annotate(failed=Coalesce(Subquery(failed), 0))
            .order_by("due_date", "pk")
        )
    elif context["oversees"]:
        context["finished"] = list(
            Campaign.objects.filter(state__in=[Campaign.State.CLOSED, Campaign.State.SIGNED_OFF])
            .select_related("owner", "signoff")
            .with_progress()
            .order_by("-closed_at", "-pk")[:FINISHED_SHOWN]
        )
    return render(request, "reviews/home.html", context)

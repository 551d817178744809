"""Campaigns as their managers and auditors see them: the list, a new draft and its preview,
the dashboard of a launched campaign, its items, and the manager's actions on it.

Every page reads a campaign through `Campaign.objects.visible_to` first, so a campaign out of
reach is a 404 before any permission is looked at; writes then need reviews.manage_campaign,
and signing off needs to be the campaign's own manager. The dashboard is a fixed number of
queries however many items, reviewers and decisions the campaign has, its progress read from
the campaign's tallies (`reviews.tallies`) rather than counted over its items.
"""

from __future__ import annotations

import uuid as uuid_module
from datetime import timedelta

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config import lockout
from config.pagination import paginate
from config.templatetags.attest import duration
from inventory.models import AwsAccount
from reviews import handover, remediate, tallies
from reviews import launch as launching
from reviews.aggregates import Median
from reviews.decide import Refused, reassign, request_close, sign_off
from reviews.filters import ItemLookups
from reviews.models import (
    Campaign,
    CampaignDefinition,
    Decision,
    Outcome,
    Recommendation,
    Reminder,
    ReviewItem,
    SignOff,
    period_start,
)
from reviews.reminders import remind_now

PAGE_SIZE = 50
CAMPAIGNS_PER_PAGE = 25
# The orphan queue lists this many at once; the items page (reviewer: nobody) lists them all.
ORPHANS_SHOWN = 50
# Below this median a reviewer decides faster than an item can be read, and above this share
# most of their decisions were one click over many items: both are worth a manager's look.
QUICK_MEDIAN_SECONDS = 10
BULK_SHARE = 0.5
MANAGE = "reviews.manage_campaign"
OVERSEE = "reviews.view_campaign"


# Shared helpers ---------------------------------------------------------------------------------


def _campaign(request, campaign_uuid, queryset=None) -> Campaign:
    """The campaign if the user may see it; a 404 whether it is missing or out of reach."""
    queryset = queryset if queryset is not None else Campaign.objects.all()
    return get_object_or_404(
        queryset.visible_to(request.user).select_related("owner"), uuid=campaign_uuid
    )


def _require(user, permission: str) -> None:
    if not user.has_perm(permission):
        raise PermissionDenied


def progress_of(rows) -> list[dict]:
    """Grouped rows with `total` and `decided`, each given its undecided count and share."""
    for row in rows:
        row["undecided"] = row["total"] - row["decided"]
        row["percent"] = round(100 * row["decided"] / row["total"]) if row["total"] else 0
    return rows


def _days_overdue(campaign: Campaign) -> int:
    return (timezone.localdate() - campaign.due_date).days if campaign.is_overdue else 0


# The list ---------------------------------------------------------------------------------------

STATE_TABS = [
    ("", gettext_lazy("All")),
    (Campaign.State.ACTIVE, gettext_lazy("Active")),
    (Campaign.State.CLOSED, gettext_lazy("Closed")),
    (Campaign.State.SIGNED_OFF, gettext_lazy("Signed off")),
    (Campaign.State.DRAFT, gettext_lazy("Drafts")),
]


@require_GET
def campaign_list(request):
    campaigns = Campaign.objects.visible_to(request.user).select_related("owner").with_progress()
    state = request.GET.get("state", "")
    if state in Campaign.State.values:
        campaigns = campaigns.filter(state=state)
    else:
        state = ""
    page = Paginator(campaigns.order_by("-created_at", "-pk"), CAMPAIGNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "reviews/campaign_list.html",
        {
            "page": page,
            "state": state,
            "tabs": STATE_TABS,
            "query": f"state={state}" if state else "",
            "can_manage": request.user.has_perm(MANAGE),
        },
    )


# A new draft ------------------------------------------------------------------------------------


class NewCampaignForm(forms.Form):
    definition = forms.ModelChoiceField(
        label=gettext_lazy("Definition"),
        queryset=CampaignDefinition.objects.none(),
        required=False,
        empty_label=gettext_lazy("None: I set it up below"),
        help_text=gettext_lazy("A definition brings its scope, rules, reminders and later stages."),
    )
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("With a definition: its name and the period if left empty."),
    )
    due_date = forms.DateField(
        label=gettext_lazy("Due date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy("With a definition: its review window from today if left empty."),
    )
    accounts = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Accounts"),
        queryset=AwsAccount.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "None chosen: the definition's accounts, or else every active account."
        ),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["definition"].queryset = CampaignDefinition.objects.order_by("name")
        self.fields["accounts"].queryset = (
            AwsAccount.objects.visible_to(user).filter(active=True).order_by("name")
        )

    def clean_due_date(self):
        due = self.cleaned_data.get("due_date")
        if due is not None and due <= timezone.localdate():
            raise forms.ValidationError(_("The due date must be after today."))
        return due

    def clean(self):
        cleaned = super().clean()
        definition = cleaned.get("definition")
        today = timezone.localdate()
        if definition is None:
            if not cleaned.get("name"):
                self.add_error("name", _("Name the campaign, or choose a definition."))
            if not cleaned.get("due_date") and "due_date" not in self.errors:
                self.add_error("due_date", _("Set the due date, or choose a definition."))
        else:
            if not cleaned.get("name"):
                period = period_start(definition.cadence, today)
                cleaned["name"] = launching.period_name(definition, period)
            if not cleaned.get("due_date") and "due_date" not in self.errors:
                cleaned["due_date"] = today + timedelta(days=definition.review_days)
        return cleaned


@require_http_methods(["GET", "POST"])
def campaign_new(request):
    _require(request.user, MANAGE)
    form = NewCampaignForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            draft = launching.new_campaign(
                name=data["name"],
                owner=request.user,
                due_date=data["due_date"],
                accounts=list(data["accounts"]) or None,
                definition=data["definition"],
                by=request.user,
            )
        except launching.LaunchRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Draft %(campaign)s created: check what it will review, then launch it.")
                % {"campaign": draft},
            )
            return redirect(draft)
    return render(request, "reviews/campaign_new.html", {"form": form})


# One campaign -----------------------------------------------------------------------------------


# The states in which a worker changes the campaign, which its page waits for.
_HANDED_OVER = (Campaign.State.LAUNCHING, Campaign.State.CLOSING)


@require_GET
def campaign_detail(request, campaign_uuid):
    campaign = _campaign(request, campaign_uuid, Campaign.objects.select_related("signoff"))
    waiting = request.GET.get("poll")
    if waiting in _HANDED_OVER and request.headers.get("HX-Request") == "true":
        # A launching or closing campaign's notice asks every few seconds: the page reloads
        # once the worker is done.
        response = HttpResponse(status=204)
        if campaign.state != waiting:
            response["HX-Refresh"] = "true"
        return response
    if campaign.state == Campaign.State.LAUNCHING:
        return render(request, "reviews/campaign_draft.html", {"campaign": campaign})
    if campaign.state == Campaign.State.DRAFT:
        return render(request, "reviews/campaign_draft.html", _draft_context(request, campaign))
    return render(request, "reviews/campaign_detail.html", _dashboard(request, campaign))


def _draft_context(request, campaign: Campaign) -> dict:
    found = launching.preview(campaign)
    can_manage = request.user.has_perm(MANAGE)
    return {
        "campaign": campaign,
        "preview": found,
        "by_reviewer": [
            {"reviewer": name, "items": count}
            # Orphans last: they are what the manager has to act on after launch.
            for name, count in sorted(found.by_reviewer.items(), key=lambda kv: (not kv[0], kv[0]))
        ],
        "reviewer_count": sum(1 for name in found.by_reviewer if name),
        "orphans": found.by_reviewer.get("", 0),
        "accounts": campaign.accounts.order_by("name"),
        "can_manage": can_manage,
        "launch_failure": handover.LAUNCH.failure(campaign) if can_manage else None,
    }


def _signoff_of(campaign: Campaign) -> SignOff | None:
    try:
        return campaign.signoff
    except SignOff.DoesNotExist:
        return None


def _decision_rows(campaign: Campaign) -> list[dict]:
    """Items by current decision, with how many of each were the default outcome at close."""
    counts = {
        row["decision"]: row
        for row in tallies.of(campaign=campaign)
        .values("decision")
        .annotate(n=Sum("items"), defaulted=Coalesce(Sum("items", filter=Q(defaulted=True)), 0))
    }
    total = sum(row["n"] for row in counts.values())
    rows = []
    for value, label in [*ReviewItem.Decision.choices[1:], ReviewItem.Decision.choices[0]]:
        found = counts.get(value, {"n": 0, "defaulted": 0})
        rows.append(
            {
                "value": value or "undecided",
                "label": label,
                "count": found["n"],
                "defaulted": found["defaulted"],
                "percent": round(100 * found["n"] / total) if total else 0,
            }
        )
    return rows


def _chart(rows: list[dict]) -> dict:
    """Geometry of the decisions bar chart, drawn by the template as inline SVG."""
    label_width, bar_space, row_height = 100, 300, 30
    largest = max((row["count"] for row in rows), default=0) or 1
    bars = []
    for index, row in enumerate(rows):
        width = round(bar_space * row["count"] / largest)
        bars.append(
            {
                **row,
                "y": index * row_height,
                "width": max(width, 2) if row["count"] else 0,
                "text_x": label_width + max(width, 2) + 6,
            }
        )
    return {
        "bars": bars,
        "label_width": label_width,
        "width": label_width + bar_space + 70,
        "height": len(rows) * row_height,
    }


def _pace(campaign: Campaign) -> list[dict]:
    """How each person decided: the signals of rubber-stamping, from the decision history."""
    rows = list(
        Decision.objects.filter(campaign=campaign, system=False)
        .values("decided_by_name")
        .annotate(
            decisions=Count("pk"),
            in_bulk=Count("pk", filter=Q(bulk_size__gt=1)),
            median=Median("seconds_to_decide"),
        )
        .order_by("decided_by_name")
    )
    for row in rows:
        row["bulk_percent"] = round(100 * row["in_bulk"] / row["decisions"])
        row["quick"] = row["median"] is not None and row["median"] < QUICK_MEDIAN_SECONDS
        row["mostly_bulk"] = row["in_bulk"] / row["decisions"] > BULK_SHARE
        # None: every decision of theirs was a bulk one, which has no time of its own.
        row["median_text"] = duration(row["median"])
    return rows


class ReassignForm(forms.Form):
    """Who takes the chosen items, and why; the items are checkboxes named `items`."""

    reviewer = forms.ModelChoiceField(
        label=gettext_lazy("New reviewer"),
        queryset=get_user_model().objects.none(),
        empty_label=gettext_lazy("Choose a person"),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Kept in the audit trail, e.g. “Lena owns the marketing roles”."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )
        self.fields["reviewer"].label_from_instance = _person


def _person(user) -> str:
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _dashboard(
    request, campaign: Campaign, reassign_form: ReassignForm | None = None, chosen=()
) -> dict:
    """Everything the dashboard shows, in a fixed number of queries."""
    user = request.user
    oversees = user.has_perm(OVERSEE)
    can_manage = user.has_perm(MANAGE) and campaign.state != Campaign.State.SIGNED_OFF
    counts = tallies.of(campaign=campaign)
    decisions = _decision_rows(campaign)
    total = sum(row["count"] for row in decisions)
    undecided = next(row["count"] for row in decisions if row["value"] == "undecided")
    context = {
        "campaign": campaign,
        "signoff": _signoff_of(campaign),
        "total": total,
        "decided": total - undecided,
        "undecided": undecided,
        "percent": round(100 * (total - undecided) / total) if total else 0,
        "defaulted": sum(row["defaulted"] for row in decisions),
        "decisions": decisions,
        "chart": _chart(decisions),
        "days_overdue": _days_overdue(campaign),
        "days_left": (campaign.due_date - timezone.localdate()).days,
        "oversees": oversees,
        "can_manage": can_manage,
        "is_owner": campaign.owner_id == user.pk,
        "default_outcome": _outcome_label(campaign),
        "close_failure": (
            handover.CLOSE.failure(campaign) if can_manage and campaign.is_open else None
        ),
    }
    if not oversees:
        # A reviewer sees the campaign's progress and their own part of it, not their peers'.
        mine = progress_of([counts.filter(reviewer=user).aggregate(**tallies.progress())])
        context["mine"] = mine[0]
        return context
    by_reviewer = progress_of(
        list(counts.values("reviewer", "reviewer__username").annotate(**tallies.progress()))
    )
    orphan_row = next((row for row in by_reviewer if row["reviewer"] is None), None)
    # Who is furthest behind comes first: that is whom a manager chases.
    context["by_reviewer"] = sorted(
        (row for row in by_reviewer if row["reviewer"] is not None),
        key=lambda row: (row["percent"], -row["undecided"], row["reviewer__username"]),
    )
    context["by_account"] = sorted(
        progress_of(
            list(counts.values("account_id", "account_name").annotate(**tallies.progress()))
        ),
        key=lambda row: (row["percent"], row["account_name"]),
    )
    context["pace"] = _pace(campaign)
    context["quick_seconds"] = QUICK_MEDIAN_SECONDS
    context["bulk_share"] = round(BULK_SHARE * 100)
    context["last_reminder"] = campaign.reminders.exclude(kind=Reminder.Kind.OVERDUE).aggregate(
        last=Max("sent_at")
    )["last"]
    orphans_open = campaign.items.filter(reviewer__isnull=True, decision="")
    context["orphan_count"] = orphan_row["undecided"] if orphan_row else 0
    context["orphans"] = []
    if context["orphan_count"] and campaign.is_open:
        context["orphans"] = list(
            # What the reviewer will be shown (facts) is large and not listed here.
            orphans_open.defer("facts").order_by(
                "account_name", "principal_name", "right_kind", "pk"
            )[:ORPHANS_SHOWN]
        )
    if can_manage and campaign.is_open and context["orphans"]:
        context["reassign_form"] = reassign_form or ReassignForm()
        context["chosen"] = {str(value) for value in chosen}
    return context


def _outcome_label(campaign: Campaign) -> str:
    outcome = campaign.rules.get("default_outcome", Outcome.RECOMMENDATION)
    return Outcome(outcome).label if outcome in Outcome.values else outcome


class ItemFilter(ItemLookups, django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=gettext_lazy("Principal or right contains"), method="filter_text", max_length=200
    )
    account = django_filters.ChoiceFilter(
        label=gettext_lazy("Account"), field_name="account_id", empty_label=gettext_lazy("All")
    )
    reviewer = django_filters.ChoiceFilter(
        label=gettext_lazy("Reviewer"), method="filter_reviewer", empty_label=gettext_lazy("All")
    )
    decision = django_filters.ChoiceFilter(
        label=gettext_lazy("Decision"),
        method="filter_decision",
        empty_label=gettext_lazy("All"),
        choices=[
            ("undecided", gettext_lazy("Undecided")),
            *ReviewItem.Decision.choices[1:],
        ],
    )
    recommendation = django_filters.ChoiceFilter(
        label=gettext_lazy("Recommendation"),
        choices=Recommendation.choices,
        empty_label=gettext_lazy("All"),
    )
    privileged = django_filters.BooleanFilter(
        label=gettext_lazy("Privileged"),
        widget=forms.Select(
            choices=[
                ("", gettext_lazy("All")),
                ("true", gettext_lazy("Privileged only")),
                ("false", gettext_lazy("Not privileged")),
            ]
        ),
    )

    class Meta:
        model = ReviewItem
        fields = ["q", "account", "reviewer", "decision", "recommendation", "privileged"]

    def __init__(self, *args, accounts, reviewers, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["account"].extra["choices"] = accounts
        self.filters["reviewer"].extra["choices"] = [("none", _("Nobody (orphans)")), *reviewers]


@require_GET
def campaign_items(request, campaign_uuid):
    campaign = _campaign(request, campaign_uuid)
    # Overseers see every item; a reviewer who reached the campaign sees their own.
    items = ReviewItem.objects.visible_to(request.user).filter(campaign=campaign)
    # The filters' choices from the same items' tallies: a few rows rather than every item.
    counted = tallies.of(campaign=campaign).visible_to(request.user)
    accounts = list(
        counted.order_by("account_name", "account_id")
        .values_list("account_id", "account_name")
        .distinct()
    )
    reviewers = list(
        counted.filter(reviewer__isnull=False)
        .order_by("reviewer__username")
        .values_list("reviewer__username", flat=True)
        .distinct()
    )
    filters = ItemFilter(
        request.GET,
        queryset=items.select_related("reviewer")
        .defer("facts")
        .order_by("account_name", "principal_name", "right_kind", "right_key", "pk"),
        accounts=[(account_id, f"{name} ({account_id})") for account_id, name in accounts],
        reviewers=[(name, name) for name in reviewers],
    )
    page = paginate(filters.qs, request.GET.get("page"), PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "campaign": campaign,
        "filter": filters,
        "page": page,
        "query": query.urlencode(),
        "oversees": request.user.has_perm(OVERSEE),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "reviews/partials/campaign_item_rows.html", context)
    return render(request, "reviews/campaign_items.html", context)


# The manager's actions --------------------------------------------------------------------------


def _writable(request, campaign_uuid) -> Campaign:
    campaign = _campaign(request, campaign_uuid)
    _require(request.user, MANAGE)
    return campaign


@require_POST
def campaign_launch(request, campaign_uuid):
    campaign = _writable(request, campaign_uuid)
    try:
        launching.request_launch(campaign, by=request.user)
    except launching.LaunchRefused as exc:
        messages.error(request, _("Launch refused: %(reason)s.") % {"reason": exc})
        return redirect(campaign)
    # Launched already when tasks run in-process (the demo); by a worker otherwise.
    if campaign.state == Campaign.State.LAUNCHING:
        messages.info(
            request,
            _("Launching the campaign: its items are being made; reviewers see them once done."),
        )
    elif campaign.state == Campaign.State.ACTIVE:
        messages.success(request, _launched_message(campaign))
    else:
        messages.error(request, _("The campaign could not be launched and is a draft again."))
    return redirect(campaign)


def _launched_message(campaign: Campaign) -> str:
    reviewers = (
        tallies.of(campaign=campaign, reviewer__isnull=False).values("reviewer").distinct().count()
    )
    return (
        ngettext(
            "Launched: %(count)d item to review.",
            "Launched: %(count)d items to review.",
            campaign.item_count,
        )
        % {"count": campaign.item_count}
        + " "
        + ngettext(
            "%(count)d reviewer has items to decide.",
            "%(count)d reviewers have items to decide.",
            reviewers,
        )
        % {"count": reviewers}
    )


@require_POST
def campaign_close(request, campaign_uuid):
    campaign = _writable(request, campaign_uuid)
    try:
        request_close(campaign, by=request.user)
    except Refused as exc:
        messages.error(request, str(exc))
        return redirect(campaign)
    # Closed already when tasks run in-process (the demo); by a worker otherwise.
    if campaign.state == Campaign.State.CLOSING:
        messages.info(
            request,
            _("Closing the campaign: reviewers can no longer decide."),
        )
    elif campaign.state == Campaign.State.CLOSED:
        messages.success(request, _closed_message(campaign))
    else:
        messages.error(request, _("The campaign could not be closed and is open again."))
    return redirect(campaign)


def _closed_message(campaign: Campaign) -> str:
    applied = dict(
        tallies.of(campaign=campaign, defaulted=True)
        .values_list("decision")
        .annotate(count=Sum("items"))
        .order_by("decision")
    )
    count = sum(applied.values())
    if not count:
        return _("Closed. Every item had a decision.")
    labels = dict(ReviewItem.Decision.choices)
    outcomes = ", ".join(
        f"{labels.get(decision, decision)}: {n}" for decision, n in sorted(applied.items())
    )
    return ngettext(
        "Closed. %(count)d unanswered item got the default outcome (%(outcomes)s).",
        "Closed. %(count)d unanswered items got the default outcome (%(outcomes)s).",
        count,
    ) % {"count": count, "outcomes": outcomes}


@require_POST
def campaign_remind(request, campaign_uuid):
    campaign = _writable(request, campaign_uuid)
    if not campaign.is_open:
        messages.error(request, _("Only an active campaign sends reminders."))
        return redirect(campaign)
    sent = remind_now(campaign, by=request.user)
    if sent:
        messages.success(
            request,
            ngettext(
                "%(count)d reminder e-mail went to a reviewer with undecided items.",
                "%(count)d reminder e-mails went to the reviewers with undecided items.",
                sent,
            )
            % {"count": sent},
        )
    else:
        messages.info(
            request, _("No e-mail went: no reviewer with an e-mail address has undecided items.")
        )
    return redirect(campaign)


def _item_uuids(values) -> set[uuid_module.UUID]:
    try:
        return {uuid_module.UUID(value) for value in values}
    except ValueError:
        # Only a hand-made request sends something other than the ids the page offered.
        raise Http404 from None


@require_POST
def campaign_reassign(request, campaign_uuid):
    campaign = _writable(request, campaign_uuid)
    wanted = _item_uuids(request.POST.getlist("items"))
    form = ReassignForm(request.POST)
    chosen = list(campaign.items.filter(uuid__in=wanted).select_related("campaign", "reviewer"))
    if len(chosen) != len(wanted):
        # An id of another campaign's item: nothing changes, and nothing says it exists.
        raise Http404
    if not chosen:
        form.add_error(None, _("Choose the items to reassign."))
    if form.is_valid():
        to_user = form.cleaned_data["reviewer"]
        try:
            count = reassign(chosen, to_user, request.user, form.cleaned_data["reason"])
        except Refused as exc:
            form.add_error(None, str(exc))
            # Also atop the page, which opens at its top, far from the form below.
            messages.error(request, _("Nothing was reassigned: %(reason)s") % {"reason": exc})
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)d item now goes to %(user)s.",
                    "%(count)d items now go to %(user)s.",
                    count,
                )
                % {"count": count, "user": to_user.get_username()},
            )
            return redirect(campaign)
    campaign = _campaign(request, campaign_uuid, Campaign.objects.select_related("signoff"))
    return render(
        request,
        "reviews/campaign_detail.html",
        _dashboard(request, campaign, reassign_form=form, chosen=wanted),
    )


def _default_statement(campaign: Campaign) -> str:
    return _(
        "I attest that the access in scope of %(campaign)s was reviewed by the people "
        "responsible for it, that every item has a decision, and that the access decided to be "
        "revoked or reduced will be removed."
    ) % {"campaign": campaign.name}


class SignOffForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Asked again: the sign-off is your attestation."),
    )
    statement = forms.CharField(
        label=gettext_lazy("Attestation"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


@require_http_methods(["GET", "POST"])
def campaign_signoff(request, campaign_uuid):
    campaign = _campaign(request, campaign_uuid, Campaign.objects.select_related("signoff"))
    signoff = _signoff_of(campaign)
    if signoff is None:
        # Before sign-off the page is the form, for the campaign's own manager alone.
        _require(request.user, MANAGE)
        if campaign.owner_id != request.user.pk:
            raise PermissionDenied
    elif request.method == "POST":
        _require(request.user, MANAGE)
        messages.error(request, _("The campaign is already signed off."))
        return redirect("reviews:signoff", campaign.uuid)
    form = SignOffForm(
        request.POST if request.method == "POST" else None,
        initial={"statement": _default_statement(campaign)},
    )
    if request.method == "POST" and form.is_valid():
        if locked := lockout.password_locked(request):
            return locked
        try:
            sign_off(
                campaign,
                request.user,
                form.cleaned_data["password"],
                form.cleaned_data["statement"],
            )
        except Refused as exc:
            if exc.code == "not_yours":
                raise PermissionDenied from exc
            if exc.code == "password" and (locked := lockout.wrong_password(request)):
                return locked
            field = {"password": "password", "statement_required": "statement"}.get(exc.code)
            form.add_error(field, str(exc))
        else:
            messages.success(request, _("Signed off. The campaign is now read-only."))
            return redirect("reviews:signoff", campaign.uuid)
    decisions = _decision_rows(campaign)
    undecided = next(row["count"] for row in decisions if row["value"] == "undecided")
    return render(
        request,
        "reviews/campaign_signoff.html",
        {
            "campaign": campaign,
            "signoff": signoff,
            "form": form,
            "decisions": decisions,
            "total": sum(row["count"] for row in decisions),
            "undecided": undecided,
            "defaulted": sum(row["defaulted"] for row in decisions),
            "unsettled": remediate.unsettled(campaign).count(),
        },
    )

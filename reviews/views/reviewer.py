"""A reviewer's work: their queue, an item's panel, deciding one item or many, delegating.

Every view reads items through a scoped queryset before looking one up, so an item out of reach
is a 404 whatever its id; an item in sight that is not the user's to change (an auditor's, a
manager's look at someone else's) is a 403. The queue is the reviewer's own items of active
campaigns (`visible_to` is for looking, not for deciding), in a fixed number of queries however
long it is.

htmx requests get partials: a queue row after a decision, the queue's results after a filter or
a bulk decision, the item panel. Refusals come back as the same partial with the message and a
4xx status, which static/reviews.js tells htmx to swap in. Plain form posts redirect on success
and show the item page with the message when refused.
"""

from __future__ import annotations

import time
import uuid as uuid_module
from datetime import timedelta

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Case,
    F,
    IntegerField,
    Max,
    Value,
    When,
)
from django.forms.renderers import Jinja2
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from config.pagination import paginate
from inventory.models import PolicyVersion, Principal, Right
from reviews import tallies
from reviews.decide import (
    Choice,
    Refused,
    decide,
    decide_many,
    keep_choices,
    reason_required,
    reassign,
)
from reviews.filters import ItemLookups
from reviews.models import Campaign, Decision, Recommendation, Remediation, ReviewItem
from reviews.reduce import ReductionError, diff_rows
from reviews.remediate import replacement_document, reviewed_documents

PAGE_SIZE = 50
MANAGE = "reviews.manage_campaign"
OVERSEE = "reviews.view_campaign"
OPENED_SALT = "reviews.item-opened"
REDUCIBLE = (Right.Kind.MANAGED_POLICY, Right.Kind.INLINE_POLICY, Right.Kind.GROUP_MEMBERSHIP)
# Someone else's item or one's own access is forbidden; a change that lost a race, or a campaign
# no longer open, conflicts with the item's state; anything else is a form to correct.
REFUSAL_STATUS = {"self_review": 403, "not_yours": 403, "stale": 409, "closed": 409}
# A reduction keeps what each item allows, which differs item to item: it is decided one by one.
BULK_DECISIONS = (ReviewItem.Decision.KEEP, ReviewItem.Decision.REVOKE)
PANEL = "item-panel"


# Helpers ----------------------------------------------------------------------------------------


def _is_htmx(request) -> bool:
    # A history restore asks for the whole page although htmx sends it.
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _render(request, template, context, status=200):
    response = render(request, template, context, status=status)
    # The same URL answers htmx with a fragment and a browser with a page: caches must tell.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _visible(user):
    return ReviewItem.objects.visible_to(user).select_related("campaign", "reviewer")


def opened_token(item: ReviewItem, user) -> str:
    """A token saying, by the server's clock, when the user was shown the item."""
    return signing.TimestampSigner(salt=OPENED_SALT).sign(f"{item.uuid}/{user.pk}")


def _opened_at(token: str, item: ReviewItem, user) -> int | None:
    """When the token says the item was shown; None for a token this server did not make for
    this item and user (the decision stands, its timing is unknown)."""
    signer = signing.TimestampSigner(salt=OPENED_SALT)
    try:
        value = signer.unsign(token)
    except signing.BadSignature:
        return None
    if value != f"{item.uuid}/{user.pk}":
        return None
    return signing.b62_decode(token.rsplit(signer.sep, 2)[1])


def _seconds_to_decide(request, item: ReviewItem) -> int | None:
    opened = _opened_at(request.POST.get("opened", ""), item, request.user)
    if opened is None:
        return None
    # A queue page shows fifty items at once: the time spent on one runs from the later of its
    # showing and the reviewer's previous decision, not from when the page was loaded.
    last = Decision.objects.filter(decided_by=request.user).aggregate(last=Max("decided_at"))
    start = max(opened, int(last["last"].timestamp())) if last["last"] else opened
    return max(0, int(time.time()) - start)


def _prepare(items, user):
    """What rows and panels need besides the item: which decisions want a reason, whether it
    can be reduced, whether the user decides it, a token of when it was shown, its URLs and
    the labels of its controls."""
    item_url, decide_url = _url_pattern("reviews:item"), _url_pattern("reviews:decide")
    # Translated once for the page's fifty rows.
    select_label = _("Select %(principal)s: %(right)s")
    decide_label = _("Decide %(principal)s: %(right)s")
    for item in items:
        item.url = item_url.format(item.uuid)
        item.decide_url = decide_url.format(item.uuid)
        names = {
            "principal": item.principal_name,
            "right": item.right_label or item.get_right_kind_display(),
        }
        item.select_label = select_label % names
        item.decide_label = decide_label % names
        item.needs_reason = {
            decision: reason_required(item, decision)
            for decision in (ReviewItem.Decision.KEEP, ReviewItem.Decision.REVOKE)
        }
        item.reducible = item.right_kind in REDUCIBLE and bool(item.facts.get("services"))
        item.is_mine = item.reviewer_id == user.pk and item.campaign.is_open
        item.opened = opened_token(item, user)
    return items


def _url_pattern(name: str) -> str:
    """The URL of an item's view, with {} for the item's uuid: reversed once for a page's
    fifty rows rather than once for each link of each row."""
    marker = uuid_module.UUID(int=0)
    return (
        reverse(name, args=[marker])
        .replace("{", "{{")
        .replace("}", "}}")
        .replace(str(marker), "{}")
    )


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _when(value: str | None):
    return parse_datetime(value) if value else None


# The queue --------------------------------------------------------------------------------------


class _QueueFilterForm(forms.Form):
    # Its eight selects' options, through Django's template engine, took a tenth of a queue
    # page; Django's own Jinja2 templates of the same widgets write the same elements (only
    # the blank lines between options differ).
    default_renderer = Jinja2()


class QueueFilter(ItemLookups, django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=gettext_lazy("Principal or right contains"), method="filter_text", max_length=200
    )
    campaign = django_filters.ChoiceFilter(
        label=gettext_lazy("Campaign"), field_name="campaign__uuid", empty_label=gettext_lazy("All")
    )
    account = django_filters.ChoiceFilter(
        label=gettext_lazy("Account"), field_name="account_id", empty_label=gettext_lazy("All")
    )
    type = django_filters.ChoiceFilter(
        label=gettext_lazy("Type"),
        field_name="principal_kind",
        choices=Principal.Kind.choices,
        empty_label=gettext_lazy("All"),
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
    status = django_filters.ChoiceFilter(
        label=gettext_lazy("Status"),
        method="filter_status",
        choices=[("undecided", gettext_lazy("Undecided")), ("decided", gettext_lazy("Decided"))],
        empty_label=gettext_lazy("All"),
    )
    sort = django_filters.ChoiceFilter(
        label=gettext_lazy("Sort by"),
        method="sort_by",
        choices=[
            ("principal", gettext_lazy("Principal")),
            ("account", gettext_lazy("Account")),
            ("last_used", gettext_lazy("Least recently used")),
            ("recommendation", gettext_lazy("Revocations first")),
            ("privileged", gettext_lazy("Privileged first")),
        ],
        empty_label=gettext_lazy("Undecided first"),
    )

    class Meta:
        model = ReviewItem
        form = _QueueFilterForm
        fields = ["q", "campaign", "account", "type", "recommendation", "privileged", "status"]

    def __init__(self, *args, campaigns, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["campaign"].extra["choices"] = campaigns
        self.filters["account"].extra["choices"] = accounts

    def filter_status(self, queryset, name, value):
        if value == "undecided":
            return queryset.filter(decision="")
        return queryset.exclude(decision="")

    def sort_by(self, queryset, name, value):
        tail = ["principal_name", "right_kind", "right_key", "pk"]
        if value == "account":
            return queryset.order_by("account_name", *tail)
        if value == "last_used":
            return queryset.order_by(F("last_used_at").asc(nulls_first=True), *tail)
        if value == "recommendation":
            rank = Case(
                When(recommendation=Recommendation.REVOKE, then=Value(0)),
                When(recommendation=Recommendation.REDUCE, then=Value(1)),
                When(recommendation=Recommendation.NONE, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            )
            return queryset.order_by(rank, *tail)
        if value == "privileged":
            return queryset.order_by("-privileged", "decision", *tail)
        return queryset.order_by(*tail)


def _progress(user) -> list[dict]:
    """Each active campaign of the user's queue: their items in it, decided and in all, and
    the accounts they are in (`accounts`: id and name)."""
    rows: dict = {}
    # One query, by campaign and account, gives the progress and the account filter's choices,
    # from the reviewer's tallies rather than their items.
    for row in (
        tallies.of(reviewer=user, campaign__state=Campaign.State.ACTIVE)
        .values(
            "campaign_id",
            "campaign__uuid",
            "campaign__name",
            "campaign__due_date",
            "account_id",
            "account_name",
        )
        .annotate(**tallies.progress("done"))
        .order_by("campaign__due_date", "campaign__name", "campaign_id", "account_id")
    ):
        campaign = rows.setdefault(
            row["campaign_id"],
            {
                "campaign_id": row["campaign_id"],
                "campaign__uuid": row["campaign__uuid"],
                "campaign__name": row["campaign__name"],
                "campaign__due_date": row["campaign__due_date"],
                "total": 0,
                "done": 0,
                "accounts": [],
            },
        )
        campaign["total"] += row["total"]
        campaign["done"] += row["done"]
        campaign["accounts"].append((row["account_id"], row["account_name"]))
    today = timezone.localdate()
    for row in rows.values():
        row["days_left"] = (row["campaign__due_date"] - today).days
        row["overdue"] = max(0, -row["days_left"])
    return list(rows.values())


def _progress_context(user) -> dict:
    progress = _progress(user)
    return {"progress": progress, "waiting": sum(row["total"] - row["done"] for row in progress)}


def _queue_filter(request, progress: list[dict]) -> QueueFilter:
    """The queue's filters over the user's items of the campaigns in `progress` (active when
    it was read), undecided first, the campaign due soonest first among them."""
    order = ["decision", "campaign__due_date", "account_name", "principal_name"]
    if len({row["campaign__due_date"] for row in progress}) < 2:
        # One due date (the usual case) orders nothing: without it, the index of the queue
        # gives the page's ids in order rather than a sort of all the reviewer's items.
        order.remove("campaign__due_date")
    mine = ReviewItem.objects.filter(
        reviewer=request.user, campaign_id__in=[row["campaign_id"] for row in progress]
    )
    accounts = sorted({account for row in progress for account in row["accounts"]}, key=_by_name)
    return QueueFilter(
        request.GET,
        # The page's items share a campaign or two: one instance each rather than one an item.
        queryset=mine.prefetch_related("campaign").order_by(
            *order, "right_kind", "right_key", "pk"
        ),
        campaigns=[(str(row["campaign__uuid"]), row["campaign__name"]) for row in progress],
        accounts=[(account_id, f"{name} ({account_id})") for account_id, name in accounts],
    )


def _by_name(account: tuple[str, str]) -> tuple[str, str]:
    account_id, name = account
    return name, account_id


def _known_count(filters: QueueFilter, progress: list[dict]) -> int | None:
    """How many items the filters leave, when the progress already says: none is set but the
    order (or one says undecided only). None otherwise, and the page counts them."""
    if not filters.is_valid():
        return None
    chosen = {name for name, value in filters.form.cleaned_data.items() if value not in ("", None)}
    chosen.discard("sort")
    if not chosen:
        return sum(row["total"] for row in progress)
    if chosen == {"status"} and filters.form.cleaned_data["status"] == "undecided":
        return sum(row["total"] - row["done"] for row in progress)
    return None


def _queue_context(request, *, chosen=(), bulk=None) -> dict:
    progress = _progress(request.user)
    filters = _queue_filter(request, progress)
    count = _known_count(filters, progress)
    page = paginate(filters.qs, request.GET.get("page"), PAGE_SIZE, count=count)
    _prepare(page.object_list, request.user)
    query = request.GET.copy()
    query.pop("page", None)
    next_query = query.copy()
    next_query["status"] = "undecided"
    undecided = sum(row["total"] - row["done"] for row in progress)
    return {
        "filter": filters,
        "page": page,
        "query": query.urlencode(),
        "next_query": next_query.urlencode(),
        "progress": progress,
        "waiting": undecided,
        "total": sum(row["total"] for row in progress),
        "more_undecided": undecided > sum(1 for item in page.object_list if not item.decision),
        "chosen": {str(value) for value in chosen},
        "bulk": bulk or {},
        "bulk_decisions": [(value, ReviewItem.Decision(value).label) for value in BULK_DECISIONS],
        "next": request.get_full_path() if request.method == "GET" else "",
    }


@require_GET
def queue(request):
    context = _queue_context(request)
    if _is_htmx(request):
        return _render(request, "reviews/partials/queue_results.html", context)
    return _render(request, "reviews/queue.html", context)


# One item ---------------------------------------------------------------------------------------


def _documents(item: ReviewItem) -> list[dict]:
    """The policy documents the item was shown with, one query per kind of source."""
    refs = item.facts.get("documents", [])
    version_ids = [ref["version"] for ref in refs if "version" in ref]
    right_ids = [ref["inline_right"] for ref in refs if "inline_right" in ref]
    if item.right_kind == Right.Kind.INLINE_POLICY:
        right_ids.append(item.right_id)
    versions = PolicyVersion.objects.in_bulk(version_ids) if version_ids else {}
    rights = Right.objects.in_bulk(right_ids) if right_ids else {}
    documents = []
    if item.right_kind == Right.Kind.INLINE_POLICY and item.right_id in rights:
        documents.append(
            {
                "name": item.right_label,
                "source": _("Inline policy"),
                "document": rights[item.right_id].document,
            }
        )
    for ref in refs:
        if ref.get("version") in versions:
            version = versions[ref["version"]]
            documents.append(
                {
                    "name": ref["name"],
                    "arn": ref.get("arn"),
                    "source": _("Managed policy, version %(version)s")
                    % {"version": version.version_id},
                    "document": version.document,
                }
            )
        elif ref.get("inline_right") in rights:
            documents.append(
                {
                    "name": ref["name"],
                    "source": _("Inline policy of the group"),
                    "document": rights[ref["inline_right"]].document,
                }
            )
    return documents


def _services(item: ReviewItem) -> tuple[list[dict], list[dict]]:
    """The services the right allows, with their use as dates: those used, most recently used
    first, and those never used."""
    services = [
        {
            "namespace": service["namespace"],
            "name": service.get("name") or service["namespace"],
            "last_used": _when(service.get("last_used")),
            "tracked": service.get("tracked", False),
            "actions": [
                {"name": action, "last_used": _when(last)}
                for action, last in service.get("actions", {}).items()
            ],
        }
        for service in item.facts.get("services", [])
    ]
    used = sorted(
        (s for s in services if s["last_used"]), key=lambda s: s["last_used"], reverse=True
    )
    return used, [s for s in services if not s["last_used"]]


def _keep_options(item: ReviewItem, checked) -> list[dict]:
    """What a reduction can keep: each service, with its tracked actions under it."""
    checked = set(checked)
    options: list[dict] = []
    for value in keep_choices(item):
        action = value.partition(":")[2]
        if not action:
            options.append({"value": value, "checked": value in checked, "actions": []})
        else:
            options[-1]["actions"].append(
                {"value": value, "label": action, "checked": value in checked}
            )
    return options


def _people(user) -> list[str]:
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(pk=user.pk)
        .order_by("username")
        .values_list("username", flat=True)
    )


def _panel_context(request, item: ReviewItem, form: dict | None = None, **extra) -> dict:
    """The item panel: what the right is and allows, its history, the forms. `form` is what
    was posted, to show again when refused."""
    user = request.user
    _prepare([item], user)
    form = form or {}
    decisions = list(item.decisions.all())
    if "keep" in form:
        keep = form["keep"]
    elif item.decision == ReviewItem.Decision.REDUCE and decisions:
        keep = decisions[0].keep
    else:
        keep = item.facts.get("keep", [])
    can_reassign = item.campaign.is_open and (item.reviewer_id == user.pk or user.has_perm(MANAGE))
    holders = item.facts.get("holders") or {"count": 0, "names": []}
    services, unused_services = _services(item)
    return {
        "item": item,
        "facts": item.facts,
        "services": services,
        "unused_services": unused_services,
        "documents": _documents(item),
        "holders": holders,
        "holders_more": max(0, holders["count"] - len(holders["names"])),
        "decisions": decisions,
        "remediation": item.remediations.exclude(state=Remediation.State.CANCELLED).first(),
        "oversees": user.has_perm(OVERSEE),
        "chosen": form.get("decision") or request.GET.get("decision") or item.decision,
        "keep_options": _keep_options(item, keep),
        "reason": form.get("reason", ""),
        "keep_until": form.get("keep_until", ""),
        "can_reassign": can_reassign,
        "people": _people(user) if can_reassign else [],
        "in_queue": form.get("in_queue", _is_htmx(request)),
        "tomorrow": timezone.localdate() + timedelta(days=1),
        **extra,
    }


@require_GET
def item_detail(request, item_uuid):
    item = get_object_or_404(_visible(request.user), uuid=item_uuid)
    context = _panel_context(request, item)
    if _is_htmx(request):
        return _render(request, "reviews/partials/item_panel.html", context)
    return _render(request, "reviews/item_detail.html", context)


@require_GET
def replacement_preview(request, item_uuid):
    """What a reduction keeping the checked entries would put in place, against the policy the
    reviewer sees: shown before anything is decided or applied."""
    item = get_object_or_404(
        _visible(request.user).select_related("right__policy", "right__group", "policy_version"),
        uuid=item_uuid,
        right_kind__in=REDUCIBLE,
    )
    allowed = set(keep_choices(item))
    keep = [entry for entry in request.GET.getlist("keep") if entry in allowed]
    context = {"item": item, "keep": keep}
    if keep:
        try:
            replacement = replacement_document(item, keep)
        except ReductionError as exc:
            context["error"] = str(exc)
        else:
            context["replacement"] = replacement
            context["diff"] = diff_rows(reviewed_documents(item), replacement)
    return _render(request, "reviews/partials/replacement_preview.html", context)


class DecisionForm(forms.Form):
    """The decision as posted; what it may be is decide.clean_choice's to say."""

    decision = forms.CharField(max_length=8, required=False)
    reason = forms.CharField(required=False, strip=False)
    keep = forms.MultipleChoiceField(required=False)
    keep_until = forms.DateField(required=False)
    version = forms.IntegerField(min_value=1)

    def __init__(self, *args, item, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [(value, value) for value in keep_choices(item)]

    def error_message(self) -> str:
        if "reason" in self.errors:
            # A NUL pasted into the reason: say so, rather than blame the page's age.
            return self.errors["reason"][0]
        if "keep" in self.errors:
            return _("The right does not allow some of what you chose to keep.")
        if "keep_until" in self.errors:
            return _("Give the end date as a date, like 2027-03-31.")
        return _("The form is out of date: reload the page and decide again.")


_DONE = {
    ReviewItem.Decision.KEEP: gettext_lazy("Kept"),
    ReviewItem.Decision.REVOKE: gettext_lazy("Revoked"),
    ReviewItem.Decision.REDUCE: gettext_lazy("Reduced"),
}


def _done(item: ReviewItem) -> str:
    return _("%(done)s: %(principal)s, %(right)s.") % {
        "done": _DONE[item.decision],
        "principal": item.principal_name,
        "right": item.right_label or item.get_right_kind_display(),
    }


def _row_response(request, item, *, status=200, **extra):
    """A queue row, with the queue's progress and status line swapped in out of band."""
    _prepare([item], request.user)
    context = {
        "item": item,
        **_progress_context(request.user),
        "next": request.POST.get("next", ""),
        **extra,
    }
    return _render(request, "reviews/partials/queue_row_response.html", context, status=status)


def _panel_response(request, item, *, status=200, form=None, **extra):
    """The item panel; inside the queue, with the item's row and the progress out of band."""
    context = _panel_context(request, item, form, **extra)
    if context["in_queue"]:
        context.update(_progress_context(request.user))
    return _render(request, "reviews/partials/item_panel_response.html", context, status=status)


def _from_panel(request) -> bool:
    return request.headers.get("HX-Target") == PANEL


@require_POST
def decide_item(request, item_uuid):
    item = get_object_or_404(_visible(request.user), uuid=item_uuid)
    posted = {
        "decision": request.POST.get("decision", ""),
        "reason": request.POST.get("reason", ""),
        "keep": request.POST.getlist("keep"),
        "keep_until": request.POST.get("keep_until", ""),
        "in_queue": request.POST.get("in_queue") == "1",
    }
    form = DecisionForm(request.POST, item=item)
    if not form.is_valid():
        return _refused(request, item, Refused(form.error_message()), posted)
    data = form.cleaned_data
    choice = Choice(data["decision"], data["reason"], tuple(data["keep"]), data["keep_until"])
    try:
        item = decide(
            item,
            request.user,
            choice,
            version=data["version"],
            seconds_to_decide=_seconds_to_decide(request, item),
        )
    except Refused as exc:
        if exc.code in ("stale", "closed"):
            # What the reviewer must see now is the item as it is, not what they had.
            item = _visible(request.user).get(pk=item.pk)
        return _refused(request, item, exc, posted)
    notice = _done(item)
    if not _is_htmx(request):
        messages.success(request, notice)
        return redirect(_safe_next(request, item.get_absolute_url()))
    if _from_panel(request):
        return _panel_response(request, item, form={"in_queue": posted["in_queue"]}, notice=notice)
    return _row_response(request, item, notice=notice)


def _refused(request, item, exc: Refused, posted: dict):
    status = REFUSAL_STATUS.get(exc.code, 400)
    if exc.code == "stale":
        # The choice was made on what the item no longer is: only the reason is worth keeping.
        posted = {"reason": posted["reason"], "in_queue": posted["in_queue"]}
    if _is_htmx(request) and not _from_panel(request):
        return _row_response(
            request,
            item,
            status=status,
            row_error=str(exc),
            reason_open=exc.code == "reason_required" or bool(posted["reason"].strip()),
            pending=posted.get("decision", ""),
            reason=posted["reason"],
        )
    context = {"form": posted, "error": str(exc)}
    if _is_htmx(request):
        return _panel_response(request, item, status=status, **context)
    return _render(
        request,
        "reviews/item_detail.html",
        _panel_context(request, item, **context),
        status=status,
    )


# Many items -------------------------------------------------------------------------------------


def _uuids(values) -> list[uuid_module.UUID]:
    try:
        return list(dict.fromkeys(uuid_module.UUID(value) for value in values))
    except ValueError:
        # Only a hand-made request sends something other than the ids the page offered.
        raise Http404 from None


def _bulk_items(request) -> list[ReviewItem]:
    """The items a bulk decision is about. One the user may not decide fails the request."""
    user = request.user
    if request.POST.get("all_matching") == "1":
        return list(_queue_filter(request, _progress(user)).qs.order_by("pk"))
    wanted = _uuids(request.POST.getlist("item"))
    found = list(_visible(user).filter(uuid__in=wanted).order_by("pk"))
    if len(found) != len(wanted):
        # Someone else's item among one's own: nothing is decided, and nothing says it exists.
        raise Http404
    if any(item.reviewer_id != user.pk for item in found):
        # In sight (an overseer's), not theirs to decide.
        raise PermissionDenied
    return found


@require_POST
def bulk_decide(request):
    items = _bulk_items(request)
    decision = request.POST.get("decision", "")
    reason = request.POST.get("reason", "")
    status, error = 400, None
    if not items:
        error = _("Choose the items to decide.")
    elif decision not in BULK_DECISIONS:
        error = _("Choose keep or revoke for the chosen items.")
    else:
        try:
            count = decide_many(items, request.user, Choice(decision=decision, reason=reason))
        except Refused as exc:
            status, error = REFUSAL_STATUS.get(exc.code, 400), str(exc)
    if error is None:
        notice = ngettext(
            "%(decision)s: %(count)d item decided.",
            "%(decision)s: %(count)d items decided.",
            count,
        ) % {"decision": ReviewItem.Decision(decision).label, "count": count}
    if not _is_htmx(request):
        if error:
            messages.error(request, error)
        else:
            messages.success(request, notice)
        query = request.GET.urlencode()
        return redirect(reverse("reviews:queue") + (f"?{query}" if query else ""))
    if error:
        # The form as it was, so that the reviewer corrects it rather than starting over.
        chosen = [] if request.POST.get("all_matching") == "1" else [i.uuid for i in items]
        context = _queue_context(
            request, chosen=chosen, bulk={"decision": decision, "reason": reason}
        )
        context.update(bulk_error=error, oob=True)
        return _render(request, "reviews/partials/queue_results.html", context, status=status)
    context = _queue_context(request)
    context.update(notice=notice, oob=True)
    return _render(request, "reviews/partials/queue_results.html", context)


# Another reviewer -------------------------------------------------------------------------------


@require_POST
def reassign_item(request, item_uuid):
    user = request.user
    item = get_object_or_404(_visible(user), uuid=item_uuid)
    if item.reviewer_id != user.pk and not user.has_perm(MANAGE):
        raise PermissionDenied
    username = request.POST.get("to", "").strip()
    reason = request.POST.get("reason", "")
    in_queue = request.POST.get("in_queue") == "1"
    to_user = get_user_model().objects.filter(username=username).first() if username else None
    status, error = 400, None
    if not username:
        error = _("Say to whom the item goes.")
    elif to_user is None:
        error = _("Nobody signs in as %(username)s.") % {"username": username}
    elif to_user.pk == item.reviewer_id:
        error = _("%(username)s already reviews this item.") % {"username": username}
    else:
        try:
            reassign([item], to_user, user, reason)
        except Refused as exc:
            status, error = REFUSAL_STATUS.get(exc.code, 400), str(exc)
            if exc.code == "self_review":
                # Not the requester's fault, nor forbidden to them: the person chosen cannot
                # take it, and another can.
                status = 400
    if error is not None:
        context = {
            "form": {"in_queue": in_queue},
            "reassign": {"error": error, "to": username, "reason": reason},
        }
        if _is_htmx(request):
            return _panel_response(request, item, status=status, **context)
        return _render(
            request,
            "reviews/item_detail.html",
            _panel_context(request, item, **context),
            status=status,
        )
    item = ReviewItem.objects.select_related("campaign", "reviewer").get(pk=item.pk)
    notice = _("%(item)s now goes to %(username)s.") % {"item": item, "username": username}
    in_sight = _visible(user).filter(pk=item.pk).exists()
    if not _is_htmx(request):
        messages.success(request, notice)
        return redirect(item if in_sight else reverse("reviews:queue"))
    if not in_sight:
        # Delegated away: the panel says so, and the queue's row no longer offers decisions.
        _prepare([item], user)
        context = {"item": item, "notice": notice, "gone": True, "in_queue": in_queue}
        if in_queue:
            context.update(_progress_context(user))
        return _render(request, "reviews/partials/item_panel_response.html", context)
    return _panel_response(request, item, form={"in_queue": in_queue}, notice=notice)

"""Remediation as campaign managers and auditors see it: what was done in AWS about each revoke
and reduce decision, and the manager's answers (approve, roll back, except, confirm, retry).

These pages are for the roles that oversee campaigns: anyone else gets a 404, whether the
campaign or remediation exists or not (a reviewer sees their own decisions on the item page).
Writes need reviews.manage_campaign, and a remediation that the campaign's sign-off did not
cover (one planned later, for a right kept until a day now past, is not), except a rollback,
which stays possible because it is recorded like any other change. The state changes themselves
are `reviews.remediate`'s: a view only calls them, and shows their refusal beside the form.
The list is a fixed number of queries however many remediations the campaign has.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from audit.models import AuditEvent
from config.pagination import paginate
from inventory.models import AwsAccount
from reviews import remediate
from reviews.models import Campaign, Remediation, ReviewItem
from reviews.reduce import diff_rows
from reviews.views import manager
from reviews.views.manager import MANAGE, OVERSEE, PAGE_SIZE

State = Remediation.State
# What is still moving in AWS, or about to: the summary on the dashboard polls while any is.
IN_FLIGHT = (State.RUNNING, State.ROLLBACK_PLANNED, State.ROLLING_BACK)
# What the detail page loads with a remediation: everything `remediate.target` reads.
FOR_DETAIL = (
    "item__right__policy",
    "item__right__group",
    "item__policy_version",
    "campaign__owner",
    "account",
    "decision",
)


# Helpers ----------------------------------------------------------------------------------------


def _oversee(request) -> None:
    # Not a 403: to a reviewer, remediation pages are as absent as another campaign's.
    if not request.user.has_perm(OVERSEE):
        raise Http404


def _campaign(request, campaign_uuid) -> Campaign:
    _oversee(request)
    return manager._campaign(request, campaign_uuid)


def _remediation(request, remediation_uuid) -> Remediation:
    _oversee(request)
    visible = Remediation.objects.filter(
        campaign__in=Campaign.objects.visible_to(request.user)
    ).select_related(*FOR_DETAIL)
    return get_object_or_404(visible, uuid=remediation_uuid)


def _counts(campaign: Campaign) -> dict:
    """The campaign's remediations per state, and those waiting for the manager, in one query."""
    rows = list(
        campaign.remediations.order_by()
        .values("state")
        .annotate(
            n=Count("pk"),
            waiting=Count("pk", filter=Q(state=State.PLANNED, approved_at__isnull=True)),
            excepted=Count("pk", filter=Q(excepted_at__isnull=False)),
        )
    )
    found = {row["state"]: row["n"] for row in rows}
    return {
        "states": [
            {"value": value, "label": label, "count": found[value]}
            for value, label in State.choices
            if found.get(value)
        ],
        "total": sum(found.values()),
        "waiting": sum(row["waiting"] for row in rows),
        "excepted": sum(row["excepted"] for row in rows),
        "in_flight": any(found.get(state) for state in IN_FLIGHT),
    }


def last_request_id(remediation: Remediation) -> str:
    """The request id of the last call AWS answered for it (or of the error it failed with)."""
    if remediation.state == State.FAILED and (remediation.error or {}).get("request_id"):
        return remediation.error["request_id"]
    made = [
        call for call in [*remediation.calls, *remediation.rollback_calls] if call.get("request_id")
    ]
    return max(made, key=lambda call: call.get("at", ""))["request_id"] if made else ""


# The list ---------------------------------------------------------------------------------------


class RemediationFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        label=gettext_lazy("State"), choices=State.choices, empty_label=gettext_lazy("All")
    )
    account = django_filters.ChoiceFilter(
        label=gettext_lazy("Account"),
        field_name="account__account_id",
        empty_label=gettext_lazy("All"),
    )

    class Meta:
        model = Remediation
        fields = ["state", "account"]

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["account"].extra["choices"] = accounts


@require_GET
def remediation_list(request, campaign_uuid):
    campaign = _campaign(request, campaign_uuid)
    accounts = list(
        campaign.remediations.order_by("account__name", "account__account_id")
        .values("account__account_id", "account__name", "account__mode")
        .annotate(manual=Count("pk", filter=Q(state=State.MANUAL)))
    )
    filters = RemediationFilter(
        request.GET,
        queryset=campaign.remediations.select_related("item", "account")
        # The large JSON of what the reviewer saw and of AWS's state is shown on the detail.
        .defer("item__facts", "before", "after_state", "replacement")
        .order_by(
            "account__name", "item__principal_name", "item__right_kind", "item__right_key", "pk"
        ),
        accounts=[
            (row["account__account_id"], f"{row['account__name']} ({row['account__account_id']})")
            for row in accounts
        ],
    )
    page = paginate(filters.qs, request.GET.get("page"), PAGE_SIZE)
    for remediation in page.object_list:
        remediation.last_request_id = last_request_id(remediation)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "campaign": campaign,
        "filter": filters,
        "page": page,
        "query": query.urlencode(),
        "counts": _counts(campaign),
        "unsettled": remediate.unsettled(campaign).count(),
        "plans": [
            row
            for row in accounts
            if row["manual"] and row["account__mode"] == AwsAccount.Mode.IMPORT
        ],
        "can_manage": request.user.has_perm(MANAGE),
    }
    htmx = request.headers.get("HX-Request") == "true"
    response = render(
        request,
        "reviews/partials/remediation_rows.html" if htmx else "reviews/remediation_list.html",
        context,
    )
    # The same URL answers htmx with the rows and a browser with the page: caches must tell.
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
def remediation_summary(request, campaign_uuid):
    """The dashboard's remediation section, loaded (and refreshed while AWS works) by htmx."""
    campaign = _campaign(request, campaign_uuid)
    return render(
        request,
        "reviews/partials/remediation_summary.html",
        {
            "campaign": campaign,
            "counts": _counts(campaign),
            "unsettled": remediate.unsettled(campaign).count(),
        },
    )


@require_POST
def remediations_approve(request, campaign_uuid):
    campaign = _campaign(request, campaign_uuid)
    manager._require(request.user, MANAGE)
    try:
        count = remediate.approve(campaign, request.user)
    except remediate.Refused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            ngettext(
                "Approved: %(count)d remediation is queued to be carried out in AWS.",
                "Approved: %(count)d remediations are queued to be carried out in AWS.",
                count,
            )
            % {"count": count},
        )
    return redirect("reviews:remediations", campaign.uuid)


@require_GET
def remediation_plan(request, campaign_uuid, account_id):
    """The shell script of an import-only account's manual remediations, to run by hand."""
    campaign = _campaign(request, campaign_uuid)
    found = [
        remediation
        for remediation in campaign.remediations.filter(
            account__account_id=account_id,
            account__mode=AwsAccount.Mode.IMPORT,
            state=State.MANUAL,
        )
        .select_related(*FOR_DETAIL)
        .order_by("item__principal_name", "item__right_kind", "item__right_key", "pk")
        if remediate.plannable(remediation)
    ]
    if not found:
        raise Http404
    account = found[0].account
    response = HttpResponse(
        remediate.plan_script(account, found), content_type="text/x-shellscript; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="attest-plan-{account.account_id}.sh"'
    return response


# One remediation --------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        # Required by remediate, which says so in its own words; the browser asks first.
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "required": True}),
    )


class RollbackForm(ReasonForm):
    pass


class ExceptForm(ReasonForm):
    pass


class ConfirmForm(forms.Form):
    ticket = forms.CharField(
        label=gettext_lazy("Ticket of the change"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"required": True}),
        help_text=gettext_lazy("The change request under which the commands were run."),
    )


class RetryForm(forms.Form):
    pass


FORMS = {"rollback": RollbackForm, "except": ExceptForm, "confirm": ConfirmForm, "retry": RetryForm}


def _forms(remediation: Remediation, user, posted: tuple[str, forms.Form] | None) -> dict:
    """The forms the manager may use on it now, by name; the one posted keeps what was typed."""
    if not user.has_perm(MANAGE):
        return {}
    state = remediation.state
    open_campaign = not remediate.attested(remediation)
    shown = {
        "rollback": state in (State.APPLIED, State.VERIFIED, State.FAILED)
        and remediation.before is not None
        and not remediation.dry_run
        and remediation.key_deleted_at is None,
        "except": open_campaign
        and state not in (State.VERIFIED, State.CANCELLED)
        and remediation.excepted_at is None,
        "confirm": open_campaign and state == State.MANUAL,
        "retry": open_campaign and state in (State.FAILED, State.SIMULATED),
    }
    made = {name: FORMS[name](auto_id=f"{name}-%s") for name, show in shown.items() if show}
    if posted is not None:
        made[posted[0]] = posted[1]
    return made


def _calls(entries: list[dict]) -> list[dict]:
    return [{**entry, "at": parse_datetime(entry.get("at") or "")} for entry in entries]


def _diff(remediation: Remediation, documents: list[dict]) -> list[dict]:
    """The reduction's replacement against what was reviewed, line by line."""
    if remediation.replacement is None:
        return []
    return diff_rows(documents, remediation.replacement)


def _detail(request, remediation: Remediation, posted=None):
    item = remediation.item
    context = {
        "remediation": remediation,
        "item": item,
        "campaign": remediation.campaign,
        "decision": remediation.decision,
        "calls": _calls(remediation.calls),
        "rollback_calls": _calls(remediation.rollback_calls),
        "forms": _forms(remediation, request.user, posted),
        "history": AuditEvent.objects.for_object("reviews.remediation", remediation.pk).order_by(
            "id"
        ),
    }
    holders = item.facts.get("holders")
    if holders:
        context["holders"] = holders
        context["holders_more"] = max(0, holders["count"] - len(holders["names"]))
    if remediation.action == ReviewItem.Decision.REDUCE:
        documents = remediate.reviewed_documents(item)
        context["reviewed_count"] = len(documents)
        context["diff"] = _diff(remediation, documents)
    if remediation.state == State.MANUAL:
        context["commands"] = (
            remediate.plan_commands(remediation) if remediate.plannable(remediation) else None
        )
        context["plan_downloadable"] = remediation.account.mode == AwsAccount.Mode.IMPORT
    return render(request, "reviews/remediation_detail.html", context)


@require_GET
def remediation_detail(request, remediation_uuid):
    return _detail(request, _remediation(request, remediation_uuid))


def _act(request, remediation_uuid, name: str, carry_out, done, *, after_signoff=False):
    """Validate the posted form, have remediate make the change, and redirect; or show the
    page again with its refusal beside the form and what was typed kept."""
    remediation = _remediation(request, remediation_uuid)
    manager._require(request.user, MANAGE)
    form = FORMS[name](request.POST, auto_id=f"{name}-%s")
    before = remediation.state
    if form.is_valid() and not after_signoff and remediate.attested(remediation):
        form.add_error(None, _("The campaign is signed off: only a rollback is still possible."))
    if form.is_valid():
        try:
            carry_out(remediation, form.cleaned_data)
        except remediate.Refused as exc:
            # A refusal of a blank field is about that field; any other is about the change.
            blank = [field for field, value in form.cleaned_data.items() if not value]
            form.add_error(blank[0] if blank else None, str(exc))
        else:
            messages.success(request, done(remediation, before))
            return redirect(remediation)
    return _detail(request, remediation, posted=(name, form))


@require_POST
def remediation_rollback(request, remediation_uuid):
    return _act(
        request,
        remediation_uuid,
        "rollback",
        lambda remediation, data: remediate.request_rollback(
            remediation, request.user, data["reason"]
        ),
        lambda remediation, before: _(
            "Rollback requested: Attest puts back the saved state in AWS and records each call."
        ),
        after_signoff=True,
    )


@require_POST
def remediation_except(request, remediation_uuid):
    return _act(
        request,
        remediation_uuid,
        "except",
        lambda remediation, data: remediate.except_(remediation, request.user, data["reason"]),
        lambda remediation, before: _("Excepted: sign-off no longer waits for this revocation."),
    )


@require_POST
def remediation_confirm(request, remediation_uuid):
    return _act(
        request,
        remediation_uuid,
        "confirm",
        lambda remediation, data: remediate.confirm(remediation, request.user, data["ticket"]),
        lambda remediation, before: (
            _("Confirmed under %(ticket)s: the next import of the account verifies the change.")
            % {"ticket": remediation.ticket}
        ),
    )


@require_POST
def remediation_retry(request, remediation_uuid):
    return _act(
        request,
        remediation_uuid,
        "retry",
        lambda remediation, data: remediate.retry(remediation, request.user),
        lambda remediation, before: (
            _("Queued to run for real: this time Attest makes the calls in AWS.")
            if before == State.SIMULATED
            else _("Queued: Attest carries it out in AWS again.")
        ),
    )

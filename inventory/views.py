"""Web pages of the inventory: accounts and their runs, principals with rights and usage."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from inventory.filters import PrincipalFilter
from inventory.models import (
    ActionUsage,
    AwsAccount,
    CollectionRun,
    PolicyVersion,
    Principal,
    Right,
    ServiceUsage,
)
from inventory.tasks import start_collections

PAGE_SIZE = 50


def _is_htmx(request):
    return request.headers.get("HX-Request") == "true"


def _accounts_with_last_run(user):
    accounts = list(
        AwsAccount.objects.visible_to(user).select_related("owner", "current_run").with_last_run()
    )
    runs = CollectionRun.objects.in_bulk([a.last_run_id for a in accounts if a.last_run_id])
    for account in accounts:
        account.last_run = runs.get(account.last_run_id)
    return accounts


@require_GET
def account_list(request):
    accounts = _accounts_with_last_run(request.user)
    context = {
        "accounts": accounts,
        "running": any(a.last_run and a.last_run.is_running for a in accounts),
        "can_collect": request.user.has_perm("inventory.start_collection"),
    }
    if _is_htmx(request):
        return render(request, "inventory/partials/account_rows.html", context)
    return render(request, "inventory/account_list.html", context)


@require_GET
def account_detail(request, account_id):
    account = get_object_or_404(
        AwsAccount.objects.visible_to(request.user).select_related("owner", "current_run"),
        account_id=account_id,
    )
    runs = Paginator(account.runs.all(), 20).get_page(request.GET.get("page"))
    kinds = dict(
        account.principals.current().values_list("kind").annotate(n=Count("pk")).order_by()
    )
    return render(
        request,
        "inventory/account_detail.html",
        {
            "account": account,
            "runs": runs,
            "kinds": [
                (Principal.Kind.USER, _("Users"), kinds.get(Principal.Kind.USER, 0)),
                (Principal.Kind.GROUP, _("Groups"), kinds.get(Principal.Kind.GROUP, 0)),
                (Principal.Kind.ROLE, _("Roles"), kinds.get(Principal.Kind.ROLE, 0)),
            ],
            "can_collect": request.user.has_perm("inventory.start_collection"),
        },
    )


@require_POST
def start_collection(request, account_id):
    account = get_object_or_404(AwsAccount.objects.visible_to(request.user), account_id=account_id)
    if not request.user.has_perm("inventory.start_collection"):
        raise PermissionDenied
    if account.mode != AwsAccount.Mode.LIVE or not account.active:
        messages.error(request, _("%(account)s is not collected live.") % {"account": account})
        return redirect(account)
    (run,) = start_collections([account], request.user)
    messages.success(request, _("Collection of %(account)s started.") % {"account": account})
    return redirect("inventory:run", run.uuid)


@require_POST
def start_all_collections(request):
    if not request.user.has_perm("inventory.start_collection"):
        raise PermissionDenied
    accounts = AwsAccount.objects.visible_to(request.user).filter(
        active=True, mode=AwsAccount.Mode.LIVE
    )
    runs = start_collections(accounts, request.user)
    messages.success(request, _("Collection of %(count)d accounts started.") % {"count": len(runs)})
    return redirect("inventory:accounts")


@require_GET
def run_detail(request, run_uuid):
    run = get_object_or_404(
        CollectionRun.objects.filter(
            account__in=AwsAccount.objects.visible_to(request.user)
        ).select_related("account"),
        uuid=run_uuid,
    )
    context = {"run": run}
    if _is_htmx(request):
        return render(request, "inventory/partials/run_status.html", context)
    return render(request, "inventory/run_detail.html", context)


@require_GET
def principal_list(request):
    accounts = AwsAccount.objects.visible_to(request.user)
    rights = (
        Right.objects.current()
        .filter(principal=OuterRef("pk"))
        .order_by()
        .values("principal")
        .annotate(n=Count("pk"))
        .values("n")
    )
    principals = (
        Principal.objects.current()
        .filter(account__in=accounts)
        .select_related("account")
        .annotate(right_count=Coalesce(Subquery(rights), 0))
    )
    filters = PrincipalFilter(request.GET, queryset=principals, accounts=accounts)
    page = Paginator(filters.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "inventory/principal_list.html",
        {"filter": filters, "page": page, "query": query.urlencode()},
    )


def _most_recent_first(service):
    """Services used most recently first, then those never used, by name."""
    used = service.last_authenticated_at
    return (used is None, -used.timestamp() if used else 0, service.service_namespace)


@require_GET
def principal_detail(request, principal_uuid):
    principal = get_object_or_404(
        Principal.objects.filter(
            account__in=AwsAccount.objects.visible_to(request.user)
        ).select_related("account", "first_seen_run", "removed_run"),
        uuid=principal_uuid,
    )
    # What the principal holds now or, once removed, held when AWS last showed it: the rows
    # removed by the same run (None matches the current rows).
    current = Q(removed_run=principal.removed_run_id)
    rights = list(
        principal.rights.filter(current)
        .select_related("policy", "group")
        .prefetch_related(
            Prefetch(
                "policy__versions",
                queryset=PolicyVersion.objects.filter(is_default=True, removed_run__isnull=True),
                to_attr="default_versions",
            )
        )
    )
    actions = {}
    for action in ActionUsage.objects.filter(current, principal=principal):
        actions.setdefault(action.service_namespace, []).append(action)
    usage = list(ServiceUsage.objects.filter(current, principal=principal))
    for service in usage:
        service.actions = actions.get(service.service_namespace, [])
    members = []
    if principal.kind == Principal.Kind.GROUP:
        members = list(
            Principal.objects.filter(
                pk__in=principal.member_rights.filter(current).values("principal")
            ).order_by("name")
        )
    return render(
        request,
        "inventory/principal_detail.html",
        {
            "principal": principal,
            "rights": rights,
            "usage": sorted(usage, key=_most_recent_first),
            "members": members,
        },
    )

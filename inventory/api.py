"""The inventory in the REST API: accounts, their collection runs, principals with their rights
and usage, and starting a collection."""

import django_filters
from django.db.models import Q
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from config.api import Conflict, ReadOnlyViewSet
from inventory.models import (
    ActionUsage,
    AwsAccount,
    CollectionRun,
    Principal,
    Right,
    ServiceUsage,
)
from inventory.tasks import start_collections

START_COLLECTION = "inventory.start_collection"


class RunSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    account = serializers.CharField(source="account.account_id", read_only=True)

    class Meta:
        model = CollectionRun
        fields = [
            "id",
            "account",
            "source",
            "status",
            "phase",
            "progress_done",
            "progress_total",
            "started_at",
            "finished_at",
            "requested_by_name",
            "caller_arn",
            "counts",
            "api_calls",
            "retries",
            "errors",
            "warnings",
        ]


class AccountSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, allow_null=True)
    current_run = serializers.UUIDField(source="current_run.uuid", read_only=True, allow_null=True)
    collected_at = serializers.DateTimeField(
        source="current_run.finished_at", read_only=True, allow_null=True
    )

    class Meta:
        model = AwsAccount
        fields = [
            "account_id",
            "name",
            "mode",
            "active",
            "owner",
            "organization_state",
            "current_run",
            "collected_at",
            "created_at",
        ]


class AccountViewSet(ReadOnlyViewSet):
    """AWS accounts in the user's reach: every account for the roles that see the inventory,
    the accounts they own otherwise."""

    serializer_class = AccountSerializer
    lookup_field = "account_id"
    lookup_value_regex = r"\d{12}"
    filterset_fields = ["mode", "active"]
    ordering = ("name", "account_id")

    def get_queryset(self):
        return AwsAccount.objects.visible_to(self.request.user).select_related(
            "owner", "current_run"
        )

    @extend_schema(responses=RunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def runs(self, request, account_id=None):
        """The account's collection runs, newest first."""
        account = self.get_object()
        self.ordering = ("-started_at", "-pk")
        page = self.paginate_queryset(account.runs.select_related("account"))
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def collect(self, request, account_id=None):
        """Start a collection of the account, or answer with the one already running."""
        account = self.get_object()
        if not request.user.has_perm(START_COLLECTION):
            raise PermissionDenied
        if account.mode != AwsAccount.Mode.LIVE or not account.active:
            raise Conflict(_("%(account)s is not collected live.") % {"account": account})
        (run,) = start_collections([account], request.user)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunViewSet(ReadOnlyViewSet):
    """Collection runs of the accounts in the user's reach: poll one to follow a collection."""

    serializer_class = RunSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "run_id"
    filterset_fields = ["status", "source"]
    ordering = ("-started_at", "-pk")

    def get_queryset(self):
        return CollectionRun.objects.filter(
            account__in=AwsAccount.objects.visible_to(self.request.user)
        ).select_related("account")


class RightSerializer(serializers.ModelSerializer):
    policy_arn = serializers.CharField(source="policy.arn", read_only=True, allow_null=True)
    group = serializers.CharField(source="group.name", read_only=True, allow_null=True)

    class Meta:
        model = Right
        fields = [
            "kind",
            "key",
            "policy_arn",
            "group",
            "document",
            "status",
            "created_at",
            "last_used_at",
            "last_used_service",
            "last_used_region",
            "mfa_active",
        ]


class ActionUsageSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActionUsage
        fields = ["action", "last_accessed_at", "last_accessed_region"]


class ServiceUsageSerializer(serializers.ModelSerializer):
    actions = ActionUsageSerializer(many=True, read_only=True, source="tracked_actions")

    class Meta:
        model = ServiceUsage
        fields = [
            "service_namespace",
            "service_name",
            "last_authenticated_at",
            "last_authenticated_region",
            "actions_tracked",
            "actions",
        ]


class PrincipalSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    account = serializers.CharField(source="account.account_id", read_only=True)
    removed = serializers.BooleanField(source="is_removed", read_only=True)

    class Meta:
        model = Principal
        fields = [
            "id",
            "account",
            "kind",
            "arn",
            "name",
            "path",
            "created_at",
            "last_used_at",
            "last_used_region",
            "tags",
            "removed",
        ]


class PrincipalDetailSerializer(PrincipalSerializer):
    rights = RightSerializer(many=True, read_only=True, source="held_rights")
    usage = ServiceUsageSerializer(many=True, read_only=True, source="held_usage")

    class Meta(PrincipalSerializer.Meta):
        fields = [*PrincipalSerializer.Meta.fields, "trust_policy", "rights", "usage"]


class PrincipalFilter(django_filters.FilterSet):
    account = django_filters.CharFilter(field_name="account__account_id", max_length=12)
    kind = django_filters.ChoiceFilter(choices=Principal.Kind.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", max_length=128)
    removed = django_filters.BooleanFilter(
        field_name="removed_run", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = Principal
        fields = ["account", "kind", "name", "removed"]


class PrincipalViewSet(ReadOnlyViewSet):
    """IAM users, groups and roles of the accounts in the user's reach, current by default
    (`removed=true` lists those AWS no longer shows). One principal comes with its rights and
    its usage from IAM Access Advisor."""

    lookup_field = "uuid"
    lookup_url_kwarg = "principal_id"
    filterset_class = PrincipalFilter
    ordering = ("name", "pk")

    def get_serializer_class(self):
        return PrincipalDetailSerializer if self.action == "retrieve" else PrincipalSerializer

    def get_queryset(self):
        principals = Principal.objects.visible_to(self.request.user).select_related("account")
        if self.action == "list" and "removed" not in self.request.query_params:
            principals = principals.current()
        return principals

    def get_object(self):
        principal = super().get_object()
        # What it holds now or, once removed, held when AWS last showed it.
        current = Q(removed_run=principal.removed_run_id)
        principal.held_rights = list(
            principal.rights.filter(current).select_related("policy", "group")
        )
        actions: dict[str, list] = {}
        for row in ActionUsage.objects.filter(current, principal=principal):
            actions.setdefault(row.service_namespace, []).append(row)
        principal.held_usage = list(ServiceUsage.objects.filter(current, principal=principal))
        for service in principal.held_usage:
            service.tracked_actions = actions.get(service.service_namespace, [])
        return principal

"""Campaigns, review items, decisions and remediations in the REST API.

Decisions go through the same functions as the pages (`reviews.decide`): the campaign's reason
rules, the refusal of one's own access and the check that the item did not change since the
client read it (its `version`, also sent as the ETag) hold here as they do in the browser.
"""

from datetime import timedelta

import django_filters
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from config.api import Conflict, HasPermission, PreconditionRequired, ReadOnlyViewSet
from reviews import launch as launching
from reviews.decide import MAX_REASON, Choice, Refused, decide, decide_many, keep_choices, reassign
from reviews.filters import ItemLookups
from reviews.models import (
    DECIDED,
    Campaign,
    CampaignDefinition,
    Decision,
    Recommendation,
    Remediation,
    ReviewItem,
    period_start,
)

MANAGE = "reviews.manage_campaign"
OVERSEE = "reviews.view_campaign"
# The largest version the database holds.
MAX_VERSION = 2**31 - 1
# A bulk request names at most this many items; larger sets go in several requests.
MAX_BULK = 10_000
# How a refusal of `reviews.decide` reads in HTTP.
REFUSAL_STATUS = {
    "self_review": status.HTTP_403_FORBIDDEN,
    "not_yours": status.HTTP_403_FORBIDDEN,
    "stale": status.HTTP_412_PRECONDITION_FAILED,
    "closed": status.HTTP_409_CONFLICT,
    "remediating": status.HTTP_409_CONFLICT,
}


def _refusal(exc: Refused, item: ReviewItem | None = None) -> Response:
    body = {"detail": str(exc), "code": exc.code}
    if exc.code == "stale" and exc.item is not None:
        # What the client must decide on now.
        body["current"] = ItemSerializer(exc.item).data
    return Response(body, status=REFUSAL_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST))


# Campaigns --------------------------------------------------------------------------------------


class CampaignSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    definition = serializers.CharField(source="definition.name", read_only=True, allow_null=True)
    decided = serializers.IntegerField(read_only=True)
    overdue = serializers.BooleanField(source="is_overdue", read_only=True)
    signed_off_at = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "definition",
            "state",
            "owner",
            "due_date",
            "overdue",
            "created_at",
            "launched_at",
            "closed_at",
            "signed_off_at",
            "item_count",
            "decided",
        ]

    def get_signed_off_at(self, campaign) -> str | None:
        signoff = getattr(campaign, "signoff", None)
        return serializers.DateTimeField().to_representation(signoff.signed_at) if signoff else None


class LaunchSerializer(serializers.Serializer):
    definition = serializers.PrimaryKeyRelatedField(queryset=CampaignDefinition.objects.all())
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    due_date = serializers.DateField(required=False)

    def validate_due_date(self, value):
        if value <= timezone.localdate():
            raise ValidationError(_("The due date must be after today."))
        return value


class DefinitionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = CampaignDefinition
        fields = ["id", "name", "description", "cadence", "review_days", "active", "owner"]


class DefinitionViewSet(ReadOnlyViewSet):
    """Campaign definitions, which campaigns are launched from (for campaign managers)."""

    serializer_class = DefinitionSerializer
    lookup_url_kwarg = "definition_id"
    permission_classes = [HasPermission]
    permission = MANAGE
    ordering = ("name", "pk")
    queryset = CampaignDefinition.objects.select_related("owner")


class CampaignViewSet(mixins.CreateModelMixin, ReadOnlyViewSet):
    """Campaigns in the user's reach: all of them for managers and auditors, the ones a reviewer
    has items in otherwise. POST launches this period's campaign of a definition."""

    serializer_class = CampaignSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "campaign_id"
    filterset_fields = ["state"]
    ordering = ("-created_at", "-pk")

    def get_queryset(self):
        campaigns = Campaign.objects.visible_to(self.request.user).select_related(
            "owner", "definition", "signoff"
        )
        return campaigns.with_progress()

    @extend_schema(
        request=LaunchSerializer,
        responses={
            201: CampaignSerializer,
            409: OpenApiResponse(description="Not launched: the reason is given."),
        },
    )
    def create(self, request, *args, **kwargs):
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied
        launch = LaunchSerializer(data=request.data)
        launch.is_valid(raise_exception=True)
        definition = launch.validated_data["definition"]
        today = timezone.localdate()
        period = period_start(definition.cadence, today)
        try:
            # The draft and its launch together: a refused launch leaves no draft behind.
            with transaction.atomic():
                draft = launching.new_campaign(
                    name=launch.validated_data.get("name")
                    or launching.period_name(definition, period),
                    owner=request.user,
                    due_date=launch.validated_data.get("due_date")
                    or today + timedelta(days=definition.review_days),
                    definition=definition,
                    period=period,
                    by=request.user,
                )
                campaign = launching.launch(draft, by=request.user)
        except launching.LaunchRefused as exc:
            raise Conflict(_("Launch refused: %(reason)s.") % {"reason": exc}) from exc
        except IntegrityError as exc:
            raise Conflict(_("This definition already has a campaign this period.")) from exc
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


# Items ------------------------------------------------------------------------------------------


class ItemSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    campaign = serializers.UUIDField(source="campaign.uuid", read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, allow_null=True)

    class Meta:
        model = ReviewItem
        fields = [
            "id",
            "campaign",
            "account_id",
            "account_name",
            "principal_kind",
            "principal_arn",
            "principal_name",
            "right_kind",
            "right_key",
            "right_label",
            "privileged",
            "last_used_at",
            "recommendation",
            "reviewer",
            "reviewer_source",
            "stage",
            "decision",
            "decided_at",
            "keep_until",
            "version",
        ]


class DecisionSerializer(serializers.ModelSerializer):
    keep_actions = serializers.ListField(source="keep", child=serializers.CharField())

    class Meta:
        model = Decision
        fields = [
            "decision",
            "reason",
            "keep_actions",
            "keep_until",
            "decided_by_name",
            "decided_at",
            "stage",
            "bulk_size",
            "system",
        ]


class ItemDetailSerializer(ItemSerializer):
    facts = serializers.JSONField(read_only=True, help_text="What the reviewer is shown.")
    keep_choices = serializers.SerializerMethodField()
    decisions = DecisionSerializer(many=True, read_only=True, source="history")

    class Meta(ItemSerializer.Meta):
        fields = [*ItemSerializer.Meta.fields, "facts", "keep_choices", "decisions"]

    def get_keep_choices(self, item) -> list[str]:
        """What a reduction may keep: the services and tracked actions the right allows."""
        return keep_choices(item)


class ItemFilter(ItemLookups, django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_text", max_length=200)
    campaign = django_filters.UUIDFilter(field_name="campaign__uuid")
    account = django_filters.CharFilter(field_name="account_id", max_length=12)
    reviewer = django_filters.CharFilter(method="filter_reviewer", max_length=150)
    decision = django_filters.ChoiceFilter(
        choices=[("undecided", "undecided"), *[(value, value) for value in DECIDED]],
        method="filter_decision",
    )
    recommendation = django_filters.ChoiceFilter(choices=Recommendation.choices)
    privileged = django_filters.BooleanFilter()

    class Meta:
        model = ReviewItem
        fields = [
            "q",
            "campaign",
            "account",
            "reviewer",
            "decision",
            "recommendation",
            "privileged",
        ]


class DecideSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=DECIDED)
    reason = serializers.CharField(max_length=MAX_REASON, required=False, allow_blank=True)
    keep_actions = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        max_length=1000,
        help_text="For `reduce`: the services (`s3`) and actions (`s3:GetObject`) kept.",
    )
    keep_until = serializers.DateField(required=False, allow_null=True)
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_VERSION,
        help_text="The item's version the decision is made on; or send it as If-Match.",
    )


class BulkDecideSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=MAX_BULK)
    decision = serializers.ChoiceField(
        choices=[ReviewItem.Decision.KEEP, ReviewItem.Decision.REVOKE]
    )
    reason = serializers.CharField(max_length=MAX_REASON, required=False, allow_blank=True)


class ReassignSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=MAX_BULK)
    reviewer = serializers.CharField(max_length=150, help_text="The username of the new reviewer.")
    reason = serializers.CharField(max_length=MAX_REASON)


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


def _etag(item: ReviewItem) -> str:
    return f'"{item.version}"'


def _if_match(request) -> int | None:
    header = request.headers.get("If-Match", "").strip()
    if not header:
        return None
    value = header.removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_VERSION):
        raise ValidationError({"If-Match": _('Send the ETag the item came with, e.g. "3".')})
    return int(value)


class ItemViewSet(ReadOnlyViewSet):
    """Review items in the user's reach: every item for managers and auditors, a reviewer's own
    otherwise. An item's ETag is its version; deciding sends it back (If-Match or `version`)."""

    lookup_field = "uuid"
    lookup_url_kwarg = "item_id"
    filterset_class = ItemFilter
    ordering = ("pk",)

    def get_serializer_class(self):
        return ItemDetailSerializer if self.action == "retrieve" else ItemSerializer

    def get_queryset(self):
        items = ReviewItem.objects.visible_to(self.request.user).select_related(
            "campaign", "reviewer"
        )
        if self.action == "list":
            items = items.defer("facts")
        if "campaign_id" in self.kwargs:
            items = items.filter(campaign=self._campaign())
        return items

    def _campaign(self) -> Campaign:
        campaigns = Campaign.objects.visible_to(self.request.user)
        campaign = campaigns.filter(uuid=self.kwargs["campaign_id"]).first()
        if campaign is None:
            raise Http404
        return campaign

    def retrieve(self, request, *args, **kwargs):
        item = self.get_object()
        item.history = list(item.decisions.order_by("-decided_at", "-pk"))
        response = Response(ItemDetailSerializer(item).data)
        response["ETag"] = _etag(item)
        return response

    @extend_schema(
        request=DecideSerializer,
        parameters=[
            OpenApiParameter(
                "If-Match", str, OpenApiParameter.HEADER, description="The item's ETag."
            )
        ],
        responses={
            200: ItemSerializer,
            400: OpenApiResponse(description="Invalid, e.g. a reason the rules require."),
            403: OpenApiResponse(description="Not the user's to decide, or their own access."),
            409: OpenApiResponse(description="The campaign is not open."),
            412: OpenApiResponse(description="The item changed; `current` is its state now."),
            428: OpenApiResponse(description="No version given."),
        },
    )
    @action(detail=True, methods=["post"])
    def decision(self, request, item_id=None):
        """Keep, revoke or reduce the item."""
        item = self.get_object()
        data = DecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = _if_match(request)
        version = data.validated_data.get("version", version)
        if version is None:
            raise PreconditionRequired
        choice = Choice(
            data.validated_data["decision"],
            data.validated_data.get("reason", ""),
            tuple(data.validated_data.get("keep_actions", ())),
            data.validated_data.get("keep_until"),
        )
        try:
            item = decide(item, request.user, choice, version=version)
        except Refused as exc:
            if exc.item is not None:
                exc.item = self.get_queryset().get(pk=exc.item.pk)
            return _refusal(exc)
        item = self.get_queryset().get(pk=item.pk)
        response = Response(ItemSerializer(item).data)
        response["ETag"] = _etag(item)
        return response

    def _chosen(self, uuids) -> list[ReviewItem]:
        wanted = set(uuids)
        found = list(self.get_queryset().filter(uuid__in=wanted).order_by("pk"))
        if len(found) != len(wanted):
            # An item out of reach among them: nothing changes, and nothing says which.
            raise Http404
        return found

    @extend_schema(
        request=BulkDecideSerializer,
        responses={200: CountSerializer, 403: OpenApiResponse(description="Not all the user's.")},
    )
    @action(detail=False, methods=["post"], url_path="bulk-decision")
    def bulk_decision(self, request):
        """Keep or revoke many items at once: all of them, or none if one is refused."""
        data = BulkDecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = self._chosen(data.validated_data["items"])
        choice = Choice(data.validated_data["decision"], data.validated_data.get("reason", ""))
        try:
            count = decide_many(items, request.user, choice)
        except Refused as exc:
            return _refusal(exc)
        return Response({"count": count})

    @extend_schema(
        request=ReassignSerializer,
        responses={200: CountSerializer, 403: OpenApiResponse(description="Not allowed.")},
    )
    @action(detail=False, methods=["post"])
    def reassign(self, request):
        """Give items to another reviewer: a manager's reassignment, or a reviewer delegating
        their own items."""
        data = ReassignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        items = self._chosen(data.validated_data["items"])
        user = request.user
        if not user.has_perm(MANAGE) and any(item.reviewer_id != user.pk for item in items):
            raise PermissionDenied
        username = data.validated_data["reviewer"]
        to_user = get_user_model().objects.filter(username=username).first()
        if to_user is None:
            raise ValidationError(
                {"reviewer": _("Nobody signs in as %(username)s.") % {"username": username}}
            )
        try:
            count = reassign(items, to_user, user, data.validated_data["reason"])
        except Refused as exc:
            if exc.code == "self_review":
                # Not forbidden to the requester: the person chosen cannot take it.
                return Response(
                    {"detail": str(exc), "code": exc.code}, status=status.HTTP_400_BAD_REQUEST
                )
            return _refusal(exc)
        return Response({"count": count})


# Remediations -----------------------------------------------------------------------------------


class RemediationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    item = serializers.UUIDField(source="item.uuid", read_only=True)
    campaign = serializers.UUIDField(source="campaign.uuid", read_only=True)
    account = serializers.CharField(source="account.account_id", read_only=True)
    settled = serializers.BooleanField(read_only=True)

    class Meta:
        model = Remediation
        fields = [
            "id",
            "item",
            "campaign",
            "account",
            "action",
            "state",
            "dry_run",
            "settled",
            "attempts",
            "error",
            "calls",
            "rollback_calls",
            "planned_at",
            "approved_at",
            "applied_at",
            "verified_at",
            "confirmed_at",
            "ticket",
            "excepted_at",
            "exception_reason",
            "rolled_back_at",
            "rollback_reason",
        ]


class RemediationFilter(django_filters.FilterSet):
    campaign = django_filters.UUIDFilter(field_name="campaign__uuid")
    account = django_filters.CharFilter(field_name="account__account_id", max_length=12)
    state = django_filters.ChoiceFilter(choices=Remediation.State.choices)
    action = django_filters.ChoiceFilter(choices=[(value, value) for value in DECIDED[1:]])

    class Meta:
        model = Remediation
        fields = ["campaign", "account", "state", "action"]


class RemediationViewSet(ReadOnlyViewSet):
    """How revocations and reductions were carried out in AWS (for managers and auditors)."""

    serializer_class = RemediationSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "remediation_id"
    filterset_class = RemediationFilter
    ordering = ("pk",)

    def check_permissions(self, request):
        super().check_permissions(request)
        if not request.user.has_perm(OVERSEE):
            # To a reviewer one remediation is as absent as another campaign's; the list is
            # simply not theirs.
            if self.action == "retrieve":
                raise Http404
            raise PermissionDenied

    def get_queryset(self):
        return Remediation.objects.filter(
            campaign__in=Campaign.objects.visible_to(self.request.user)
        ).select_related("item", "campaign", "account")

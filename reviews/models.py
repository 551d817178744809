"""Access review campaigns: what was frozen for review, who decides, what they decided.

A campaign freezes its population at launch: one review item per principal and right, holding
what the reviewer is shown as it was then (the inventory rows it points at never change; what
could change is copied onto the item). Decisions are an append-only history; the item carries
the current one so that queues and filters stay single queries.
"""

import hashlib
import uuid
from datetime import date
from json.encoder import encode_basestring as _string  # what json.dumps writes of a str

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory.models import AwsAccount, CollectionRun, PolicyVersion, Principal, Right


class Cadence(models.TextChoices):
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    SEMIANNUAL = "semiannual", _("Semi-annual")
    ANNUAL = "annual", _("Annual")


CADENCE_MONTHS = {
    Cadence.MONTHLY: 1,
    Cadence.QUARTERLY: 3,
    Cadence.SEMIANNUAL: 6,
    Cadence.ANNUAL: 12,
}


def period_start(cadence: str, day: date) -> date:
    """The first day of the period of `cadence` that `day` falls in (quarters start in January,
    April, July and October)."""
    months = CADENCE_MONTHS[cadence]
    return date(day.year, (day.month - 1) // months * months + 1, 1)


class Outcome(models.TextChoices):
    KEEP = "keep", _("Keep")
    REVOKE = "revoke", _("Revoke")
    RECOMMENDATION = "recommendation", _("Follow the recommendation")


class RemediationStart(models.TextChoices):
    AT_CLOSE = "at_close", _("When the campaign closes")
    AFTER_DECISION = "after_decision", _("Right after each decision")
    AFTER_APPROVAL = "after_approval", _("After the manager approves")


def default_reminder_days() -> list[int]:
    """A week's notice, then the day before."""
    return [7, 1]


def validate_reminder_days(value) -> None:
    if not isinstance(value, list) or not all(
        type(days) is int and 1 <= days <= 365 for days in value
    ):
        raise ValidationError(
            _("Give the reminders as a list of days before the due date (1 to 365), e.g. [7, 1].")
        )


class CampaignDefinition(models.Model):
    """A template for campaigns: scope, cadence and the rules every campaign of it follows."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("campaign manager"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    active = models.BooleanField(
        _("launch on schedule"), default=True, help_text=_("Celery beat launches it each period.")
    )
    # Scope.
    accounts = models.ManyToManyField(
        AwsAccount,
        verbose_name=_("accounts"),
        blank=True,
        related_name="+",
        help_text=_("None selected: every active account."),
    )
    include_users = models.BooleanField(_("users"), default=True)
    include_groups = models.BooleanField(_("groups"), default=True)
    include_roles = models.BooleanField(_("roles"), default=True)
    privileged_only = models.BooleanField(_("privileged rights only"), default=False)
    tag_filters = models.JSONField(
        _("tag filters"),
        default=dict,
        blank=True,
        help_text=_('Principals must carry every tag given, e.g. {"env": "prod"}.'),
    )
    # Timing.
    cadence = models.CharField(
        _("cadence"), max_length=12, choices=Cadence.choices, default=Cadence.QUARTERLY
    )
    review_days = models.PositiveIntegerField(
        _("review window (days)"), default=21, validators=[MinValueValidator(1)]
    )
    reminder_days = models.JSONField(
        _("reminders (days before the due date)"),
        default=default_reminder_days,
        blank=True,
        validators=[validate_reminder_days],
        help_text=_("E-mail reviewers with open items this many days before the due date."),
    )
    max_data_age_days = models.PositiveIntegerField(
        _("oldest collection allowed at launch (days)"), default=7
    )
    # Rules.
    unused_days = models.PositiveIntegerField(
        _("unused after (days)"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(400)],
        help_text=_("A right not used for this long is recommended for revocation."),
    )
    owner_tag = models.CharField(
        _("owner tag key"),
        max_length=128,
        default="owner",
        help_text=_("The principal tag naming its reviewer by e-mail or username."),
    )
    fallback_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("fallback reviewer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason_for_privileged_keep = models.BooleanField(
        _("reason required to keep a privileged right"), default=True
    )
    reason_for_unused_keep = models.BooleanField(
        _("reason required to keep an unused right"), default=True
    )
    reason_for_revoke = models.BooleanField(_("reason required to revoke"), default=True)
    default_outcome = models.CharField(
        _("outcome of unanswered items"),
        max_length=16,
        choices=Outcome.choices,
        default=Outcome.RECOMMENDATION,
    )
    # Remediation.
    remediation_start = models.CharField(
        _("remediation starts"),
        max_length=16,
        choices=RemediationStart.choices,
        default=RemediationStart.AT_CLOSE,
    )
    remediation_dry_run = models.BooleanField(
        _("dry run"),
        default=False,
        help_text=_("Record the AWS calls each revocation would make, without making them."),
    )
    key_grace_days = models.PositiveIntegerField(
        _("days before a deactivated access key is deleted"),
        default=14,
        validators=[MaxValueValidator(365)],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("campaign definition")
        verbose_name_plural = _("campaign definitions")

    def __str__(self):
        return self.name

    def rules(self) -> dict:
        """The rules a campaign launched from this definition keeps, frozen at launch."""
        return {
            "unused_days": self.unused_days,
            "owner_tag": self.owner_tag,
            "reason_for_privileged_keep": self.reason_for_privileged_keep,
            "reason_for_unused_keep": self.reason_for_unused_keep,
            "reason_for_revoke": self.reason_for_revoke,
            "default_outcome": self.default_outcome,
            "remediation_start": self.remediation_start,
            "remediation_dry_run": self.remediation_dry_run,
            "key_grace_days": self.key_grace_days,
            "reminder_days": sorted(set(self.reminder_days), reverse=True),
            "max_data_age_days": self.max_data_age_days,
            "kinds": [
                kind
                for kind, included in (
                    (Principal.Kind.USER, self.include_users),
                    (Principal.Kind.GROUP, self.include_groups),
                    (Principal.Kind.ROLE, self.include_roles),
                )
                if included
            ],
            "privileged_only": self.privileged_only,
            "tag_filters": self.tag_filters,
            "stages": [stage.rule() for stage in self.stages.order_by("number")],
            "assignments": [
                [assignment.arn_pattern, assignment.reviewer_id]
                for assignment in self.assignments.order_by("pk")
            ],
        }


class ReviewerAssignment(models.Model):
    """An explicit reviewer for the principals whose ARN matches a pattern."""

    definition = models.ForeignKey(
        CampaignDefinition, on_delete=models.CASCADE, related_name="assignments"
    )
    arn_pattern = models.CharField(
        _("principal ARN pattern"),
        max_length=2048,
        help_text=_("Shell-style: arn:aws:iam::123456789012:role/payments-*"),
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["definition", "pk"]
        verbose_name = _("reviewer assignment")
        verbose_name_plural = _("reviewer assignments")

    def __str__(self):
        return f"{self.arn_pattern} → {self.reviewer}"


class StageRule(models.Model):
    """A later stage of review: which decisions of the stage before pass on, and to whom
    (say, the owner first, then the security team for the privileged rights kept)."""

    definition = models.ForeignKey(
        CampaignDefinition, on_delete=models.CASCADE, related_name="stages"
    )
    number = models.PositiveSmallIntegerField(
        _("stage"), validators=[MinValueValidator(2), MaxValueValidator(3)]
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    pass_keep = models.BooleanField(_("items kept pass on"), default=True)
    pass_reduce = models.BooleanField(_("items reduced pass on"), default=True)
    pass_revoke = models.BooleanField(_("items revoked pass on"), default=False)
    privileged_only = models.BooleanField(_("privileged rights only"), default=True)

    class Meta:
        ordering = ["definition", "number"]
        verbose_name = _("later stage")
        verbose_name_plural = _("later stages")
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "number"],
                name="%(app_label)s_%(class)s_one_per_number",
                violation_error_message=_("The definition already has this stage."),
            ),
        ]

    def __str__(self):
        return f"{self.definition}: stage {self.number}"

    def rule(self) -> dict:
        return {
            "number": self.number,
            "reviewer": self.reviewer_id,
            "decisions": [
                decision
                for decision, passes in (
                    ("keep", self.pass_keep),
                    ("reduce", self.pass_reduce),
                    ("revoke", self.pass_revoke),
                )
                if passes
            ],
            "privileged_only": self.privileged_only,
        }


class CampaignQuerySet(models.QuerySet):
    def with_progress(self):
        """Each campaign with its item count (`total`) and how many are decided (`decided`), in
        the same query, from its tallies."""
        from reviews import tallies  # it imports this module

        counted = (
            tallies.of(campaign=models.OuterRef("pk"))
            .values("campaign")
            .annotate(**tallies.progress())
        )
        return self.annotate(
            **{
                name: Coalesce(models.Subquery(counted.values(name)), 0)
                for name in ("total", "decided")
            }
        )

    def visible_to(self, user):
        """All campaigns for the roles that oversee them; a reviewer's own otherwise."""
        if user.has_perm("reviews.view_campaign"):
            return self
        if not user.is_authenticated:
            return self.none()
        return self.filter(
            Q(owner=user) | Q(pk__in=ReviewItem.objects.filter(reviewer=user).values("campaign"))
        )


class Campaign(models.Model):
    """One review of a frozen population, from launch to sign-off."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        # A worker freezes the population into items (`reviews.launch.launch`).
        LAUNCHING = "launching", _("Launching")
        ACTIVE = "active", _("Active")
        # Reviewers can no longer decide; a worker gives the unanswered items their default
        # outcome and plans the remediations (`reviews.decide.close`).
        CLOSING = "closing", _("Closing")
        CLOSED = "closed", _("Closed")
        SIGNED_OFF = "signed_off", _("Signed off")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200)
    definition = models.ForeignKey(
        CampaignDefinition,
        verbose_name=_("definition"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
    )
    period_start = models.DateField(_("period"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("campaign manager"),
        on_delete=models.PROTECT,
        related_name="owned_campaigns",
    )
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.DRAFT)
    due_date = models.DateField(_("due"))
    rules = models.JSONField(_("rules"), default=dict)
    accounts = models.ManyToManyField(AwsAccount, related_name="campaigns", blank=True)
    fallback_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("fallback reviewer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    runs = models.ManyToManyField(
        CollectionRun, verbose_name=_("collection runs"), related_name="campaigns", blank=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    launched_at = models.DateTimeField(_("launched"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    item_count = models.PositiveIntegerField(_("items"), default=0)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [("manage_campaign", "Can launch, close and oversee campaigns")]
        constraints = [
            # However many beat or worker processes run, a definition launches once a period.
            models.UniqueConstraint(
                fields=["definition", "period_start"],
                condition=Q(definition__isnull=False),
                name="%(app_label)s_%(class)s_once_per_period",
                violation_error_message=_("This definition already has a campaign this period."),
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("reviews:campaign", args=[self.uuid])

    @property
    def is_open(self):
        return self.state == self.State.ACTIVE

    @property
    def is_launched(self):
        """Whether its population is frozen into items: not a draft, nor launching."""
        return self.state not in (self.State.DRAFT, self.State.LAUNCHING)

    @property
    def is_overdue(self):
        return self.is_open and timezone.localdate() > self.due_date


def _own_or_every(queryset: models.QuerySet, user) -> models.QuerySet:
    """Every row for the roles that oversee campaigns; the user's own as reviewer otherwise."""
    if user.has_perm("reviews.view_campaign"):
        return queryset
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(reviewer=user)


class ReviewItemQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Every item for the roles that oversee campaigns; one's own items otherwise."""
        return _own_or_every(self, user)

    def for_review_page(self):
        return self.select_related("campaign", "reviewer").order_by(
            "decision", "account_name", "principal_name", "right_kind", "right_key", "pk"
        )


class Recommendation(models.TextChoices):
    KEEP = "keep", _("Keep")
    REVOKE = "revoke", _("Revoke")
    REDUCE = "reduce", _("Reduce")
    NONE = "none", _("No recommendation")


def shown_digest(
    principal_arn: str, right_kind: str, right_key: str, recommendation: str, facts_json: str
) -> str:
    """SHA-256 of what a reviewer is shown: the canonical JSON of {"facts", "principal",
    "recommendation", "right": [kind, key]}, from the facts already in canonical JSON. "facts"
    sorts first, so their text goes in front as it is, and is encoded once for its row and its
    digest. The other keys are written here in their sorted order, each string as
    canonical_json writes it: a launch works out 100,000 of these."""
    text = (
        f'{{"facts":{facts_json},"principal":{_string(principal_arn)},'
        f'"recommendation":{_string(recommendation)},'
        f'"right":[{_string(right_kind)},{_string(right_key)}]}}'
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ReviewItem(models.Model):
    """One right of one principal, as it was at launch, and the reviewer's current decision."""

    class Decision(models.TextChoices):
        PENDING = "", _("Undecided")
        KEEP = "keep", _("Keep")
        REVOKE = "revoke", _("Revoke")
        REDUCE = "reduce", _("Reduce")

    class ReviewerSource(models.TextChoices):
        TAG = "tag", _("Owner tag")
        ACCOUNT_OWNER = "account_owner", _("Account owner")
        FALLBACK = "fallback", _("Fallback reviewer")
        SELF_REVIEW = "self_review", _("Fallback reviewer (own access)")
        ASSIGNED = "assigned", _("Assigned")
        STAGE = "stage", _("Later stage")
        NONE = "none", _("Nobody")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="items", verbose_name=_("campaign")
    )
    # The inventory rows the item was frozen from; they are never deleted.
    run = models.ForeignKey(CollectionRun, on_delete=models.PROTECT, related_name="+")
    principal = models.ForeignKey(Principal, on_delete=models.PROTECT, related_name="+")
    right = models.ForeignKey(Right, on_delete=models.PROTECT, related_name="review_items")
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # What the reviewer is shown, copied at launch.
    account_id = models.CharField(_("account id"), max_length=12)
    account_name = models.CharField(_("account"), max_length=200)
    principal_kind = models.CharField(_("type"), max_length=10, choices=Principal.Kind.choices)
    principal_arn = models.CharField(_("principal ARN"), max_length=2048)
    principal_name = models.CharField(_("principal"), max_length=128)
    right_kind = models.CharField(_("kind"), max_length=24, choices=Right.Kind.choices)
    right_key = models.CharField(_("right"), max_length=2048)
    right_label = models.CharField(_("right"), max_length=300)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    privileged = models.BooleanField(_("privileged"), default=False)
    recommendation = models.CharField(
        _("recommendation"), max_length=8, choices=Recommendation.choices
    )
    facts = models.JSONField(_("what the reviewer is shown"), default=dict)
    # The digest of what the reviewer is shown (`shown_digest`), worked out at launch: every
    # decision records it, and the evidence package lists it beside the facts.
    shown_sha256 = models.CharField(max_length=64, editable=False)
    # Who decides, and what.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="review_items",
    )
    reviewer_source = models.CharField(
        _("reviewer from"), max_length=16, choices=ReviewerSource.choices
    )
    stage = models.PositiveSmallIntegerField(_("stage"), default=1)
    decision = models.CharField(
        _("decision"), max_length=8, choices=Decision.choices, default="", blank=True
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    keep_until = models.DateField(_("keep until"), null=True, blank=True)
    # Bumped by every change of the item; a form carrying an older one is stale.
    version = models.PositiveIntegerField(default=1)

    objects = ReviewItemQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "account_name", "principal_name", "right_kind", "right_key", "pk"]
        verbose_name = _("review item")
        verbose_name_plural = _("review items")
        indexes = [
            # A reviewer's queue: their items, undecided first, in the queue's order, so that a
            # page's ids come from the index without sorting all the reviewer's items; with
            # the campaign and account, so that the progress and the account choices are read
            # from it alone.
            models.Index(
                fields=[
                    "reviewer",
                    "decision",
                    "account_name",
                    "principal_name",
                    "right_kind",
                    "right_key",
                    "id",
                ],
                include=["campaign", "account_id"],
                name="reviews_item_queue_order",
            ),
            # A campaign's items by decision: its item list's filters, the close.
            models.Index(fields=["campaign", "decision"], name="reviews_item_campaign"),
            # A campaign's items of one reviewer, or of nobody (the dashboard's orphans).
            models.Index(fields=["campaign", "reviewer"], name="reviews_item_reviewer"),
        ]

    def __str__(self):
        return f"{self.principal_name}: {self.right_label}"

    def get_absolute_url(self):
        return reverse("reviews:item", args=[self.uuid])

    @property
    def is_decided(self):
        return self.decision != self.Decision.PENDING

    # Django's own get_FOO_display() translates every label of the field at each call: a page
    # of 50 items calls them hundreds of times.
    def get_principal_kind_display(self):
        return _choice_label(Principal.Kind, self.principal_kind)

    def get_right_kind_display(self):
        return _choice_label(Right.Kind, self.right_kind)

    def get_recommendation_display(self):
        return _choice_label(Recommendation, self.recommendation)

    def get_decision_display(self):
        return _choice_label(ReviewItem.Decision, self.decision)


def _choice_label(choices: type[models.TextChoices], value: str):
    """The label of a stored choice, or the value itself when it is not (any longer) one."""
    try:
        return choices(value).label
    except ValueError:
        return value


# The decisions an item can have, its pending state aside.
DECIDED = [value for value in ReviewItem.Decision.values if value]


class ItemTallyQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The tallies of the items `ReviewItem.objects.visible_to(user)` gives."""
        return _own_or_every(self, user)


class ItemTally(models.Model):
    """How many of a campaign's items one reviewer (or nobody) has in one account with one
    decision, and whether that decision was the campaign's default outcome at close.

    Every change of an item's reviewer or decision changes the tallies in the same transaction
    (`reviews.tallies`), so that progress is read from a few rows rather than counted over the
    items: a campaign of 100,000 items has some hundreds.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tallies")
    # Items protect their reviewer, so a reviewer who can be deleted has none left here.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    account_id = models.CharField(max_length=12)
    account_name = models.CharField(max_length=200)
    decision = models.CharField(max_length=8, choices=ReviewItem.Decision.choices, blank=True)
    defaulted = models.BooleanField(default=False)
    items = models.IntegerField(default=0)

    objects = ItemTallyQuerySet.as_manager()

    class Meta:
        constraints = [
            # Two, as NULLs differ from each other in a unique index: one for the items of a
            # reviewer, one for the items nobody reviews.
            models.UniqueConstraint(
                fields=[
                    "campaign",
                    "reviewer",
                    "account_id",
                    "account_name",
                    "decision",
                    "defaulted",
                ],
                condition=Q(reviewer__isnull=False),
                name="reviews_tally_unique",
            ),
            models.UniqueConstraint(
                fields=["campaign", "account_id", "account_name", "decision", "defaulted"],
                condition=Q(reviewer__isnull=True),
                name="reviews_tally_unique_unassigned",
            ),
        ]
        indexes = [models.Index(fields=["reviewer", "campaign"], name="reviews_tally_reviewer")]

    def __str__(self):
        who = self.reviewer_id or "-"
        return f"{self.campaign_id}/{who}/{self.account_id}/{self.decision}: {self.items}"


class Decision(models.Model):
    """One decision on an item, kept forever: the latest is the item's current one."""

    item = models.ForeignKey(ReviewItem, on_delete=models.PROTECT, related_name="decisions")
    # The item's own: a campaign's decisions are read by it, not through its items joined to
    # every decision of every campaign before it.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="decisions", editable=False
    )
    decision = models.CharField(max_length=8, choices=ReviewItem.Decision.choices[1:])
    reason = models.TextField(_("reason"), blank=True)
    keep = models.JSONField(_("services and actions kept"), default=list, blank=True)
    keep_until = models.DateField(_("keep until"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_name = models.CharField(_("decided by"), max_length=150)
    decided_at = models.DateTimeField(_("decided"), default=timezone.now)
    stage = models.PositiveSmallIntegerField(default=1)
    # How long the item was open before the decision, and how many items one action decided:
    # what lets a manager or auditor see rubber-stamping.
    seconds_to_decide = models.PositiveIntegerField(null=True, blank=True)
    bulk_size = models.PositiveIntegerField(default=1)
    system = models.BooleanField(
        _("made by Attest"), default=False, help_text=_("The default outcome at close.")
    )
    shown_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["item", "-decided_at", "-pk"]
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")

    def __str__(self):
        return f"{self.get_decision_display()} by {self.decided_by_name}"


class Reminder(models.Model):
    """A reminder or escalation e-mail sent, so that each goes out once."""

    class Kind(models.TextChoices):
        REMINDER = "reminder", _("Reminder")
        ESCALATION = "escalation", _("Escalation")
        MANUAL = "manual", _("Sent by the manager")
        # No e-mail: the day a campaign was found overdue, told to the webhooks that asked.
        OVERDUE = "overdue", _("Overdue notice")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="reminders")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    on_day = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    undecided = models.PositiveIntegerField()

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            # The scheduled reminder of a day goes out once, however often beat runs.
            models.UniqueConstraint(
                fields=["campaign", "recipient", "kind", "on_day"],
                condition=~Q(kind="manual"),
                name="%(app_label)s_%(class)s_once_a_day",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.recipient} ({self.on_day})"


class SignOff(models.Model):
    """The campaign manager's attestation that the review is complete."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="signoff")
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    signed_by_name = models.CharField(max_length=150)
    signed_at = models.DateTimeField(default=timezone.now)
    statement = models.TextField(_("attestation"))
    # SHA-256 over every item's final decision: what was attested.
    decisions_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["-signed_at"]

    def __str__(self):
        return f"{self.campaign} signed off by {self.signed_by_name}"


class Remediation(models.Model):
    """How a revoke or reduce decision is carried out in AWS, proved, and if need be undone.

    Planned when the campaign's rules say; then one task at a time moves it along its states,
    saving what it removes before removing it and every call it makes as it makes it.
    """

    class State(models.TextChoices):
        PLANNED = "planned", _("Planned")
        RUNNING = "running", _("Running")
        APPLIED = "applied", _("Applied")
        VERIFIED = "verified", _("Verified")
        FAILED = "failed", _("Failed")
        MANUAL = "manual", _("Manual")
        SIMULATED = "simulated", _("Dry run")
        CANCELLED = "cancelled", _("Cancelled")
        ROLLBACK_PLANNED = "rollback_planned", _("Rollback planned")
        ROLLING_BACK = "rolling_back", _("Rolling back")
        ROLLED_BACK = "rolled_back", _("Rolled back")

    # States in which the right may still be there and nobody has answered for it.
    OPEN_STATES = (State.PLANNED, State.RUNNING, State.FAILED, State.MANUAL, State.SIMULATED)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    item = models.ForeignKey(
        ReviewItem, on_delete=models.PROTECT, related_name="remediations", verbose_name=_("item")
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="remediations", verbose_name=_("campaign")
    )
    account = models.ForeignKey(AwsAccount, on_delete=models.PROTECT, related_name="+")
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(_("action"), max_length=8)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.PLANNED
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    # What the remediation aims at: for a reduction, the replacement policy document and the
    # name of the customer managed policy that carries it where one is made.
    replacement = models.JSONField(_("replacement policy"), null=True, blank=True)
    replacement_name = models.CharField(max_length=128, blank=True)
    # What AWS held before anything was changed (saved first), and after the change.
    before = models.JSONField(_("state before"), null=True, blank=True)
    after_state = models.JSONField(_("state after"), null=True, blank=True)
    # Every call made (or, in a dry run, that would be made): operation, parameters, request id.
    calls = models.JSONField(_("AWS calls"), default=list, blank=True)
    rollback_calls = models.JSONField(_("AWS calls of the rollback"), default=list, blank=True)
    error = models.JSONField(_("error"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The worker holding it, and when it last showed life: a silent one is taken over.
    claimed_by = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    planned_at = models.DateTimeField(_("planned"), default=timezone.now)
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_by_name = models.CharField(max_length=150, blank=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    # An access key is deactivated at once and deleted when its grace period ends.
    key_delete_after = models.DateTimeField(null=True, blank=True)
    key_deleted_at = models.DateTimeField(null=True, blank=True)
    # Import-only accounts: the person who made the change by hand, and their ticket.
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    confirmed_by_name = models.CharField(max_length=150, blank=True)
    ticket = models.CharField(_("ticket"), max_length=200, blank=True)
    # The manager's answer for a revocation that is not carried out.
    excepted_at = models.DateTimeField(_("excepted"), null=True, blank=True)
    excepted_by_name = models.CharField(max_length=150, blank=True)
    exception_reason = models.TextField(_("reason for the exception"), blank=True)
    rolled_back_at = models.DateTimeField(_("rolled back"), null=True, blank=True)
    rolled_back_by_name = models.CharField(max_length=150, blank=True)
    rollback_reason = models.TextField(_("reason for the rollback"), blank=True)

    class Meta:
        ordering = ["campaign", "pk"]
        verbose_name = _("remediation")
        verbose_name_plural = _("remediations")
        indexes = [models.Index(fields=["state", "claimed_at"], name="reviews_remediation_work")]
        constraints = [
            # A cancelled plan (the decision changed before it ran) or a rolled-back change
            # makes way for the next decision's remediation.
            models.UniqueConstraint(
                fields=["item"],
                condition=~Q(state__in=["cancelled", "rolled_back"]),
                name="%(app_label)s_%(class)s_one_live_per_item",
            ),
        ]

    def __str__(self):
        return f"{self.get_action_display()} {self.item}"

    def get_absolute_url(self):
        return reverse("reviews:remediation", args=[self.uuid])

    def get_action_display(self):
        return ReviewItem.Decision(self.action).label

    @property
    def settled(self) -> bool:
        """Whether sign-off may pass it: proved done, or answered for by the manager."""
        return self.state == self.State.VERIFIED or self.excepted_at is not None

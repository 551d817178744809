"""What exists in the AWS accounts in scope, and how each right was used.

Inventory rows are versioned by collection run: each row carries the run that first saw it and,
once AWS no longer shows it, the run that saw it gone. Nothing is deleted, so a campaign launched
from an earlier run keeps its meaning and "who held what at run N" stays answerable. A run writes
everything it saw in its last transaction, together with moving its account's `current_run`, so
readers see either the previous complete run or the new one, never a half-written or failed run.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

ACCOUNT_ID_VALIDATOR = RegexValidator(r"^\d{12}$", _("An AWS account id is 12 digits."))
ROLE_ARN_VALIDATOR = RegexValidator(
    r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$",
    _("Expected a role ARN such as arn:aws:iam::123456789012:role/AttestReadOnly."),
)


class CurrentQuerySet(models.QuerySet):
    """Rows that the latest complete collection of their account still shows."""

    def current(self):
        return self.filter(removed_run__isnull=True)

    def at_run(self, run):
        """Rows that `run` (a complete run) showed: seen by it or an earlier run, and not yet
        found gone. An account's runs never overlap (one runs at a time), so their start times
        order them; the caller narrows to the run's account."""
        return self.filter(first_seen_run__started_at__lte=run.started_at).filter(
            Q(removed_run__isnull=True) | Q(removed_run__started_at__gt=run.started_at)
        )


class AwsAccountQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Everything for roles that see the whole inventory; otherwise the accounts owned."""
        if user.has_perm("inventory.view_awsaccount"):
            return self
        if not user.is_authenticated:
            return self.none()
        return self.filter(owner=user)

    def with_last_run(self):
        """Each account with its latest run (running or not) as `last_run_id`, one query."""
        latest = CollectionRun.objects.filter(account=models.OuterRef("pk")).order_by(
            "-started_at", "-pk"
        )
        return self.annotate(last_run_id=models.Subquery(latest.values("pk")[:1]))


class AwsAccount(models.Model):
    """An AWS account in scope: read live through an assumed role, or imported from files."""

    class Mode(models.TextChoices):
        LIVE = "live", _("Live collection")
        IMPORT = "import", _("Import only")

    account_id = models.CharField(
        _("account id"), max_length=12, unique=True, validators=[ACCOUNT_ID_VALIDATOR]
    )
    name = models.CharField(_("name"), max_length=200)
    mode = models.CharField(_("mode"), max_length=10, choices=Mode.choices, default=Mode.LIVE)
    role_arn = models.CharField(
        _("role to assume"),
        max_length=2048,
        blank=True,
        validators=[ROLE_ARN_VALIDATOR],
        help_text=_("Empty: Attest's own credentials are used and must belong to this account."),
    )
    external_id = models.CharField(_("external id"), max_length=1224, blank=True)
    remediation_role_arn = models.CharField(
        _("role to assume for remediation"),
        max_length=2048,
        blank=True,
        validators=[ROLE_ARN_VALIDATOR],
        help_text=_(
            "The role that may detach, delete and restore rights, assumed with the same external "
            "id. Empty: the role above is used, and must be allowed those changes."
        ),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_aws_accounts",
    )
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive accounts are not collected.")
    )
    organization_state = models.CharField(
        _("state in AWS Organizations"), max_length=32, blank=True
    )
    current_run = models.ForeignKey(
        "CollectionRun",
        verbose_name=_("current run"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The latest complete collection, the one readers see."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = AwsAccountQuerySet.as_manager()

    class Meta:
        ordering = ["name", "account_id"]
        verbose_name = _("AWS account")
        verbose_name_plural = _("AWS accounts")

    def __str__(self):
        return f"{self.name} ({self.account_id})"

    def get_absolute_url(self):
        return reverse("inventory:account", args=[self.account_id])

    def clean(self):
        # A role in another account would read (or change) that account's IAM under this one.
        errors = {
            field: _("The role must be in the account itself (%(id)s).") % {"id": self.account_id}
            for field in ("role_arn", "remediation_role_arn")
            if getattr(self, field) and f":iam::{self.account_id}:" not in getattr(self, field)
        }
        if errors:
            raise ValidationError(errors)


class CollectionRun(models.Model):
    """One reading of one account, live or from imported files, with what it took and found."""

    class Source(models.TextChoices):
        LIVE = "live", _("Live")
        IMPORT = "import", _("Import")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETE = "complete", _("Complete")
        FAILED = "failed", _("Failed")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(
        AwsAccount, verbose_name=_("account"), on_delete=models.PROTECT, related_name="runs"
    )
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_name = models.CharField(_("requested by"), max_length=150, blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    phase = models.CharField(_("phase"), max_length=100, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    caller_arn = models.CharField(_("caller identity"), max_length=2048, blank=True)
    endpoint = models.CharField(_("AWS endpoint"), max_length=500, blank=True)
    api_calls = models.JSONField(_("API calls"), default=dict, blank=True)
    retries = models.PositiveIntegerField(_("retried attempts"), default=0)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    errors = models.JSONField(_("errors"), default=list, blank=True)
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    sources = models.JSONField(_("imported files"), default=list, blank=True)
    root_user = models.JSONField(_("root user"), default=dict, blank=True)
    raw_sha256 = models.CharField(_("SHA-256 of the raw answers"), max_length=64, blank=True)

    objects = models.Manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("collection run")
        verbose_name_plural = _("collection runs")
        permissions = [("start_collection", "Can start a collection")]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status="running"),
                name="%(app_label)s_%(class)s_one_running_per_account",
                violation_error_message=_("A collection of this account is already running."),
            ),
        ]
        indexes = [
            # The accounts page's latest run per account, and an account's run history.
            models.Index(fields=["account", "-started_at"], name="inventory_run_account_latest"),
            # The sweeper's search for running runs whose worker went silent.
            models.Index(
                fields=["heartbeat_at"], condition=Q(status="running"), name="inventory_run_running"
            ),
        ]

    def __str__(self):
        when = f"{self.started_at:%Y-%m-%d %H:%M}"
        return f"{self.account.account_id} {self.get_source_display()} {when}"

    @property
    def is_running(self):
        return self.status == self.Status.RUNNING

    @property
    def progress_percent(self):
        if not self.progress_total:
            return 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def principal_count(self):
        counts = self.counts or {}
        return sum(counts.get(kind, 0) for kind in ("users", "groups", "roles"))

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class VersionedModel(models.Model):
    """A row seen by the run `first_seen_run` and, once AWS no longer shows it, `removed_run`."""

    first_seen_run = models.ForeignKey(
        CollectionRun, on_delete=models.PROTECT, related_name="+", verbose_name=_("first seen")
    )
    removed_run = models.ForeignKey(
        CollectionRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("removed in"),
    )

    objects = CurrentQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_removed(self):
        return self.removed_run_id is not None


class PrincipalQuerySet(CurrentQuerySet):
    def visible_to(self, user):
        return self.filter(account__in=AwsAccount.objects.visible_to(user))

    def unused_for(self, days, now=None):
        """Principals that existed for `days` and were not used in them (never, or earlier)."""
        cutoff = (now or timezone.now()) - timezone.timedelta(days=days)
        return self.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff),
            Q(created_at__isnull=True) | Q(created_at__lte=cutoff),
        )


class Principal(VersionedModel):
    """An IAM user, group or role."""

    class Kind(models.TextChoices):
        USER = "user", _("User")
        GROUP = "group", _("Group")
        ROLE = "role", _("Role")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(
        AwsAccount, verbose_name=_("account"), on_delete=models.PROTECT, related_name="principals"
    )
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    arn = models.CharField(_("ARN"), max_length=2048)
    name = models.CharField(_("name"), max_length=128)
    path = models.CharField(_("path"), max_length=512, default="/")
    aws_id = models.CharField(_("unique id"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=dict, blank=True)
    trust_policy = models.JSONField(_("trust policy"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    last_used_region = models.CharField(_("last used region"), max_length=32, blank=True)

    objects = PrincipalQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("principal")
        verbose_name_plural = _("principals")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "arn"],
                condition=Q(removed_run__isnull=True),
                name="%(app_label)s_%(class)s_one_current_per_arn",
            ),
        ]
        indexes = [
            # The principals list: current principals of an account, by type, in name order.
            models.Index(
                fields=["account", "kind", "name"],
                condition=Q(removed_run__isnull=True),
                name="inventory_principal_current",
            ),
        ]

    def __str__(self):
        return self.arn

    def get_absolute_url(self):
        return reverse("inventory:principal", args=[self.uuid])

    @property
    def is_service_linked(self):
        return self.kind == self.Kind.ROLE and self.path.startswith("/aws-service-role/")


class ManagedPolicy(VersionedModel):
    """A managed policy (AWS managed or customer managed) as one account's collection saw it."""

    account = models.ForeignKey(
        AwsAccount, on_delete=models.PROTECT, related_name="policies", verbose_name=_("account")
    )
    arn = models.CharField(_("ARN"), max_length=2048)
    name = models.CharField(_("name"), max_length=128)
    path = models.CharField(_("path"), max_length=512, default="/")
    policy_id = models.CharField(_("policy id"), max_length=128, blank=True)
    aws_managed = models.BooleanField(_("AWS managed"), default=False)
    default_version_id = models.CharField(_("default version"), max_length=20, blank=True)
    description = models.TextField(_("description"), blank=True)
    attachment_count = models.PositiveIntegerField(_("attachments"), default=0)
    created_at = models.DateTimeField(_("created"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("managed policy")
        verbose_name_plural = _("managed policies")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "arn"],
                condition=Q(removed_run__isnull=True),
                name="%(app_label)s_%(class)s_one_current_per_arn",
            ),
        ]

    def __str__(self):
        return self.arn


class PolicyVersion(VersionedModel):
    """One version of a managed policy with its document; the default one is in force."""

    policy = models.ForeignKey(
        ManagedPolicy, on_delete=models.PROTECT, related_name="versions", verbose_name=_("policy")
    )
    version_id = models.CharField(_("version"), max_length=20)
    is_default = models.BooleanField(_("default"), default=False)
    document = models.JSONField(_("document"))
    created_at = models.DateTimeField(_("created"), null=True, blank=True)

    class Meta:
        ordering = ["policy", "-is_default", "version_id"]
        verbose_name = _("policy version")
        verbose_name_plural = _("policy versions")
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "version_id"],
                condition=Q(removed_run__isnull=True),
                name="%(app_label)s_%(class)s_one_current_per_version",
            ),
        ]

    def __str__(self):
        return f"{self.policy.name} {self.version_id}"


class Right(VersionedModel):
    """One way a principal holds access: a policy, a group membership, a credential."""

    class Kind(models.TextChoices):
        MANAGED_POLICY = "managed_policy", _("Attached managed policy")
        INLINE_POLICY = "inline_policy", _("Inline policy")
        GROUP_MEMBERSHIP = "group_membership", _("Group membership")
        PERMISSIONS_BOUNDARY = "permissions_boundary", _("Permissions boundary")
        ACCESS_KEY = "access_key", _("Access key")
        CONSOLE_PASSWORD = "console_password", _("Console password")

    principal = models.ForeignKey(
        Principal, on_delete=models.PROTECT, related_name="rights", verbose_name=_("principal")
    )
    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    # What the right is within its principal: the policy ARN, the inline policy's or the group's
    # name, the access key's creation time, or "password".
    key = models.CharField(_("key"), max_length=2048)
    policy = models.ForeignKey(
        ManagedPolicy,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rights",
        verbose_name=_("managed policy"),
    )
    group = models.ForeignKey(
        Principal,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="member_rights",
        verbose_name=_("group"),
    )
    document = models.JSONField(_("inline document"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, blank=True)
    created_at = models.DateTimeField(_("created"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    last_used_service = models.CharField(_("last used service"), max_length=64, blank=True)
    last_used_region = models.CharField(_("last used region"), max_length=32, blank=True)
    mfa_active = models.BooleanField(_("MFA"), null=True, blank=True)

    class Meta:
        ordering = ["kind", "key", "pk"]
        verbose_name = _("right")
        verbose_name_plural = _("rights")
        constraints = [
            models.UniqueConstraint(
                fields=["principal", "kind", "key"],
                condition=Q(removed_run__isnull=True),
                name="%(app_label)s_%(class)s_one_current_per_key",
            ),
        ]

    def __str__(self):
        return f"{self.principal.name}: {self.get_kind_display()} {self.key}"


class ServiceUsage(VersionedModel):
    """Access Advisor's answer for one principal and one service its policies allow."""

    principal = models.ForeignKey(Principal, on_delete=models.PROTECT, related_name="service_usage")
    service_namespace = models.CharField(_("service"), max_length=64)
    service_name = models.CharField(_("service name"), max_length=200, blank=True)
    last_authenticated_at = models.DateTimeField(_("last accessed"), null=True, blank=True)
    last_authenticated_entity = models.CharField(_("accessed by"), max_length=2048, blank=True)
    last_authenticated_region = models.CharField(_("region"), max_length=32, blank=True)
    total_authenticated_entities = models.PositiveIntegerField(default=0)
    # Whether AWS tracks this service's actions (then ActionUsage rows hold them).
    actions_tracked = models.BooleanField(_("actions tracked"), default=False)

    class Meta:
        ordering = ["service_namespace", "pk"]
        verbose_name = _("service usage")
        verbose_name_plural = _("service usage")
        constraints = [
            models.UniqueConstraint(
                fields=["principal", "service_namespace"],
                condition=Q(removed_run__isnull=True),
                name="%(app_label)s_%(class)s_one_current_per_service",
            ),
        ]

    def __str__(self):
        return f"{self.principal.name}: {self.service_namespace}"


class ActionUsage(VersionedModel):
    """Access Advisor's action-level answer for one tracked action of one principal."""

    principal = models.ForeignKey(Principal, on_delete=models.PROTECT, related_name="action_usage")
    service_namespace = models.CharField(_("service"), max_length=64)
    action = models.CharField(_("action"), max_length=128)
    last_accessed_at = models.DateTimeField(_("last accessed"), null=True, blank=True)
    last_accessed_entity = models.CharField(_("accessed by"), max_length=2048, blank=True)
    last_accessed_region = models.CharField(_("region"), max_length=32, blank=True)

    class Meta:
        ordering = ["service_namespace", "action", "pk"]
        verbose_name = _("action usage")
        verbose_name_plural = _("action usage")
        constraints = [
            models.UniqueConstraint(
                fields=["principal", "service_namespace", "action"],
                condition=Q(removed_run__isnull=True),
                name="%(app_label)s_%(class)s_one_current_per_action",
            ),
        ]

    def __str__(self):
        return f"{self.principal.name}: {self.service_namespace}:{self.action}"


class RunArchive(models.Model):
    """The raw AWS answers (or the imported files) behind a run, as gzip-compressed JSON lines.

    `sha256` is the digest of the uncompressed lines, so `gunzip | sha256sum` re-derives it.
    """

    run = models.OneToOneField(
        CollectionRun, primary_key=True, on_delete=models.PROTECT, related_name="archive"
    )
    content = models.BinaryField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(help_text=_("Uncompressed size in bytes."))

    class Meta:
        ordering = ["run"]
        verbose_name = _("run archive")

    def __str__(self):
        return f"{self.run} ({self.size:,} bytes)"

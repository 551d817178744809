"""Worlds for the tests of the reviews' core: accounts to launch on, campaigns, audit marks.

`organization()` is one account as the AWS CLI writes it (tests.inventory.aws_files), with its
use dated relative to now so that recommendations come out as a reviewer would expect them;
`import_account` loads such files as `import_aws` does. `add_principal` adds a principal to an
account made by `tests.factories.collected_account`, for tests about who reviews what.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import count

from django.db import connection
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent, canonical_json
from inventory.importers import ImportFile, import_files
from inventory.models import AwsAccount, Principal, Right, ServiceUsage
from reviews.launch import launch, new_campaign
from reviews.models import Campaign, CampaignDefinition, Remediation, ReviewItem, shown_digest
from reviews.remediate import except_
from tests import factories
from tests.inventory import aws_files as aws
from tests.inventory.aws_files import (
    ACCOUNT_ID,
    ALICE,
    APP,
    BOUNDARY,
    BOUNDARY_DOCUMENT,
    DEPLOY,
    READ_ONLY,
)

ADMIN = aws.aws_policy_arn("AdministratorAccess")
OPS = aws.principal_arn("role", "ops-admin")
LEGACY = aws.principal_arn("role", "legacy-batch")
NEWCOMER = aws.principal_arn("role", "new-service")

_names = count()


def now() -> datetime:
    # The credential report and Access Advisor give whole seconds.
    return timezone.now().replace(microsecond=0)


def organization(at: datetime | None = None) -> dict[str, object]:
    """The files of one account whose use is recent, by file name.

    - alice (a user, tag team=payments): the deploy policy (ecs:UpdateService, ecr:*), an inline
      read-s3 (s3:GetObject, s3:ListBucket), the developers group, a permissions boundary, a
      console password with MFA used 5 days ago and a key created 30 days ago, used 2 days ago.
      Access Advisor: S3 3 days ago (GetObject; ListBucket never), CloudWatch Logs 5 days ago
      and ECR 10 days ago (neither tracks actions), EC2 and ECS never.
    - bob (a user under /people/, tag owner=bob@example.com): a password without MFA never
      used, an inactive key created 500 days ago; no Access Advisor answer.
    - the group developers: ReadOnlyAccess (s3:Get*, ec2:Describe*) and an inline logs:Get*.
    - the role app-task (env=prod): ReadOnlyAccess and an inline sqs:SendMessage; S3 used a
      day ago, SQS 4 days ago, EC2 never.
    - the role ops-admin (env=prod): AdministratorAccess; S3 used 2 days ago, EC2 200 days
      ago, IAM never.
    - the role legacy-batch (env=dev): an inline batch:SubmitJob last used 200 days ago.
    - the role new-service, created 10 days ago: an inline dynamodb policy it has not used.
    """
    at = at or now()

    def ago(days):
        return at - timedelta(days=days)

    details = aws.authorization_details(
        groups=[
            aws.group("developers", managed=[READ_ONLY], inline={"logs": aws.document("logs:Get*")})
        ],
        users=[
            aws.user(
                "alice",
                groups=["developers"],
                managed=[DEPLOY],
                inline={"read-s3": aws.document("s3:GetObject", "s3:ListBucket")},
                boundary=BOUNDARY,
                tags={"team": "payments"},
            ),
            aws.user("bob", path="/people/", tags={"owner": "bob@example.com"}),
        ],
        roles=[
            aws.role(
                "app-task",
                path="/app/",
                managed=[READ_ONLY],
                inline={"send": aws.document("sqs:SendMessage")},
                tags={"service": "app", "env": "prod"},
                last_used=ago(1),
            ),
            aws.role("ops-admin", managed=[ADMIN], tags={"env": "prod"}, last_used=ago(2)),
            aws.role(
                "legacy-batch",
                inline={"batch": aws.document("batch:SubmitJob")},
                tags={"env": "dev"},
                last_used=ago(200),
            ),
            aws.role(
                "new-service",
                inline={"table": aws.document("dynamodb:GetItem", "dynamodb:PutItem")},
                created=ago(10),
            ),
        ],
        policies=[
            aws.managed_policy(READ_ONLY, aws.document("s3:Get*", "ec2:Describe*")),
            aws.managed_policy(DEPLOY, aws.document("ecs:UpdateService", "ecr:*")),
            aws.managed_policy(BOUNDARY, BOUNDARY_DOCUMENT),
            aws.managed_policy(ADMIN, factories.ADMIN_DOCUMENT),
        ],
    )
    report = aws.credential_report(
        aws.report_user(
            "alice",
            password=True,
            password_last_used=ago(5),
            mfa=True,
            keys=[aws.access_key(ago(30), last_used=ago(2), region="us-east-1", service="ecr")],
        ),
        aws.report_user(
            "bob", path="/people/", password=True, keys=[aws.access_key(ago(500), active=False)]
        ),
    )
    s3_get = aws.tracked("GetObject", last=ago(3))
    answers = [
        aws.advisor(
            ALICE,
            aws.service(
                "s3", name="Amazon S3", last=ago(3), actions=[s3_get, aws.tracked("ListBucket")]
            ),
            aws.service("ec2", name="Amazon EC2", actions=[aws.tracked("DescribeInstances")]),
            aws.service("logs", name="Amazon CloudWatch Logs", last=ago(5)),
            aws.service("ecr", name="Amazon ECR", last=ago(10)),
            aws.service("ecs", name="Amazon ECS"),
        ),
        aws.advisor(
            APP,
            aws.service("s3", name="Amazon S3", last=ago(1)),
            aws.service("sqs", name="Amazon SQS", last=ago(4)),
            aws.service("ec2", name="Amazon EC2", actions=[aws.tracked("DescribeInstances")]),
        ),
        aws.advisor(
            OPS,
            aws.service("s3", name="Amazon S3", last=ago(2)),
            aws.service("ec2", name="Amazon EC2", last=ago(200)),
            aws.service("iam", name="AWS IAM", actions=[aws.tracked("CreateUser")]),
        ),
        aws.advisor(LEGACY, aws.service("batch", name="AWS Batch", last=ago(200))),
        aws.advisor(NEWCOMER, aws.service("dynamodb", name="Amazon DynamoDB")),
    ]
    return {
        "authorization-details.json": details,
        "credential-report.csv": report,
        "access-advisor.json": answers,
    }


def import_account(files=None, account_id=ACCOUNT_ID, name="payments-prod") -> AwsAccount:
    """The account after importing `files` (default: `organization()`), as import_aws does."""
    files = organization() if files is None else files
    run = import_files(
        account_id, name, [ImportFile(file, aws.content(data)) for file, data in files.items()]
    )
    return AwsAccount.objects.get(pk=run.account_id)


def by_name(details: dict, kind: str, name: str) -> dict:
    """One principal of authorization details, to edit before a second import."""
    key = {"user": ("UserDetailList", "UserName"), "role": ("RoleDetailList", "RoleName")}[kind]
    return next(p for p in details[key[0]] if p[key[1]] == name)


def add_principal(
    account: AwsAccount,
    name: str,
    *,
    kind: str = Principal.Kind.ROLE,
    tags: dict | None = None,
    path: str = "/",
) -> Principal:
    """A principal of the account's current run holding one inline policy it uses."""
    run = account.current_run
    principal = factories.PrincipalFactory(
        account=account,
        kind=kind,
        name=name,
        path=path,
        arn=f"arn:aws:iam::{account.account_id}:{kind}{path}{name}",
        tags=tags or {},
        first_seen_run=run,
    )
    Right.objects.create(
        principal=principal,
        kind=Right.Kind.INLINE_POLICY,
        key="read-s3",
        document=factories.S3_READ_DOCUMENT,
        first_seen_run=run,
    )
    ServiceUsage.objects.create(
        principal=principal,
        service_namespace="s3",
        service_name="Amazon S3",
        last_authenticated_at=factories.days_ago(1),
        first_seen_run=run,
    )
    return principal


def definition(owner, **fields) -> CampaignDefinition:
    fields.setdefault("name", f"definition {next(_names)}")
    accounts = fields.pop("accounts", [])
    made = CampaignDefinition.objects.create(owner=owner, **fields)
    made.accounts.set(accounts)
    return made


def launched(
    owner, accounts=None, *, definition: CampaignDefinition | None = None, due_in: int = 14
) -> Campaign:
    """An active campaign over `accounts` (or the definition's), launched by its owner."""
    draft = new_campaign(
        name=f"campaign {next(_names)}",
        owner=owner,
        due_date=timezone.localdate() + timedelta(days=due_in),
        accounts=accounts,
        definition=definition,
        by=owner,
    )
    return launch(draft, by=owner)


def item(campaign: Campaign, principal: str, kind: str, key: str | None = None) -> ReviewItem:
    """The campaign's item of a principal (by name) and right (by kind, and key if several)."""
    items = campaign.items.filter(principal_name=principal, right_kind=kind)
    return items.get(right_key=key) if key is not None else items.get()


def audit_mark() -> int:
    """The id of the latest audit event: what came after it is what a test's action wrote."""
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def events_since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=mark).order_by("id"))


def settled(campaign: Campaign, manager) -> Campaign:
    """Every revocation of a closed campaign answered for by its manager, as sign-off needs."""
    for remediation in campaign.remediations.exclude(state=Remediation.State.VERIFIED):
        except_(remediation, manager, "Carried out outside Attest.")
    return campaign


def shown_sha256(item: ReviewItem) -> str:
    """The digest of what the reviewer was shown, worked out again from the item as it is now,
    as an auditor would from the evidence: what launch stores and decisions record must be it."""
    return shown_digest(
        item.principal_arn,
        item.right_kind,
        item.right_key,
        item.recommendation,
        canonical_json(item.facts),
    )


def post_close(client, campaign: Campaign, **kwargs):
    """The manager's click on "Close the campaign now", with the close it queues for a worker
    run in process once the request commits, as a worker would (what the close queues in turn,
    its remediations, waits for the test's commit, which never comes)."""
    with TestCase.captureOnCommitCallbacks() as committed:
        response = client.post(reverse("reviews:close", args=[campaign.uuid]), **kwargs)
    for callback in committed:
        callback()
    return response


def text(response) -> str:
    """The page's words without markup, spaces collapsed: what a reader sees."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def a_lock_is_awaited() -> bool:
    """Whether a connection to this test's database waits for a lock (other tests' databases
    share the server), read afresh even inside a transaction, which would otherwise see one
    snapshot of the server's activity."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0

"""factory-boy factories, and `collected_account`: an account as a complete run leaves it."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from inventory.models import (
    ActionUsage,
    AwsAccount,
    CollectionRun,
    ManagedPolicy,
    PolicyVersion,
    Principal,
    Right,
    ServiceUsage,
)

ADMIN_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
S3_READ_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
}


def days_ago(days):
    return timezone.now() - timezone.timedelta(days=days)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class AwsAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AwsAccount

    account_id = factory.Sequence(lambda n: f"{100000000000 + n}")
    name = factory.Sequence(lambda n: f"account-{n}")
    role_arn = factory.LazyAttribute(lambda a: f"arn:aws:iam::{a.account_id}:role/AttestReadOnly")


class CollectionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionRun

    account = factory.SubFactory(AwsAccountFactory)
    source = CollectionRun.Source.LIVE
    status = CollectionRun.Status.COMPLETE
    finished_at = factory.LazyFunction(timezone.now)


class PrincipalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Principal

    account = factory.SubFactory(AwsAccountFactory)
    kind = Principal.Kind.ROLE
    name = factory.Sequence(lambda n: f"principal-{n}")
    arn = factory.LazyAttribute(lambda p: f"arn:aws:iam::{p.account.account_id}:{p.kind}/{p.name}")
    aws_id = factory.Sequence(lambda n: f"AROA{n:017d}")
    created_at = factory.LazyFunction(lambda: days_ago(400))
    first_seen_run = factory.LazyAttribute(lambda p: p.account.current_run)


class ManagedPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ManagedPolicy

    name = factory.Sequence(lambda n: f"policy-{n}")
    arn = factory.LazyAttribute(lambda p: f"arn:aws:iam::{p.account.account_id}:policy/{p.name}")
    default_version_id = "v1"
    first_seen_run = factory.LazyAttribute(lambda p: p.account.current_run)


def collected_account(account_id, name, owner=None, principals=3):
    """An account with a complete run: `principals` roles, each holding AdministratorAccess and
    an inline policy, with S3 used 3 days ago and IAM never."""
    account = AwsAccountFactory(account_id=account_id, name=name, owner=owner)
    run = CollectionRunFactory(account=account, counts={"roles": principals})
    account.current_run = run
    account.save(update_fields=["current_run"])
    admin = ManagedPolicyFactory(
        account=account,
        name="AdministratorAccess",
        arn="arn:aws:iam::aws:policy/AdministratorAccess",
        aws_managed=True,
    )
    PolicyVersion.objects.create(
        policy=admin, version_id="v1", is_default=True, document=ADMIN_DOCUMENT, first_seen_run=run
    )
    for i in range(principals):
        principal = PrincipalFactory(
            account=account, name=f"{name}-role-{i}", last_used_at=days_ago(3)
        )
        Right.objects.create(
            principal=principal,
            kind=Right.Kind.MANAGED_POLICY,
            key=admin.arn,
            policy=admin,
            first_seen_run=run,
        )
        Right.objects.create(
            principal=principal,
            kind=Right.Kind.INLINE_POLICY,
            key="read-s3",
            document=S3_READ_DOCUMENT,
            first_seen_run=run,
        )
        ServiceUsage.objects.create(
            principal=principal,
            service_namespace="s3",
            service_name="Amazon S3",
            last_authenticated_at=days_ago(3),
            actions_tracked=True,
            first_seen_run=run,
        )
        ServiceUsage.objects.create(
            principal=principal, service_namespace="iam", service_name="AWS IAM", first_seen_run=run
        )
        ActionUsage.objects.create(
            principal=principal,
            service_namespace="s3",
            action="GetObject",
            last_accessed_at=days_ago(3),
            first_seen_run=run,
        )
    return account

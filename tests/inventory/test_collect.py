"""Live collection of AWS accounts, against moto in process extended by tests/aws_emulator.py.

Each test builds its accounts with boto3 as an administrator would, seeds Access Advisor, and
collects through the same code a worker runs: `collect_run`, the tasks, the commands.
"""

import gzip
import io
import json
from datetime import UTC, datetime

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.utils import timezone
from moto import mock_aws

from audit.models import AuditEvent
from inventory import collect, tasks
from inventory.collect import collect_run
from inventory.models import (
    ActionUsage,
    AwsAccount,
    CollectionRun,
    ManagedPolicy,
    Principal,
    Right,
    ServiceUsage,
)
from tests import factories
from tests.aws_emulator import (
    OWN_ACCOUNT_ID,
    action_usage,
    emulate,
    service_usage,
    without_retry_delays,
)

ROLE_ACCOUNT_ID = "222233334444"
EXTERNAL_ID = "attest-7f3a9c"
S3_USED = datetime(2026, 2, 20, 9, 30, tzinfo=UTC)
SQS_USED = datetime(2026, 3, 1, 17, 5, tzinfo=UTC)
DEPLOYED = datetime(2026, 1, 12, 8, 0, tzinfo=UTC)


def document(*actions):
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
    }


def trust(principal, external_id=None):
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class World:
    """One account as an administrator built it: a group, two users, a role, three policies.

    developers (group): s3-read attached, inline describe-ec2
    alice (user):       member of developers, AmazonS3ReadOnlyAccess attached, inline send-sqs,
                        an access key and a console password; used S3 and SQS
    bob (user):         an access key, nothing else, never used
    deployer (role):    s3-read attached, boundary as permissions boundary, inline deploy
    """

    def __init__(self, aws, account_id=OWN_ACCOUNT_ID):
        self.account_id = account_id
        iam = aws.session(account_id).client("iam")
        self.s3_read = iam.create_policy(
            PolicyName="s3-read", PolicyDocument=json.dumps(document("s3:Get*", "s3:List*"))
        )["Policy"]["Arn"]
        self.boundary = iam.create_policy(
            PolicyName="boundary", PolicyDocument=json.dumps(document("s3:*", "cloudformation:*"))
        )["Policy"]["Arn"]
        self.s3_managed = aws.aws_managed_policy("AmazonS3ReadOnlyAccess", account_id)

        self.developers = iam.create_group(GroupName="developers")["Group"]["Arn"]
        iam.attach_group_policy(GroupName="developers", PolicyArn=self.s3_read)
        iam.put_group_policy(
            GroupName="developers",
            PolicyName="describe-ec2",
            PolicyDocument=json.dumps(document("ec2:Describe*")),
        )

        self.alice = iam.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "payments"}])[
            "User"
        ]["Arn"]
        iam.add_user_to_group(GroupName="developers", UserName="alice")
        iam.attach_user_policy(UserName="alice", PolicyArn=self.s3_managed)
        iam.put_user_policy(
            UserName="alice",
            PolicyName="send-sqs",
            PolicyDocument=json.dumps(document("sqs:SendMessage")),
        )
        iam.create_access_key(UserName="alice")
        iam.create_login_profile(UserName="alice", Password="Correct-Horse-42!")

        self.bob = iam.create_user(UserName="bob")["User"]["Arn"]
        iam.create_access_key(UserName="bob")

        self.deployer = iam.create_role(
            RoleName="deployer",
            AssumeRolePolicyDocument=trust(f"arn:aws:iam::{account_id}:root"),
            PermissionsBoundary=self.boundary,
        )["Role"]["Arn"]
        iam.attach_role_policy(RoleName="deployer", PolicyArn=self.s3_read)
        iam.put_role_policy(
            RoleName="deployer",
            PolicyName="deploy",
            PolicyDocument=json.dumps(document("cloudformation:*")),
        )

        aws.usage[self.alice] = [
            service_usage(
                "s3",
                "Amazon S3",
                last=S3_USED,
                entity=self.alice,
                region="eu-west-1",
                actions=[
                    action_usage("GetObject", last=S3_USED, region="eu-west-1"),
                    action_usage("PutObject"),
                ],
            ),
            service_usage("sqs", "Amazon SQS", last=SQS_USED, region="eu-central-1"),
            service_usage("iam", "AWS Identity and Access Management"),
        ]
        aws.usage[self.developers] = [
            service_usage(
                "s3",
                "Amazon S3",
                last=S3_USED,
                entity=self.alice,
                actions=[action_usage("GetObject", last=S3_USED, entity=self.alice)],
            )
        ]
        aws.usage[self.deployer] = [
            service_usage("cloudformation", "AWS CloudFormation", last=DEPLOYED)
        ]

    # What a complete collection of this world counts.
    COUNTS = {
        "users": 2,
        "groups": 1,
        "roles": 1,
        "policies": 3,
        # developers 2, alice 5, bob 1, deployer 3
        "rights": 11,
        "service_usage": 5,
        "action_usage": 3,
    }


@pytest.fixture
def aws(settings, monkeypatch):
    """moto with the emulator, Access Advisor polled without waiting, retries without backoff,
    and a credential report already generated (so no test waits for one unless it asks)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings.AWS_ENDPOINT_URL = ""
    settings.ACCESS_ADVISOR_POLL_SECONDS = 0
    settings.ACCESS_ADVISOR_POLL_MAX_SECONDS = 0
    without_retry_delays(monkeypatch)
    with mock_aws(), emulate() as emulator:
        emulator.credential_report(ready=True)
        emulator.credential_report(ready=True, account_id=ROLE_ACCOUNT_ID)
        yield emulator


@pytest.fixture
def world(aws):
    return World(aws)


@pytest.fixture
def own_account(db):
    """The account Attest's own credentials are in: read without assuming a role."""
    return factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")


def new_run(account):
    return CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)


def run_collection(account):
    run = collect_run(new_run(account).pk)
    account.refresh_from_db()
    return run


def current(model, **filters):
    return model.objects.current().filter(**filters)


def rights_of(arn):
    return {(right.kind, right.key) for right in current(Right, principal__arn=arn)}


def expected_calls(principals, polls=2, extra_pages=0, **more):
    """The calls of one collection: identity, one page of details, the report read at once, and
    one Access Advisor job per principal polled `polls` times."""
    return {
        "GenerateCredentialReport": 1,
        "GenerateServiceLastAccessedDetails": principals,
        "GetAccountAuthorizationDetails": 1,
        "GetCallerIdentity": 1,
        "GetCredentialReport": 1,
        "GetServiceLastAccessedDetails": principals * polls + extra_pages,
        **more,
    }


# A collection --------------------------------------------------------------------------------


def test_a_collection_stores_every_principal_policy_right_and_usage_of_the_account(
    aws, world, own_account
):
    aws.credential_report(ready=False)

    run = run_collection(own_account)

    assert run.status == CollectionRun.Status.COMPLETE
    assert run.errors == []
    assert own_account.current_run == run
    assert {k: run.counts[k] for k in World.COUNTS} == World.COUNTS
    # No report yet: AWS answers STARTED, then COMPLETE.
    assert run.api_calls == expected_calls(4, GenerateCredentialReport=2)
    assert run.retries == 0
    assert run.caller_arn == f"arn:aws:sts::{OWN_ACCOUNT_ID}:user/moto"

    assert {(p.kind, p.name) for p in current(Principal, account=own_account)} == {
        ("user", "alice"),
        ("user", "bob"),
        ("group", "developers"),
        ("role", "deployer"),
    }
    assert set(current(ManagedPolicy, account=own_account).values_list("arn", flat=True)) == {
        world.s3_read,
        world.boundary,
        world.s3_managed,
    }
    assert ManagedPolicy.objects.get(arn=world.s3_managed).aws_managed
    alice = Principal.objects.get(arn=world.alice)
    assert alice.tags == {"team": "payments"}
    # The latest of everything Access Advisor and the credential report know.
    assert alice.last_used_at == SQS_USED
    assert alice.last_used_region == "eu-central-1"
    assert Principal.objects.get(arn=world.bob).last_used_at is None
    deployer = Principal.objects.get(arn=world.deployer)
    assert deployer.trust_policy["Statement"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{OWN_ACCOUNT_ID}:root"
    }

    alice_rights = rights_of(world.alice)
    access_keys = {key for kind, key in alice_rights if kind == "access_key"}
    assert len(access_keys) == 1
    assert alice_rights == {
        ("group_membership", "developers"),
        ("managed_policy", world.s3_managed),
        ("inline_policy", "send-sqs"),
        ("console_password", "password"),
        ("access_key", access_keys.pop()),
    }
    assert {kind for kind, _ in rights_of(world.bob)} == {"access_key"}
    assert rights_of(world.developers) == {
        ("managed_policy", world.s3_read),
        ("inline_policy", "describe-ec2"),
    }
    assert rights_of(world.deployer) == {
        ("managed_policy", world.s3_read),
        ("permissions_boundary", world.boundary),
        ("inline_policy", "deploy"),
    }
    membership = Right.objects.get(principal=alice, kind=Right.Kind.GROUP_MEMBERSHIP)
    assert membership.group == Principal.objects.get(arn=world.developers)
    inline = Right.objects.get(principal=alice, kind=Right.Kind.INLINE_POLICY)
    assert inline.document == document("sqs:SendMessage")
    boundary = Right.objects.get(principal=deployer, kind=Right.Kind.PERMISSIONS_BOUNDARY)
    assert boundary.policy.arn == world.boundary
    key = Right.objects.get(principal=alice, kind=Right.Kind.ACCESS_KEY)
    assert key.status == "Active"
    assert key.last_used_at is None

    usage = {u.service_namespace: u for u in current(ServiceUsage, principal=alice)}
    assert set(usage) == {"s3", "sqs", "iam"}
    assert usage["s3"].last_authenticated_at == S3_USED
    assert usage["s3"].last_authenticated_entity == world.alice
    assert usage["s3"].last_authenticated_region == "eu-west-1"
    assert usage["s3"].actions_tracked
    assert not usage["sqs"].actions_tracked
    assert usage["iam"].last_authenticated_at is None
    actions = {a.action: a for a in current(ActionUsage, principal=alice)}
    assert set(actions) == {"GetObject", "PutObject"}
    assert actions["GetObject"].last_accessed_at == S3_USED
    assert actions["PutObject"].last_accessed_at is None
    group_action = current(ActionUsage, principal__arn=world.developers).get()
    assert group_action.last_accessed_entity == world.alice


def test_a_collection_keeps_every_aws_answer_in_its_archive(aws, world, own_account):
    run = run_collection(own_account)

    lines = gzip.decompress(bytes(run.archive.content)).decode().splitlines()
    operations = [json.loads(line)["operation"] for line in lines]
    assert run.raw_sha256 == run.archive.sha256
    assert operations.count("GetAccountAuthorizationDetails") == 1
    assert operations.count("GenerateServiceLastAccessedDetails") == 4
    assert "GetCredentialReport" in operations


def test_authorization_details_are_read_across_pages(aws, world, own_account, monkeypatch):
    # 2 users, 1 group, 1 role and 3 policies: 7 entries, 4 pages of 2.
    monkeypatch.setattr(collect, "AUTHORIZATION_DETAILS_PAGE_SIZE", 2)

    run = run_collection(own_account)

    assert run.status == CollectionRun.Status.COMPLETE
    assert run.api_calls["GetAccountAuthorizationDetails"] == 4
    assert {k: run.counts[k] for k in World.COUNTS} == World.COUNTS
    assert rights_of(world.deployer) == {
        ("managed_policy", world.s3_read),
        ("permissions_boundary", world.boundary),
        ("inline_policy", "deploy"),
    }


def test_access_advisor_jobs_are_polled_until_complete_and_read_across_pages(
    aws, world, own_account
):
    aws.polls_to_complete = 4
    aws.access_advisor_page_size = 2
    namespaces = ["s3", "sqs", "ec2", "lambda", "dynamodb"]
    aws.usage[world.bob] = [
        service_usage(
            namespace, namespace.upper(), last=S3_USED, actions=[action_usage("Do", last=S3_USED)]
        )
        for namespace in namespaces
    ]

    run = run_collection(own_account)

    assert run.status == CollectionRun.Status.COMPLETE
    # bob's 5 services take 3 pages, alice's 3 take 2: 3 more reads after the 4 polls each.
    assert run.api_calls == expected_calls(4, polls=4, extra_pages=3)
    bob_usage = current(ServiceUsage, principal__arn=world.bob)
    assert sorted(bob_usage.values_list("service_namespace", flat=True)) == sorted(namespaces)
    assert current(ActionUsage, principal__arn=world.bob).count() == 5
    assert current(ServiceUsage, principal__arn=world.alice).count() == 3


@pytest.mark.parametrize(("concurrency", "window"), [(1, 1), (3, 2)])
def test_every_principal_is_read_whatever_the_threads_and_job_window(
    aws, world, own_account, settings, concurrency, window
):
    settings.COLLECT_CONCURRENCY = concurrency
    settings.ACCESS_ADVISOR_JOB_WINDOW = window
    aws.polls_to_complete = 3

    run = run_collection(own_account)

    assert run.status == CollectionRun.Status.COMPLETE
    assert run.api_calls == expected_calls(4, polls=3)
    assert {k: run.counts[k] for k in World.COUNTS} == World.COUNTS


def test_an_access_advisor_job_that_never_completes_fails_the_run_after_the_timeout(
    aws, world, own_account, settings
):
    first = run_collection(own_account)
    settings.ACCESS_ADVISOR_POLL_SECONDS = 0.02
    settings.ACCESS_ADVISOR_POLL_MAX_SECONDS = 0.02
    settings.ACCESS_ADVISOR_TIMEOUT_SECONDS = 0.2
    aws.polls_to_complete = 10**6

    failed = run_collection(own_account)

    assert failed.status == CollectionRun.Status.FAILED
    timeouts = [e for e in failed.errors if e["code"] == "Timeout"]
    assert {e["arn"] for e in timeouts} == {
        world.alice,
        world.bob,
        world.developers,
        world.deployer,
    }
    assert own_account.current_run == first


def test_throttled_calls_are_retried_and_the_run_completes(aws, world, own_account):
    aws.throttle("GetAccountAuthorizationDetails", times=2)
    aws.throttle("GenerateServiceLastAccessedDetails", times=1)
    aws.throttle("GetServiceLastAccessedDetails", times=1)

    run = run_collection(own_account)

    assert run.status == CollectionRun.Status.COMPLETE
    assert run.retries == 4
    assert run.api_calls == expected_calls(4)
    assert aws.requests["GetAccountAuthorizationDetails"] == 3
    assert {k: run.counts[k] for k in World.COUNTS} == World.COUNTS


def test_an_account_aws_holds_to_a_request_rate_is_collected_completely_by_many_threads(
    aws, own_account, settings
):
    # Each thread backing off on its own ran out of attempts here; paced together they do not.
    settings.COLLECT_CONCURRENCY = 16
    settings.AWS_MAX_ATTEMPTS = 4
    iam = aws.session().client("iam")
    for i in range(30):
        iam.create_user(UserName=f"user-{i:02d}")
    aws.limit(50, burst=5)

    run = run_collection(own_account)

    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    assert sum(aws.throttled.values()) > 0
    assert run.counts["users"] == 30
    assert run.api_calls["GenerateServiceLastAccessedDetails"] == 30
    assert own_account.current_run == run


def test_throttling_beyond_the_retries_fails_the_run_and_the_previous_run_stays_current(
    aws, world, own_account, settings
):
    first = run_collection(own_account)
    settings.AWS_MAX_ATTEMPTS = 3
    aws.throttle("GetAccountAuthorizationDetails", times=3)

    failed = run_collection(own_account)

    assert failed.status == CollectionRun.Status.FAILED
    assert [(e["operation"], e["code"]) for e in failed.errors] == [
        ("GetAccountAuthorizationDetails", "Throttling")
    ]
    assert failed.retries == 2
    assert own_account.current_run == first
    assert current(Principal, account=own_account).count() == 4
    assert not Principal.objects.filter(removed_run=failed).exists()


def test_vanished_principal_is_recorded_and_the_run_completes(aws, world, own_account):
    first = run_collection(own_account)
    aws.vanish(world.bob)

    second = run_collection(own_account)

    assert second.status == CollectionRun.Status.COMPLETE
    assert own_account.current_run == second
    assert [(e["arn"], e["operation"], e["code"]) for e in second.errors] == [
        (world.bob, "GenerateServiceLastAccessedDetails", "NoSuchEntity")
    ]
    assert second.counts["users"] == 1
    bob = Principal.objects.get(arn=world.bob)
    assert (bob.first_seen_run, bob.removed_run) == (first, second)
    assert not current(Right, principal=bob).exists()
    assert Principal.objects.get(arn=world.alice).removed_run is None


def test_a_job_aws_no_longer_knows_fails_the_run_without_marking_its_principal_removed(
    aws, world, own_account
):
    first = run_collection(own_account)

    def forget_deployer_jobs():
        for job_id, job in list(aws.jobs.items()):
            if job.arn == world.deployer:
                del aws.jobs[job_id]

    aws.before("GetServiceLastAccessedDetails", forget_deployer_jobs)

    failed = run_collection(own_account)

    assert failed.status == CollectionRun.Status.FAILED
    assert (world.deployer, "JobNotFound") in [(e.get("arn"), e["code"]) for e in failed.errors]
    assert own_account.current_run == first
    assert Principal.objects.get(arn=world.deployer).removed_run is None


def test_a_failed_access_advisor_job_fails_the_run_and_the_previous_run_stays_current(
    aws, world, own_account
):
    first = run_collection(own_account)
    aws.fail_job(world.deployer, "ServiceFailure", "Access Advisor is unavailable")

    failed = run_collection(own_account)

    assert failed.status == CollectionRun.Status.FAILED
    assert {
        "arn": world.deployer,
        "operation": "GetServiceLastAccessedDetails",
        "code": "ServiceFailure",
        "message": "Access Advisor is unavailable",
        "request_id": "",
    } in failed.errors
    assert failed.errors[-1]["code"] == "CollectionError"
    assert "previous complete run stays current" in failed.errors[-1]["message"]
    assert own_account.current_run == first
    assert current(ServiceUsage, principal__arn=world.deployer).count() == 1


def test_a_run_finished_elsewhere_while_it_collects_saves_nothing(aws, world, own_account):
    first = run_collection(own_account)
    run = new_run(own_account)
    # The sweeper gives the run up while its worker still reads AWS.
    aws.before(
        "GetCredentialReport",
        lambda: CollectionRun.objects.filter(pk=run.pk).update(
            status=CollectionRun.Status.FAILED, finished_at=timezone.now()
        ),
    )

    assert collect_run(run.pk) is None

    run.refresh_from_db()
    assert run.status == CollectionRun.Status.FAILED
    assert aws.requests["GenerateServiceLastAccessedDetails"] == 4  # the first run's only
    own_account.refresh_from_db()
    assert own_account.current_run == first
    assert not Principal.objects.filter(first_seen_run=run).exists()
    assert not Principal.objects.filter(removed_run=run).exists()


# Accounts and roles ------------------------------------------------------------------------


def role_account(aws, external_id=EXTERNAL_ID, *, role_external_id=EXTERNAL_ID):
    """An account read through its AttestReadOnly role, which trusts Attest's own account and
    requires `role_external_id`; Attest is set up with `external_id`."""
    world = World(aws, ROLE_ACCOUNT_ID)
    aws.session(ROLE_ACCOUNT_ID).client("iam").create_role(
        RoleName="AttestReadOnly",
        AssumeRolePolicyDocument=trust(f"arn:aws:iam::{OWN_ACCOUNT_ID}:root", role_external_id),
    )
    account = factories.AwsAccountFactory(
        account_id=ROLE_ACCOUNT_ID, name="payments", external_id=external_id
    )
    return account, world


def test_an_account_is_read_through_its_role_assumed_with_its_external_id(aws, db):
    account, world = role_account(aws)

    run = run_collection(account)

    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    assert run.caller_arn == (
        f"arn:aws:sts::{ROLE_ACCOUNT_ID}:assumed-role/AttestReadOnly/attest-collector"
    )
    assert run.api_calls["AssumeRole"] == 1
    assert set(current(Principal, account=account).values_list("arn", flat=True)) == {
        world.alice,
        world.bob,
        world.developers,
        world.deployer,
        f"arn:aws:iam::{ROLE_ACCOUNT_ID}:role/AttestReadOnly",
    }


def test_a_role_that_requires_another_external_id_fails_the_run(aws, db):
    account, _ = role_account(aws, external_id="not-the-one")

    run = run_collection(account)

    assert run.status == CollectionRun.Status.FAILED
    assert [(e["operation"], e["code"]) for e in run.errors] == [("AssumeRole", "AccessDenied")]
    assert account.current_run is None


def test_a_role_in_another_account_fails_the_run_instead_of_storing_that_account(aws, db):
    role_account(aws)
    # The role ARN names the account the role is in, not the account to collect.
    account = factories.AwsAccountFactory(
        account_id="666677778888",
        role_arn=f"arn:aws:iam::{ROLE_ACCOUNT_ID}:role/AttestReadOnly",
        external_id=EXTERNAL_ID,
    )

    run = run_collection(account)

    assert run.status == CollectionRun.Status.FAILED
    assert ROLE_ACCOUNT_ID in run.errors[-1]["message"]
    assert "666677778888" in run.errors[-1]["message"]
    assert not Principal.objects.filter(account=account).exists()


def test_a_failed_account_does_not_stop_the_others(
    aws, world, own_account, django_capture_on_commit_callbacks
):
    role_world_account, _ = role_account(aws)
    # No role: Attest's own credentials, which belong to another account.
    misconfigured = factories.AwsAccountFactory(account_id="333344445555", role_arn="")
    # A role nobody created.
    missing_role = factories.AwsAccountFactory(account_id="444455556666")

    with django_capture_on_commit_callbacks(execute=True):
        runs = tasks.start_collections(
            [own_account, misconfigured, role_world_account, missing_role]
        )
    runs = {run.account.account_id: run for run in tasks.runs_in_progress(runs)}

    assert {account_id: run.status for account_id, run in runs.items()} == {
        OWN_ACCOUNT_ID: "complete",
        "333344445555": "failed",
        ROLE_ACCOUNT_ID: "complete",
        "444455556666": "failed",
    }
    [wrong_account] = runs["333344445555"].errors
    assert wrong_account["code"] == "CollectionError"
    assert f"the credentials belong to account {OWN_ACCOUNT_ID}" in wrong_account["message"]
    [denied] = runs["444455556666"].errors
    assert (denied["operation"], denied["code"]) == ("AssumeRole", "AccessDenied")
    assert "arn:aws:iam::444455556666:role/AttestReadOnly" in denied["message"]
    for account_id in ("333344445555", "444455556666"):
        assert AwsAccount.objects.get(account_id=account_id).current_run is None
        assert not Principal.objects.filter(account__account_id=account_id).exists()
    assert current(Principal, account=own_account).count() == 4
    assert current(Principal, account__account_id=ROLE_ACCOUNT_ID).count() == 5


# One run at a time -------------------------------------------------------------------------


def test_starting_a_collection_again_returns_the_running_one(
    own_account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:
        [first] = tasks.start_collections([own_account])
        [again] = tasks.start_collections([own_account])

    assert again.pk == first.pk
    assert CollectionRun.objects.filter(account=own_account).count() == 1
    assert len(queued) == 1


def test_the_database_refuses_a_second_running_collection_of_an_account(own_account):
    new_run(own_account)

    with pytest.raises(IntegrityError):
        new_run(own_account)


def test_a_run_collected_twice_is_collected_once(aws, world, own_account):
    run = new_run(own_account)
    collect_run(run.pk)
    requests = aws.requests.total()
    finished = CollectionRun.objects.get(pk=run.pk).finished_at

    assert collect_run(run.pk) is None

    assert aws.requests.total() == requests
    run.refresh_from_db()
    assert (run.status, run.finished_at, run.attempts) == ("complete", finished, 1)


def test_a_run_another_worker_is_collecting_is_left_alone(aws, world, own_account):
    run = new_run(own_account)
    CollectionRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now(), attempts=1)
    requests = aws.requests.total()

    assert collect_run(run.pk) is None

    assert aws.requests.total() == requests
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 1)


# The sweeper -------------------------------------------------------------------------------


def silent_run(account, attempts, minutes):
    """A running run whose worker was last heard of `minutes` ago."""
    run = new_run(account)
    CollectionRun.objects.filter(pk=run.pk).update(
        attempts=attempts, heartbeat_at=timezone.now() - timezone.timedelta(minutes=minutes)
    )
    return run


def test_the_sweeper_collects_again_a_run_whose_worker_went_silent(
    aws, world, own_account, settings
):
    run = silent_run(own_account, attempts=1, minutes=settings.COLLECTION_STALE_MINUTES + 1)

    tasks.sweep_stale_runs()

    run.refresh_from_db()
    assert run.status == CollectionRun.Status.COMPLETE
    assert run.attempts == 2
    own_account.refresh_from_db()
    assert own_account.current_run == run


def test_the_sweeper_gives_up_a_run_tried_too_often(aws, world, own_account, settings):
    run = silent_run(
        own_account, attempts=tasks.MAX_ATTEMPTS, minutes=settings.COLLECTION_STALE_MINUTES + 1
    )
    requests = aws.requests.total()

    tasks.sweep_stale_runs()

    run.refresh_from_db()
    assert run.status == CollectionRun.Status.FAILED
    assert run.errors[-1]["code"] == "Abandoned"
    assert f"{tasks.MAX_ATTEMPTS} attempts" in run.errors[-1]["message"]
    assert aws.requests.total() == requests


def test_the_sweeper_leaves_alone_a_run_whose_worker_is_alive(aws, world, own_account, settings):
    run = silent_run(own_account, attempts=1, minutes=settings.COLLECTION_STALE_MINUTES - 1)
    requests = aws.requests.total()

    tasks.sweep_stale_runs()

    run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 1)
    assert aws.requests.total() == requests


def test_the_sweeper_starts_a_run_whose_task_never_arrived(aws, world, own_account, settings):
    run = new_run(own_account)
    CollectionRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now()
        - timezone.timedelta(minutes=settings.COLLECTION_STALE_MINUTES + 1)
    )

    tasks.sweep_stale_runs()

    run.refresh_from_db()
    assert (run.status, run.attempts) == ("complete", 1)


# The commands ------------------------------------------------------------------------------


def run_command(*args):
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=stdout, stderr=stderr)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.django_db(transaction=True)
def test_collect_prints_a_json_summary_and_fails_when_an_account_failed(aws, world):
    own = factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")
    factories.AwsAccountFactory(account_id="333344445555", name="misconfigured", role_arn="")
    factories.AwsAccountFactory(account_id="555566667777", name="retired", active=False)

    code, stdout, _ = run_command("collect", "--json")

    assert code == 1
    accounts = {item["account_id"]: item for item in json.loads(stdout)["accounts"]}
    assert set(accounts) == {OWN_ACCOUNT_ID, "333344445555"}
    healthy, failed = accounts[OWN_ACCOUNT_ID], accounts["333344445555"]
    assert healthy["status"] == "complete"
    assert {name: healthy[name] for name in World.COUNTS} == World.COUNTS
    assert healthy["api_calls"] == expected_calls(4)
    assert healthy["errors"] == []
    assert failed["status"] == "failed"
    assert failed["users"] == 0
    assert failed["api_calls"] == {"GetCallerIdentity": 1}
    assert [error["code"] for error in failed["errors"]] == ["CollectionError"]
    own.refresh_from_db()
    assert str(own.current_run.uuid) == healthy["run"]


@pytest.mark.django_db(transaction=True)
def test_collect_of_healthy_accounts_succeeds_and_describes_each(aws, world):
    factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")

    code, stdout, _ = run_command("collect", "--account", OWN_ACCOUNT_ID, "--wait")

    assert code == 0
    assert stdout.splitlines()[0] == f"{OWN_ACCOUNT_ID}: complete"
    assert "users 2, groups 1, roles 1, policies 3, rights 11" in stdout


def test_collect_refuses_an_unknown_account(own_account):
    with pytest.raises(CommandError, match="no account 999999999999"):
        call_command("collect", "--account", "999999999999")
    assert not CollectionRun.objects.exists()


def test_collect_refuses_an_import_only_account(db):
    factories.AwsAccountFactory(account_id="777788889999", mode=AwsAccount.Mode.IMPORT)

    with pytest.raises(CommandError, match="777788889999 is import-only"):
        call_command("collect", "--account", "777788889999")
    assert not CollectionRun.objects.exists()


def test_collect_without_live_accounts_says_how_to_add_one(db):
    with pytest.raises(CommandError, match="add_account"):
        call_command("collect")


def test_add_account_adds_then_updates_an_account(db, reviewer):
    role = "arn:aws:iam::210987654321:role/AttestReadOnly"
    call_command(
        "add_account",
        "--account-id=210987654321",
        "--name=billing",
        f"--role-arn={role}",
        "--external-id=ext-1",
        f"--owner={reviewer.username}",
        stdout=io.StringIO(),
    )
    call_command(
        "add_account", "--account-id=210987654321", "--name=billing-prod", stdout=io.StringIO()
    )

    account = AwsAccount.objects.get(account_id="210987654321")
    assert (account.name, account.role_arn, account.external_id, account.owner) == (
        "billing-prod",
        "",
        "",
        None,
    )
    assert account.mode == AwsAccount.Mode.LIVE


def test_an_account_can_have_a_role_of_its_own_for_remediation(db):
    call_command(
        "add_account",
        "--account-id=210987654321",
        "--name=billing",
        "--role-arn=arn:aws:iam::210987654321:role/AttestReadOnly",
        "--remediation-role-arn=arn:aws:iam::210987654321:role/AttestRemediation",
        stdout=io.StringIO(),
    )
    account = AwsAccount.objects.get(account_id="210987654321")
    assert account.remediation_role_arn == "arn:aws:iam::210987654321:role/AttestRemediation"
    [event] = AuditEvent.objects.filter(action="account.added")
    assert event.after["remediation_role_arn"] == account.remediation_role_arn

    with pytest.raises(CommandError, match="remediation-role-arn: The role must be in the account"):
        call_command(
            "add_account",
            "--account-id=210987654321",
            "--name=billing",
            "--remediation-role-arn=arn:aws:iam::999988887777:role/AttestRemediation",
        )


def test_add_account_names_each_invalid_field(db):
    with pytest.raises(CommandError) as failure:
        call_command(
            "add_account", "--account-id=12345", "--name=x", "--role-arn=arn:aws:iam::1:user/u"
        )

    message = str(failure.value)
    assert "account-id: An AWS account id is 12 digits." in message
    assert "role-arn: Expected a role ARN" in message
    assert not AwsAccount.objects.exists()


def test_add_account_refuses_a_role_in_another_account(db):
    with pytest.raises(CommandError, match="role-arn: The role must be in the account itself"):
        call_command(
            "add_account",
            "--account-id=111122223333",
            "--name=payments",
            "--role-arn=arn:aws:iam::999988887777:role/AttestReadOnly",
        )
    assert not AwsAccount.objects.exists()


def test_add_account_refuses_an_unknown_owner(db):
    with pytest.raises(CommandError, match="--owner: no user 'nobody'"):
        call_command("add_account", "--account-id=210987654321", "--name=x", "--owner=nobody")


@pytest.fixture
def organization(aws):
    """An organization managed from Attest's own account: two member accounts, one closed."""
    client = boto3.client("organizations", region_name="us-east-1")
    client.create_organization(FeatureSet="ALL")
    ids = {}
    for name in ("payments", "closed-sandbox"):
        status = client.create_account(Email=f"{name}@example.com", AccountName=name)
        ids[name] = status["CreateAccountStatus"]["AccountId"]
    client.close_account(AccountId=ids["closed-sandbox"])
    return ids


def test_discover_accounts_adds_every_account_of_the_organization(db, organization):
    stdout = io.StringIO()
    call_command(
        "discover_accounts", "--role-name=AuditReader", "--external-id=ext-9", stdout=stdout
    )

    accounts = {a.account_id: a for a in AwsAccount.objects.all()}
    assert set(accounts) == {OWN_ACCOUNT_ID, *organization.values()}
    payments = accounts[organization["payments"]]
    assert (payments.name, payments.active, payments.organization_state) == (
        "payments",
        True,
        "ACTIVE",
    )
    assert payments.role_arn == f"arn:aws:iam::{organization['payments']}:role/AuditReader"
    assert payments.external_id == "ext-9"
    assert payments.mode == AwsAccount.Mode.LIVE
    closed = accounts[organization["closed-sandbox"]]
    assert (closed.active, closed.organization_state) == (False, "SUSPENDED")
    assert "not collected: suspended" in stdout.getvalue()
    assert "3 accounts in the organization, 3 new." in stdout.getvalue()


def test_discover_accounts_again_updates_without_duplicating(db, organization):
    call_command("discover_accounts", stdout=io.StringIO())
    stdout = io.StringIO()
    call_command("discover_accounts", stdout=stdout)

    assert AwsAccount.objects.count() == 3
    assert "3 accounts in the organization, 0 new." in stdout.getvalue()


def test_discover_accounts_outside_an_organization_says_why(aws, db):
    with pytest.raises(CommandError, match="cannot list the organization's accounts"):
        call_command("discover_accounts", stdout=io.StringIO())

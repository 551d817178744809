"""Carrying out revoke and reduce decisions in AWS, end to end against moto in process.

Each test builds an account in moto (tests.reviews.aws_world), collects it as a worker does,
launches a campaign over it, decides, and closes the campaign with its on-commit callbacks run,
so the remediation tasks run in process as a worker would run them. What a user would notice is
then read back from AWS with boto3: the right gone (or narrowed, or back), the calls made.
"""

import json
from datetime import timedelta

import pytest
from botocore.exceptions import EndpointConnectionError
from django.db.models import F
from django.utils import timezone
from moto import mock_aws
from moto.iam.models import iam_backends

from audit.models import AuditEvent
from inventory import policies
from inventory.aws import AwsSession
from inventory.models import AwsAccount, Right
from reviews import remediate, tasks
from reviews.decide import Choice, Refused, close, decide, sign_off
from reviews.models import Campaign, Remediation, ReviewItem
from tests.aws_emulator import OWN_ACCOUNT_ID, Refusal, emulate, without_retry_delays
from tests.inventory import aws_files as files
from tests.reviews.aws_world import (
    ATHENA,
    DATA_RW,
    S3_RW,
    World,
    collect,
    document,
    own_account,
    trust,
    user_boundaries,
)
from tests.reviews.builders import by_name, definition, import_account, launched, organization

State = Remediation.State
REASON = "Left the payments team in October."
PASSWORD = "correct horse battery staple"  # every factory user's
STATEMENT = "I attest that the access listed was reviewed and the decisions are carried out."


@pytest.fixture
def aws(settings, monkeypatch):
    """moto with the emulator; Access Advisor answers at once, retries do not wait."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings.AWS_ENDPOINT_URL = ""
    settings.ACCESS_ADVISOR_POLL_SECONDS = 0
    settings.ACCESS_ADVISOR_POLL_MAX_SECONDS = 0
    without_retry_delays(monkeypatch)
    user_boundaries(monkeypatch)
    with mock_aws(), emulate() as emulator:
        emulator.credential_report(ready=True)
        yield emulator


@pytest.fixture
def world(aws):
    return World(aws)


@pytest.fixture
def sandbox(world, reviewer):
    """The world's account, collected (its owner, the reviewer, reviews every item); the
    requests the emulator counts start from here."""
    account = own_account(reviewer)
    collect(account)
    world.emulator.requests.clear()
    return account


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """What is queued after commit runs (eagerly, in process) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def campaign_over(account, manager, **rules) -> Campaign:
    """A campaign over the account whose unanswered items are kept at close."""
    rules.setdefault("default_outcome", "keep")
    return launched(manager, definition=definition(manager, accounts=[account], **rules))


def the_item(campaign, principal, kind, key=None) -> ReviewItem:
    items = campaign.items.select_related("campaign", "reviewer").filter(
        principal_name=principal, right_kind=kind
    )
    return items.get(right_key=key) if key is not None else items.get()


def choose(campaign, reviewer, decision, principal, kind, key=None, keep=()) -> ReviewItem:
    item = the_item(campaign, principal, kind, key)
    return decide(item, reviewer, Choice(decision, REASON, tuple(keep)))


def remediation(campaign, principal, kind, key=None) -> Remediation:
    return (
        Remediation.objects.exclude(state=State.CANCELLED)
        .select_related("campaign", "item")
        .get(item=the_item(campaign, principal, kind, key))
    )


def events(found: Remediation) -> list[str]:
    return list(
        AuditEvent.objects.for_object("reviews.remediation", found.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )


def made(found: Remediation, log: str = "calls") -> list[str]:
    """The operations AWS answered (not refused), in order."""
    return [
        call["operation"]
        for call in getattr(found, log)
        if call.get("request_id") and not call.get("error")
    ]


# Every kind of revocation ----------------------------------------------------------------------


def revocations(world):
    """(principal, kind, key, operation, before, gone) for each kind of right revoked."""
    inline = world.inline
    return [
        (
            "alice",
            Right.Kind.MANAGED_POLICY,
            world.s3_read,
            "DetachUserPolicy",
            {"attached": True},
            lambda: world.s3_read not in world.attached("user", "alice"),
        ),
        (
            "developers",
            Right.Kind.MANAGED_POLICY,
            world.s3_read,
            "DetachGroupPolicy",
            {"attached": True},
            lambda: world.attached("group", "developers") == set(),
        ),
        (
            "deployer",
            Right.Kind.MANAGED_POLICY,
            world.s3_read,
            "DetachRolePolicy",
            {"attached": True},
            lambda: world.attached("role", "deployer") == set(),
        ),
        (
            "alice",
            Right.Kind.INLINE_POLICY,
            "send-sqs",
            "DeleteUserPolicy",
            {"document": inline("user", "alice")["send-sqs"]},
            lambda: inline("user", "alice") == {},
        ),
        (
            "developers",
            Right.Kind.INLINE_POLICY,
            "describe-ec2",
            "DeleteGroupPolicy",
            {"document": inline("group", "developers")["describe-ec2"]},
            lambda: inline("group", "developers") == {},
        ),
        (
            "deployer",
            Right.Kind.INLINE_POLICY,
            "deploy",
            "DeleteRolePolicy",
            {"document": inline("role", "deployer")["deploy"]},
            lambda: inline("role", "deployer") == {},
        ),
        (
            "alice",
            Right.Kind.GROUP_MEMBERSHIP,
            "developers",
            "RemoveUserFromGroup",
            {"member": True},
            lambda: world.groups_of("alice") == set(),
        ),
        (
            "carol",
            Right.Kind.PERMISSIONS_BOUNDARY,
            world.boundary,
            "DeleteUserPermissionsBoundary",
            {"boundary": world.boundary},
            lambda: world.boundary_of("user", "carol") is None,
        ),
        (
            "deployer",
            Right.Kind.PERMISSIONS_BOUNDARY,
            world.boundary,
            "DeleteRolePermissionsBoundary",
            {"boundary": world.boundary},
            lambda: world.boundary_of("role", "deployer") is None,
        ),
        (
            "alice",
            Right.Kind.ACCESS_KEY,
            None,
            "UpdateAccessKey",
            {"access_key_id": world.alice_key, "status": "Active"},
            lambda: world.keys_of("alice") == {world.alice_key: "Inactive"},
        ),
        (
            "alice",
            Right.Kind.CONSOLE_PASSWORD,
            None,
            "DeleteLoginProfile",
            {"login_profile": True},
            lambda: world.login_profile("alice") is None,
        ),
    ]


def revoke_everything(world, campaign, reviewer, manager, run_tasks) -> list:
    cases = revocations(world)
    for principal, kind, key, *_ in cases:
        choose(campaign, reviewer, "revoke", principal, kind, key)
    with run_tasks():
        close(campaign, by=manager)
    return cases


def test_every_kind_of_revocation_is_carried_out_verified_and_recorded(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager)
    cases = revoke_everything(world, campaign, reviewer, manager, run_tasks)

    for principal, kind, key, operation, before, gone in cases:
        found = remediation(campaign, principal, kind, key)
        assert (found.state, found.error) == (State.VERIFIED, None), (principal, kind)
        assert found.before == before, (principal, kind)
        assert gone(), (principal, kind)
        [call] = found.calls
        assert call["operation"] == operation
        assert call["request_id"], (principal, kind)
        assert found.applied_at <= found.verified_at
        assert events(found) == [
            "remediation.applied",
            "remediation.verified",
        ], (principal, kind)
    # One write each, and nothing else touched.
    assert world.writes() == {operation: 1 for *_, operation, _b, _g in cases}
    assert world.attached("user", "erin") == {world.data_rw}
    assert world.groups_of("gina") == {"analysts"}
    assert AuditEvent.objects.filter(
        action="remediation.planned", object_id=str(campaign.pk)
    ).get().after == {"counts": {"planned": 11}, "approved": True, "dry_run": False}


def test_a_deactivated_key_is_deleted_after_its_grace_period_and_cannot_come_back(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager, key_grace_days=14)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.ACCESS_KEY)
    with run_tasks():
        close(campaign, by=manager)
    found = remediation(campaign, "alice", Right.Kind.ACCESS_KEY)
    assert found.state == State.VERIFIED
    assert found.key_delete_after == found.verified_at + timedelta(days=14)

    assert remediate.delete_expired_keys(now=found.verified_at + timedelta(days=13)) == 0
    assert world.keys_of("alice") == {world.alice_key: "Inactive"}
    assert remediate.delete_expired_keys(now=found.verified_at + timedelta(days=14)) == 1

    assert world.keys_of("alice") == {}
    found.refresh_from_db()
    assert found.key_deleted_at is not None
    assert made(found) == ["UpdateAccessKey", "DeleteAccessKey"]
    assert "remediation.key_deleted" in events(found)
    # A second sweep has nothing left to delete.
    assert remediate.delete_expired_keys(now=found.verified_at + timedelta(days=30)) == 0
    with pytest.raises(remediate.Refused, match="deleted after its grace period"):
        remediate.request_rollback(found, manager, "Needed back for the batch job.")
    assert world.writes() == {"UpdateAccessKey": 1, "DeleteAccessKey": 1}


def test_a_rollback_restores_exactly_what_each_revocation_removed(
    world, sandbox, reviewer, manager, run_tasks
):
    documents = {
        ("user", "alice"): world.inline("user", "alice"),
        ("group", "developers"): world.inline("group", "developers"),
        ("role", "deployer"): world.inline("role", "deployer"),
    }
    campaign = campaign_over(sandbox, manager)
    cases = revoke_everything(world, campaign, reviewer, manager, run_tasks)
    world.emulator.requests.clear()

    for principal, kind, key, *_ in cases:
        with run_tasks():
            remediate.request_rollback(
                remediation(campaign, principal, kind, key), manager, "The team still needs it."
            )

    assert world.attached("user", "alice") == {world.s3_read}
    assert world.attached("group", "developers") == {world.s3_read}
    assert world.attached("role", "deployer") == {world.s3_read}
    for (kind, name), inline in documents.items():
        assert world.inline(kind, name) == inline
    assert world.groups_of("alice") == {"developers"}
    assert world.boundary_of("user", "carol") == world.boundary
    assert world.boundary_of("role", "deployer") == world.boundary
    assert world.keys_of("alice") == {world.alice_key: "Active"}
    assert world.login_profile("alice") is not None
    for principal, kind, key, *_ in cases:
        found = remediation(campaign, principal, kind, key)
        assert found.state == State.ROLLED_BACK, (principal, kind)
        assert (found.rollback_reason, found.rolled_back_by_name) == (
            "The team still needs it.",
            manager.username,
        )
        assert found.rolled_back_at is not None
        assert all(call["request_id"] for call in found.rollback_calls)
        assert len(found.rollback_calls) == 1
        assert events(found)[-2:] == ["remediation.rollback_requested", "remediation.rolled_back"]
    assert world.writes() == {
        "AttachUserPolicy": 1,
        "AttachGroupPolicy": 1,
        "AttachRolePolicy": 1,
        "PutUserPolicy": 1,
        "PutGroupPolicy": 1,
        "PutRolePolicy": 1,
        "AddUserToGroup": 1,
        "PutUserPermissionsBoundary": 1,
        "PutRolePermissionsBoundary": 1,
        "UpdateAccessKey": 1,
        "CreateLoginProfile": 1,
    }
    # The new console password is never written down.
    # moto drops PasswordResetRequired: the call says it. The new password is never written down.
    login = remediation(campaign, "alice", Right.Kind.CONSOLE_PASSWORD)
    assert login.rollback_calls[0]["params"] == {
        "UserName": "alice",
        "Password": "********",
        "PasswordResetRequired": True,
    }
    # Rolled back once is rolled back: a second request is refused.
    with pytest.raises(remediate.Refused, match="rolled back cannot be rolled back"):
        remediate.request_rollback(login, manager, "Again.")


# Reductions ------------------------------------------------------------------------------------


def allows(document, action) -> bool:
    return policies.allows([document], action)


def test_reductions_narrow_the_right_to_what_was_kept_and_touch_nobody_else(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "reduce", "dave", Right.Kind.INLINE_POLICY, keep=["s3:GetObject"])
    choose(campaign, reviewer, "reduce", "erin", Right.Kind.MANAGED_POLICY, keep=["s3:GetObject"])
    choose(campaign, reviewer, "reduce", "gina", Right.Kind.GROUP_MEMBERSHIP, keep=["athena"])
    with run_tasks():
        close(campaign, by=manager)

    # dave's inline policy, under its own name, allows exactly what was kept.
    inline = remediation(campaign, "dave", Right.Kind.INLINE_POLICY)
    assert inline.state == State.VERIFIED
    assert inline.before == {"document": S3_RW}
    [document] = world.inline("user", "dave").values()
    assert list(world.inline("user", "dave")) == ["s3-rw"]
    assert allows(document, "s3:GetObject")
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "iam:CreateUser"):
        assert not allows(document, action), action
    assert made(inline) == ["PutUserPolicy"]

    # erin holds a new customer managed policy; frank keeps data-rw, unchanged.
    managed = remediation(campaign, "erin", Right.Kind.MANAGED_POLICY)
    assert managed.state == State.VERIFIED
    replacement = f"arn:aws:iam::{sandbox.account_id}:policy/attest/{managed.replacement_name}"
    assert world.attached("user", "erin") == {replacement}
    reduced = world.policy_document(replacement)
    assert allows(reduced, "s3:GetObject")
    for action in ("s3:PutObject", "dynamodb:GetItem", "dynamodb:PutItem"):
        assert not allows(reduced, action), action
    assert world.attached("user", "frank") == {world.data_rw}
    assert world.policy_document(world.data_rw) == DATA_RW
    versions = world.iam.list_policy_versions(PolicyArn=world.data_rw)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v1"]
    assert made(managed) == ["CreatePolicy", "AttachUserPolicy", "DetachUserPolicy"]

    # gina leaves analysts for a policy of its Athena actions; hank and the group stay.
    membership = remediation(campaign, "gina", Right.Kind.GROUP_MEMBERSHIP)
    assert membership.state == State.VERIFIED
    assert world.groups_of("gina") == set()
    [held] = world.attached("user", "gina")
    narrowed = world.policy_document(held)
    assert allows(narrowed, "athena:StartQueryExecution")
    assert allows(narrowed, "athena:GetQueryResults")
    assert not allows(narrowed, "glue:GetTable")
    assert world.groups_of("hank") == {"analysts"}
    assert world.attached("group", "analysts") == {world.athena}
    assert world.policy_document(world.athena) == ATHENA
    assert made(membership) == ["CreatePolicy", "AttachUserPolicy", "RemoveUserFromGroup"]

    # Rolled back, each is as it was, and the policies Attest made are gone.
    for found in (inline, managed, membership):
        with run_tasks():
            remediate.request_rollback(found, manager, "The reduction broke the nightly job.")
        found.refresh_from_db()
        assert found.state == State.ROLLED_BACK
    assert world.inline("user", "dave") == {"s3-rw": S3_RW}
    assert world.attached("user", "erin") == {world.data_rw}
    assert world.attached("user", "gina") == set()
    assert world.groups_of("gina") == {"analysts"}
    policies_left = world.iam.list_policies(Scope="Local")["Policies"]
    assert {p["PolicyName"] for p in policies_left} == {"s3-read", "boundary", "data-rw", "athena"}


def test_a_right_changed_since_its_review_is_left_to_a_person(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "deployer", Right.Kind.PERMISSIONS_BOUNDARY)
    choose(campaign, reviewer, "reduce", "dave", Right.Kind.INLINE_POLICY, keep=["s3:GetObject"])
    # Meanwhile an administrator gave the role another boundary and rewrote dave's policy.
    strict = world.iam.create_policy(
        PolicyName="strict-boundary", PolicyDocument=json.dumps(document("s3:Get*"))
    )["Policy"]["Arn"]
    world.iam.put_role_permissions_boundary(RoleName="deployer", PermissionsBoundary=strict)
    world.iam.put_user_policy(
        UserName="dave", PolicyName="s3-rw", PolicyDocument=json.dumps(document("s3:*"))
    )
    world.emulator.requests.clear()

    with run_tasks():
        close(campaign, by=manager)

    boundary = remediation(campaign, "deployer", Right.Kind.PERMISSIONS_BOUNDARY)
    assert boundary.state == State.MANUAL
    assert boundary.note == f"The permissions boundary is now {strict}, not the one reviewed."
    inline = remediation(campaign, "dave", Right.Kind.INLINE_POLICY)
    assert inline.state == State.MANUAL
    assert inline.note.startswith("The inline policy changed since it was reviewed")
    for found in (boundary, inline):
        assert (found.before, found.calls, found.claimed_by) == (None, [], "")
        assert events(found) == ["remediation.manual"]
    assert world.writes() == {}
    assert world.boundary_of("role", "deployer") == strict
    assert world.inline("user", "dave") == {"s3-rw": document("s3:*")}


@pytest.mark.parametrize(
    ("path", "note"),
    [
        ("/aws-reserved/sso.amazonaws.com/", "IAM Identity Center owns this role"),
        ("/aws-service-role/ecs.amazonaws.com/", "This is a service-linked role"),
    ],
)
def test_a_role_aws_manages_for_a_service_is_left_to_a_person_with_the_reason(
    world, reviewer, manager, run_tasks, path, note
):
    world.iam.create_role(
        RoleName="AWSReservedRole", Path=path, AssumeRolePolicyDocument=trust(OWN_ACCOUNT_ID)
    )
    world.iam.attach_role_policy(RoleName="AWSReservedRole", PolicyArn=world.s3_read)
    account = own_account(reviewer)
    collect(account)
    world.emulator.requests.clear()
    campaign = campaign_over(account, manager)
    choose(campaign, reviewer, "revoke", "AWSReservedRole", Right.Kind.MANAGED_POLICY)

    with run_tasks():
        close(campaign, by=manager)

    found = remediation(campaign, "AWSReservedRole", Right.Kind.MANAGED_POLICY)
    assert found.state == State.MANUAL
    assert found.note.startswith(note)
    assert world.writes() == {}
    assert world.attached("role", "AWSReservedRole") == {world.s3_read}


def test_two_access_keys_created_in_the_same_second_are_left_to_a_person(
    world, reviewer, manager, run_tasks
):
    # The credential report tells keys apart by the second they were created, not by id.
    second = world.iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    keys = iam_backends[OWN_ACCOUNT_ID]["aws"].users["alice"].access_keys
    keys[1].create_date = keys[0].create_date
    account = own_account(reviewer)
    collect(account)
    campaign = campaign_over(account, manager)
    for item in campaign.items.filter(principal_name="alice", right_kind=Right.Kind.ACCESS_KEY):
        decide(item, reviewer, Choice("revoke", REASON))

    with run_tasks():
        close(campaign, by=manager)

    found = campaign.remediations.all()
    assert [r.item.right_key.endswith("#2") for r in found] == [False, True]
    for each in found:
        assert each.state == State.MANUAL
        assert each.note.startswith("The user has two access keys created in the same second")
    assert world.keys_of("alice") == {world.alice_key: "Active", second: "Active"}


# Running again, crashes and leases ---------------------------------------------------------------


def test_running_the_task_again_after_success_makes_no_call_and_changes_nothing(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    with run_tasks():
        close(campaign, by=manager)
    found = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    assert found.state == State.VERIFIED
    saved = Remediation.objects.filter(pk=found.pk).values().get()
    world.emulator.requests.clear()

    assert tasks.carry_out_remediation.apply(args=[found.pk]).get() == "skipped"

    assert world.emulator.requests == {}
    assert Remediation.objects.filter(pk=found.pk).values().get() == saved


def test_a_remediation_held_by_a_silent_worker_waits_for_its_lease(
    world, sandbox, reviewer, manager, settings
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    choose(campaign, reviewer, "revoke", "deployer", Right.Kind.MANAGED_POLICY)
    close(campaign, by=manager)  # committed, but its tasks were never delivered
    mine = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    theirs = remediation(campaign, "deployer", Right.Kind.MANAGED_POLICY)
    # Both were claimed by workers that died before making a call.
    for found, worker in ((mine, "delivery-1"), (theirs, "delivery-2")):
        Remediation.objects.filter(pk=found.pk).update(
            state=State.RUNNING, claimed_by=worker, claimed_at=timezone.now(), attempts=1
        )

    # The same delivery, redelivered, takes its own claim again.
    assert tasks.carry_out_remediation.apply(args=[mine.pk], task_id="delivery-1").get() == (
        State.VERIFIED
    )
    # Another delivery of the other one waits while the lease runs.
    assert tasks.carry_out_remediation.apply(args=[theirs.pk], task_id="delivery-3").get() == (
        "skipped"
    )
    theirs.refresh_from_db()
    assert (theirs.state, theirs.claimed_by) == (State.RUNNING, "delivery-2")
    assert world.attached("role", "deployer") == {world.s3_read}

    Remediation.objects.filter(pk=theirs.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS + 1)
    )
    assert tasks.carry_out_remediation.apply(args=[theirs.pk], task_id="delivery-3").get() == (
        State.VERIFIED
    )
    theirs.refresh_from_db()
    assert theirs.attempts == 2
    assert world.attached("role", "deployer") == set()
    assert world.writes() == {"DetachUserPolicy": 1, "DetachRolePolicy": 1}


def test_a_crash_between_the_call_and_its_record_is_finished_without_calling_again(
    world, sandbox, reviewer, manager, monkeypatch
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    close(campaign, by=manager)
    found = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    answered = remediate.request_id

    def worker_killed(answer):
        monkeypatch.setattr(remediate, "request_id", answered)
        raise SystemExit("worker lost")  # as the process dies: after AWS answered

    monkeypatch.setattr(remediate, "request_id", worker_killed)
    with pytest.raises(SystemExit):
        tasks.carry_out_remediation.apply(args=[found.pk], task_id="delivery-1")
    found.refresh_from_db()
    assert found.state == State.RUNNING
    assert world.attached("user", "alice") == set()

    # Redelivered (acks_late): AWS already shows the change, so nothing is called again.
    assert tasks.carry_out_remediation.apply(args=[found.pk], task_id="delivery-1").get() == (
        State.VERIFIED
    )
    found.refresh_from_db()
    assert world.writes() == {"DetachUserPolicy": 1}
    assert found.before == {"attached": True}
    # The call that was sent is written down, without the answer the worker never recorded.
    [call] = found.calls
    assert (call["operation"], call["request_id"]) == ("DetachUserPolicy", None)


# Throttling and errors -------------------------------------------------------------------------


def test_throttling_is_retried_until_aws_answers(
    world, sandbox, reviewer, manager, run_tasks, settings, eager_retries
):
    settings.AWS_MAX_ATTEMPTS = 1  # botocore's own retries aside: the task retries
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    world.emulator.throttle("DetachUserPolicy", times=2)

    with run_tasks():
        close(campaign, by=manager)

    found = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    assert found.state == State.VERIFIED
    assert world.attached("user", "alice") == set()
    assert world.emulator.requests["DetachUserPolicy"] == 3  # two throttled, one answered
    assert made(found) == ["DetachUserPolicy"]
    assert [call.get("error") for call in found.calls] == ["Throttling", "Throttling", None]
    assert found.attempts == 1  # throttled tries are not workers dying


def test_throttling_that_never_ends_fails_and_tells_the_manager(
    world, sandbox, reviewer, manager, run_tasks, settings, mailoutbox, eager_retries
):
    settings.AWS_MAX_ATTEMPTS = 1
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    world.emulator.throttle("DetachUserPolicy", times=1000)

    with run_tasks():
        close(campaign, by=manager)

    found = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    assert found.state == State.FAILED
    assert found.error["code"] == "Throttling"
    assert found.error["message"] == "AWS kept throttling: Rate exceeded"
    runs = tasks.carry_out_remediation.max_retries + 1
    assert world.emulator.requests["DetachUserPolicy"] == runs
    assert world.attached("user", "alice") == {world.s3_read}
    [mail] = mailoutbox
    assert mail.to == [manager.email]
    assert "Throttling" in mail.body
    assert settings.SITE_URL.rstrip("/") + found.get_absolute_url() in mail.body


def test_aws_out_of_reach_is_tried_again_later_and_the_right_removed_once(
    world, sandbox, reviewer, manager, run_tasks, settings, monkeypatch, eager_retries
):
    settings.AWS_MAX_ATTEMPTS = 1
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    unreachable = {"left": 2}
    client = AwsSession.client

    def cut_off(request, **kwargs):
        if unreachable["left"]:
            unreachable["left"] -= 1
            raise EndpointConnectionError(endpoint_url=request.url)

    def client_with_a_bad_line(self, service):
        made = client(self, service)
        made.meta.events.register("before-send.iam.DetachUserPolicy", cut_off, "cut-off")
        return made

    monkeypatch.setattr(AwsSession, "client", client_with_a_bad_line)
    with run_tasks():
        close(campaign, by=manager)

    found = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    assert found.state == State.VERIFIED
    assert world.attached("user", "alice") == set()
    assert [call.get("error") for call in found.calls] == [
        "EndpointConnectionError",
        "EndpointConnectionError",
        None,
    ]
    assert world.writes() == {"DetachUserPolicy": 1}


def test_an_aws_error_fails_with_its_code_tells_the_manager_and_a_retry_succeeds(
    world, sandbox, reviewer, manager, run_tasks, mailoutbox
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "deployer", Right.Kind.INLINE_POLICY)
    message = "User: attest is not authorized to perform: iam:DeleteRolePolicy"

    def deny():
        raise Refusal("AccessDenied", message, status=403)

    world.emulator.before("DeleteRolePolicy", deny)
    with run_tasks():
        close(campaign, by=manager)

    found = remediation(campaign, "deployer", Right.Kind.INLINE_POLICY)
    assert found.state == State.FAILED
    assert (found.error["code"], found.error["message"]) == ("AccessDenied", message)
    assert found.error["operation"] == "DeleteRolePolicy"
    assert "deploy" in world.inline("role", "deployer")
    [mail] = mailoutbox
    assert mail.to == [manager.email]
    assert mail.subject == f"Attest: a remediation failed in {campaign}"
    assert f"AccessDenied: {message}" in mail.body
    assert "remediation.failed" in events(found)

    world.emulator.hooks.clear()  # the role may now delete policies
    with run_tasks():
        remediate.retry(found, manager)

    found.refresh_from_db()
    assert (found.state, found.error) == (State.VERIFIED, None)
    assert world.inline("role", "deployer") == {}
    assert made(found) == ["DeleteRolePolicy"]
    assert events(found)[-3:] == [
        "remediation.retried",
        "remediation.applied",
        "remediation.verified",
    ]
    assert len(mailoutbox) == 1

    # A rollback that fails is retried as a rollback, never as the revocation again.
    world.emulator.before("PutRolePolicy", deny)
    with run_tasks():
        remediate.request_rollback(found, manager, "The deploys broke.")
    found.refresh_from_db()
    assert (found.state, found.error["code"]) == (State.FAILED, "AccessDenied")
    assert len(mailoutbox) == 2
    world.emulator.hooks.clear()
    with run_tasks():
        remediate.retry(found, manager)
    found.refresh_from_db()
    assert (found.state, found.error) == (State.ROLLED_BACK, None)
    assert list(world.inline("role", "deployer")) == ["deploy"]
    assert made(found, "rollback_calls") == ["PutRolePolicy"]
    assert world.writes() == {"DeleteRolePolicy": 2, "PutRolePolicy": 2}


# When remediation starts ------------------------------------------------------------------------


def test_a_dry_run_makes_no_change_and_lists_the_calls_it_would_make(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager, remediation_dry_run=True)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.CONSOLE_PASSWORD)
    with run_tasks():
        close(campaign, by=manager)

    assert world.writes() == {}
    policy = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    login = remediation(campaign, "alice", Right.Kind.CONSOLE_PASSWORD)
    for found in (policy, login):
        assert (found.state, found.dry_run) == (State.SIMULATED, True)
        assert all(call["dry_run"] and "request_id" not in call for call in found.calls)
    assert [(c["operation"], c["params"]) for c in policy.calls] == [
        ("DetachUserPolicy", {"UserName": "alice", "PolicyArn": world.s3_read})
    ]
    assert [c["operation"] for c in login.calls] == ["DeleteLoginProfile"]
    assert world.attached("user", "alice") == {world.s3_read}
    assert world.login_profile("alice") is not None
    with pytest.raises(remediate.Refused, match="Nothing was changed"):
        remediate.request_rollback(policy, manager, "Undo.")

    with run_tasks():
        remediate.retry(policy, manager)

    policy.refresh_from_db()
    assert (policy.state, policy.dry_run) == (State.VERIFIED, False)
    assert made(policy) == ["DetachUserPolicy"]
    assert world.writes() == {"DetachUserPolicy": 1}
    assert world.attached("user", "alice") == set()


def test_after_approval_nothing_runs_until_the_manager_approves(
    world, sandbox, reviewer, manager, run_tasks, settings
):
    campaign = campaign_over(sandbox, manager, remediation_start="after_approval")
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    with run_tasks():
        close(campaign, by=manager)

    found = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    assert (found.state, found.approved_at) == (State.PLANNED, None)
    # Neither a delivery nor the sweeper starts it, however long it waits.
    assert tasks.carry_out_remediation.apply(args=[found.pk]).get() == "skipped"
    Remediation.objects.filter(pk=found.pk).update(planned_at=timezone.now() - timedelta(days=3))
    tasks.sweep_remediations.apply()
    assert world.writes() == {}

    with run_tasks():
        assert remediate.approve(campaign, manager) == 1

    found.refresh_from_db()
    assert (found.state, found.approved_by_name) == (State.VERIFIED, manager.username)
    assert world.attached("user", "alice") == set()
    with pytest.raises(remediate.Refused, match="No remediation"):
        remediate.approve(campaign, manager)


def test_after_decision_a_revocation_runs_at_once_and_only_an_unstarted_one_can_change(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager, remediation_start="after_decision")

    with run_tasks():
        choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    applied = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    assert applied.state == State.VERIFIED
    assert world.attached("user", "alice") == set()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.ACTIVE

    # Decided, planned, but its task has not started: changing the decision cancels it.
    choose(campaign, reviewer, "revoke", "deployer", Right.Kind.MANAGED_POLICY)
    planned = remediation(campaign, "deployer", Right.Kind.MANAGED_POLICY)
    assert planned.state == State.PLANNED
    choose(campaign, reviewer, "keep", "deployer", Right.Kind.MANAGED_POLICY)
    planned.refresh_from_db()
    assert planned.state == State.CANCELLED
    assert "remediation.cancelled" in events(planned)
    assert tasks.carry_out_remediation.apply(args=[planned.pk]).get() == "skipped"
    assert world.attached("role", "deployer") == {world.s3_read}

    # Carried out already: the decision stands until the manager rolls it back.
    with pytest.raises(Refused, match="already being carried out") as refused:
        choose(campaign, reviewer, "keep", "alice", Right.Kind.MANAGED_POLICY)
    assert refused.value.code == "remediating"
    assert the_item(campaign, "alice", Right.Kind.MANAGED_POLICY).decision == "revoke"
    applied.refresh_from_db()
    assert applied.state == State.VERIFIED
    assert world.writes() == {"DetachUserPolicy": 1}

    # Rolled back by the manager, the right is the reviewer's to decide again.
    with run_tasks():
        remediate.request_rollback(applied, manager, "The release needs it until Friday.")
    applied.refresh_from_db()
    assert applied.state == State.ROLLED_BACK
    choose(campaign, reviewer, "keep", "alice", Right.Kind.MANAGED_POLICY)
    assert the_item(campaign, "alice", Right.Kind.MANAGED_POLICY).decision == "keep"
    assert world.attached("user", "alice") == {world.s3_read}


# Import-only accounts ---------------------------------------------------------------------------


def test_an_import_only_account_gets_a_plan_and_the_next_import_verifies_it(
    reviewer, manager, django_capture_on_commit_callbacks
):
    at = timezone.now().replace(microsecond=0)
    account = import_account(organization(at))
    AwsAccount.objects.filter(pk=account.pk).update(owner=reviewer)
    campaign = campaign_over(account, manager)
    deploy = files.DEPLOY
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY, deploy)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.INLINE_POLICY, "read-s3")
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.ACCESS_KEY)
    choose(campaign, reviewer, "revoke", "bob", Right.Kind.CONSOLE_PASSWORD)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        close(campaign, by=manager)
    assert queued == []  # nothing to run: a person makes the changes

    found = list(campaign.remediations.select_related("item").order_by("pk"))
    assert {r.state for r in found} == {State.MANUAL}
    script = remediate.plan_script(account, found)
    created = (at - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    assert script.startswith("#!/bin/sh\n")
    assert "set -eu" in script
    for command in (
        f"aws iam detach-user-policy --user-name alice --policy-arn {deploy}",
        "aws iam delete-user-policy --user-name alice --policy-name read-s3",
        "aws iam update-access-key --user-name alice --access-key-id "
        '"$(aws iam list-access-keys --user-name alice --query '
        f"\"AccessKeyMetadata[?starts_with(CreateDate, '{created}')].AccessKeyId\" "
        '--output text)" --status Inactive',
        "aws iam delete-login-profile --user-name bob",
    ):
        assert f"\n{command}\n" in script, command
    for each in found:
        assert f"#   {each.uuid}" in script

    for each in found:
        remediate.confirm(each, manager, "CHG-1042")
        each.refresh_from_db()
        assert (each.state, each.ticket, each.confirmed_by_name) == (
            State.APPLIED,
            "CHG-1042",
            manager.username,
        )
    with pytest.raises(remediate.Refused, match="waiting for a manual change"):
        remediate.confirm(found[0], manager, "CHG-1042")

    # The next import shows alice's policies gone and her key inactive; bob's password is still
    # there (whoever confirmed it did not make the change).
    after = organization(at)
    alice = by_name(after["authorization-details.json"], "user", "alice")
    alice["AttachedManagedPolicies"] = []
    alice["UserPolicyList"] = []
    after["credential-report.csv"] = files.credential_report(
        files.report_user(
            "alice",
            password=True,
            password_last_used=at - timedelta(days=5),
            mfa=True,
            keys=[files.access_key(at - timedelta(days=30), active=False)],
        ),
        files.report_user(
            "bob",
            path="/people/",
            password=True,
            keys=[files.access_key(at - timedelta(days=500), active=False)],
        ),
    )
    with django_capture_on_commit_callbacks(execute=True):
        import_account(after)

    states = {
        (r.item.principal_name, r.item.right_kind): r.state
        for r in campaign.remediations.select_related("item")
    }
    assert states == {
        ("alice", Right.Kind.MANAGED_POLICY): State.VERIFIED,
        ("alice", Right.Kind.INLINE_POLICY): State.VERIFIED,
        ("alice", Right.Kind.ACCESS_KEY): State.VERIFIED,
        ("bob", Right.Kind.CONSOLE_PASSWORD): State.APPLIED,
    }


# Sign-off and the sweeper -----------------------------------------------------------------------


def test_sign_off_waits_until_every_revocation_is_verified_or_excepted(
    world, sandbox, reviewer, manager, run_tasks
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    choose(campaign, reviewer, "revoke", "deployer", Right.Kind.INLINE_POLICY)

    def deny():
        raise Refusal("AccessDenied", "not authorized", status=403)

    world.emulator.before("DeleteRolePolicy", deny)
    with run_tasks():
        close(campaign, by=manager)
    failed = remediation(campaign, "deployer", Right.Kind.INLINE_POLICY)
    assert failed.state == State.FAILED

    with pytest.raises(Refused, match="1 revocation is neither verified in AWS nor excepted"):
        sign_off(campaign, manager, PASSWORD, STATEMENT)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED

    with pytest.raises(remediate.Refused, match="needs a reason"):
        remediate.except_(failed, manager, " ")
    remediate.except_(failed, manager, "The role is deleted next week with its stack.")
    with pytest.raises(remediate.Refused, match="needs no exception"):
        remediate.except_(remediation(campaign, "alice", Right.Kind.MANAGED_POLICY), manager, "x")

    sign_off(campaign, manager, PASSWORD, STATEMENT)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SIGNED_OFF
    with pytest.raises(remediate.Refused, match="signed off"):
        remediate.retry(failed, manager)


def test_the_sweeper_queues_what_never_ran_and_gives_up_what_keeps_dying(
    world, sandbox, reviewer, manager, settings, mailoutbox, run_tasks
):
    campaign = campaign_over(sandbox, manager)
    choose(campaign, reviewer, "revoke", "alice", Right.Kind.MANAGED_POLICY)
    choose(campaign, reviewer, "revoke", "deployer", Right.Kind.MANAGED_POLICY)
    close(campaign, by=manager)  # committed, but the broker lost its tasks
    lost = remediation(campaign, "alice", Right.Kind.MANAGED_POLICY)
    dying = remediation(campaign, "deployer", Right.Kind.MANAGED_POLICY)
    long_ago = timezone.now() - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS + 1)
    Remediation.objects.filter(pk=dying.pk).update(
        state=State.RUNNING,
        claimed_by="delivery-9",
        claimed_at=long_ago,
        attempts=remediate.MAX_ATTEMPTS,
    )

    # Within the lease, a planned remediation may still be on its way.
    with run_tasks():
        tasks.sweep_remediations.apply()
    lost.refresh_from_db()
    assert lost.state == State.PLANNED
    assert world.writes() == {}

    Remediation.objects.filter(pk=lost.pk).update(planned_at=F("planned_at") - timedelta(hours=1))
    with run_tasks():
        tasks.sweep_remediations.apply()

    lost.refresh_from_db()
    dying.refresh_from_db()
    assert lost.state == State.VERIFIED
    assert world.attached("user", "alice") == set()
    assert dying.state == State.FAILED
    assert dying.error["code"] == "Abandoned"
    assert world.attached("role", "deployer") == {world.s3_read}
    assert world.writes() == {"DetachUserPolicy": 1}
    [mail] = mailoutbox
    assert "Abandoned" in mail.body


# Kept until a day ---------------------------------------------------------------------------


def test_a_right_kept_until_a_day_is_revoked_after_it_unless_a_later_campaign_keeps_it(
    world, sandbox, reviewer, manager, run_tasks
):
    until = timezone.localdate() + timedelta(days=30)
    first = campaign_over(sandbox, manager)
    for principal, kind in (("alice", Right.Kind.MANAGED_POLICY), ("deployer", "inline_policy")):
        item = the_item(first, principal, kind)
        decide(item, reviewer, Choice("keep", REASON, keep_until=until))
    with run_tasks():
        close(first, by=manager)
    sign_off(first, manager, PASSWORD, STATEMENT)
    # The next quarter keeps the role's inline policy again, with no end.
    later = campaign_over(sandbox, manager)
    choose(later, reviewer, "keep", "deployer", Right.Kind.INLINE_POLICY)

    assert remediate.expire_kept(today=until - timedelta(days=1)) == 0
    with run_tasks():
        assert remediate.expire_kept(today=until) == 1

    expired = remediation(first, "alice", Right.Kind.MANAGED_POLICY)
    assert (expired.action, expired.state) == ("revoke", State.VERIFIED)
    assert expired.note == f"Kept until {until.isoformat()}; no later campaign kept it again."
    assert world.attached("user", "alice") == set()
    assert set(world.inline("role", "deployer")) == {"deploy"}
    assert not Remediation.objects.filter(item__principal_name="deployer").exists()
    # Planned after the sign-off, it is not covered by it: the manager can still answer for it.
    assert not remediate.attested(expired)
    with run_tasks():
        assert remediate.expire_kept(today=until + timedelta(days=1)) == 0

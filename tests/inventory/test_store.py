"""The versioned store: each run's view of an account, kept row by row, and never half of one."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from inventory.archive import Recorder
from inventory.importers import ImportFile, ImportRefused, add_file, import_files
from inventory.models import (
    ActionUsage,
    AwsAccount,
    CollectionRun,
    ManagedPolicy,
    PolicyVersion,
    Principal,
    Right,
    RunArchive,
    ServiceUsage,
)
from inventory.parse import SnapshotBuilder
from inventory.store import RunNotRunning, fail_run, save_snapshot
from tests.inventory.aws_files import (
    ACCOUNT_ID,
    ALICE,
    APP,
    BOB,
    BOUNDARY,
    DEVELOPERS,
    KEY_CREATED,
    READ_ONLY,
    S3_USED,
    access_key,
    content,
    credential_report,
    document,
    managed_policy,
    organization,
    principal_arn,
    report_user,
    role,
)

AUTH = "authorization-details.json"
REPORT = "credential-report.csv"
ADVISOR = "access-advisor.json"
LATER = datetime(2026, 2, 27, 10, 0, 0, tzinfo=UTC)
NO_CHANGE = {"added": 0, "removed": 0, "changed": 0}


def imported(files: dict) -> CollectionRun:
    return import_files(
        ACCOUNT_ID,
        "payments-prod",
        [ImportFile(name, content(data)) for name, data in files.items()],
    )


def snapshot_of(files: dict):
    builder = SnapshotBuilder(ACCOUNT_ID)
    for name, data in files.items():
        add_file(builder, ImportFile(name, content(data)))
    return builder.build()


def running_run() -> CollectionRun:
    account = AwsAccount.objects.get(account_id=ACCOUNT_ID)
    return CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)


def users(files):
    return files[AUTH]["UserDetailList"]


def find(items, name_key, name):
    return next(item for item in items if item.get(name_key) == name)


def without_user(files, name):
    """The files after the user `name` was deleted in AWS."""
    user = find(users(files), "UserName", name)
    users(files).remove(user)
    lines = files[REPORT].splitlines(keepends=True)
    files[REPORT] = "".join(line for line in lines if f",{user['Arn']}," not in line)
    files[ADVISOR] = [answer for answer in files[ADVISOR] if answer["Arn"] != user["Arn"]]
    return files


def inventory_rows() -> dict:
    versioned = ("pk", "first_seen_run_id", "removed_run_id")
    return {
        model.__name__: list(model.objects.order_by("pk").values_list(*versioned))
        for model in (Principal, ManagedPolicy, PolicyVersion, Right, ServiceUsage, ActionUsage)
    } | {
        "current_runs": list(AwsAccount.objects.values_list("account_id", "current_run_id")),
        "principal_values": list(
            Principal.objects.order_by("pk").values_list("tags", "last_used_at", "last_used_region")
        ),
    }


def held_at(run: CollectionRun) -> set[tuple]:
    """Who held what when `run` completed, from first_seen_run and removed_run alone."""
    rights = Right.objects.filter(first_seen_run__pk__lte=run.pk).exclude(
        removed_run__pk__lte=run.pk
    )
    return {(r.principal.arn, r.kind, r.key) for r in rights.select_related("principal")}


def current_rights() -> set[tuple]:
    return {
        (r.principal.arn, r.kind, r.key)
        for r in Right.objects.current().select_related("principal")
    }


# Removed, never deleted -------------------------------------------------------------------------


def test_a_principal_that_disappeared_is_marked_removed_with_its_rights_and_usage(db):
    first = imported(organization())
    rows = {model: model.objects.count() for model in (Principal, Right, ServiceUsage)}
    second = imported(without_user(organization(), "alice"))

    alice = Principal.objects.get(arn=ALICE)
    assert (alice.first_seen_run, alice.removed_run) == (first, second)
    assert alice.is_removed
    assert not Principal.objects.current().filter(arn=ALICE).exists()
    assert alice.rights.count() == 6
    assert set(alice.rights.values_list("removed_run", flat=True)) == {second.pk}
    assert set(alice.service_usage.values_list("removed_run", flat=True)) == {second.pk}
    assert set(alice.action_usage.values_list("removed_run", flat=True)) == {second.pk}
    # Nothing was deleted, and what stayed was not touched.
    assert {model: model.objects.count() for model in rows} == rows
    bob = Principal.objects.get(arn=BOB)
    assert (bob.first_seen_run, bob.removed_run) == (first, None)
    assert set(bob.rights.values_list("first_seen_run", "removed_run")) == {(first.pk, None)}


def test_a_principal_that_comes_back_is_a_new_row_beside_the_removed_one(db):
    first = imported(organization())
    second = imported(without_user(organization(), "bob"))
    third = imported(organization())

    rows = Principal.objects.filter(arn=BOB).order_by("pk")
    assert [(r.first_seen_run, r.removed_run) for r in rows] == [(first, second), (third, None)]
    assert Principal.objects.current().get(arn=BOB).rights.count() == 2


def test_importing_the_same_files_again_changes_no_row(db):
    first = imported(organization())
    before = inventory_rows()
    second = imported(organization())

    after = inventory_rows()
    assert after.pop("current_runs") == [(ACCOUNT_ID, second.pk)]
    before.pop("current_runs")
    assert after == before
    assert all(change == NO_CHANGE for change in second.counts["changes"].values())
    assert set(Right.objects.values_list("first_seen_run", flat=True)) == {first.pk}


# New versions, and updates in place ------------------------------------------------------------


def test_a_role_recreated_with_a_new_unique_id_becomes_a_new_version(db):
    first = imported(organization())
    files = organization()
    files[AUTH]["RoleDetailList"][0]["RoleId"] = "AROANEWROLEEXAMPLE1"
    second = imported(files)

    old, new = Principal.objects.filter(arn=APP).order_by("pk")
    assert (old.aws_id, old.first_seen_run, old.removed_run) == (
        "AROAAPP-TASKEXAMPLE",
        first,
        second,
    )
    assert (new.aws_id, new.first_seen_run, new.removed_run) == (
        "AROANEWROLEEXAMPLE1",
        second,
        None,
    )
    # Each version keeps its own rights and usage: what the old role held stays with it.
    assert list(old.rights.values_list("key", "removed_run")) == [(READ_ONLY, second.pk)]
    assert list(new.rights.values_list("key", "removed_run")) == [(READ_ONLY, None)]
    assert list(old.service_usage.values_list("removed_run", flat=True)) == [second.pk]
    assert list(new.service_usage.values_list("removed_run", flat=True)) == [None]
    assert second.counts["changes"]["principals"] == {"added": 0, "removed": 0, "changed": 1}


def test_a_rewritten_inline_policy_is_a_new_right_version_and_the_old_document_stays(db):
    first = imported(organization())
    alice_before = Principal.objects.get(arn=ALICE)
    files = organization()
    rewritten = document("s3:*", "iam:PassRole")
    users(files)[0]["UserPolicyList"][0]["PolicyDocument"] = rewritten
    second = imported(files)

    old, new = Right.objects.filter(principal__arn=ALICE, key="read-s3").order_by("pk")
    assert old.document == document("s3:GetObject", "s3:ListBucket")
    assert (old.first_seen_run, old.removed_run) == (first, second)
    assert (new.document, new.first_seen_run, new.removed_run) == (rewritten, second, None)
    # The user is the same row: only the right has a new version.
    assert Principal.objects.get(arn=ALICE).pk == alice_before.pk
    assert second.counts["changes"]["rights"] == {"added": 0, "removed": 0, "changed": 1}


def test_a_changed_tag_or_last_use_updates_the_principal_in_place(db):
    first = imported(organization())
    files = organization()
    users(files)[0]["Tags"] = [{"Key": "team", "Value": "platform"}]
    files[AUTH]["RoleDetailList"][0]["RoleLastUsed"] = {
        "LastUsedDate": LATER,
        "Region": "us-west-2",
    }
    second = imported(files)

    alice = Principal.objects.get(arn=ALICE)
    app = Principal.objects.get(arn=APP)
    assert alice.tags == {"team": "platform"}
    assert (app.last_used_at, app.last_used_region) == (LATER, "us-west-2")
    assert (alice.first_seen_run, alice.removed_run) == (first, None)
    assert (app.first_seen_run, app.removed_run) == (first, None)
    assert second.counts["changes"]["principals"] == {"added": 0, "removed": 0, "changed": 2}
    assert second.counts["changes"]["rights"] == NO_CHANGE


def test_a_rotated_access_key_is_a_new_right_and_the_old_key_is_removed(db):
    imported(organization())
    files = organization()
    files[REPORT] = credential_report(
        report_user("alice", keys=[access_key(LATER, last_used=LATER)]),
        report_user("bob", path="/people/"),
    )
    second = imported(files)

    keys = Right.objects.filter(principal__arn=ALICE, kind="access_key").order_by("pk")
    assert [(k.key, k.removed_run) for k in keys] == [
        (KEY_CREATED.isoformat(), second),
        (LATER.isoformat(), None),
    ]


def test_a_deactivated_key_keeps_its_right_and_shows_its_new_status(db):
    imported(organization())
    files = organization()
    files[REPORT] = credential_report(
        report_user("alice", keys=[access_key(KEY_CREATED, active=False)]),
        report_user("bob", path="/people/"),
    )
    imported(files)

    (key,) = Right.objects.filter(principal__arn=ALICE, kind="access_key")
    assert (key.status, key.removed_run) == ("Inactive", None)


def test_a_recreated_group_takes_its_members_rights_to_the_new_version(db):
    imported(organization())
    files = organization()
    files[AUTH]["GroupDetailList"][0]["GroupId"] = "AGPANEWGROUPEXAMPLE"
    second = imported(files)

    old_group, new_group = Principal.objects.filter(arn=DEVELOPERS).order_by("pk")
    old, new = Right.objects.filter(principal__arn=ALICE, kind="group_membership").order_by("pk")
    assert (old.group, old.removed_run) == (old_group, second)
    assert (new.group, new.removed_run) == (new_group, None)


def test_a_new_default_policy_version_is_added_and_the_pruned_one_removed(db):
    imported(organization())
    files = organization()
    policy = files[AUTH]["Policies"][0]
    policy["DefaultVersionId"] = "v3"
    policy["PolicyVersionList"][0]["IsDefaultVersion"] = False
    policy["PolicyVersionList"][1] = {
        "Document": document("s3:*"),
        "VersionId": "v3",
        "IsDefaultVersion": True,
        "CreateDate": LATER,
    }
    second = imported(files)

    versions = PolicyVersion.objects.filter(policy__arn=READ_ONLY).order_by("version_id")
    assert [(v.version_id, v.is_default, v.removed_run) for v in versions] == [
        ("v1", False, second),
        ("v2", False, None),
        ("v3", True, None),
    ]
    assert ManagedPolicy.objects.current().get(arn=READ_ONLY).default_version_id == "v3"


def test_newer_usage_replaces_the_current_row_and_the_old_one_stays_as_history(db):
    first = imported(organization())
    files = organization()
    files[ADVISOR][0]["ServicesLastAccessed"][0].update(
        LastAuthenticated=LATER, LastAuthenticatedRegion="us-east-1"
    )
    files[ADVISOR][0]["ServicesLastAccessed"][0]["TrackedActionsLastAccessed"][0].update(
        LastAccessedTime=LATER
    )
    second = imported(files)

    s3 = ServiceUsage.objects.filter(principal__arn=ALICE, service_namespace="s3").order_by("pk")
    assert [(u.last_authenticated_at, u.first_seen_run, u.removed_run) for u in s3] == [
        (S3_USED, first, second),
        (LATER, second, None),
    ]
    assert ServiceUsage.objects.current().get(
        principal__arn=ALICE, service_namespace="s3"
    ).last_authenticated_region == ("us-east-1")
    get_object = ActionUsage.objects.filter(principal__arn=ALICE, action="GetObject")
    assert sorted((u.last_accessed_at, u.removed_run_id is None) for u in get_object) == [
        (S3_USED, False),
        (LATER, True),
    ]
    # Unchanged usage stays the row first seen.
    ec2 = ServiceUsage.objects.get(principal__arn=ALICE, service_namespace="ec2")
    assert (ec2.first_seen_run, ec2.removed_run) == (first, None)
    assert Principal.objects.get(arn=ALICE).last_used_at == LATER


# History ----------------------------------------------------------------------------------------


def test_who_held_what_at_each_run_is_answerable_from_the_rows(db):
    first = imported(organization())
    at_first = current_rights()

    files = organization()
    users(files)[0]["AttachedManagedPolicies"] = []
    users(files)[0]["UserPolicyList"].append(
        {"PolicyName": "break-glass", "PolicyDocument": document("*")}
    )
    files[AUTH]["RoleDetailList"].append(role("db-task", managed=[READ_ONLY]))
    second = imported(without_user(files, "bob"))
    at_second = current_rights()

    third = imported(organization())
    at_third = current_rights()

    assert held_at(first) == at_first
    assert held_at(second) == at_second
    assert held_at(third) == at_third
    assert (ALICE, "inline_policy", "break-glass") in held_at(second) - held_at(first)
    assert (BOB, "console_password", "password") in held_at(first) - held_at(second)
    assert (principal_arn("role", "db-task"), "managed_policy", READ_ONLY) not in held_at(third)
    assert held_at(third) == held_at(first)


# Counts of changes ------------------------------------------------------------------------------


def test_changes_report_what_was_added_removed_and_changed_per_table(db):
    first = imported(organization())
    assert first.counts["changes"]["principals"] == {"added": 4, "removed": 0, "changed": 0}
    assert first.counts["changes"]["rights"] == {"added": 11, "removed": 0, "changed": 0}
    assert first.counts["changes"]["policy_versions"] == {"added": 6, "removed": 0, "changed": 0}

    files = without_user(organization(), "bob")
    alice = users(files)[0]
    alice["Tags"] = [{"Key": "team", "Value": "platform"}]
    alice["UserPolicyList"][0]["PolicyDocument"] = document("s3:*")
    del alice["PermissionsBoundary"]
    files[AUTH]["Policies"] = [p for p in files[AUTH]["Policies"] if p["Arn"] != BOUNDARY]
    files[AUTH]["RoleDetailList"].append(role("db-task", managed=[READ_ONLY]))
    files[ADVISOR][1]["ServicesLastAccessed"][0]["LastAuthenticated"] = LATER
    second = imported(files)

    assert second.counts["changes"] == {
        # db-task; bob; alice's tags and app-task's last use, now its newer S3 use
        "principals": {"added": 1, "removed": 1, "changed": 2},
        # the boundary policy and its two versions
        "policies": {"added": 0, "removed": 1, "changed": 0},
        "policy_versions": {"added": 0, "removed": 2, "changed": 0},
        # db-task's policy; bob's password and key, alice's boundary; alice's rewritten policy
        "rights": {"added": 1, "removed": 3, "changed": 1},
        # app-task's S3 use
        "service_usage": {"added": 0, "removed": 0, "changed": 1},
        "action_usage": NO_CHANGE,
    }


def test_save_snapshot_returns_the_changes_it_records(db):
    imported(organization())
    files = without_user(organization(), "bob")
    run = running_run()

    changes = save_snapshot(run, snapshot_of(files))
    assert changes == run.counts["changes"]
    assert changes["principals"] == {"added": 0, "removed": 1, "changed": 0}
    assert run.status == CollectionRun.Status.COMPLETE
    assert AwsAccount.objects.get().current_run == run


# Runs that fail ---------------------------------------------------------------------------------


def test_a_failed_run_leaves_the_inventory_and_the_current_run_as_they_were(db):
    first = imported(organization())
    before = inventory_rows()
    run = running_run()
    recorder = Recorder()
    recorder.add({"operation": "GetAccountAuthorizationDetails", "error": "AccessDenied"})

    errors = [{"code": "AccessDenied", "message": "not authorized to iam:GetCredentialReport"}]
    assert fail_run(run, errors, recorder) is True

    assert (run.status, run.errors) == (CollectionRun.Status.FAILED, errors)
    assert run.finished_at is not None
    assert run.raw_sha256 == RunArchive.objects.get(run=run).sha256
    assert inventory_rows() == before
    assert AwsAccount.objects.get().current_run == first


def test_a_run_finished_elsewhere_is_not_failed_again(db):
    imported(organization())
    run = running_run()
    assert fail_run(run, [{"code": "Timeout", "message": "worker went silent"}]) is True
    assert fail_run(run, [{"code": "Other", "message": "second delivery"}]) is False
    run.refresh_from_db()
    assert run.errors == [{"code": "Timeout", "message": "worker went silent"}]


def test_saving_into_a_run_that_is_no_longer_running_raises_and_writes_nothing(db):
    first = imported(organization())
    run = running_run()
    fail_run(run, [{"code": "Stale", "message": "swept"}])
    before = inventory_rows()

    snapshot = snapshot_of(without_user(organization(), "alice"))
    recorder = Recorder()
    recorder.add({"operation": "GetAccountAuthorizationDetails"})
    with pytest.raises(RunNotRunning):
        save_snapshot(run, snapshot, recorder)

    assert inventory_rows() == before
    assert AwsAccount.objects.get().current_run == first
    run.refresh_from_db()
    assert run.status == CollectionRun.Status.FAILED
    assert not RunArchive.objects.filter(run=run).exists()


def test_the_database_refuses_two_running_runs_for_one_account(db):
    imported(organization())
    account = AwsAccount.objects.get()
    CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)

    with (
        pytest.raises(IntegrityError, match="inventory_collectionrun_one_running_per_account"),
        transaction.atomic(),
    ):
        CollectionRun.objects.create(account=account, source=CollectionRun.Source.IMPORT)

    other = AwsAccount.objects.create(account_id="444455556666", name="other")
    CollectionRun.objects.create(account=other, source=CollectionRun.Source.LIVE)
    assert CollectionRun.objects.filter(status="running").count() == 2


def test_an_import_is_refused_while_a_collection_runs_and_allowed_once_it_finished(db):
    imported(organization())
    run = running_run()
    before = inventory_rows()

    with pytest.raises(ImportRefused) as refused:
        imported(without_user(organization(), "bob"))
    assert str(refused.value) == (
        f"a collection of account {ACCOUNT_ID} is running; import when it has finished"
    )
    assert inventory_rows() == before

    fail_run(run, [{"code": "Stale", "message": "swept"}])
    third = imported(without_user(organization(), "bob"))
    assert Principal.objects.get(arn=BOB).removed_run == third


def test_accounts_are_kept_apart(db):
    imported(organization())
    other = AwsAccount.objects.create(account_id="444455556666", name="other")
    files = {
        AUTH: {
            "RoleDetailList": [role("app-task", path="/app/", account_id="444455556666")],
            "Policies": [managed_policy(READ_ONLY, document("s3:Get*"))],
        }
    }
    import_files("444455556666", "", [ImportFile(n, content(d)) for n, d in files.items()])
    imported(organization())

    assert Principal.objects.current().filter(account=other).count() == 1
    assert Principal.objects.current().filter(account__account_id=ACCOUNT_ID).count() == 4
    assert not Principal.objects.filter(removed_run__isnull=False).exists()


def test_a_late_failure_of_a_finished_run_leaves_its_archive_alone(db):
    run = imported(organization())
    archive = RunArchive.objects.get(run=run)
    late = Recorder()
    late.add({"operation": "GetCredentialReport", "error": "Throttling"})

    assert fail_run(run, [{"code": "Throttling", "message": "second delivery"}], late) is False

    run.refresh_from_db()
    assert (run.status, run.errors) == (CollectionRun.Status.COMPLETE, [])
    kept = RunArchive.objects.get(run=run)
    assert (bytes(kept.content), kept.sha256) == (bytes(archive.content), run.raw_sha256)


def test_a_large_account_keeps_documents_as_json_and_no_document_as_null(db):
    # Past 500 rows a table is written through COPY rather than INSERT.
    roles = [
        role(f"worker-{i}", managed=[READ_ONLY], inline={"queue": document(f"sqs:Send{i}")})
        for i in range(300)
    ]
    files = organization()
    files[AUTH]["RoleDetailList"] = roles
    files[ADVISOR] = files[ADVISOR][:1]
    imported(files)

    rights = Right.objects.filter(principal__name__startswith="worker-")
    assert rights.count() == 600
    assert rights.filter(document__Statement__0__Action__0="sqs:Send7").get().key == "queue"
    assert rights.filter(kind="managed_policy", document__isnull=True).count() == 300
    assert rights.filter(kind="inline_policy", document__isnull=True).count() == 0

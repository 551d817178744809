"""Launching a campaign: the population frozen into items, its scope, refusals, and the schedule."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit import trail
from inventory.models import AwsAccount, CollectionRun, PolicyVersion, Principal, Right
from reviews import launch as launching
from reviews import tasks
from reviews.launch import LaunchRefused, launch, launch_due, new_campaign, preview
from reviews.models import Campaign, ReviewItem
from tests import factories
from tests.inventory import aws_files as aws
from tests.reviews.builders import (
    ADMIN,
    BOUNDARY,
    DEPLOY,
    READ_ONLY,
    audit_mark,
    by_name,
    definition,
    events_since,
    import_account,
    item,
    launched,
    now,
    organization,
    shown_sha256,
)

PAYMENTS = "payments-prod (123456789012)"
MARKETING = "marketing-prod (444455556666)"


@pytest.fixture
def at():
    """The moment the organization's use is dated from."""
    return now()


@pytest.fixture
def payments(db, at):
    """The organization of builders.organization(), imported: 7 principals, 15 rights."""
    return import_account(organization(at))


def draft(owner, accounts=None, **options):
    return new_campaign(
        name="2026 Q4 access review",
        owner=owner,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=accounts,
        **options,
    )


def keys(campaign):
    return {(i.principal_name, i.right_kind, i.right_label) for i in campaign.items.all()}


def age(account, days):
    CollectionRun.objects.filter(pk=account.current_run_id).update(
        finished_at=timezone.now() - timedelta(days=days, minutes=1)
    )


# The population --------------------------------------------------------------------------------


def test_launch_makes_one_item_per_principal_and_right_of_every_kind(payments, manager, at):
    campaign = launched(manager, [payments])

    key_created = (at - timedelta(days=30)).date().isoformat()
    old_key_created = (at - timedelta(days=500)).date().isoformat()
    assert keys(campaign) == {
        ("alice", "managed_policy", "deploy"),
        ("alice", "inline_policy", "read-s3"),
        ("alice", "group_membership", "developers"),
        ("alice", "permissions_boundary", "developer-boundary"),
        ("alice", "console_password", ""),
        ("alice", "access_key", key_created),
        ("bob", "console_password", ""),
        ("bob", "access_key", old_key_created),
        ("developers", "managed_policy", "ReadOnlyAccess"),
        ("developers", "inline_policy", "logs"),
        ("app-task", "managed_policy", "ReadOnlyAccess"),
        ("app-task", "inline_policy", "send"),
        ("ops-admin", "managed_policy", "AdministratorAccess"),
        ("legacy-batch", "inline_policy", "batch"),
        ("new-service", "inline_policy", "table"),
    }
    assert campaign.state == Campaign.State.ACTIVE
    assert campaign.launched_at is not None
    assert campaign.item_count == campaign.items.count() == 15
    assert {i.account_id for i in campaign.items.all()} == {"123456789012"}
    assert {i.account_name for i in campaign.items.all()} == {"payments-prod"}


def test_a_group_membership_shows_the_groups_policies_as_what_it_grants(payments, manager):
    campaign = launched(manager, [payments])

    membership = item(campaign, "alice", "group_membership")
    assert membership.facts["right"]["group"] == "developers"
    documents = {ref["name"]: ref for ref in membership.facts["documents"]}
    assert set(documents) == {"ReadOnlyAccess", "logs"}
    assert documents["ReadOnlyAccess"]["arn"] == READ_ONLY
    shown = PolicyVersion.objects.get(pk=documents["ReadOnlyAccess"]["version"])
    assert shown.document == aws.document("s3:Get*", "ec2:Describe*")
    assert Right.objects.get(pk=documents["logs"]["inline_right"]).document == aws.document(
        "logs:Get*"
    )
    # What the group's policies allow, with alice's own use of it.
    assert [s["namespace"] for s in membership.facts["services"]] == ["ec2", "logs", "s3"]
    # s3:Get* allows GetObject (which alice used) but not ListBucket.
    s3 = membership.facts["services"][2]
    assert set(s3["actions"]) == {"GetObject"}


def test_each_item_holds_what_its_reviewer_is_shown_as_at_launch(payments, manager, at):
    campaign = launched(manager, [payments])
    run = payments.current_run

    read_s3 = item(campaign, "alice", "inline_policy")
    assert read_s3.principal_arn == aws.ALICE
    assert read_s3.principal_kind == "user"
    assert read_s3.facts["principal"] == {
        "arn": aws.ALICE,
        "path": "/",
        "created_at": aws.CREATED.isoformat(),
        "last_used_at": (at - timedelta(days=2)).isoformat(),
        "tags": {"team": "payments"},
    }
    assert read_s3.facts["services"] == [
        {
            "namespace": "s3",
            "name": "Amazon S3",
            "last_used": (at - timedelta(days=3)).isoformat(),
            "tracked": True,
            "actions": {"GetObject": (at - timedelta(days=3)).isoformat(), "ListBucket": None},
        }
    ]
    assert read_s3.last_used_at == at - timedelta(days=3)
    assert read_s3.facts["run"] == {
        "uuid": str(run.uuid),
        "finished_at": run.finished_at.isoformat(),
    }
    assert read_s3.run == run

    key = item(campaign, "alice", "access_key")
    assert key.facts["right"] == {
        "policy_arn": None,
        "aws_managed": None,
        "group": None,
        "status": "Active",
        "created_at": (at - timedelta(days=30)).isoformat(),
        "last_used_at": (at - timedelta(days=2)).isoformat(),
        "last_used_service": "ecr",
        "last_used_region": "us-east-1",
        "mfa_active": None,
    }
    assert key.last_used_at == at - timedelta(days=2)
    assert item(campaign, "alice", "console_password").facts["right"]["mfa_active"] is True

    admin = item(campaign, "ops-admin", "managed_policy")
    assert admin.policy_version.document == factories.ADMIN_DOCUMENT
    assert admin.policy_version.is_default
    assert admin.facts["right"]["policy_arn"] == ADMIN
    assert admin.facts["right"]["aws_managed"] is True
    boundary = item(campaign, "alice", "permissions_boundary")
    assert boundary.facts["documents"][0]["arn"] == BOUNDARY


def frozen(campaign) -> dict:
    """Everything an item shows, by item."""
    return {
        i.pk: (
            i.account_name,
            i.principal_arn,
            i.principal_name,
            i.right_kind,
            i.right_key,
            i.right_label,
            i.last_used_at,
            i.privileged,
            i.recommendation,
            i.facts,
            i.reviewer_id,
            i.policy_version.document if i.policy_version else None,
        )
        for i in campaign.items.select_related("policy_version")
    }


def test_each_item_keeps_the_digest_of_what_its_reviewer_is_shown(payments, manager):
    campaign = launched(manager, [payments])

    items = list(campaign.items.all())
    assert len(items) == 15
    # Worked out again from the frozen item, as an auditor would from the evidence.
    assert [item.shown_sha256 for item in items] == [shown_sha256(item) for item in items]
    assert len({item.shown_sha256 for item in items}) == len(items)


def test_the_items_stay_as_launched_when_the_account_is_collected_again(payments, manager, at):
    campaign = launched(manager, [payments])
    before = frozen(campaign)
    first_run = payments.current_run

    files = organization(at)
    details = files["authorization-details.json"]
    alice = by_name(details, "user", "alice")
    alice["Tags"] = [{"Key": "team", "Value": "platform"}]
    alice["UserPolicyList"][0]["PolicyDocument"] = aws.document("s3:*")
    deploy = next(p for p in details["Policies"] if p["Arn"] == DEPLOY)
    deploy["PolicyVersionList"][0]["Document"] = aws.document("ecs:*", "ecr:*", "iam:PassRole")
    details["RoleDetailList"] = [
        r for r in details["RoleDetailList"] if r["RoleName"] != "ops-admin"
    ]
    files["access-advisor.json"] = [
        a for a in files["access-advisor.json"] if "ops-admin" not in a["Arn"]
    ]
    import_account(files)

    # The inventory did change...
    payments.refresh_from_db()
    assert payments.current_run != first_run
    assert Principal.objects.current().get(arn=aws.ALICE).tags == {"team": "platform"}
    assert not Principal.objects.current().filter(name="ops-admin").exists()
    # ...and the campaign shows what it launched with.
    assert frozen(campaign) == before
    assert set(campaign.runs.all()) == {first_run}


def test_the_items_stay_as_launched_when_inventory_rows_are_edited(payments, manager):
    campaign = launched(manager, [payments])
    before = frozen(campaign)

    Principal.objects.filter(name="alice").update(tags={"owner": "someone@example.com"})
    Right.objects.filter(kind=Right.Kind.ACCESS_KEY).update(
        status="Inactive", last_used_at=timezone.now()
    )
    PolicyVersion.objects.filter(policy__arn=ADMIN).update(is_default=False)

    assert frozen(campaign) == before


def test_the_campaign_keeps_every_run_it_was_launched_on_even_one_with_nothing_in_scope(
    payments, other_account, manager
):
    # Only payments has principals tagged env=prod; marketing's run was read all the same.
    campaign = launched(
        manager,
        definition=definition(
            manager, accounts=[payments, other_account], tag_filters={"env": "prod"}
        ),
    )
    assert {i.account_id for i in campaign.items.all()} == {"123456789012"}
    assert set(campaign.runs.all()) == {payments.current_run, other_account.current_run}


# Scope -----------------------------------------------------------------------------------------


def test_a_campaign_covers_only_the_accounts_named(payments, other_account, manager):
    campaign = launched(manager, [other_account])
    assert {i.account_id for i in campaign.items.all()} == {"444455556666"}
    assert list(campaign.accounts.all()) == [other_account]


def test_without_accounts_named_a_campaign_covers_every_active_account(
    payments, other_account, manager
):
    AwsAccount.objects.filter(pk=other_account.pk).update(active=False)
    campaign = launched(manager)
    assert list(campaign.accounts.all()) == [payments]
    assert {i.account_id for i in campaign.items.all()} == {"123456789012"}


def test_a_definition_can_leave_out_kinds_of_principals(payments, manager):
    roles_only = definition(manager, accounts=[payments], include_users=False, include_groups=False)
    campaign = launched(manager, definition=roles_only)
    assert {i.principal_kind for i in campaign.items.all()} == {"role"}
    assert {i.principal_name for i in campaign.items.all()} == {
        "app-task",
        "ops-admin",
        "legacy-batch",
        "new-service",
    }


def test_a_privileged_only_campaign_has_only_the_privileged_rights(payments, manager):
    campaign = launched(
        manager, definition=definition(manager, accounts=[payments], privileged_only=True)
    )
    assert keys(campaign) == {
        ("alice", "managed_policy", "deploy"),
        ("ops-admin", "managed_policy", "AdministratorAccess"),
    }
    assert all(i.privileged and i.facts["privileges"] for i in campaign.items.all())


def test_tag_filters_keep_principals_carrying_every_tag_given(payments, manager):
    prod = launched(
        manager, definition=definition(manager, accounts=[payments], tag_filters={"env": "prod"})
    )
    assert {i.principal_name for i in prod.items.all()} == {"app-task", "ops-admin"}
    app = launched(
        manager,
        definition=definition(
            manager, accounts=[payments], tag_filters={"env": "prod", "service": "app"}
        ),
    )
    assert {i.principal_name for i in app.items.all()} == {"app-task"}


# Refusals --------------------------------------------------------------------------------------


def assert_nothing_launched(campaign):
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT
    assert campaign.launched_at is None
    assert not ReviewItem.objects.exists()
    assert not campaign.runs.exists()


def test_launch_is_refused_naming_an_account_whose_data_is_too_old(
    payments, other_account, manager
):
    age(payments, 8)
    campaign = draft(manager, [payments, other_account])
    mark = audit_mark()

    with pytest.raises(LaunchRefused) as refused:
        launch(campaign, by=manager)

    assert str(refused.value) == (
        f"account {PAYMENTS}: its last complete collection is 8 days old (the campaign allows 7)"
    )
    assert_nothing_launched(campaign)
    assert events_since(mark) == []


def test_launch_is_refused_naming_an_account_never_collected(other_account, manager):
    never = factories.AwsAccountFactory(account_id="777788889999", name="sandbox")
    failed = factories.AwsAccountFactory(account_id="121212121212", name="lab")
    factories.CollectionRunFactory(account=failed, status=CollectionRun.Status.FAILED)
    campaign = draft(manager, [never, failed, other_account])

    with pytest.raises(LaunchRefused) as refused:
        launch(campaign)

    assert str(refused.value) == (
        "account lab (121212121212) has no complete collection; "
        "account sandbox (777788889999) has no complete collection"
    )
    assert_nothing_launched(campaign)


def test_the_oldest_data_allowed_is_set_by_the_definition(payments, manager):
    age(payments, 8)
    campaign = launched(
        manager, definition=definition(manager, accounts=[payments], max_data_age_days=10)
    )
    assert campaign.item_count == 15

    age(payments, 11)
    with pytest.raises(LaunchRefused, match="11 days old \\(the campaign allows 10\\)"):
        launched(manager, definition=definition(manager, accounts=[payments], max_data_age_days=10))


def test_a_campaign_due_today_or_without_accounts_is_not_created(manager, db):
    with pytest.raises(LaunchRefused, match="no account in scope"):
        draft(manager)
    factories.AwsAccountFactory()
    with pytest.raises(LaunchRefused, match="is not in the future"):
        new_campaign(name="late", owner=manager, due_date=timezone.localdate())
    assert not Campaign.objects.exists()


def test_a_launched_campaign_cannot_be_launched_again(account, manager):
    campaign = launched(manager, [account])
    with pytest.raises(LaunchRefused, match="is active"):
        launch(campaign)
    assert campaign.items.count() == 3 * 2


def test_launch_is_recorded_with_what_it_froze(account, other_account, manager):
    mark = audit_mark()
    campaign = launched(manager, [account, other_account])

    events = events_since(mark)
    assert [e.action for e in events] == ["campaign.created", "campaign.launched"]
    assert {e.actor_name for e in events} == {"max.manager"}
    assert events[0].after["accounts"] == ["111122223333", "444455556666"]
    assert events[1].object_id == str(campaign.pk)
    assert events[1].after == {
        "items": 12,
        "by_account": {"marketing-prod (444455556666)": 6, "payments-prod (111122223333)": 6},
        "by_reviewer": {"": 6, "rita.reviewer": 6},
    }
    assert trail.verify()[2] is None


# Preview ---------------------------------------------------------------------------------------


def test_a_draft_previews_its_items_per_account_and_reviewer_without_freezing_them(
    payments, other_account, manager, reviewer
):
    AwsAccount.objects.filter(pk=payments.pk).update(owner=reviewer)
    campaign = draft(manager, [payments, other_account])

    shown = preview(campaign)

    assert shown.problems == []
    assert shown.items == 21
    assert shown.by_account == {MARKETING: 6, PAYMENTS: 15}
    assert shown.by_reviewer == {"": 6, "rita.reviewer": 15}
    assert not ReviewItem.objects.exists()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT

    launch(campaign)
    assert campaign.items.filter(account_id="123456789012", reviewer=reviewer).count() == 15
    assert campaign.items.filter(reviewer__isnull=True).count() == 6


def test_a_preview_of_a_draft_that_would_be_refused_says_why(payments, manager):
    age(payments, 30)
    shown = preview(draft(manager, [payments]))
    assert (shown.items, shown.by_account, shown.by_reviewer) == (0, {}, {})
    assert shown.problems == [
        f"account {PAYMENTS}: its last complete collection is 30 days old (the campaign allows 7)"
    ]


# Recommendations on an imported account -------------------------------------------------------


# principal, right, recommendation, reason, keep, caveats, privileges (lists space-separated)
RECOMMENDED = [
    ("alice", "managed_policy", "reduce", "partly_used", "ecr", "untracked", "wide_write"),
    ("alice", "inline_policy", "reduce", "partly_used", "s3:GetObject", "shared", ""),
    ("alice", "group_membership", "reduce", "partly_used", "logs s3", "shared untracked", ""),
    ("alice", "permissions_boundary", "keep", "boundary", "", "", ""),
    ("alice", "console_password", "keep", "credential_used", "", "", ""),
    ("alice", "access_key", "keep", "credential_used", "", "", ""),
    ("bob", "console_password", "revoke", "credential_unused", "", "no_mfa", ""),
    ("bob", "access_key", "revoke", "inactive_key", "", "old_key", ""),
    ("developers", "managed_policy", "none", "no_usage_data", "", "no_usage_data", ""),
    ("developers", "inline_policy", "none", "no_usage_data", "", "no_usage_data", ""),
    ("app-task", "managed_policy", "reduce", "partly_used", "s3", "untracked", ""),
    ("app-task", "inline_policy", "keep", "used", "", "", ""),
    ("ops-admin", "managed_policy", "reduce", "partly_used", "s3", "untracked",
     "admin iam_write pass_role"),
    ("legacy-batch", "inline_policy", "revoke", "unused", "", "", ""),
    ("new-service", "inline_policy", "none", "young", "", "young", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("principal", "kind", "recommendation", "reason", "keep", "caveats", "privileges"),
    RECOMMENDED,
    ids=[f"{row[0]}-{row[1]}" for row in RECOMMENDED],
)
def test_recommendations_follow_the_frozen_use_of_an_imported_account(
    payments, manager, principal, kind, recommendation, reason, keep, caveats, privileges
):
    campaign = launched(manager, [payments])
    found = item(campaign, principal, kind)
    assert found.recommendation == recommendation
    assert found.facts["reason"]["code"] == reason
    assert found.facts["keep"] == keep.split()
    assert [c["code"] for c in found.facts["caveats"]] == caveats.split()
    assert [p["code"] for p in found.facts["privileges"]] == privileges.split()
    assert found.privileged is bool(privileges)


def test_the_unused_rights_are_marked_so_and_say_when_they_were_last_used(payments, manager, at):
    campaign = launched(manager, [payments])
    unused = {(i.principal_name, i.right_kind) for i in campaign.items.all() if i.facts["unused"]}
    assert unused == {
        ("bob", "console_password"),
        ("bob", "access_key"),
        ("legacy-batch", "inline_policy"),
    }
    batch = item(campaign, "legacy-batch", "inline_policy")
    assert batch.facts["reason"]["last"] == (at - timedelta(days=200)).isoformat()
    assert batch.last_used_at == at - timedelta(days=200)


def test_the_reduce_recommendation_names_what_was_used_and_what_was_not(payments, manager):
    campaign = launched(manager, [payments])
    deploy = item(campaign, "alice", "managed_policy")
    assert deploy.facts["reason"] == {
        "code": "partly_used",
        "used": ["ecr"],
        "unused": ["ecs"],
        "window": 90,
    }


def test_the_unused_window_is_the_definitions(payments, manager):
    # With a 4-day window, alice's S3 use 3 days ago still counts, her logs use 5 days ago
    # and her ECR use 10 days ago do not.
    campaign = launched(manager, definition=definition(manager, accounts=[payments], unused_days=4))
    deploy = item(campaign, "alice", "managed_policy")
    assert (deploy.recommendation, deploy.facts["reason"]["window"]) == ("revoke", 4)
    membership = item(campaign, "alice", "group_membership")
    assert (membership.recommendation, membership.facts["keep"]) == ("reduce", ["s3"])


# Holders ---------------------------------------------------------------------------------------


def test_an_item_names_the_other_holders_of_its_policy_or_group(payments, manager):
    campaign = launched(manager, [payments])
    assert item(campaign, "app-task", "managed_policy").facts["holders"] == {
        "count": 1,
        "names": ["developers"],
    }
    assert item(campaign, "developers", "managed_policy").facts["holders"] == {
        "count": 1,
        "names": ["app-task"],
    }
    # alice is the only member of developers; her inline policy has no holders.
    assert item(campaign, "alice", "group_membership").facts["holders"] == {"count": 0, "names": []}
    assert item(campaign, "alice", "inline_policy").facts["holders"] == {"count": 0, "names": []}


def test_the_holders_shown_are_capped_but_counted(manager, db):
    crowded = factories.collected_account("222233334444", "shared", principals=23)
    campaign = launched(manager, [crowded])
    holders = item(campaign, "shared-role-0", "managed_policy").facts["holders"]
    assert holders["count"] == 22
    assert len(holders["names"]) == launching.HOLDERS_SHOWN
    assert "shared-role-0" not in holders["names"]
    assert holders["names"] == sorted(holders["names"])


# The schedule ----------------------------------------------------------------------------------


def test_a_due_definition_launches_once_a_period(account, manager):
    scheduled = definition(manager, name="Quarterly", accounts=[account], review_days=21)
    today = timezone.localdate()

    first = launch_due(scheduled, today)
    again = launch_due(scheduled, today)

    assert first is not None
    assert again is None
    assert Campaign.objects.filter(definition=scheduled).count() == 1
    quarter = (today.month - 1) // 3 + 1
    assert first.name == f"Quarterly {today.year} Q{quarter}"
    assert first.period_start == date(today.year, 3 * quarter - 2, 1)
    assert first.due_date == today + timedelta(days=21)
    assert first.state == Campaign.State.ACTIVE
    assert first.item_count == 6
    assert first.rules["unused_days"] == scheduled.unused_days


def test_a_due_definition_refused_leaves_no_campaign_to_retry_from(other_account, manager):
    stale = definition(manager, accounts=[other_account])
    age(other_account, 8)
    with pytest.raises(LaunchRefused, match="marketing-prod \\(444455556666\\)"):
        launch_due(stale)
    assert not Campaign.objects.exists()
    age(other_account, 0)
    assert launch_due(stale).item_count == 6


def test_the_next_period_launches_again(account, manager):
    scheduled = definition(manager, name="Monthly", cadence="monthly", accounts=[account])
    today = timezone.localdate()
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)

    launch_due(scheduled, today)
    later = launch_due(scheduled, next_month + timedelta(days=3))
    assert later.name == f"Monthly {next_month:%Y-%m}"
    assert later.period_start == next_month
    assert launch_due(scheduled, next_month + timedelta(days=20)) is None
    assert Campaign.objects.filter(definition=scheduled).count() == 2


@pytest.mark.parametrize(
    ("cadence", "day", "label", "start"),
    [
        ("quarterly", date(2031, 8, 15), "2031 Q3", date(2031, 7, 1)),
        ("semiannual", date(2031, 8, 15), "2031 H2", date(2031, 7, 1)),
        ("semiannual", date(2031, 2, 1), "2031 H1", date(2031, 1, 1)),
        ("annual", date(2031, 8, 15), "2031", date(2031, 1, 1)),
        ("monthly", date(2031, 8, 15), "2031-08", date(2031, 8, 1)),
    ],
)
def test_each_cadence_names_its_period(account, manager, cadence, day, label, start):
    scheduled = definition(manager, name="Review", cadence=cadence, accounts=[account])
    campaign = launch_due(scheduled, day)
    assert (campaign.name, campaign.period_start) == (f"Review {label}", start)


@pytest.mark.django_db(transaction=True)
def test_two_processes_launching_at_once_make_one_campaign(account, manager):
    scheduled = definition(manager, accounts=[account])
    barrier = threading.Barrier(2)
    results, errors = [], []

    def beat():
        try:
            barrier.wait(timeout=10)
            results.append(launch_due(scheduled))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result is None for result in results) == [False, True]
    assert Campaign.objects.filter(definition=scheduled).count() == 1
    assert ReviewItem.objects.count() == 6
    assert trail.verify()[2] is None


def test_beat_launches_each_active_definition_once_and_records_a_refusal(
    account, other_account, manager
):
    due = definition(manager, name="Payments", accounts=[account])
    definition(manager, name="Paused", accounts=[account], active=False)
    stale = definition(manager, name="Marketing", accounts=[other_account])
    age(other_account, 9)

    tasks.launch_due_campaigns.delay()
    tasks.launch_due_campaigns.delay()

    assert list(Campaign.objects.values_list("definition__name", flat=True)) == ["Payments"]
    assert Campaign.objects.get().definition == due
    refusals = [e for e in events_since(0) if e.action == "campaign.launch_refused"]
    assert len(refusals) == 2  # tried again at each beat
    assert refusals[0].object_id == str(stale.pk)
    assert "marketing-prod (444455556666)" in refusals[0].after["reason"]

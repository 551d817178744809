"""What Attest recommends for a right from its frozen use and why; what makes a right privileged."""

from datetime import UTC, datetime, timedelta

import pytest

from inventory import policies
from inventory.models import Right
from reviews.recommend import KEEP, NONE, REDUCE, REVOKE, Service, describe, judge

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
WINDOW = 90
OLD = NOW - timedelta(days=800)  # a principal old enough for any window


def ago(days, **more):
    return NOW - timedelta(days=days, **more)


def service(namespace, last_used=None, *, tracked=False, actions=None):
    return Service(
        namespace=namespace,
        name=namespace.upper(),
        last_used=last_used,
        tracked=tracked,
        actions=actions or {},
    )


def policy(*services, created=OLD, has_usage_data=True, shared=(), window=WINDOW):
    return judge(
        kind=Right.Kind.MANAGED_POLICY,
        services=list(services),
        now=NOW,
        window_days=window,
        principal_created=created,
        has_usage_data=has_usage_data,
        shared_services=set(shared),
    )


def credential(kind=Right.Kind.ACCESS_KEY, created=OLD, **details):
    details = {"status": "Active", "created_at": ago(100), "mfa_active": None, **details}
    return judge(
        kind=kind,
        services=[],
        now=NOW,
        window_days=WINDOW,
        principal_created=created,
        has_usage_data=True,
        credential=details,
    )


def codes(reasons):
    return [reason["code"] for reason in reasons]


# Policies and group memberships: by the use of the services they allow -------------------------


def test_a_right_whose_every_service_was_used_in_the_window_is_kept():
    judgement = policy(service("s3", ago(3)), service("sqs", ago(89)))
    assert judgement.recommendation == KEEP
    assert judgement.reason == {"code": "used", "window": WINDOW}
    assert (judgement.caveats, judgement.keep, judgement.unused) == ([], [], False)


def test_use_on_the_first_day_of_the_window_counts_and_a_second_earlier_does_not():
    assert policy(service("s3", ago(WINDOW))).recommendation == KEEP
    assert policy(service("s3", ago(WINDOW, seconds=1))).recommendation == REVOKE


def test_a_right_none_of_whose_services_was_used_in_the_window_is_revoked_with_its_last_use():
    judgement = policy(service("s3", ago(120)), service("ec2", ago(300)), service("iam"))
    assert judgement.recommendation == REVOKE
    assert judgement.reason == {
        "code": "unused",
        "services": 3,
        "window": WINDOW,
        "last": ago(120).isoformat(),
    }
    assert judgement.unused is True
    assert judgement.keep == []


def test_a_right_never_used_is_revoked_and_its_last_use_is_none():
    judgement = policy(service("s3"))
    assert (judgement.recommendation, judgement.reason["last"]) == (REVOKE, None)
    assert describe(judgement.reason) == (
        "The one service it allows was not used in the last 90 days (last use: never)."
    )


def test_the_window_is_the_campaigns_own():
    used_45_days_ago = service("s3", ago(45))
    assert policy(used_45_days_ago, window=90).recommendation == KEEP
    judgement = policy(used_45_days_ago, window=30)
    assert judgement.recommendation == REVOKE
    assert judgement.reason["window"] == 30


def test_a_right_used_for_some_of_its_services_is_reduced_to_those():
    judgement = policy(service("s3", ago(3)), service("ec2", ago(200)), service("sqs", ago(10)))
    assert judgement.recommendation == REDUCE
    assert judgement.keep == ["s3", "sqs"]
    assert judgement.reason == {
        "code": "partly_used",
        "used": ["s3", "sqs"],
        "unused": ["ec2"],
        "window": WINDOW,
    }
    assert judgement.unused is False
    # Neither service tracks actions: the reviewer is told only whole services can be kept.
    assert judgement.caveats == [{"code": "untracked", "services": ["s3", "sqs"]}]


def test_a_tracked_service_whose_actions_were_partly_used_is_reduced_to_those_actions():
    s3 = service(
        "s3",
        ago(3),
        tracked=True,
        actions={"GetObject": ago(3), "ListBucket": ago(60), "PutObject": None},
    )
    judgement = policy(s3)
    assert judgement.recommendation == REDUCE
    assert judgement.keep == ["s3:GetObject", "s3:ListBucket"]
    assert judgement.reason["used"] == ["s3"]
    assert judgement.reason["unused"] == []
    assert judgement.caveats == []


def test_an_action_last_used_before_the_window_is_not_kept():
    s3 = service("s3", ago(3), tracked=True, actions={"GetObject": ago(3), "PutObject": ago(91)})
    assert policy(s3).keep == ["s3:GetObject"]


def test_a_tracked_service_whose_every_action_was_used_is_kept_whole():
    s3 = service("s3", ago(3), tracked=True, actions={"GetObject": ago(3), "PutObject": ago(5)})
    judgement = policy(s3, service("ec2", ago(400)))
    assert judgement.recommendation == REDUCE
    assert judgement.keep == ["s3"]
    assert judgement.caveats == []


def test_services_another_right_of_the_principal_also_allows_are_said_to_be_shared():
    judgement = policy(service("s3", ago(3)), service("sqs", ago(3)), shared={"sqs", "kms"})
    assert judgement.recommendation == KEEP
    assert judgement.caveats == [{"code": "shared", "services": ["sqs"]}]


def test_without_usage_data_there_is_no_recommendation_and_the_reviewer_is_told():
    judgement = policy(service("s3"), has_usage_data=False)
    assert judgement.recommendation == NONE
    assert judgement.reason == {"code": "no_usage_data"}
    assert codes(judgement.caveats) == ["no_usage_data"]
    assert judgement.unused is False


def test_a_right_allowing_no_service_access_advisor_reports_is_kept():
    judgement = policy()
    assert (judgement.recommendation, judgement.reason) == (
        KEEP,
        {"code": "grants_nothing_reported"},
    )


def test_a_permissions_boundary_is_kept_because_it_grants_nothing():
    judgement = judge(
        kind=Right.Kind.PERMISSIONS_BOUNDARY,
        services=[service("s3")],
        now=NOW,
        window_days=WINDOW,
        principal_created=OLD,
        has_usage_data=False,
    )
    assert (judgement.recommendation, judgement.reason) == (KEEP, {"code": "boundary"})


# Principals younger than the window ------------------------------------------------------------


def test_a_used_right_of_a_principal_younger_than_the_window_is_kept_with_a_caveat():
    judgement = policy(service("s3", ago(1)), created=ago(20))
    assert judgement.recommendation == KEEP
    assert judgement.caveats == [{"code": "young", "days": 20, "window": WINDOW}]


@pytest.mark.parametrize(
    "services",
    [
        pytest.param([service("s3")], id="never-used"),
        pytest.param([service("s3", ago(1)), service("ec2")], id="partly-used"),
    ],
)
def test_an_unused_right_of_a_principal_younger_than_the_window_gets_no_recommendation(services):
    # Twenty days without use say nothing about ninety; "revoke" would be acted on at close.
    judgement = policy(*services, created=ago(20))
    assert judgement.recommendation == NONE
    assert judgement.reason == {"code": "young", "days": 20, "window": WINDOW}
    assert judgement.keep == []
    assert judgement.unused is False


def test_an_unused_key_of_a_principal_younger_than_the_window_gets_no_recommendation():
    judgement = credential(created=ago(5), created_at=ago(5), last_used_at=None)
    assert (judgement.recommendation, judgement.reason["code"]) == (NONE, "young")


# Access keys and console passwords: by their own last use ---------------------------------------


def test_a_key_used_in_the_window_is_kept():
    judgement = credential(last_used_at=ago(2))
    assert (judgement.recommendation, judgement.reason) == (
        KEEP,
        {"code": "credential_used", "window": WINDOW},
    )


def test_a_key_not_used_in_the_window_is_revoked_with_its_last_use():
    judgement = credential(last_used_at=ago(95))
    assert judgement.recommendation == REVOKE
    assert judgement.reason == {
        "code": "credential_unused",
        "window": WINDOW,
        "last": ago(95).isoformat(),
    }
    assert judgement.unused is True


def test_an_inactive_key_is_revoked_whatever_its_use():
    judgement = credential(status="Inactive", last_used_at=ago(1))
    assert (judgement.recommendation, judgement.reason) == (REVOKE, {"code": "inactive_key"})
    assert judgement.unused is True


def test_a_key_older_than_a_year_is_called_out_whatever_its_use():
    assert credential(created_at=ago(365), last_used_at=ago(1)).caveats == []
    old = credential(created_at=ago(366), last_used_at=ago(1))
    assert old.recommendation == KEEP
    assert old.caveats == [{"code": "old_key", "days": 366}]


def test_a_console_password_without_mfa_is_called_out():
    without = credential(Right.Kind.CONSOLE_PASSWORD, mfa_active=False, last_used_at=ago(1))
    assert without.recommendation == KEEP
    assert without.caveats == [{"code": "no_mfa"}]
    with_mfa = credential(Right.Kind.CONSOLE_PASSWORD, mfa_active=True, last_used_at=ago(1))
    assert with_mfa.caveats == []


def test_a_console_password_never_used_is_revoked():
    judgement = credential(Right.Kind.CONSOLE_PASSWORD, mfa_active=True, last_used_at=None)
    assert (judgement.recommendation, judgement.reason["last"]) == (REVOKE, None)


# Reasons and caveats in words -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (
            {"code": "unused", "services": 1, "window": 90, "last": "2026-05-01T10:00:00+00:00"},
            "The one service it allows was not used in the last 90 days (last use: 2026-05-01).",
        ),
        (
            {"code": "unused", "services": 4, "window": 30, "last": None},
            "None of the 4 services it allows was used in the last 30 days (last use: never).",
        ),
        (
            {"code": "used", "window": 90},
            "Every service it allows was used in the last 90 days.",
        ),
        (
            {"code": "partly_used", "used": ["s3", "sqs"], "unused": ["ec2"], "window": 90},
            "Only s3, sqs of what it allows was used in the last 90 days; ec2 was not.",
        ),
        (
            {"code": "partly_used", "used": ["s3"], "unused": [], "window": 60},
            "Only s3 of what it allows was used in the last 60 days; some actions was not.",
        ),
        ({"code": "credential_used", "window": 90}, "Used in the last 90 days."),
        (
            {"code": "credential_unused", "window": 90, "last": "2026-01-02T03:04:05+00:00"},
            "Not used in the last 90 days (last use: 2026-01-02).",
        ),
        (
            {"code": "credential_unused", "window": 90, "last": None},
            "Not used in the last 90 days (last use: never).",
        ),
        (
            {"code": "inactive_key"},
            "The key is inactive: nobody can use it, and it can be deleted.",
        ),
        (
            {"code": "boundary"},
            "A permissions boundary limits what the policies allow; it grants nothing.",
        ),
        (
            {"code": "grants_nothing_reported"},
            "Access Advisor reports no service this right allows.",
        ),
        (
            {"code": "no_usage_data"},
            "Attest has no Access Advisor data for this principal: usage is unknown.",
        ),
        (
            {"code": "young", "days": 1, "window": 90},
            "The principal was created 1 day ago, less than the 90 days the recommendation "
            "looks at.",
        ),
        (
            {"code": "young", "days": 12, "window": 90},
            "The principal was created 12 days ago, less than the 90 days the recommendation "
            "looks at.",
        ),
        (
            {"code": "shared", "services": ["s3", "sqs"]},
            "Another right of this principal also allows s3, sqs: AWS reports use per "
            "principal, so that use may come through the other right.",
        ),
        (
            {"code": "untracked", "services": ["logs"]},
            "AWS does not track the actions of logs: only whole services can be kept.",
        ),
        (
            {"code": "old_key", "days": 400},
            "The key was created 400 days ago and never rotated since.",
        ),
        ({"code": "no_mfa"}, "Console sign-in without multi-factor authentication (MFA)."),
        ({"code": "something_new"}, "something_new"),
    ],
    ids=lambda value: value["code"] if isinstance(value, dict) else None,
)
def test_each_reason_and_caveat_reads_as_a_sentence_with_its_details(reason, words):
    assert describe(reason) == words


def test_every_reason_and_caveat_judge_gives_has_words_of_its_own():
    judgements = [
        policy(service("s3", ago(1))),
        policy(service("s3")),
        policy(service("s3", ago(1)), service("ec2")),
        policy(service("s3", ago(1)), shared={"s3"}),
        policy(service("s3"), has_usage_data=False),
        policy(),
        policy(service("s3"), created=ago(3)),
        credential(last_used_at=ago(1), created_at=ago(400)),
        credential(last_used_at=None),
        credential(status="Inactive"),
        credential(Right.Kind.CONSOLE_PASSWORD, mfa_active=False),
        judge(
            kind=Right.Kind.PERMISSIONS_BOUNDARY,
            services=[],
            now=NOW,
            window_days=WINDOW,
            principal_created=OLD,
            has_usage_data=True,
        ),
    ]
    given = [j.reason for j in judgements] + [c for j in judgements for c in j.caveats]
    assert {reason["code"] for reason in given} >= {
        "used", "unused", "partly_used", "shared", "untracked", "no_usage_data",
        "grants_nothing_reported", "young", "credential_used", "credential_unused",
        "inactive_key", "old_key", "no_mfa", "boundary",
    }  # fmt: skip
    for reason in given:
        assert describe(reason) != reason["code"]


# What makes a right privileged ----------------------------------------------------------------


def statement(actions, resource="*", *, key="Action", effect="Allow"):
    return {"Effect": effect, key: actions, "Resource": resource}


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def privileges(*statements):
    return policies.privileges([doc(*statements)])


@pytest.mark.parametrize("every_action", ["*", "*:*", ["*"]])
def test_every_action_on_every_resource_is_administrator_access(every_action):
    found = privileges(statement(every_action))
    assert codes(found) == ["admin", "iam_write", "pass_role"]
    assert "wide_write" not in codes(found)


def test_every_action_on_named_resources_is_not_administrator_access():
    found = privileges(statement("*", "arn:aws:s3:::reports/*"))
    assert "admin" not in codes(found)
    assert "wide_write" not in codes(found)


@pytest.mark.parametrize("resource", ["*", None], ids=["resource-star", "not-resource"])
def test_not_action_on_every_resource_is_close_to_administrator_access(resource):
    if resource is None:
        broad = {"Effect": "Allow", "NotAction": ["iam:*"], "NotResource": "arn:aws:s3:::x"}
    else:
        broad = statement(["iam:*", "organizations:*"], resource, key="NotAction")
    assert codes(policies.privileges([doc(broad)])) == ["almost_admin"]


def test_not_action_on_named_resources_is_not_close_to_administrator_access():
    found = privileges(statement(["iam:*"], "arn:aws:s3:::reports/*", key="NotAction"))
    assert "almost_admin" not in codes(found)


@pytest.mark.parametrize(
    ("actions", "named"),
    [
        (["iam:CreateAccessKey"], ["iam:CreateAccessKey"]),
        (["iam:AttachGroupPolicy"], ["iam:AttachGroupPolicy"]),
        (["iam:SetDefaultPolicyVersion"], ["iam:SetDefaultPolicyVersion"]),
        (["iam:Put*"], ["iam:PutRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy"]),
        (["iam:*"], ["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile"]),
    ],
)
def test_changing_iam_is_privileged_and_the_actions_are_named(actions, named):
    found = privileges(statement(actions, "arn:aws:iam::123456789012:user/*"))
    assert codes(found) == ["iam_write"]
    assert set(found[0]["actions"]) == set(named)


def test_passing_any_role_is_privileged_and_passing_one_named_role_is_not():
    assert privileges(statement("iam:PassRole")) == [{"code": "pass_role"}]
    assert privileges(statement("iam:PassRole", "arn:aws:iam::123456789012:role/app")) == []


@pytest.mark.parametrize(
    ("actions", "services"),
    [
        (["s3:*"], ["s3"]),
        (["ec2:Delete*"], ["ec2"]),
        (["ec2:D*"], ["ec2"]),  # Delete, Detach, Disable
        (["dynamodb:*Item"], ["dynamodb"]),
        (["sqs:*", "s3:Put*", "ec2:Terminate*"], ["ec2", "s3", "sqs"]),
        (["iam:Delete*"], ["iam"]),  # deletes users, roles and policies
    ],
)
def test_a_family_of_write_actions_on_every_resource_is_privileged(actions, services):
    found = privileges(statement(actions))
    assert found == [{"code": "wide_write", "services": services}]


@pytest.mark.parametrize(
    "harmless",
    [
        statement(["s3:Get*", "s3:List*", "ec2:Describe*", "iam:Get*", "iam:List*"]),
        statement(["logs:PutLogEvents", "sqs:SendMessage"]),  # single named writes
        statement(["s3:*"], "arn:aws:s3:::reports/*"),  # on named resources only
        statement(["iam:*"], effect="Deny"),
        statement(["*"], effect="Deny"),
        statement(["kms:Decrypt*", "sts:Assume*"]),
    ],
    ids=["reads", "named-writes", "named-resources", "deny-iam", "deny-all", "decrypt-assume"],
)
def test_reads_named_writes_named_resources_and_denials_are_not_privileged(harmless):
    assert privileges(harmless) == []


def test_privileges_are_read_across_every_document_a_right_brings():
    documents = [doc(statement("s3:GetObject")), doc(statement("iam:PassRole"))]
    assert codes(policies.privileges(documents)) == ["pass_role"]
    assert policies.privileges([]) == []


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ({"code": "admin"}, "Allows every action on every resource: full administrator access."),
        (
            {"code": "almost_admin"},
            "Allows every action except those it lists, on every resource: "
            "close to administrator access.",
        ),
        (
            {"code": "iam_write", "actions": ["iam:CreateUser", "iam:CreateAccessKey"]},
            "Can change IAM (for example iam:CreateUser, iam:CreateAccessKey): it can grant "
            "itself or others more access.",
        ),
        (
            {"code": "pass_role"},
            "Can pass any role to an AWS service (iam:PassRole on *): "
            "it can act with that role's permissions.",
        ),
        (
            {"code": "wide_write", "services": ["ec2", "s3"]},
            'Can change or delete any resource of ec2, s3 (write actions on "*").',
        ),
        (
            {"code": "wide_write", "services": ["a", "b", "c", "d", "e", "f", "g", "h"]},
            'Can change or delete any resource of a, b, c, d, e, f … (write actions on "*").',
        ),
        ({"code": "unknown"}, "unknown"),
    ],
    ids=lambda value: value["code"] if isinstance(value, dict) else None,
)
def test_each_privilege_reads_as_a_plain_sentence(reason, words):
    assert policies.describe(reason) == words

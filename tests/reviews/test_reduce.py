"""Narrowing a policy document to what a reviewer kept: what survives, and never more."""

import copy
import random
from fnmatch import fnmatchcase

import pytest

from reviews.reduce import ReductionError, allowed_entries, diff_lines, reduce_document


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions, key="Action", **more):
    return {"Effect": "Allow", key: actions, "Resource": "*", **more}


def deny(actions, **more):
    return {"Effect": "Deny", "Action": actions, "Resource": "*", **more}


ADMIN = doc(allow("*"))


def actions_of(document):
    return [s["Action"] for s in document["Statement"]]


def test_administrator_access_reduced_to_a_service_and_an_action():
    reduced = reduce_document(ADMIN, ["s3", "ec2:DescribeInstances"])

    assert reduced == doc(allow(["ec2:DescribeInstances", "s3:*"]))


def test_patterns_of_a_kept_service_stay_as_they_were_written():
    document = doc(allow(["s3:Get*", "s3:List*", "ec2:*"]))

    assert actions_of(reduce_document(document, ["s3"])) == [["s3:Get*", "s3:List*"]]


def test_a_service_wildcard_is_narrowed_to_the_kept_service():
    document = doc(allow(["s*:*"]), allow(["s*:Get*"]), allow(["*:Describe*", "*Object"]))

    assert actions_of(reduce_document(document, ["s3"])) == [
        ["s3:*"],
        ["s3:Get*"],
        ["s3:*Object", "s3:Describe*"],
    ]


def test_kept_action_under_a_wildcard_becomes_the_explicit_action():
    document = doc(allow(["s3:Get*", "lambda:Invoke?unction"]))

    reduced = reduce_document(document, ["s3:GetObject", "lambda:InvokeFunction"])

    assert actions_of(reduced) == [["lambda:InvokeFunction", "s3:GetObject"]]


def test_kept_action_the_statement_does_not_allow_is_left_out():
    document = doc(allow(["s3:Get*"]))

    reduced = reduce_document(document, ["s3:GetObject", "s3:PutObject"])

    assert actions_of(reduced) == [["s3:GetObject"]]
    assert allowed_entries(document, ["s3:GetObject", "s3:PutObject"]) == ["s3:GetObject"]


def test_kept_action_of_a_kept_service_is_not_named_twice():
    reduced = reduce_document(ADMIN, ["s3:GetObject", "s3", "S3"])

    assert actions_of(reduced) == [["s3:*"]]


def test_deny_statements_conditions_and_resources_are_kept_exactly():
    condition = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    document = doc(
        allow(
            ["s3:*", "ec2:*"],
            Sid="Buckets",
            Resource=["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
            Condition=condition,
        ),
        deny("s3:DeleteBucket", Condition={"StringNotEquals": {"aws:RequestedRegion": "eu"}}),
        {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"},
    )

    reduced = reduce_document(document, ["s3:GetObject"])

    assert reduced["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
            "Sid": "Buckets",
            "Condition": condition,
        },
        document["Statement"][1],
        {"Effect": "Allow", "Action": ["s3:GetObject"], "NotResource": "arn:aws:s3:::secret/*"},
    ]


def test_statement_with_nothing_kept_is_dropped():
    document = doc(allow("ec2:*"), allow("s3:GetObject"), allow(["iam:*", "sts:AssumeRole"]))

    assert actions_of(reduce_document(document, ["s3"])) == [["s3:GetObject"]]


def test_not_action_statement_keeps_a_service_it_does_not_touch():
    document = doc(allow(["iam:*", "sts:*"], key="NotAction"))

    reduced = reduce_document(document, ["s3", "ec2:RunInstances"])

    assert reduced["Statement"] == [allow(["ec2:RunInstances", "s3:*"])]
    assert "NotAction" not in reduced["Statement"][0]


def test_not_action_statement_drops_a_service_it_allows_only_in_part():
    document = doc(allow(["s3:Put*"], key="NotAction"))

    assert allowed_entries(document, ["s3", "ec2"]) == ["ec2"]
    assert actions_of(reduce_document(document, ["s3", "ec2"])) == [["ec2:*"]]


def test_not_action_statement_keeps_an_action_it_does_not_exclude():
    document = doc(allow(["s3:Put*", "iam:*"], key="NotAction"))

    reduced = reduce_document(document, ["s3", "s3:GetObject", "s3:PutObject", "iam:PassRole"])

    assert actions_of(reduced) == [["s3:GetObject"]]


def test_not_action_on_a_whole_service_keeps_nothing_of_it():
    document = doc(allow("iam:*", key="NotAction"), allow("iam:GetUser", Sid="Read"))

    reduced = reduce_document(document, ["iam"])

    assert reduced["Statement"] == [allow(["iam:GetUser"], Sid="Read")]


def test_not_action_on_every_action_allows_nothing():
    with pytest.raises(ReductionError):
        reduce_document(doc(allow("*", key="NotAction")), ["s3", "s3:GetObject"])


def test_actions_match_without_regard_to_case():
    document = doc(allow("S3:getobject"), allow("EC2:Describe*"))

    reduced = reduce_document(document, ["s3:GetObject", "EC2"])

    assert actions_of(reduced) == [["s3:GetObject"], ["EC2:Describe*"]]


def test_a_statement_object_and_string_action_are_read_and_the_input_is_left_alone():
    document = {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}
    before = copy.deepcopy(document)

    reduced = reduce_document(document, ["kms:Decrypt"])

    assert document == before
    assert reduced == {"Version": "2012-10-17", "Statement": [allow(["kms:Decrypt"])]}


def test_the_replacement_shares_nothing_with_the_current_document():
    document = doc(allow("s3:*", Condition={"Bool": {"aws:SecureTransport": "true"}}))

    reduced = reduce_document(document, ["s3"])
    reduced["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"] = "false"

    assert document["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "true"}}


def test_kept_wildcard_action_is_kept_only_where_the_statement_allows_all_of_it():
    document = doc(allow("s3:*"), allow("s3:Get*"), allow("s3:Get*Acl"), allow("s3:GetObject"))

    reduced = reduce_document(document, ["s3:Get*"])

    # s3:Get*Acl allows only part of s3:Get*, and names no action the reduction could keep.
    assert actions_of(reduced) == [["s3:Get*"], ["s3:Get*"], ["s3:GetObject"]]


def test_kept_wildcard_is_not_kept_by_a_pattern_that_merely_matches_its_spelling():
    # "s3:*t?" matches the text "s3:Get*" but not s3:GetObject, which s3:Get* would allow.
    document = doc(allow("s3:*t?"), allow("ec2:DescribeInstances"))

    assert allowed_entries(document, ["s3:Get*", "ec2"]) == ["ec2"]
    assert actions_of(reduce_document(document, ["s3:Get*", "ec2"])) == [["ec2:DescribeInstances"]]


def test_a_bracket_is_a_plain_character_to_iam():
    document = doc(allow("s3:[G]etObject"), allow("ec2:DescribeInstances"))

    assert allowed_entries(document, ["s3:GetObject", "ec2"]) == ["ec2"]


def test_empty_keep_is_refused():
    with pytest.raises(ReductionError, match="at least one"):
        reduce_document(ADMIN, [])


@pytest.mark.parametrize(
    "entry",
    ["s3:Get:Object", "s3 ", "s3:Get?", "", ":GetObject", "s3:", "s3_x", "*", "s3:Get-Object"],
)
def test_malformed_entry_is_refused_by_name(entry):
    with pytest.raises(ReductionError) as caught:
        reduce_document(ADMIN, ["s3", entry])

    assert repr(entry) in str(caught.value)


def test_non_text_entry_is_refused():
    with pytest.raises(ReductionError, match="None"):
        reduce_document(ADMIN, [None])


def test_nothing_surviving_names_what_the_policy_does_not_allow():
    document = doc(allow("ec2:Describe*"), deny("s3:*"))

    with pytest.raises(ReductionError) as caught:
        reduce_document(document, ["s3", "ec2:RunInstances"])

    assert "s3, ec2:RunInstances" in str(caught.value)


def test_a_statement_iam_would_refuse_is_named():
    document = doc(allow("s3:*"), {"Sid": "Odd", "Effect": "Permit", "Action": "*"})

    with pytest.raises(ReductionError, match=r'"Odd".*"Permit"'):
        reduce_document(document, ["s3"])


def test_allowed_entries_lists_what_survives_in_the_order_given():
    document = doc(allow(["s3:Get*", "kms:Decrypt"]))

    assert allowed_entries(document, ["kms", "ec2", "s3:GetObject", "s3:PutObject"]) == [
        "kms",
        "s3:GetObject",
    ]


def test_diff_shows_what_goes_and_what_comes():
    document = doc(allow("*"))

    lines = diff_lines(document, reduce_document(document, ["s3"]))

    assert lines[:2] == ["--- current", "+++ replacement"]
    assert '-      "Action": "*",' in lines
    assert '+      "Action": [' in lines
    assert '+        "s3:*"' in lines


def test_diff_of_equal_documents_is_empty():
    assert diff_lines(ADMIN, copy.deepcopy(ADMIN)) == []


# Never widen: every reduction of these documents, for many keep sets, allows only what the
# document allowed and only what was kept, and all the document allowed of what was kept.

UNIVERSE = {
    "s3": [
        "GetObject",
        "GetObjectAcl",
        "GetBucketPolicy",
        "PutObject",
        "PutObjectAcl",
        "DeleteObject",
        "DeleteBucket",
        "ListBucket",
        "ListAllMyBuckets",
    ],
    "s3-object-lambda": ["GetObject", "WriteGetObjectResponse"],
    "iam": [
        "PassRole",
        "CreateUser",
        "GetUser",
        "ListUsers",
        "AttachRolePolicy",
        "CreateAccessKey",
        "DeleteRole",
        "GetRole",
    ],
    "ec2": [
        "DescribeInstances",
        "DescribeVolumes",
        "RunInstances",
        "TerminateInstances",
        "StartInstances",
        "StopInstances",
        "CreateTags",
        "DeleteVolume",
    ],
    "lambda": [
        "InvokeFunction",
        "InvokeAsync",
        "GetFunction",
        "ListFunctions",
        "CreateFunction",
        "UpdateFunctionCode",
        "DeleteFunction",
    ],
    "kms": ["Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey", "ListKeys", "CreateKey"],
    "sts": ["AssumeRole", "GetCallerIdentity", "GetSessionToken", "AssumeRoleWithWebIdentity"],
    "sqs": ["SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueUrl", "ListQueues"],
    "dynamodb": ["GetItem", "PutItem", "DeleteItem", "Query", "Scan", "DescribeTable"],
}
ACTIONS = [f"{service}:{name}" for service, names in UNIVERSE.items() for name in names]

DOCUMENTS = [
    doc(allow("*")),
    doc(
        allow(["s3:Get*", "s3:List*", "ec2:Describe*", "iam:PassRole"]),
        allow(["lambda:Invoke?unction", "kms:*"], Sid="Keys"),
        deny("s3:GetObjectAcl"),
    ),
    doc(allow(["iam:*", "sts:*"], key="NotAction"), deny(["ec2:RunInstances"])),
    doc(allow(["s*:*", "kms:Decrypt"], key="NotAction"), allow("sts:AssumeRole")),
    {"Statement": {"Effect": "Allow", "Action": "S3:getobject", "Resource": "*"}},
    doc(allow(["*:Describe*", "*Object", "?3:Put*", "dynamodb:*Item", "s3*"])),
    doc(allow("*", key="NotAction"), allow("sqs:SendMessage"), deny("sqs:*")),
    doc(allow(["ec2:*Instances", "iam:Get*"]), allow("iam:*"), deny("iam:Create*")),
    doc(allow(["s3:Get*Acl", "s3-object-lambda:*", "lambda:*"]), allow(["Sts:Assume*"])),
]

ENTRIES = (
    list(UNIVERSE)
    + ACTIONS
    + ["S3", "EC2:describeinstances", "rds", "rds:CreateDBInstance", "s3:Get*", "iam:*"]
)


def matches(patterns, action):
    patterns = [patterns] if isinstance(patterns, str) else patterns
    return any(fnmatchcase(action.lower(), p.lower()) for p in patterns)


def statement_matches(statement, action):
    if "Action" in statement:
        return matches(statement["Action"], action)
    return not matches(statement["NotAction"], action)


def statements(document):
    found = document["Statement"]
    return [found] if isinstance(found, dict) else found


def allowed(document, action, *, through="Action"):
    """Whether the document allows the action anywhere, resources and conditions aside; with
    `through`, only by statements with that key."""
    found = statements(document)
    granted = any(
        s["Effect"] == "Allow" and through in (None, *s) and statement_matches(s, action)
        for s in found
    )
    denied = any(s["Effect"] == "Deny" and statement_matches(s, action) for s in found)
    return granted and not denied


def kept(keep, action):
    service = action.split(":")[0]
    return any(
        entry.lower() == service or fnmatchcase(action.lower(), entry.lower()) for entry in keep
    )


def keep_sets(count=300):
    rng = random.Random(20261115)
    for _ in range(count):
        yield rng.sample(ENTRIES, rng.randint(1, 6))


def test_never_widens_and_keeps_all_it_may():
    checked = 0
    for keep in keep_sets():
        for document in DOCUMENTS:
            try:
                reduced = reduce_document(document, keep)
            except ReductionError:
                assert allowed_entries(document, keep) == []
                reduced = {"Statement": []}
            for action in ACTIONS:
                if allowed(reduced, action, through=None):
                    assert allowed(document, action, through=None), (document, keep, action)
                    assert kept(keep, action), (document, keep, action)
                # Every reduced statement is an Action statement: what it allows is in reach.
                wholly_kept = any(e.lower() == action.split(":")[0] for e in keep) or any(
                    e.lower() == action.lower() for e in keep
                )
                if wholly_kept and allowed(document, action, through="Action"):
                    assert allowed(reduced, action, through="Action"), (document, keep, action)
                if any(e.lower() == action.lower() for e in keep) and allowed(
                    document, action, through="NotAction"
                ):
                    assert allowed(reduced, action, through="Action"), (document, keep, action)
                checked += 1
    assert checked == 300 * len(DOCUMENTS) * len(ACTIONS)


def test_each_reduced_statement_stays_inside_the_statement_it_replaces():
    """Statement by statement, so that a Deny elsewhere cannot hide a widened Allow."""
    for keep in keep_sets(100):
        for document in DOCUMENTS:
            for statement in statements(document):
                if statement["Effect"] != "Allow":
                    continue
                try:
                    reduced = reduce_document(doc(statement), keep)
                except ReductionError:
                    continue
                (replacement,) = reduced["Statement"]
                for action in ACTIONS:
                    if matches(replacement["Action"], action):
                        assert statement_matches(statement, action), (statement, keep, action)

"""What policy documents allow, by service and action, as a reviewer weighs Access Advisor."""

import pytest

from inventory.policies import allows, services

KNOWN = ["s3", "ec2", "iam", "sts", "sqs", "ssm", "lambda", "organizations"]


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions, key="Action"):
    return {"Effect": "Allow", key: actions, "Resource": "*"}


def deny(actions):
    return {"Effect": "Deny", "Action": actions, "Resource": "*"}


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "iam:CreateUser", True),
        ("s3:*", "s3:PutObject", True),
        ("s3:*", "s3-object-lambda:GetObject", False),
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3:PutObject", False),
        ("s3:GetObject", "s3:GetObjectAcl", False),
        ("s3:Get?bject", "s3:GetObject", True),
        ("S3:getobject", "s3:GetObject", True),
        ("ec2:Describe*", "s3:DescribeJob", False),
    ],
)
def test_action_patterns_match_as_iam_matches_them(pattern, action, expected):
    assert allows([doc(allow(pattern))], action) is expected
    assert allows([doc(allow([pattern]))], action) is expected


def test_not_action_allows_everything_but_what_it_names():
    documents = [doc(allow(["iam:*", "organizations:*"], key="NotAction"))]
    assert allows(documents, "ec2:RunInstances")
    assert allows(documents, "s3:DeleteBucket")
    assert not allows(documents, "iam:CreateUser")
    assert not allows(documents, "organizations:LeaveOrganization")


def test_deny_statements_are_not_weighed():
    documents = [doc(allow("s3:*"), deny("s3:DeleteBucket"))]
    assert allows(documents, "s3:DeleteBucket")
    assert not allows([doc(deny("*"))], "s3:GetObject")


def test_any_of_several_documents_can_allow():
    documents = [doc(allow("sqs:SendMessage")), doc(allow("s3:GetObject"))]
    assert allows(documents, "s3:GetObject")
    assert allows(documents, "sqs:SendMessage")
    assert not allows(documents, "sqs:DeleteQueue")


def test_single_statement_documents_and_empty_ones_are_read():
    single = {"Version": "2012-10-17", "Statement": allow("lambda:InvokeFunction")}
    assert allows([single], "lambda:InvokeFunction")
    assert not allows([{}, None, {"Statement": []}], "lambda:InvokeFunction")
    assert services([single, {}, None], KNOWN) == {"lambda"}


def test_services_are_the_namespaces_of_allowed_actions():
    documents = [doc(allow(["s3:GetObject", "S3:ListBucket", "sqs:SendMessage"]))]
    assert services(documents, KNOWN) == {"s3", "sqs"}


def test_services_outside_the_known_ones_are_still_named():
    assert services([doc(allow("athena:StartQueryExecution"))], KNOWN) == {"athena"}


def test_wildcard_services_are_resolved_among_the_known_ones():
    assert services([doc(allow("*"))], KNOWN) == set(KNOWN)
    assert services([doc(allow("s*:Get*"))], KNOWN) == {"s3", "sts", "sqs", "ssm"}


def test_not_action_allows_the_known_services_it_does_not_wholly_exclude():
    documents = [doc(allow(["iam:*", "organizations:*", "s3:Delete*"], key="NotAction"))]
    # s3 stays: only its Delete actions are excluded.
    assert services(documents, KNOWN) == {"s3", "ec2", "sts", "sqs", "ssm", "lambda"}


def test_deny_statements_add_no_services_and_remove_none():
    documents = [doc(allow("s3:GetObject"), deny(["ec2:*", "s3:*"]))]
    assert services(documents, KNOWN) == {"s3"}

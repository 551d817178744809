"""The parser on its own: timestamps, policy documents, ARNs, and where a bad answer is."""

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from inventory.parse import (
    MAX_POLICY_DOCUMENT_CHARS,
    ParseError,
    SnapshotBuilder,
    parse_document,
    parse_principal_arn,
    parse_time,
)
from tests.inventory import aws_files as f

ACCOUNT = f.ACCOUNT_ID
DOC = f.document("s3:GetObject")


def built(details, report=None, *advisors):
    """The snapshot of CLI-shaped answers, as the importer would build it."""
    builder = SnapshotBuilder(ACCOUNT)
    builder.add_authorization_details(f.cli_json(details), "auth.json")
    if report is not None:
        builder.add_credential_report(report, "report.csv")
    for answer in advisors:
        builder.add_service_last_accessed(answer["Arn"], f.cli_json(answer), "advisor.json")
    return builder.build()


def refused(call, *args):
    with pytest.raises(ParseError) as caught:
        call(*args)
    return caught.value


# Timestamps -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-06T07:08:09+00:00",
        "2024-05-06T07:08:09Z",
        "2024-05-06 07:08:09+00:00",
        "2024-05-06T16:08:09+09:00",
        " 2024-05-06T07:08:09+00:00 ",
    ],
)
def test_timestamps_in_both_cli_forms_and_other_zones_are_read_as_utc(text):
    moment = parse_time(text, "here")
    assert moment == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_datetime_objects_are_kept_and_converted_to_utc():
    tokyo = timezone(timedelta(hours=9))
    assert parse_time(datetime(2024, 5, 6, 16, 8, 9, tzinfo=tokyo), "here") == datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=UTC
    )
    assert parse_time(datetime(2024, 5, 6, 16, 8, 9, tzinfo=tokyo), "here").tzinfo == UTC


def test_naive_timestamps_are_taken_as_utc():
    assert parse_time("2024-05-06T07:08:09", "here") == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert parse_time(datetime(2024, 5, 6, 7, 8, 9), "here") == datetime(
        2024, 5, 6, 7, 8, 9, tzinfo=UTC
    )


@pytest.mark.parametrize("value", [None, "", "N/A", "no_information", "not_supported"])
def test_no_value_markers_mean_no_timestamp(value):
    assert parse_time(value, "here") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "not a timestamp: 'yesterday'"),
        ("2024-13-45T00:00:00Z", "not a timestamp"),
        (1714979289, "expected a timestamp, got a number"),
        ({"date": "2024-05-06"}, "expected a timestamp, got an object"),
    ],
)
def test_anything_else_is_refused_with_its_place(value, message):
    error = refused(parse_time, value, "users.json: UserDetailList[0].CreateDate")
    assert error.where == "users.json: UserDetailList[0].CreateDate"
    assert message in error.message
    assert str(error).startswith("users.json: UserDetailList[0].CreateDate: ")


# Policy documents -------------------------------------------------------------------------------


def test_url_encoded_documents_are_decoded():
    assert parse_document(quote(json.dumps(DOC), safe=""), "here") == DOC


def test_json_text_and_objects_are_read_alike():
    assert parse_document(json.dumps(DOC), "here") == DOC
    assert parse_document("  " + json.dumps(DOC, indent=2), "here") == DOC
    assert parse_document(DOC, "here") == DOC


def test_a_single_statement_object_is_a_policy_document():
    single = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*"}}
    assert parse_document(quote(json.dumps(single)), "here") == single


@pytest.mark.parametrize(
    "value", ["%7B%22Statement%22%3A%20%5B", '{"Statement": [', "not a document"]
)
def test_a_document_that_is_not_json_is_refused(value):
    error = refused(parse_document, value, "auth.json: RoleDetailList[0].AssumeRolePolicyDocument")
    assert error.where == "auth.json: RoleDetailList[0].AssumeRolePolicyDocument"
    assert "not JSON" in error.message


@pytest.mark.parametrize("value", [[DOC], 42, json.dumps([DOC])])
def test_a_document_that_is_not_an_object_is_refused(value):
    assert "expected a policy document" in refused(parse_document, value, "here").message


@pytest.mark.parametrize(
    "value", [{"Version": "2012-10-17"}, {"Statement": "Allow"}, quote('{"Version": "1"}')]
)
def test_a_document_without_statements_is_refused_naming_the_field(value):
    error = refused(parse_document, value, "auth.json: Policies[0].PolicyVersionList[0].Document")
    assert error.where == "auth.json: Policies[0].PolicyVersionList[0].Document.Statement"
    assert "missing" in error.message


def _huge_document(size):
    return {"Statement": [{"Effect": "Allow", "Action": "*", "Sid": "x" * size}]}


@pytest.mark.parametrize(
    "encode", [lambda d: d, json.dumps, lambda d: quote(json.dumps(d), safe="")]
)
def test_a_ten_megabyte_document_is_refused_as_too_large(encode):
    error = refused(parse_document, encode(_huge_document(10_000_000)), "here")
    assert "too large" in error.message


def test_a_document_just_over_the_limit_is_refused_and_one_at_aws_sizes_is_read():
    assert (
        "too large"
        in refused(parse_document, _huge_document(MAX_POLICY_DOCUMENT_CHARS), "here").message
    )
    assert parse_document(_huge_document(10_240), "here")["Statement"][0]["Sid"] == "x" * 10_240


def test_a_document_with_a_nul_character_is_refused():
    document = {"Statement": [{"Effect": "Allow", "Action": "s3:Get\u0000Object"}]}
    assert "NUL" in refused(parse_document, json.dumps(document), "here").message


# Principal ARNs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "kind", "path", "name"),
    [
        (f"arn:aws:iam::{ACCOUNT}:user/alice", "user", "/", "alice"),
        (f"arn:aws:iam::{ACCOUNT}:group/finance/Billing", "group", "/finance/", "Billing"),
        (
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
            "role",
            "/aws-service-role/ecs.amazonaws.com/",
            "AWSServiceRoleForECS",
        ),
        (
            f"arn:aws-us-gov:iam::{ACCOUNT}:role/deploy+ci=1,a.b@c-d",
            "role",
            "/",
            "deploy+ci=1,a.b@c-d",
        ),
    ],
)
def test_principal_arns_are_split_into_kind_path_and_name(arn, kind, path, name):
    parsed = parse_principal_arn(arn, "here", ACCOUNT)
    assert (parsed.arn, parsed.account_id, parsed.kind, parsed.path, parsed.name) == (
        arn,
        ACCOUNT,
        kind,
        path,
        name,
    )


def test_a_principal_of_another_account_is_refused_naming_both_accounts():
    arn = f"arn:aws:iam::{f.OTHER_ACCOUNT_ID}:role/app"
    error = refused(parse_principal_arn, arn, "auth.json: RoleDetailList[3].Arn", ACCOUNT)
    assert error.where == "auth.json: RoleDetailList[3].Arn"
    assert f.OTHER_ACCOUNT_ID in error.message
    assert ACCOUNT in error.message


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:iam::{ACCOUNT}:policy/deploy",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/app/session",
        f"arn:aws:iam::{ACCOUNT}:user/",
        f"arn:aws:iam::{ACCOUNT}:user/alice\n",
        f"arn:aws:iam::{ACCOUNT}:user/<script>",
        "alice",
    ],
)
def test_what_is_not_a_user_group_or_role_arn_is_refused(arn):
    error = refused(parse_principal_arn, arn, "here", ACCOUNT)
    assert "not an IAM user, group or role ARN" in error.message


@pytest.mark.parametrize(("value", "got"), [(12345, "a number"), (None, "null"), (["a"], "a list")])
def test_an_arn_of_the_wrong_type_is_refused_saying_what_was_found(value, got):
    assert refused(parse_principal_arn, value, "here", ACCOUNT).message == (
        f"expected an ARN, got {got}"
    )


# Where a bad answer is --------------------------------------------------------------------------


def test_parse_error_keeps_place_and_message_apart():
    error = ParseError("auth.json: UserDetailList[2].UserName", "missing")
    assert error.where == "auth.json: UserDetailList[2].UserName"
    assert error.message == "missing"
    assert str(error) == "auth.json: UserDetailList[2].UserName: missing"
    assert isinstance(error, ValueError)


def test_a_wrong_type_deep_in_a_page_is_reported_with_its_path():
    details = f.authorization_details(
        users=[f.user("alice"), f.user("bob", tags={"team": "web"})],
    )
    details["UserDetailList"][1]["Tags"][0]["Value"] = 7
    error = refused(built, details)
    assert error.where == "auth.json: UserDetailList[1].Tags[0].Value"
    assert error.message == "expected a string, got a number"


def test_true_is_not_a_count():
    details = f.authorization_details(
        policies=[f.managed_policy(f.policy_arn("deploy"), DOC)],
    )
    details["Policies"][0]["AttachmentCount"] = True
    assert refused(built, details).where == "auth.json: Policies[0].AttachmentCount"


def test_a_negative_count_is_refused():
    details = f.authorization_details(policies=[f.managed_policy(f.policy_arn("deploy"), DOC)])
    details["Policies"][0]["AttachmentCount"] = -1
    error = refused(built, details)
    assert error.where == "auth.json: Policies[0].AttachmentCount"
    assert "expected a count" in error.message


def test_a_name_that_does_not_match_its_arn_is_refused():
    details = f.authorization_details(users=[f.user("alice")])
    details["UserDetailList"][0]["UserName"] = "mallory"
    error = refused(built, details)
    assert error.where == "auth.json: UserDetailList[0].UserName"
    assert "does not match the ARN" in error.message


def test_a_role_listed_among_users_is_refused():
    details = f.authorization_details(users=[f.user("alice")])
    details["UserDetailList"][0]["Arn"] = f.principal_arn("role", "alice")
    assert "is not a user ARN" in refused(built, details).message


def test_a_principal_listed_on_two_pages_is_refused_naming_both():
    builder = SnapshotBuilder(ACCOUNT)
    page = f.cli_json(f.authorization_details(roles=[f.role("app")]))
    builder.add_authorization_details({**page, "IsTruncated": True}, "page-1.json")
    error = refused(builder.add_authorization_details, page, "page-2.json")
    assert error.where == "page-2.json: RoleDetailList[0].Arn"
    assert "appears twice (also page-1.json: RoleDetailList[0])" in error.message


def test_a_managed_policy_of_another_account_is_refused():
    foreign = f.policy_arn("deploy", account_id=f.OTHER_ACCOUNT_ID)
    details = f.authorization_details(roles=[f.role("app", managed=[foreign])])
    error = refused(built, details)
    assert error.where == "auth.json: RoleDetailList[0].AttachedManagedPolicies[0].PolicyArn"
    assert f.OTHER_ACCOUNT_ID in error.message


def test_a_region_longer_than_any_aws_region_is_refused_before_the_database_sees_it():
    details = f.authorization_details(roles=[f.role("app", last_used=f.USED, region="x" * 40)])
    error = refused(built, details)
    assert error.where == "auth.json: RoleDetailList[0].RoleLastUsed.Region"
    assert "40 characters" in error.message


def test_a_group_name_longer_than_any_group_name_is_refused():
    details = f.authorization_details(users=[f.user("alice", groups=["g" * 129])])
    error = refused(built, details)
    assert error.where == "auth.json: UserDetailList[0].GroupList[0]"
    assert "129 characters" in error.message


def test_a_nul_character_in_a_tag_is_refused():
    details = f.authorization_details(roles=[f.role("app", tags={"owner": "a\u0000b"})])
    assert refused(built, details).where == "auth.json: RoleDetailList[0].Tags[0].Value"


@pytest.mark.parametrize(("cli", "key"), [(False, "IsTruncated"), (True, "NextToken")])
def test_pages_without_the_last_are_refused(cli, key):
    builder = SnapshotBuilder(ACCOUNT)
    roles = [f.role("a"), f.role("b"), f.role("c")]
    first, second, _ = f.pages(f.authorization_details(roles=roles), 3, cli=cli)
    builder.add_authorization_details(f.cli_json(first), "page-1.json")
    builder.add_authorization_details(f.cli_json(second), "page-2.json")
    error = refused(builder.build)
    assert error.where == f"page-2.json: {key}"
    assert "last page is missing" in error.message


@pytest.mark.parametrize("cli", [False, True])
def test_pages_in_any_order_with_their_last_are_read(cli):
    builder = SnapshotBuilder(ACCOUNT)
    roles = [f.role("a"), f.role("b"), f.role("c")]
    for i, page in reversed(
        list(enumerate(f.pages(f.authorization_details(roles=roles), 3, cli=cli)))
    ):
        builder.add_authorization_details(f.cli_json(page), f"page-{i}.json")
    assert sorted(p["name"] for p in builder.build().principals.values()) == ["a", "b", "c"]


def test_an_access_advisor_page_of_several_is_refused():
    answer = f.cli_json(f.advisor(f.principal_arn("role", "app"), f.service("s3")))
    answer.update(IsTruncated=True, Marker="next")
    builder = SnapshotBuilder(ACCOUNT)
    error = refused(builder.add_service_last_accessed, answer["Arn"], answer, "advisor.json")
    assert error.where == "advisor.json.IsTruncated"


def test_a_service_listed_twice_for_a_principal_is_refused():
    arn = f.principal_arn("role", "app")
    answer = f.advisor(arn, f.service("s3"), f.service("s3"))
    error = refused(built, f.authorization_details(roles=[f.role("app")]), None, answer)
    assert error.where == "advisor.json.ServicesLastAccessed[1].ServiceNamespace"


# The credential report --------------------------------------------------------------------------


def test_a_root_user_line_of_another_account_is_refused():
    report = f.credential_report(root=f.OTHER_ACCOUNT_ID)
    error = refused(built, f.authorization_details(), report)
    assert error.where == "report.csv: line 2: arn"
    assert f"not the root user of account {ACCOUNT}" in error.message


def test_the_root_user_is_kept_apart_from_the_principals():
    snapshot = built(f.authorization_details(users=[f.user("alice")]), f.credential_report())
    assert snapshot.root_user["mfa_active"] is True
    assert snapshot.root_user["access_key_1_active"] is False
    assert list(snapshot.principals) == [f.principal_arn("user", "alice")]


@pytest.mark.parametrize(
    ("value", "column"), [("maybe", "mfa_active"), ("yes", "password_enabled")]
)
def test_a_flag_that_is_not_true_or_false_is_refused_with_line_and_column(value, column):
    row = f.report_user("alice", password=True, mfa=True)
    row[column] = value
    error = refused(
        built, f.authorization_details(users=[f.user("alice")]), f.credential_report(row)
    )
    assert error.where == f"report.csv: line 3: {column}"


def test_a_line_with_too_few_columns_is_refused():
    report = (
        f.credential_report(f.report_user("alice")) + "bob,arn:aws:iam::123456789012:user/bob\n"
    )
    error = refused(built, f.authorization_details(users=[f.user("alice")]), report)
    assert error.where == "report.csv: line 4"


def test_two_keys_created_in_the_same_second_are_two_rights():
    keys = [f.access_key(f.CREATED), f.access_key(f.CREATED, active=False)]
    snapshot = built(
        f.authorization_details(users=[f.user("ci")]),
        f.credential_report(f.report_user("ci", keys=keys)),
    )
    rights = [(r["key"], r["status"]) for r in snapshot.rights if r["kind"] == "access_key"]
    assert rights == [(f.CREATED.isoformat(), "Active"), (f.CREATED.isoformat() + "#2", "Inactive")]


def test_what_cannot_be_matched_is_warned_about_not_refused():
    snapshot = built(
        f.authorization_details(users=[f.user("alice", groups=["ghosts"]), f.user("carol")]),
        f.credential_report(f.report_user("alice"), f.report_user("bob")),
        f.advisor(f.principal_arn("role", "gone"), f.service("s3")),
    )
    warnings = "\n".join(snapshot.warnings)
    assert "user/bob is not in the authorization details; its credentials are ignored" in warnings
    assert "user/carol is not in the credential report" in warnings
    assert "a member of ghosts, a group the authorization details do not list" in warnings
    assert "role/gone is not in the authorization details; its usage is ignored" in warnings
    assert snapshot.service_usage == []


def test_last_used_is_the_latest_of_password_keys_and_access_advisor():
    password_used = datetime(2026, 1, 1, tzinfo=UTC)
    key_used = datetime(2026, 1, 5, tzinfo=UTC)
    arn = f.principal_arn("user", "alice")
    report = f.credential_report(
        f.report_user(
            "alice",
            password=True,
            password_last_used=password_used,
            keys=[f.access_key(f.CREATED, last_used=key_used, region="us-east-2")],
        )
    )
    details = f.authorization_details(users=[f.user("alice")])
    assert built(details, report).principals[arn]["last_used_at"] == key_used
    assert built(details, report).principals[arn]["last_used_region"] == "us-east-2"

    later = datetime(2026, 1, 9, tzinfo=UTC)
    advisor = f.advisor(arn, f.service("s3", last=later, region="ap-south-1"))
    principal = built(details, report, advisor).principals[arn]
    assert (principal["last_used_at"], principal["last_used_region"]) == (later, "ap-south-1")


def test_a_forgotten_principal_leaves_no_rights_or_usage_behind():
    builder = SnapshotBuilder(ACCOUNT)
    builder.add_authorization_details(
        f.cli_json(f.authorization_details(roles=[f.role("app", inline={"x": DOC}), f.role("db")])),
        "auth.json",
    )
    arn = f.principal_arn("role", "app")
    builder.add_service_last_accessed(arn, f.cli_json(f.advisor(arn, f.service("s3"))), "aa")
    builder.forget_principal(arn)
    snapshot = builder.build()
    assert list(snapshot.principals) == [f.principal_arn("role", "db")]
    assert snapshot.rights == []
    assert snapshot.service_usage == []

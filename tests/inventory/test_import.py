"""`manage.py import_aws`: the AWS CLI's files in, an account's complete run out, or nothing."""

import gzip
import hashlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.importers import ImportFile, ImportRefused, import_files
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
from tests.inventory.aws_files import (
    ACCOUNT_ID,
    ALICE,
    APP,
    BOB,
    BOUNDARY,
    BOUNDARY_DOCUMENT,
    CREATED,
    CREDENTIAL_REPORT_COLUMNS,
    DEPLOY,
    DEVELOPERS,
    KEY_CREATED,
    KEY_USED,
    OLD_KEY_CREATED,
    OTHER_ACCOUNT_ID,
    PASSWORD_USED,
    READ_ONLY,
    ROLE_S3_USED,
    S3_USED,
    USED,
    access_key,
    advisor,
    as_object,
    credential_report,
    credential_report_json,
    document,
    iso,
    organization,
    pages,
    principal_arn,
    report_user,
    role,
    service,
    spaced,
    trust,
    url_encoded,
    user,
    write,
    write_all,
)

AUTH = "authorization-details.json"
REPORT = "credential-report.csv"
ADVISOR = "access-advisor.json"


def import_aws(*paths, account_id=ACCOUNT_ID, name="payments-prod", as_json=False) -> str:
    out = io.StringIO()
    options = ["--account-id", account_id, "--account-name", name]
    if as_json:
        options.append("--json")
    call_command("import_aws", *options, *map(str, paths), stdout=out)
    return out.getvalue()


def folder(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    return path


def inventory_state() -> dict:
    """Everything an import could write, to compare before and after one that is refused."""
    versioned = ("pk", "first_seen_run_id", "removed_run_id")
    return {
        "accounts": list(
            AwsAccount.objects.order_by("pk").values_list("account_id", "name", "current_run_id")
        ),
        "runs": list(CollectionRun.objects.order_by("pk").values_list("pk", "status", "counts")),
        "archives": list(RunArchive.objects.order_by("pk").values_list("run_id", "sha256")),
        "principals": list(
            Principal.objects.order_by("pk").values_list(*versioned, "arn", "tags", "last_used_at")
        ),
        "policies": list(ManagedPolicy.objects.order_by("pk").values_list(*versioned, "arn")),
        "versions": list(PolicyVersion.objects.order_by("pk").values_list(*versioned, "document")),
        "rights": list(Right.objects.order_by("pk").values_list(*versioned, "key", "status")),
        "service_usage": list(
            ServiceUsage.objects.order_by("pk").values_list(*versioned, "last_authenticated_at")
        ),
        "action_usage": list(
            ActionUsage.objects.order_by("pk").values_list(*versioned, "last_accessed_at")
        ),
    }


def current_inventory() -> dict:
    """What a reader of the account sees, by natural key, without database ids."""
    return {
        "principals": {
            (p.arn, p.kind, p.name, p.path, p.aws_id, p.created_at, p.last_used_at)
            for p in Principal.objects.current()
        },
        "rights": {
            (
                r.principal.arn,
                r.kind,
                r.key,
                r.policy and r.policy.arn,
                r.group and r.group.arn,
                json.dumps(r.document, sort_keys=True),
                r.status,
                r.created_at,
                r.last_used_at,
                r.mfa_active,
            )
            for r in Right.objects.current().select_related("principal", "policy", "group")
        },
        "service_usage": {
            (u.principal.arn, u.service_namespace, u.last_authenticated_at, u.actions_tracked)
            for u in ServiceUsage.objects.current().select_related("principal")
        },
        "action_usage": {
            (u.principal.arn, u.service_namespace, u.action, u.last_accessed_at)
            for u in ActionUsage.objects.current().select_related("principal")
        },
    }


def rights_of(arn) -> dict:
    principal = Principal.objects.current().get(arn=arn)
    return {(r.kind, r.key): r for r in principal.rights.current()}


# A whole account --------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", [iso, spaced], ids=["iso-8601", "space-separated-times"])
@pytest.mark.parametrize("encode", [as_object, url_encoded], ids=["json-documents", "url-encoded"])
def test_an_account_imports_with_its_principals(db, tmp_path, stamp, encode):
    import_aws(*write_all(tmp_path, organization(), stamp, encode))

    account = AwsAccount.objects.get(account_id=ACCOUNT_ID)
    assert (account.name, account.mode) == ("payments-prod", AwsAccount.Mode.IMPORT)
    principals = {p.arn: p for p in Principal.objects.current().filter(account=account)}
    assert {(p.kind, p.name, p.path) for p in principals.values()} == {
        ("user", "alice", "/"),
        ("user", "bob", "/people/"),
        ("group", "developers", "/"),
        ("role", "app-task", "/app/"),
    }
    alice = principals[ALICE]
    assert (alice.aws_id, alice.created_at, alice.tags) == (
        "AIDAALICEXXXEXAMPLE",
        CREATED,
        {"team": "payments"},
    )
    app = principals[APP]
    assert app.trust_policy == trust("ecs-tasks.amazonaws.com")
    assert app.tags == {"service": "app"}


@pytest.mark.parametrize("stamp", [iso, spaced], ids=["iso-8601", "space-separated-times"])
@pytest.mark.parametrize("encode", [as_object, url_encoded], ids=["json-documents", "url-encoded"])
def test_every_kind_of_right_is_imported_with_what_it_grants(db, tmp_path, stamp, encode):
    import_aws(*write_all(tmp_path, organization(), stamp, encode))

    alice = rights_of(ALICE)
    assert set(alice) == {
        ("managed_policy", DEPLOY),
        ("permissions_boundary", BOUNDARY),
        ("inline_policy", "read-s3"),
        ("group_membership", "developers"),
        ("console_password", "password"),
        ("access_key", KEY_CREATED.isoformat()),
    }
    deploy = alice[("managed_policy", DEPLOY)].policy
    assert (deploy.arn, deploy.name, deploy.aws_managed) == (DEPLOY, "deploy", False)
    assert deploy.versions.current().get(is_default=True).document == document(
        "ecs:UpdateService", "ecr:*"
    )
    boundary = alice[("permissions_boundary", BOUNDARY)].policy
    assert boundary.versions.current().get(is_default=True).document == BOUNDARY_DOCUMENT
    assert alice[("inline_policy", "read-s3")].document == document("s3:GetObject", "s3:ListBucket")
    assert alice[("group_membership", "developers")].group == Principal.objects.get(arn=DEVELOPERS)

    password = alice[("console_password", "password")]
    assert (password.status, password.mfa_active, password.last_used_at, password.created_at) == (
        "Active",
        True,
        PASSWORD_USED,
        CREATED,
    )
    key = alice[("access_key", KEY_CREATED.isoformat())]
    assert (key.status, key.created_at, key.last_used_at) == ("Active", KEY_CREATED, KEY_USED)
    assert (key.last_used_service, key.last_used_region) == ("ecr", "us-east-1")

    bob = rights_of(BOB)
    assert set(bob) == {
        ("console_password", "password"),
        ("access_key", OLD_KEY_CREATED.isoformat()),
    }
    assert bob[("console_password", "password")].mfa_active is False
    assert bob[("console_password", "password")].last_used_at is None
    old_key = bob[("access_key", OLD_KEY_CREATED.isoformat())]
    assert (old_key.status, old_key.last_used_at, old_key.last_used_service) == (
        "Inactive",
        None,
        "",
    )

    developers = rights_of(DEVELOPERS)
    assert set(developers) == {("managed_policy", READ_ONLY), ("inline_policy", "logs")}
    assert developers[("managed_policy", READ_ONLY)].policy.aws_managed is True
    assert set(rights_of(APP)) == {("managed_policy", READ_ONLY)}
    assert list(
        ManagedPolicy.objects.get(arn=READ_ONLY)
        .versions.order_by("version_id")
        .values_list("version_id", "is_default")
    ) == [("v1", False), ("v2", True)]


@pytest.mark.parametrize("stamp", [iso, spaced], ids=["iso-8601", "space-separated-times"])
def test_service_and_action_usage_and_last_use_are_imported(db, tmp_path, stamp):
    import_aws(*write_all(tmp_path, organization(), stamp))

    alice = Principal.objects.current().get(arn=ALICE)
    assert {
        u.service_namespace: (
            u.service_name,
            u.last_authenticated_at,
            u.last_authenticated_region,
            u.last_authenticated_entity,
            u.actions_tracked,
        )
        for u in alice.service_usage.current()
    } == {
        "s3": ("Amazon S3", S3_USED, "eu-west-1", ALICE, True),
        "ec2": ("Amazon EC2", None, "", "", True),
        "logs": ("Amazon CloudWatch Logs", None, "", "", False),
    }
    assert {
        (u.service_namespace, u.action): u.last_accessed_at for u in alice.action_usage.current()
    } == {
        ("s3", "GetObject"): S3_USED,
        ("s3", "ListBucket"): None,
        ("ec2", "DescribeInstances"): None,
    }
    # The latest of password (Feb 10), key (Feb 15) and Access Advisor (Feb 18).
    assert (alice.last_used_at, alice.last_used_region) == (S3_USED, "eu-west-1")

    app = Principal.objects.current().get(arn=APP)
    assert list(app.service_usage.values_list("service_namespace", "last_authenticated_at")) == [
        ("s3", ROLE_S3_USED)
    ]
    # RoleLastUsed (Feb 20) is later than Access Advisor's last S3 use (Feb 19).
    assert (app.last_used_at, app.last_used_region) == (USED, "eu-central-1")
    assert Principal.objects.get(arn=BOB).last_used_at is None


def assert_imports_like_the_plain_files(tmp_path, variant: list):
    """Import the organization's plain files, then `variant`: the second run changes nothing."""
    import_aws(*write_all(folder(tmp_path, "plain"), organization()))
    seen = current_inventory()
    import_aws(*variant)
    run = CollectionRun.objects.latest("pk")
    assert run.status == CollectionRun.Status.COMPLETE
    assert all(
        change == {"added": 0, "removed": 0, "changed": 0}
        for change in run.counts["changes"].values()
    )
    assert current_inventory() == seen


@pytest.mark.parametrize("cli", [False, True], ids=["api-pages", "cli-pages"])
def test_authorization_details_in_several_page_files_import_like_one_file(db, tmp_path, cli):
    files = organization()
    here = folder(tmp_path, "paged")
    paths = [
        write(here, f"authorization-details-{i}.json", page, spaced, url_encoded)
        for i, page in enumerate(pages(files.pop(AUTH), 3, cli=cli), start=1)
    ]
    assert_imports_like_the_plain_files(tmp_path, paths + write_all(here, files))
    run = CollectionRun.objects.latest("pk")
    assert [source["kind"] for source in run.sources][:3] == ["authorization_details"] * 3


def test_the_credential_report_as_cli_json_imports_like_the_csv(db, tmp_path):
    files = organization()
    files["credential-report.json"] = credential_report_json(files.pop(REPORT))
    assert_imports_like_the_plain_files(tmp_path, write_all(folder(tmp_path, "json"), files))
    kinds = {s["file"]: s["kind"] for s in CollectionRun.objects.latest("pk").sources}
    assert kinds["credential-report.json"] == "credential_report"


def test_access_advisor_answers_import_one_per_file_as_well_as_in_a_list(db, tmp_path):
    files = organization()
    for answer in files.pop(ADVISOR):
        files[f"advisor-{answer['Arn'].rsplit('/', 1)[1]}.json"] = answer
    assert_imports_like_the_plain_files(tmp_path, write_all(folder(tmp_path, "single"), files))


def test_files_saved_with_a_byte_order_mark_import_like_the_plain_files(db, tmp_path):
    here = folder(tmp_path, "bom")
    paths = write_all(here, organization())
    for path in paths:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert_imports_like_the_plain_files(tmp_path, paths)


def test_the_run_is_complete_with_counts_and_the_sha256_of_each_file(db, tmp_path):
    paths = write_all(tmp_path, organization())
    import_aws(*paths)

    run = CollectionRun.objects.get()
    account = AwsAccount.objects.get()
    assert account.current_run == run
    assert (run.status, run.source) == (CollectionRun.Status.COMPLETE, CollectionRun.Source.IMPORT)
    assert run.finished_at is not None
    assert run.errors == []
    assert {k: v for k, v in run.counts.items() if k != "changes"} == {
        "users": 2,
        "groups": 1,
        "roles": 1,
        "policies": 3,
        "rights": Right.objects.count(),
        "service_usage": ServiceUsage.objects.count(),
        "action_usage": ActionUsage.objects.count(),
    }
    # alice 6, bob 2, developers 2, app-task 1; alice's 3 services and app-task's S3.
    assert (run.counts["rights"], run.counts["service_usage"], run.counts["action_usage"]) == (
        11,
        4,
        3,
    )
    assert run.sources == [
        {
            "file": path.name,
            "kind": kind,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "bytes": path.stat().st_size,
        }
        for path, kind in zip(
            paths, ["authorization_details", "credential_report", "access_advisor"], strict=True
        )
    ]


def test_the_run_archive_keeps_the_files_and_unzips_to_the_runs_sha256(db, tmp_path):
    paths = write_all(tmp_path, organization())
    import_aws(*paths)

    run = CollectionRun.objects.get()
    archive = RunArchive.objects.get(run=run)
    lines = gzip.decompress(bytes(archive.content))
    assert hashlib.sha256(lines).hexdigest() == run.raw_sha256 == archive.sha256
    assert archive.size == len(lines)
    entries = [json.loads(line) for line in lines.splitlines()]
    assert [(e["file"], e["sha256"], e["content"]) for e in entries] == [
        (p.name, hashlib.sha256(p.read_bytes()).hexdigest(), p.read_text()) for p in paths
    ]


def test_json_output_summarises_the_imported_account(db, tmp_path):
    output = import_aws(*write_all(tmp_path, organization()), as_json=True)

    summary = json.loads(output)
    assert list(summary) == ["accounts"]
    (item,) = summary["accounts"]
    run = CollectionRun.objects.get()
    assert item["account_id"] == ACCOUNT_ID
    assert (item["run"], item["status"], item["source"]) == (str(run.uuid), "complete", "import")
    assert {name: item[name] for name in run.counts if name != "changes"} == {
        "users": 2,
        "groups": 1,
        "roles": 1,
        "policies": 3,
        "rights": 11,
        "service_usage": 4,
        "action_usage": 3,
    }
    assert (item["api_calls"], item["errors"], item["warnings"]) == ({}, [], [])


def test_text_output_names_the_account_and_what_was_found(db, tmp_path):
    output = import_aws(*write_all(tmp_path, organization()))
    assert f"{ACCOUNT_ID}: complete" in output
    assert "users 2, groups 1, roles 1, policies 3, rights 11" in output


def test_an_import_without_report_or_access_advisor_says_what_is_unknown(db, tmp_path):
    output = import_aws(write(tmp_path, AUTH, organization()[AUTH]))

    run = CollectionRun.objects.get()
    assert run.status == CollectionRun.Status.COMPLETE
    assert "no credential report: passwords and access keys are not known" in run.warnings
    assert "no Access Advisor data: service usage is not known" in run.warnings
    assert "warning: no credential report" in output
    assert not Right.objects.filter(kind__in=["access_key", "console_password"]).exists()
    assert Principal.objects.count() == 4


def test_reimport_renames_the_account_and_a_missing_name_is_the_account_id(db, tmp_path):
    paths = write_all(tmp_path, organization())
    import_aws(*paths, name="")
    assert AwsAccount.objects.get().name == ACCOUNT_ID
    import_aws(*paths, name="payments (prod)")
    assert AwsAccount.objects.get().name == "payments (prod)"
    assert CollectionRun.objects.filter(status="complete").count() == 2


def test_unicode_and_markup_in_names_and_tags_are_stored_as_data(db, tmp_path):
    files = organization()
    script = "<script>alert('x')</script>"
    files[AUTH]["UserDetailList"].append(
        user(
            "jürgen.müller",
            tags={"名前": "ユルゲン", "note": script},
            inline={"<b>read</b>": document("s3:GetObject")},
        )
    )
    files[AUTH]["Policies"][1]["Description"] = script
    import_aws(*write_all(tmp_path, files), name=f"Zahlungen {script}")

    jurgen = Principal.objects.get(arn=principal_arn("user", "jürgen.müller"))
    assert jurgen.name == "jürgen.müller"
    assert jurgen.tags == {"名前": "ユルゲン", "note": script}
    assert list(jurgen.rights.values_list("kind", "key")) == [("inline_policy", "<b>read</b>")]
    assert ManagedPolicy.objects.get(arn=DEPLOY).description == script
    assert AwsAccount.objects.get().name == f"Zahlungen {script}"


# What is refused --------------------------------------------------------------------------------


def _change(edit):
    """A case: the organization's files after `edit(files)`."""

    def case(here):
        files = organization()
        edit(files)
        return write_all(here, files)

    return case


def _truncated(here):
    paths = write_all(here, organization())
    text = paths[0].read_text()
    paths[0].write_text(text[: len(text) // 2])
    return paths


def _number_for_arn(files):
    files[AUTH]["RoleDetailList"][0]["Arn"] = 123456789012


def _list_for_tags(files):
    files[AUTH]["UserDetailList"][1]["Tags"] = {"owner": "bob"}


def _missing_user_name(files):
    del files[AUTH]["UserDetailList"][1]["UserName"]


def _missing_policy_versions(files):
    del files[AUTH]["Policies"][2]["PolicyVersionList"]


def _foreign_role(files):
    files[AUTH]["RoleDetailList"].append(role("intruder", account_id=OTHER_ACCOUNT_ID))


def _foreign_user_in_report(files):
    files[REPORT] = credential_report(
        report_user("alice"),
        report_user("bob", path="/people/"),
        report_user("eve", account_id=OTHER_ACCOUNT_ID),
    )


def _foreign_root_in_report(files):
    files[REPORT] = credential_report(root=OTHER_ACCOUNT_ID)


def _foreign_advisor(files):
    files[ADVISOR][1]["Arn"] = principal_arn("role", "app-task", "/app/", OTHER_ACCOUNT_ID)


def _huge_document(files):
    statement = files[AUTH]["UserDetailList"][0]["UserPolicyList"][0]["PolicyDocument"]
    statement["Statement"][0]["Sid"] = "x" * 10_000_000


def _non_utf8(here):
    paths = write_all(here, organization())
    paths[1].write_bytes(paths[1].read_bytes().replace(b"bob", b"b\xf6b"))
    return paths


def _advisor_without_arn(files):
    del files[ADVISOR][0]["Arn"]


def _job_in_progress(files):
    files[ADVISOR][0]["JobStatus"] = "IN_PROGRESS"


def _advisor_first_page(files):
    files[ADVISOR][1].update(IsTruncated=True, Marker="EXAMPLE")


def _report_without_mfa(files):
    columns = [c for c in CREDENTIAL_REPORT_COLUMNS if c != "mfa_active"]
    files[REPORT] = credential_report(report_user("alice"), columns=columns)


def _bad_flag(files):
    row = report_user("alice", password=True)
    row["password_enabled"] = "sometimes"
    files[REPORT] = credential_report(row)


def _bad_base64(files):
    del files[REPORT]
    files["credential-report.json"] = {"Content": "not base64!", "ReportFormat": "text/csv"}


def _unknown_kind(files):
    files["list-roles.json"] = {"Roles": files[AUTH]["RoleDetailList"]}


def _no_authorization_details(files):
    del files[AUTH]


def _empty_list(files):
    files[ADVISOR] = []


def _bad_timestamp(files):
    files[AUTH]["RoleDetailList"][0]["CreateDate"] = "last tuesday"


def _long_region(files):
    files[AUTH]["RoleDetailList"][0]["RoleLastUsed"]["Region"] = "eu-west-1" * 5


def _nul_in_tag(files):
    files[AUTH]["UserDetailList"][0]["Tags"][0]["Value"] = "pay\u0000ments"


def _first_page_only(here):
    files = organization()
    first, _ = pages(files.pop(AUTH), 2)
    return [write(here, "authorization-details-1.json", first), *write_all(here, files)]


def _first_cli_page_only(here):
    files = organization()
    first, _ = pages(files.pop(AUTH), 2, cli=True)
    return [write(here, "authorization-details-1.json", first), *write_all(here, files)]


def _missing_path(here):
    return [*write_all(here, organization()), here / "access-advisor-2.json"]


BAD_FILES = [
    pytest.param(_truncated, [AUTH, "not JSON"], id="truncated-json"),
    pytest.param(
        _change(_number_for_arn),
        [f"{AUTH}: RoleDetailList[0].Arn", "expected a string, got a number"],
        id="number-for-an-arn",
    ),
    pytest.param(
        _change(_list_for_tags),
        [f"{AUTH}: UserDetailList[1].Tags", "expected a list, got an object"],
        id="object-for-a-list",
    ),
    pytest.param(
        _change(_missing_user_name),
        [f"{AUTH}: UserDetailList[1].UserName", "missing"],
        id="missing-user-name",
    ),
    pytest.param(
        _change(_missing_policy_versions),
        [f"{AUTH}: Policies[2].PolicyVersionList", "missing"],
        id="missing-policy-versions",
    ),
    pytest.param(
        _change(_foreign_role),
        [f"{AUTH}: RoleDetailList[1].Arn", f"belongs to account {OTHER_ACCOUNT_ID}"],
        id="role-of-another-account",
    ),
    pytest.param(
        _change(_foreign_user_in_report),
        [f"{REPORT}: line 5: arn", f"belongs to account {OTHER_ACCOUNT_ID}"],
        id="credential-report-line-of-another-account",
    ),
    pytest.param(
        _change(_foreign_root_in_report),
        [f"{REPORT}: line 2: arn", f"not the root user of account {ACCOUNT_ID}"],
        id="credential-report-of-another-account",
    ),
    pytest.param(
        _change(_foreign_advisor),
        [f"{ADVISOR}[1].Arn", f"belongs to account {OTHER_ACCOUNT_ID}"],
        id="access-advisor-of-another-account",
    ),
    pytest.param(
        _change(_huge_document),
        [f"{AUTH}: UserDetailList[0].UserPolicyList[0].PolicyDocument", "too large"],
        id="ten-megabyte-policy-document",
    ),
    pytest.param(_non_utf8, [REPORT, "not UTF-8"], id="not-utf-8"),
    pytest.param(
        _change(_advisor_without_arn),
        [f"{ADVISOR}[0].Arn", 'add its ARN as a top-level "Arn" key'],
        id="access-advisor-without-arn",
    ),
    pytest.param(
        _change(_job_in_progress),
        [f"{ADVISOR}[0].JobStatus", "the job is IN_PROGRESS, not COMPLETED"],
        id="access-advisor-job-not-completed",
    ),
    pytest.param(
        _change(_advisor_first_page),
        [f"{ADVISOR}[1].IsTruncated", "--marker"],
        id="access-advisor-first-page-only",
    ),
    pytest.param(
        _change(_report_without_mfa),
        [REPORT, "lacks the column mfa_active"],
        id="credential-report-missing-a-column",
    ),
    pytest.param(
        _change(_bad_flag),
        [f"{REPORT}: line 3: password_enabled", "'sometimes'"],
        id="credential-report-bad-flag",
    ),
    pytest.param(
        _change(_bad_base64),
        ["credential-report.json.Content", "not a base64-encoded CSV report"],
        id="credential-report-json-bad-base64",
    ),
    pytest.param(
        _change(_unknown_kind),
        ["list-roles.json", "not a file Attest can import"],
        id="unknown-kind-of-file",
    ),
    pytest.param(
        _change(_no_authorization_details),
        [REPORT, ADVISOR, "none of the files is GetAccountAuthorizationDetails output"],
        id="no-authorization-details",
    ),
    pytest.param(_change(_empty_list), [ADVISOR, "an empty list"], id="empty-list"),
    pytest.param(
        _change(_bad_timestamp),
        [f"{AUTH}: RoleDetailList[0].CreateDate", "not a timestamp: 'last tuesday'"],
        id="bad-timestamp",
    ),
    pytest.param(
        _change(_long_region),
        [f"{AUTH}: RoleDetailList[0].RoleLastUsed.Region", "more than the 32 allowed"],
        id="region-too-long-for-the-database",
    ),
    pytest.param(
        _change(_nul_in_tag),
        [f"{AUTH}: UserDetailList[0].Tags[0].Value", "NUL"],
        id="nul-character-in-a-tag",
    ),
    pytest.param(
        _first_page_only,
        ["authorization-details-1.json: IsTruncated", "last page is missing"],
        id="first-page-without-the-last",
    ),
    pytest.param(
        _first_cli_page_only,
        ["authorization-details-1.json: NextToken", "last page is missing"],
        id="first-cli-page-without-the-last",
    ),
    pytest.param(
        _missing_path,
        ["access-advisor-2.json", "cannot read the file (No such file or directory)"],
        id="missing-file",
    ),
]


@pytest.mark.parametrize("existing", [False, True], ids=["new-account", "existing-account"])
@pytest.mark.parametrize(("case", "expected"), BAD_FILES)
def test_a_bad_file_is_refused_naming_the_file_and_field_and_nothing_is_imported(
    db, tmp_path, case, expected, existing
):
    if existing:
        import_aws(*write_all(folder(tmp_path, "good"), organization()))
    before = inventory_state()

    with pytest.raises(CommandError) as refused:
        import_aws(*case(folder(tmp_path, "bad")), name="renamed by a bad import")

    message = str(refused.value)
    assert message.startswith("nothing imported: ")
    for text in expected:
        assert text in message
    assert inventory_state() == before


def test_files_of_another_account_are_never_filed_under_the_given_account(db, tmp_path):
    with pytest.raises(CommandError, match=f"belongs to account {ACCOUNT_ID}, not to account"):
        import_aws(*write_all(tmp_path, organization()), account_id=OTHER_ACCOUNT_ID)
    assert not AwsAccount.objects.exists()
    assert not CollectionRun.objects.exists()


@pytest.mark.parametrize("account_id", ["12345", "1234567890123", "12345678901a", ""])
def test_an_account_id_that_is_not_twelve_digits_is_refused(db, tmp_path, account_id):
    with pytest.raises(CommandError, match="is not an AWS account id"):
        import_aws(*write_all(tmp_path, organization()), account_id=account_id)
    assert not AwsAccount.objects.exists()


def test_an_import_is_refused_while_a_collection_of_the_account_runs(db, tmp_path):
    paths = write_all(tmp_path, organization())
    import_aws(*paths)
    account = AwsAccount.objects.get()
    CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)
    before = inventory_state()

    with pytest.raises(CommandError) as refused:
        import_aws(*paths, name="renamed while running")
    assert str(refused.value) == (
        f"nothing imported: a collection of account {ACCOUNT_ID} is running; "
        "import when it has finished"
    )
    assert inventory_state() == before

    files = [ImportFile(p.name, p.read_bytes()) for p in paths]
    with pytest.raises(ImportRefused, match="is running"):
        import_files(ACCOUNT_ID, "", files)
    assert inventory_state() == before


def test_an_import_with_no_files_is_refused(db):
    with pytest.raises(ImportRefused, match="no files to import"):
        import_files(ACCOUNT_ID, "payments-prod", [])
    assert not AwsAccount.objects.exists()


def test_a_list_file_of_two_kinds_is_refused(db, tmp_path):
    files = organization()
    files[ADVISOR].append(files.pop(AUTH))
    with pytest.raises(CommandError, match=f"{ADVISOR}: a file holds one kind of answer"):
        import_aws(*write_all(tmp_path, files))
    assert not AwsAccount.objects.exists()


def test_a_key_without_use_has_no_service_or_region(db, tmp_path):
    files = organization()
    files[REPORT] = credential_report(report_user("alice", keys=[access_key(KEY_CREATED)]))
    import_aws(*write_all(tmp_path, files))
    key = Right.objects.get(kind="access_key")
    assert (key.last_used_at, key.last_used_service, key.last_used_region) == (None, "", "")


def test_a_role_without_access_advisor_data_has_no_usage_rows(db, tmp_path):
    files = organization()
    files[ADVISOR] = [advisor(ALICE, service("s3"))]
    import_aws(*write_all(tmp_path, files))
    assert not ServiceUsage.objects.filter(principal__arn=APP).exists()
    assert ServiceUsage.objects.get(principal__arn=ALICE).last_authenticated_at is None

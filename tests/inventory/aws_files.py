"""Small AWS answers shaped as the AWS CLI writes them, for the import, parse and store tests.

Builders take datetimes and policy documents as dicts; `cli_json` turns them into what a file
holds, with timestamps in one of the two forms the CLI writes and documents as JSON objects (the
CLI) or URL-encoded strings (the IAM API).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ACCOUNT_ID = "123456789012"
OTHER_ACCOUNT_ID = "999988887777"
CREATED = datetime(2023, 4, 5, 6, 7, 8, tzinfo=UTC)
USED = datetime(2026, 2, 20, 9, 30, 0, tzinfo=UTC)

DOCUMENT_KEYS = {"PolicyDocument", "Document", "AssumeRolePolicyDocument"}

# The credential report's columns, in the order AWS writes them.
CREDENTIAL_REPORT_COLUMNS = [
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used",
    "password_last_changed", "password_next_rotation", "mfa_active", "access_key_1_active",
    "access_key_1_last_rotated", "access_key_1_last_used_date", "access_key_1_last_used_region",
    "access_key_1_last_used_service", "access_key_2_active", "access_key_2_last_rotated",
    "access_key_2_last_used_date", "access_key_2_last_used_region",
    "access_key_2_last_used_service", "cert_1_active", "cert_1_last_rotated", "cert_2_active",
    "cert_2_last_rotated",
]  # fmt: skip


def iso(moment: datetime) -> str:
    return moment.isoformat()


def spaced(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S+00:00")


def as_object(document: dict) -> dict:
    return document


def url_encoded(document: dict) -> str:
    return quote(json.dumps(document), safe="")


def cli_json(data, stamp=iso, encode=as_object):
    """`data` as the CLI would write it: datetimes stamped, policy documents encoded."""
    if isinstance(data, dict):
        return {
            key: encode(value)
            if key in DOCUMENT_KEYS and isinstance(value, dict)
            else cli_json(value, stamp, encode)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [cli_json(item, stamp, encode) for item in data]
    if isinstance(data, datetime):
        return stamp(data)
    return data


def content(data, stamp=iso, encode=as_object) -> bytes:
    """A file's bytes: bytes and text as they are, anything else as CLI JSON."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return json.dumps(cli_json(data, stamp, encode), indent=2, ensure_ascii=False).encode()


def write(folder: Path, name: str, data, stamp=iso, encode=as_object) -> Path:
    path = folder / name
    path.write_bytes(content(data, stamp, encode))
    return path


# Policies ---------------------------------------------------------------------------------------


def document(*actions: str, effect: str = "Allow") -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": list(actions), "Resource": "*"}],
    }


def trust(service: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }


def policy_arn(name: str, path: str = "/", account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:iam::{account_id}:policy{path}{name}"


def aws_policy_arn(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


def managed_policy(arn: str, doc: dict, *, policy_id: str | None = None, description=""):
    name = arn.rsplit("/", 1)[1]
    return {
        "PolicyName": name,
        "PolicyId": policy_id or f"ANPA{name.upper()[:8]:X<8}EXAMPLE",
        "Arn": arn,
        "Path": "/",
        "DefaultVersionId": "v2",
        "AttachmentCount": 1,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "Description": description,
        "CreateDate": CREATED,
        "UpdateDate": CREATED,
        "PolicyVersionList": [
            {"Document": doc, "VersionId": "v2", "IsDefaultVersion": True, "CreateDate": CREATED},
            {
                "Document": document("s3:ListAllMyBuckets"),
                "VersionId": "v1",
                "IsDefaultVersion": False,
                "CreateDate": CREATED,
            },
        ],
    }


# Principals -------------------------------------------------------------------------------------


def principal_arn(kind: str, name: str, path: str = "/", account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:iam::{account_id}:{kind}{path}{name}"


def _attached(managed) -> list[dict]:
    return [{"PolicyName": arn.rsplit("/", 1)[1], "PolicyArn": arn} for arn in managed]


def _inline(inline: dict | None) -> list[dict]:
    return [{"PolicyName": name, "PolicyDocument": doc} for name, doc in (inline or {}).items()]


def _tags(tags: dict | None) -> list[dict]:
    return [{"Key": key, "Value": value} for key, value in (tags or {}).items()]


def user(
    name,
    *,
    user_id=None,
    path="/",
    groups=(),
    managed=(),
    inline=None,
    boundary=None,
    tags=None,
    created=CREATED,
    account_id=ACCOUNT_ID,
) -> dict:
    obj = {
        "Path": path,
        "UserName": name,
        "UserId": user_id or f"AIDA{name.upper()[:8]:X<8}EXAMPLE",
        "Arn": principal_arn("user", name, path, account_id),
        "CreateDate": created,
        "UserPolicyList": _inline(inline),
        "GroupList": list(groups),
        "AttachedManagedPolicies": _attached(managed),
        "Tags": _tags(tags),
    }
    if boundary:
        obj["PermissionsBoundary"] = {
            "PermissionsBoundaryType": "Policy",
            "PermissionsBoundaryArn": boundary,
        }
    return obj


def group(name, *, group_id=None, path="/", managed=(), inline=None, created=CREATED) -> dict:
    return {
        "Path": path,
        "GroupName": name,
        "GroupId": group_id or f"AGPA{name.upper()[:8]:X<8}EXAMPLE",
        "Arn": principal_arn("group", name, path),
        "CreateDate": created,
        "GroupPolicyList": _inline(inline),
        "AttachedManagedPolicies": _attached(managed),
    }


def role(
    name,
    *,
    role_id=None,
    path="/",
    managed=(),
    inline=None,
    tags=None,
    service="ec2.amazonaws.com",
    last_used=None,
    region="eu-west-1",
    created=CREATED,
    account_id=ACCOUNT_ID,
) -> dict:
    return {
        "Path": path,
        "RoleName": name,
        "RoleId": role_id or f"AROA{name.upper()[:8]:X<8}EXAMPLE",
        "Arn": principal_arn("role", name, path, account_id),
        "CreateDate": created,
        "AssumeRolePolicyDocument": trust(service),
        "InstanceProfileList": [],
        "RolePolicyList": _inline(inline),
        "AttachedManagedPolicies": _attached(managed),
        "Tags": _tags(tags),
        "RoleLastUsed": {"LastUsedDate": last_used, "Region": region} if last_used else {},
    }


def authorization_details(users=(), groups=(), roles=(), policies=(), **extra) -> dict:
    return {
        "UserDetailList": list(users),
        "GroupDetailList": list(groups),
        "RoleDetailList": list(roles),
        "Policies": list(policies),
        **extra,
    }


def pages(details: dict, count: int, *, cli=False) -> list[dict]:
    """The answer split in `count` pages: as the API answers them (`--no-paginate --marker`),
    or with `cli` as the CLI writes them (`--max-items --starting-token`)."""
    result = []
    for i in range(count):
        page = {key: value[i::count] for key, value in details.items() if isinstance(value, list)}
        if cli:
            result.append(page if i == count - 1 else {**page, "NextToken": f"token-{i}"})
        elif i == count - 1:
            result.append({**page, "IsTruncated": False})
        else:
            result.append({**page, "IsTruncated": True, "Marker": f"marker-{i}"})
    return result


# The credential report --------------------------------------------------------------------------


def access_key(rotated, *, active=True, last_used=None, region="eu-west-1", service="s3") -> dict:
    return {
        "active": active,
        "rotated": rotated,
        "last_used": last_used,
        "region": region if last_used else "N/A",
        "service": service if last_used else "N/A",
    }


def report_user(
    name,
    *,
    path="/",
    password=False,
    password_last_used=None,
    password_last_changed=CREATED,
    mfa=False,
    keys=(),
    created=CREATED,
    account_id=ACCOUNT_ID,
) -> dict:
    def stamp(moment):
        return moment.isoformat() if moment else "N/A"

    row = {
        "user": name,
        "arn": principal_arn("user", name, path, account_id),
        "user_creation_time": stamp(created),
        "password_enabled": "true" if password else "false",
        "password_last_used": stamp(password_last_used) if password else "N/A",
        "password_last_changed": stamp(password_last_changed) if password else "N/A",
        "password_next_rotation": "N/A",
        "mfa_active": "true" if mfa else "false",
        "cert_1_active": "false",
        "cert_1_last_rotated": "N/A",
        "cert_2_active": "false",
        "cert_2_last_rotated": "N/A",
    }
    for slot, key in zip(("access_key_1", "access_key_2"), [*keys, None, None], strict=False):
        row[f"{slot}_active"] = "true" if key and key["active"] else "false"
        row[f"{slot}_last_rotated"] = stamp(key and key["rotated"])
        row[f"{slot}_last_used_date"] = stamp(key and key["last_used"])
        row[f"{slot}_last_used_region"] = key["region"] if key else "N/A"
        row[f"{slot}_last_used_service"] = key["service"] if key else "N/A"
    return row


def root_row(account_id: str = ACCOUNT_ID, *, mfa: bool = True) -> dict:
    row = report_user("<root_account>", account_id=account_id, mfa=mfa)
    row.update(arn=f"arn:aws:iam::{account_id}:root", password_enabled="not_supported")
    return row


def credential_report(*rows: dict, columns=CREDENTIAL_REPORT_COLUMNS, root=ACCOUNT_ID) -> str:
    """The report's CSV: a header, the root user's line of the account `root`, then `rows`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in ([root_row(root)] if root else []) + list(rows):
        writer.writerow([row[column] for column in columns])
    return out.getvalue()


def credential_report_json(report: str) -> dict:
    """`aws iam get-credential-report` output: the CSV base64-encoded in `Content`."""
    return {
        "Content": base64.b64encode(report.encode()).decode(),
        "ReportFormat": "text/csv",
        "GeneratedTime": USED,
    }


# Access Advisor ---------------------------------------------------------------------------------


def tracked(name, last=None, region="eu-west-1", entity=None) -> dict:
    action = {"ActionName": name}
    if last:
        action.update(
            LastAccessedTime=last, LastAccessedEntity=entity or "", LastAccessedRegion=region
        )
    return action


def service(namespace, *, last=None, name=None, region="eu-west-1", entity=None, actions=None):
    obj = {
        "ServiceName": name or namespace.upper(),
        "ServiceNamespace": namespace,
        "TotalAuthenticatedEntities": 1 if last else 0,
    }
    if last:
        obj.update(
            LastAuthenticated=last,
            LastAuthenticatedEntity=entity or "",
            LastAuthenticatedRegion=region,
        )
    if actions is not None:
        obj["TrackedActionsLastAccessed"] = list(actions)
    return obj


def advisor(arn, *services, status="COMPLETED") -> dict:
    """`aws iam get-service-last-accessed-details` output with the principal's "Arn" added."""
    return {
        "Arn": arn,
        "JobStatus": status,
        "JobType": "ACTION_LEVEL",
        "JobCreationDate": USED,
        "JobCompletionDate": USED,
        "ServicesLastAccessed": list(services),
        "IsTruncated": False,
    }


# One small account ------------------------------------------------------------------------------

READ_ONLY = aws_policy_arn("ReadOnlyAccess")
DEPLOY = policy_arn("deploy", "/ci/")
BOUNDARY = policy_arn("developer-boundary")
ALICE = principal_arn("user", "alice")
BOB = principal_arn("user", "bob", "/people/")
DEVELOPERS = principal_arn("group", "developers")
APP = principal_arn("role", "app-task", "/app/")

KEY_CREATED = datetime(2025, 1, 10, 8, 0, 0, tzinfo=UTC)
OLD_KEY_CREATED = datetime(2024, 6, 1, 8, 0, 0, tzinfo=UTC)
PASSWORD_USED = datetime(2026, 2, 10, 17, 45, 0, tzinfo=UTC)
KEY_USED = datetime(2026, 2, 15, 11, 0, 0, tzinfo=UTC)
S3_USED = datetime(2026, 2, 18, 8, 15, 30, tzinfo=UTC)
ROLE_S3_USED = datetime(2026, 2, 19, 23, 59, 59, tzinfo=UTC)
BOUNDARY_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}],
}


def organization() -> dict[str, object]:
    """The files of one small account, by file name.

    alice is a developer with a deploy policy, an inline policy, a permissions boundary, a console
    password with MFA and an active key; bob has a password without MFA and an inactive key; the
    role app-task reads through ReadOnlyAccess. Access Advisor saw alice and the role use S3.
    """
    details = authorization_details(
        groups=[group("developers", managed=[READ_ONLY], inline={"logs": document("logs:Get*")})],
        users=[
            user(
                "alice",
                groups=["developers"],
                managed=[DEPLOY],
                inline={"read-s3": document("s3:GetObject", "s3:ListBucket")},
                boundary=BOUNDARY,
                tags={"team": "payments"},
            ),
            user("bob", path="/people/", tags={"owner": "bob@example.com"}),
        ],
        roles=[
            role(
                "app-task",
                path="/app/",
                managed=[READ_ONLY],
                service="ecs-tasks.amazonaws.com",
                last_used=USED,
                region="eu-central-1",
                tags={"service": "app"},
            )
        ],
        policies=[
            managed_policy(READ_ONLY, document("s3:Get*", "ec2:Describe*")),
            managed_policy(DEPLOY, document("ecs:UpdateService", "ecr:*")),
            managed_policy(BOUNDARY, BOUNDARY_DOCUMENT),
        ],
    )
    report = credential_report(
        report_user(
            "alice",
            password=True,
            password_last_used=PASSWORD_USED,
            mfa=True,
            keys=[access_key(KEY_CREATED, last_used=KEY_USED, region="us-east-1", service="ecr")],
        ),
        report_user(
            "bob", path="/people/", password=True, keys=[access_key(OLD_KEY_CREATED, active=False)]
        ),
    )
    answers = [
        advisor(
            ALICE,
            service(
                "s3",
                name="Amazon S3",
                last=S3_USED,
                entity=ALICE,
                actions=[tracked("GetObject", last=S3_USED, entity=ALICE), tracked("ListBucket")],
            ),
            service("ec2", name="Amazon EC2", actions=[tracked("DescribeInstances")]),
            service("logs", name="Amazon CloudWatch Logs"),
        ),
        advisor(APP, service("s3", name="Amazon S3", last=ROLE_S3_USED, entity=APP)),
    ]
    return {
        "authorization-details.json": details,
        "credential-report.csv": report,
        "access-advisor.json": answers,
    }


def write_all(folder: Path, files: dict, stamp=iso, encode=as_object) -> list[Path]:
    return [write(folder, name, data, stamp, encode) for name, data in files.items()]

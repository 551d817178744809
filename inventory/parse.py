"""Turn AWS answers into inventory rows.

Live collection and file import both feed the same `SnapshotBuilder`: pages of
GetAccountAuthorizationDetails, the credential report, and GetServiceLastAccessedDetails answers,
as boto3 returns them or as the AWS CLI writes them (policy documents as URL-encoded strings or
JSON objects, timestamps as datetimes or ISO 8601 strings). Anything that is not what AWS writes
raises `ParseError` naming where it is, so a bad file is refused whole, before anything is saved.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

# AWS allows at most 10,240 characters in a role's inline policy, the largest of its limits.
# Far larger documents are not AWS's answers and are refused before they reach the database.
MAX_POLICY_DOCUMENT_CHARS = 131_072

# \Z, not $: $ also matches before a trailing newline, which would be kept in the ARN.
PRINCIPAL_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?P<kind>user|group|role)"
    r"(?P<path>/(?:[\x21-\x7e]*/)?)(?P<name>[\w+=,.@-]+)\Z"
)
POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<owner>\d{12}|aws):policy(?P<rest>/.*)\Z")
ROOT_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):root\Z")
NO_VALUE = {"", "N/A", "no_information", "not_supported"}
# The longest text the inventory keeps of a field, never shorter than AWS's own limit: a longer
# value is not AWS's answer, and is refused here with its place rather than by the database.
MAX_LENGTHS = {
    "Arn": 2048,
    "PolicyArn": 2048,
    "PermissionsBoundaryArn": 2048,
    "UserName": 128,
    "GroupName": 128,
    "RoleName": 128,
    "PolicyName": 128,
    "Path": 512,
    "UserId": 128,
    "GroupId": 128,
    "RoleId": 128,
    "PolicyId": 128,
    "DefaultVersionId": 20,
    "VersionId": 20,
    "Region": 32,
    "ServiceNamespace": 64,
    "ServiceName": 200,
    "LastAuthenticatedEntity": 2048,
    "LastAuthenticatedRegion": 32,
    "ActionName": 128,
    "LastAccessedEntity": 2048,
    "LastAccessedRegion": 32,
    "access_key_1_last_used_region": 32,
    "access_key_2_last_used_region": 32,
    "access_key_1_last_used_service": 64,
    "access_key_2_last_used_service": 64,
}
# Counts are kept in PostgreSQL integer columns that refuse negative numbers.
MAX_COUNT = 2**31 - 1
# Characters PostgreSQL cannot store in text or JSON: NUL, and surrogates that pair with nothing.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
CREDENTIAL_REPORT_COLUMNS = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
)


class ParseError(ValueError):
    """An answer or file that does not hold what AWS writes, with the place it was found."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}")


def _check_text(value: str, where: str, max_length: int | None = None) -> str:
    if max_length is not None and len(value) > max_length:
        raise ParseError(where, f"{len(value):,} characters, more than the {max_length} allowed")
    if UNSTORABLE.search(value):
        raise ParseError(where, "holds a NUL character or an unpaired surrogate, not text")
    return value


def _strings(value: Any):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


_EXPECTED = {
    str: "a string",
    list: "a list",
    dict: "an object",
    int: "a number",
    bool: "true/false",
}


def get(obj: Any, key: str, where: str, kind: type | tuple = str, *, required: bool = True):
    """obj[key], checked to be of `kind`; a missing optional key (or null) gives None."""
    if not isinstance(obj, dict):
        raise ParseError(where, f"expected an object, got {_type_name(obj)}")
    value = obj.get(key)
    if value is None:
        if required:
            raise ParseError(f"{where}.{key}", "missing")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(_EXPECTED.get(k, k.__name__) for k in kinds)
        raise ParseError(f"{where}.{key}", f"expected {expected}, got {_type_name(value)}")
    if isinstance(value, str):
        _check_text(value, f"{where}.{key}", MAX_LENGTHS.get(key))
    elif type(value) is int and not 0 <= value <= MAX_COUNT:
        raise ParseError(f"{where}.{key}", f"expected a count, got {value}")
    return value


def parse_time(value: Any, where: str) -> datetime | None:
    """A timestamp as boto3 gives it (datetime) or as text: ISO 8601 or
    'YYYY-MM-DD HH:MM:SS+00:00'."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if value in NO_VALUE:
            return None
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ParseError(where, f"not a timestamp: {value[:40]!r}") from None
    else:
        raise ParseError(where, f"expected a timestamp, got {_type_name(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def get_time(obj: dict, key: str, where: str, *, required: bool = False) -> datetime | None:
    if required and obj.get(key) is None:
        raise ParseError(f"{where}.{key}", "missing")
    return parse_time(obj.get(key), f"{where}.{key}")


def parse_document(value: Any, where: str) -> dict:
    """A policy document: a JSON object, or JSON text, URL-encoded as the IAM API returns it."""
    if isinstance(value, str):
        if len(value) > MAX_POLICY_DOCUMENT_CHARS * 3:
            raise ParseError(where, f"policy document of {len(value):,} characters is too large")
        text = value if value.lstrip().startswith("{") else unquote(value)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParseError(where, f"policy document is not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ParseError(where, f"expected a policy document, got {_type_name(value)}")
    size = len(json.dumps(value, separators=(",", ":")))
    if size > MAX_POLICY_DOCUMENT_CHARS:
        raise ParseError(where, f"policy document of {size:,} characters is too large")
    statements = value.get("Statement")
    if not isinstance(statements, list | dict):
        raise ParseError(f"{where}.Statement", "missing: a policy document has statements")
    for text in _strings(value):
        _check_text(text, where)
    return value


def policy_statements(document: dict | None) -> list[dict]:
    """A document's statements as a list (IAM allows a single statement object)."""
    if not document:
        return []
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        return [statements]
    return [s for s in statements if isinstance(s, dict)]


@dataclass(frozen=True)
class PrincipalArn:
    arn: str
    account_id: str
    kind: str
    path: str
    name: str


def parse_principal_arn(arn: Any, where: str, account_id: str) -> PrincipalArn:
    if not isinstance(arn, str):
        raise ParseError(where, f"expected an ARN, got {_type_name(arn)}")
    match = PRINCIPAL_ARN.match(arn)
    if not match:
        raise ParseError(where, f"not an IAM user, group or role ARN: {arn[:200]!r}")
    if match["account"] != account_id:
        raise ParseError(
            where, f"{arn} belongs to account {match['account']}, not to account {account_id}"
        )
    return PrincipalArn(arn, match["account"], match["kind"], match["path"], match["name"])


def _tags(obj: dict, where: str) -> dict[str, str]:
    tags = get(obj, "Tags", where, list, required=False) or []
    result = {}
    for i, tag in enumerate(tags):
        here = f"{where}.Tags[{i}]"
        result[get(tag, "Key", here)] = get(tag, "Value", here, required=False) or ""
    return result


@dataclass
class Snapshot:
    """Everything one collection saw of one account, as rows ready for `inventory.store`."""

    account_id: str
    principals: dict[str, dict] = field(default_factory=dict)
    policies: dict[str, dict] = field(default_factory=dict)
    policy_versions: list[dict] = field(default_factory=list)
    rights: list[dict] = field(default_factory=list)
    service_usage: list[dict] = field(default_factory=list)
    action_usage: list[dict] = field(default_factory=list)
    root_user: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        kinds = [p["kind"] for p in self.principals.values()]
        return {
            "users": kinds.count("user"),
            "groups": kinds.count("group"),
            "roles": kinds.count("role"),
            "policies": len(self.policies),
            "rights": len(self.rights),
            "service_usage": len(self.service_usage),
            "action_usage": len(self.action_usage),
        }


class SnapshotBuilder:
    """Collects AWS answers for one account in any order, then builds its `Snapshot`."""

    def __init__(self, account_id: str):
        self.account_id = account_id
        self._principals: dict[str, dict] = {}
        self._seen_in: dict[str, str] = {}
        self._policies: dict[str, dict] = {}
        self._versions: list[dict] = []
        self._rights: list[dict] = []
        self._credentials: dict[str, tuple[dict, str]] = {}
        self._advisor: dict[str, tuple[list[dict], str]] = {}
        self.has_authorization_details = False
        self._truncated_pages: list[str] = []
        self._last_pages = 0
        self.has_credential_report = False
        self.root_user: dict = {}
        self.warnings: list[str] = []

    # GetAccountAuthorizationDetails ------------------------------------------------------------

    def add_authorization_details(self, page: Any, where: str) -> None:
        if not isinstance(page, dict):
            raise ParseError(where, f"expected an object, got {_type_name(page)}")
        keys = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
        if not any(key in page for key in keys):
            raise ParseError(where, "not GetAccountAuthorizationDetails output")
        self.has_authorization_details = True
        # A page with more to follow: IsTruncated as the API answers (and `--no-paginate`
        # writes), NextToken as the CLI writes a page it cut with `--max-items`.
        if get(page, "IsTruncated", where, bool, required=False):
            self._truncated_pages.append(f"{where}: IsTruncated")
        elif get(page, "NextToken", where, required=False):
            self._truncated_pages.append(f"{where}: NextToken")
        else:
            self._last_pages += 1
        for i, group in enumerate(get(page, "GroupDetailList", where, list, required=False) or []):
            self._add_group(group, f"{where}: GroupDetailList[{i}]")
        for i, user in enumerate(get(page, "UserDetailList", where, list, required=False) or []):
            self._add_user(user, f"{where}: UserDetailList[{i}]")
        for i, role in enumerate(get(page, "RoleDetailList", where, list, required=False) or []):
            self._add_role(role, f"{where}: RoleDetailList[{i}]")
        for i, policy in enumerate(get(page, "Policies", where, list, required=False) or []):
            self._add_policy(policy, f"{where}: Policies[{i}]")

    def _add_principal(self, obj: dict, where: str, kind: str, name_key: str, id_key: str):
        arn = parse_principal_arn(get(obj, "Arn", where), f"{where}.Arn", self.account_id)
        if arn.kind != kind:
            raise ParseError(f"{where}.Arn", f"{arn.arn} is not a {kind} ARN")
        name = get(obj, name_key, where)
        if name != arn.name:
            raise ParseError(f"{where}.{name_key}", f"{name!r} does not match the ARN {arn.arn}")
        if arn.arn in self._principals:
            raise ParseError(
                f"{where}.Arn", f"{arn.arn} appears twice (also {self._seen_in[arn.arn]})"
            )
        row = {
            "kind": kind,
            "arn": arn.arn,
            "name": name,
            "path": get(obj, "Path", where, required=False) or arn.path,
            "aws_id": get(obj, id_key, where, required=False) or "",
            "created_at": get_time(obj, "CreateDate", where),
            "tags": _tags(obj, where) if kind != "group" else {},
            "trust_policy": None,
            "last_used_at": None,
            "last_used_region": "",
        }
        self._principals[arn.arn] = row
        self._seen_in[arn.arn] = where
        for i, attached in enumerate(
            get(obj, "AttachedManagedPolicies", where, list, required=False) or []
        ):
            here = f"{where}.AttachedManagedPolicies[{i}]"
            policy_arn = self._policy_arn(get(attached, "PolicyArn", here), f"{here}.PolicyArn")
            self._right(arn.arn, "managed_policy", policy_arn, policy_arn=policy_arn)
        boundary = get(obj, "PermissionsBoundary", where, dict, required=False)
        if boundary:
            here = f"{where}.PermissionsBoundary"
            policy_arn = self._policy_arn(
                get(boundary, "PermissionsBoundaryArn", here), f"{here}.PermissionsBoundaryArn"
            )
            self._right(arn.arn, "permissions_boundary", policy_arn, policy_arn=policy_arn)
        inline_key = {
            "user": "UserPolicyList",
            "group": "GroupPolicyList",
            "role": "RolePolicyList",
        }
        for i, inline in enumerate(get(obj, inline_key[kind], where, list, required=False) or []):
            here = f"{where}.{inline_key[kind]}[{i}]"
            document = parse_document(
                get(inline, "PolicyDocument", here, (str, dict)), f"{here}.PolicyDocument"
            )
            self._right(
                arn.arn, "inline_policy", get(inline, "PolicyName", here), document=document
            )
        return row

    def _add_user(self, obj: dict, where: str) -> None:
        row = self._add_principal(obj, where, "user", "UserName", "UserId")
        for i, group_name in enumerate(get(obj, "GroupList", where, list, required=False) or []):
            if not isinstance(group_name, str):
                raise ParseError(f"{where}.GroupList[{i}]", "expected a group name")
            _check_text(group_name, f"{where}.GroupList[{i}]", MAX_LENGTHS["GroupName"])
            self._right(row["arn"], "group_membership", group_name)

    def _add_group(self, obj: dict, where: str) -> None:
        self._add_principal(obj, where, "group", "GroupName", "GroupId")

    def _add_role(self, obj: dict, where: str) -> None:
        row = self._add_principal(obj, where, "role", "RoleName", "RoleId")
        trust = obj.get("AssumeRolePolicyDocument")
        if trust is not None:
            row["trust_policy"] = parse_document(trust, f"{where}.AssumeRolePolicyDocument")
        last_used = get(obj, "RoleLastUsed", where, dict, required=False) or {}
        row["last_used_at"] = get_time(last_used, "LastUsedDate", f"{where}.RoleLastUsed")
        row["last_used_region"] = (
            get(last_used, "Region", f"{where}.RoleLastUsed", required=False) or ""
        )

    def _policy_arn(self, arn: str, where: str) -> str:
        match = POLICY_ARN.match(arn)
        if not match:
            raise ParseError(where, f"not a managed policy ARN: {arn[:200]!r}")
        if match["owner"] not in ("aws", self.account_id):
            raise ParseError(
                where,
                f"{arn} belongs to account {match['owner']}, not to account {self.account_id}",
            )
        return arn

    def _add_policy(self, obj: dict, where: str) -> None:
        arn = self._policy_arn(get(obj, "Arn", where), f"{where}.Arn")
        if arn in self._policies:
            raise ParseError(f"{where}.Arn", f"{arn} appears twice")
        match = POLICY_ARN.match(arn)
        default_version = get(obj, "DefaultVersionId", where, required=False) or ""
        self._policies[arn] = {
            "arn": arn,
            "name": get(obj, "PolicyName", where),
            "path": get(obj, "Path", where, required=False) or "/",
            "policy_id": get(obj, "PolicyId", where, required=False) or "",
            "aws_managed": match["owner"] == "aws",
            "default_version_id": default_version,
            "description": get(obj, "Description", where, required=False) or "",
            "attachment_count": get(obj, "AttachmentCount", where, int, required=False) or 0,
            "created_at": get_time(obj, "CreateDate", where),
            "updated_at": get_time(obj, "UpdateDate", where),
        }
        versions = get(obj, "PolicyVersionList", where, list, required=False) or []
        if not versions:
            raise ParseError(f"{where}.PolicyVersionList", "missing: a policy has versions")
        for i, version in enumerate(versions):
            here = f"{where}.PolicyVersionList[{i}]"
            version_id = get(version, "VersionId", here)
            is_default = version.get("IsDefaultVersion", version_id == default_version)
            if not isinstance(is_default, bool):
                raise ParseError(f"{here}.IsDefaultVersion", "expected true/false")
            self._versions.append(
                {
                    "policy_arn": arn,
                    "version_id": version_id,
                    "is_default": is_default,
                    "document": parse_document(
                        get(version, "Document", here, (str, dict)), f"{here}.Document"
                    ),
                    "created_at": get_time(version, "CreateDate", here),
                }
            )

    def _right(self, principal_arn: str, kind: str, key: str, **values) -> dict:
        row = {
            "principal_arn": principal_arn,
            "kind": kind,
            "key": key,
            "policy_arn": values.pop("policy_arn", None),
            "group_arn": None,
            "document": values.pop("document", None),
            "status": "",
            "created_at": None,
            "last_used_at": None,
            "last_used_service": "",
            "last_used_region": "",
            "mfa_active": None,
        }
        row.update(values)
        self._rights.append(row)
        return row

    # The credential report ---------------------------------------------------------------------

    def add_credential_report(self, text: str, where: str) -> None:
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            raise ParseError(f"{where}: line {line}", "holds a NUL character, not text")
        # newline="": the csv module reads line ends itself, a lone CR included.
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise ParseError(f"{where}: line {reader.line_num}", f"not CSV ({exc})") from None
        if not rows:
            raise ParseError(where, "the credential report is empty")
        header = rows[0]
        missing = [column for column in CREDENTIAL_REPORT_COLUMNS if column not in header]
        if missing:
            raise ParseError(where, f"credential report lacks the column {missing[0]}")
        self.has_credential_report = True
        for line, values in enumerate(rows[1:], start=2):
            if not values:
                continue
            here = f"{where}: line {line}"
            if len(values) != len(header):
                raise ParseError(here, f"expected {len(header)} columns, got {len(values)}")
            row = dict(zip(header, values, strict=True))
            if row["user"] == "<root_account>":
                # The only line that names the account itself: a report of another account
                # without IAM users would otherwise pass as this one's.
                root = ROOT_ARN.match(row["arn"])
                if not root or root["account"] != self.account_id:
                    raise ParseError(
                        f"{here}: arn",
                        f"{row['arn'][:200]!r} is not the root user of account {self.account_id}",
                    )
                self.root_user = self._root_user(row, here)
                continue
            arn = parse_principal_arn(row["arn"], f"{here}: arn", self.account_id)
            if arn.kind != "user":
                raise ParseError(f"{here}: arn", f"{arn.arn} is not a user ARN")
            if arn.arn in self._credentials:
                raise ParseError(f"{here}: arn", f"{arn.arn} appears twice")
            self._credentials[arn.arn] = (row, here)

    @staticmethod
    def _flag(row: dict, column: str, where: str) -> bool | None:
        value = row[column].strip().lower()
        if value in ("true", "false"):
            return value == "true"
        if value in {v.lower() for v in NO_VALUE}:
            return None
        raise ParseError(f"{where}: {column}", f"expected true or false, got {row[column]!r}")

    def _root_user(self, row: dict, where: str) -> dict:
        def when(column):
            moment = parse_time(row[column], f"{where}: {column}")
            return moment.isoformat() if moment else None

        return {
            "mfa_active": self._flag(row, "mfa_active", where),
            "password_last_used": when("password_last_used"),
            "access_key_1_active": self._flag(row, "access_key_1_active", where),
            "access_key_2_active": self._flag(row, "access_key_2_active", where),
            "access_key_1_last_used": when("access_key_1_last_used_date"),
            "access_key_2_last_used": when("access_key_2_last_used_date"),
        }

    def _credential_rights(self, principal_arn: str, row: dict, where: str) -> None:
        if self._flag(row, "password_enabled", where):
            self._right(
                principal_arn,
                "console_password",
                "password",
                created_at=parse_time(
                    row["password_last_changed"], f"{where}: password_last_changed"
                ),
                last_used_at=parse_time(row["password_last_used"], f"{where}: password_last_used"),
                mfa_active=self._flag(row, "mfa_active", where),
                status="Active",
            )
        for slot in ("access_key_1", "access_key_2"):
            created = parse_time(row[f"{slot}_last_rotated"], f"{where}: {slot}_last_rotated")
            if created is None:
                continue  # no key in this slot
            active = self._flag(row, f"{slot}_active", where)
            key = created.isoformat()
            if slot == "access_key_2" and any(
                r["key"] == key for r in self._rights[-2:] if r["principal_arn"] == principal_arn
            ):
                key += "#2"  # two keys created in the same second
            self._right(
                principal_arn,
                "access_key",
                key,
                status="Active" if active else "Inactive",
                created_at=created,
                last_used_at=parse_time(
                    row[f"{slot}_last_used_date"], f"{where}: {slot}_last_used_date"
                ),
                last_used_service=_value(row, f"{slot}_last_used_service", where),
                last_used_region=_value(row, f"{slot}_last_used_region", where),
            )

    # Access Advisor ---------------------------------------------------------------------------

    def add_service_last_accessed(self, arn: Any, answer: Any, where: str) -> None:
        """One GetServiceLastAccessedDetails answer (all pages merged) for the principal `arn`."""
        principal = parse_principal_arn(arn, f"{where}.Arn", self.account_id)
        status = get(answer, "JobStatus", where, required=False)
        if status is not None and status != "COMPLETED":
            raise ParseError(f"{where}.JobStatus", f"the job is {status}, not COMPLETED")
        services = get(answer, "ServicesLastAccessed", where, list)
        # The CLI does not follow this answer's pages: a first page alone would leave the
        # services on the others unknown while they looked unused.
        if get(answer, "IsTruncated", where, bool, required=False):
            raise ParseError(
                f"{where}.IsTruncated",
                "true: this is one page of the answer; fetch the others with --marker and merge "
                "their ServicesLastAccessed",
            )
        if principal.arn in self._advisor:
            raise ParseError(
                f"{where}.Arn", f"Access Advisor data for {principal.arn} appears twice"
            )
        self._advisor[principal.arn] = (services, where)

    def _usage_rows(self, principal_arn: str, services: list, where: str, snapshot: Snapshot):
        namespaces = set()
        for i, service in enumerate(services):
            here = f"{where}.ServicesLastAccessed[{i}]"
            namespace = get(service, "ServiceNamespace", here)
            if namespace in namespaces:
                raise ParseError(f"{here}.ServiceNamespace", f"{namespace} appears twice")
            namespaces.add(namespace)
            tracked = get(service, "TrackedActionsLastAccessed", here, list, required=False)
            snapshot.service_usage.append(
                {
                    "principal_arn": principal_arn,
                    "service_namespace": namespace,
                    "service_name": get(service, "ServiceName", here, required=False) or namespace,
                    "last_authenticated_at": get_time(service, "LastAuthenticated", here),
                    "last_authenticated_entity": get(
                        service, "LastAuthenticatedEntity", here, required=False
                    )
                    or "",
                    "last_authenticated_region": get(
                        service, "LastAuthenticatedRegion", here, required=False
                    )
                    or "",
                    "total_authenticated_entities": get(
                        service, "TotalAuthenticatedEntities", here, int, required=False
                    )
                    or 0,
                    "actions_tracked": tracked is not None,
                }
            )
            actions = set()
            for j, action in enumerate(tracked or []):
                there = f"{here}.TrackedActionsLastAccessed[{j}]"
                name = get(action, "ActionName", there)
                if name in actions:
                    raise ParseError(f"{there}.ActionName", f"{name} appears twice")
                actions.add(name)
                snapshot.action_usage.append(
                    {
                        "principal_arn": principal_arn,
                        "service_namespace": namespace,
                        "action": name,
                        "last_accessed_at": get_time(action, "LastAccessedTime", there),
                        "last_accessed_entity": get(
                            action, "LastAccessedEntity", there, required=False
                        )
                        or "",
                        "last_accessed_region": get(
                            action, "LastAccessedRegion", there, required=False
                        )
                        or "",
                    }
                )

    # The snapshot -------------------------------------------------------------------------------

    def forget_principal(self, arn: str) -> None:
        """Drop a principal that AWS says was deleted while the collection ran."""
        self._principals.pop(arn, None)
        self._rights = [r for r in self._rights if r["principal_arn"] != arn]
        self._credentials.pop(arn, None)
        self._advisor.pop(arn, None)

    def principal_arns(self) -> list[str]:
        return list(self._principals)

    def build(self) -> Snapshot:
        if not self.has_authorization_details:
            raise ParseError(
                "input", "no GetAccountAuthorizationDetails output: it lists the principals"
            )
        if self._truncated_pages and not self._last_pages:
            # Without its last page the answer lacks principals, which would be saved as removed.
            raise ParseError(
                self._truncated_pages[-1],
                "more pages follow, and no page ends the answer: its last page is missing",
            )
        snapshot = Snapshot(self.account_id, root_user=self.root_user, warnings=list(self.warnings))
        snapshot.principals = self._principals
        snapshot.policies = self._policies
        snapshot.policy_versions = self._versions
        groups = {p["name"]: arn for arn, p in self._principals.items() if p["kind"] == "group"}

        for arn, (row, where) in sorted(self._credentials.items()):
            if arn in self._principals:
                self._credential_rights(arn, row, where)
            else:
                snapshot.warnings.append(
                    f"{where}: {arn} is not in the authorization details; "
                    "its credentials are ignored"
                )
        if self.has_credential_report:
            for arn, principal in self._principals.items():
                if principal["kind"] == "user" and arn not in self._credentials:
                    snapshot.warnings.append(
                        f"{arn} is not in the credential report (created after it?): "
                        "its password and access keys are not known"
                    )
        for right in self._rights:
            if right["kind"] == "group_membership":
                right["group_arn"] = groups.get(right["key"])
                if right["group_arn"] is None:
                    snapshot.warnings.append(
                        f"{right['principal_arn']} is a member of {right['key']}, "
                        "a group the authorization details do not list"
                    )
            elif right["policy_arn"] and right["policy_arn"] not in self._policies:
                snapshot.warnings.append(
                    f"{right['principal_arn']} holds {right['policy_arn']}, "
                    "a policy the authorization details do not list"
                )
        snapshot.rights = self._rights

        for arn, (services, where) in sorted(self._advisor.items()):
            if arn in self._principals:
                self._usage_rows(arn, services, where, snapshot)
            else:
                snapshot.warnings.append(
                    f"{where}: {arn} is not in the authorization details; its usage is ignored"
                )
        _set_last_used(snapshot)
        return snapshot


def _value(row: dict, column: str, where: str) -> str:
    text = _check_text(row[column], f"{where}: {column}", MAX_LENGTHS[column])
    return "" if text in NO_VALUE else text


def _set_last_used(snapshot: Snapshot) -> None:
    """A principal's last use: the latest of role last used, credentials and Access Advisor."""

    def later(arn, moment, region=""):
        principal = snapshot.principals[arn]
        if moment and (principal["last_used_at"] is None or moment > principal["last_used_at"]):
            principal["last_used_at"] = moment
            principal["last_used_region"] = region or principal["last_used_region"]

    for right in snapshot.rights:
        if right["kind"] in ("access_key", "console_password"):
            later(right["principal_arn"], right["last_used_at"], right["last_used_region"])
    for usage in snapshot.service_usage:
        later(
            usage["principal_arn"],
            usage["last_authenticated_at"],
            usage["last_authenticated_region"],
        )

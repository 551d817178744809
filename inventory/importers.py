"""Import an account from the files the AWS CLI writes, for accounts Attest cannot read live.

Accepted files, recognised by their content:

- `aws iam get-account-authorization-details` output: one file, or one file per page.
- The credential report: the CSV itself, or `aws iam get-credential-report` output (JSON with
  the CSV base64-encoded in `Content`).
- Access Advisor: `aws iam get-service-last-accessed-details --job-id ...` output. AWS's answer
  does not name the principal, so the file must: add the principal's ARN as a top-level `"Arn"`
  key, for example `... | jq --arg arn "$ARN" '. + {Arn: $arn}' > advisor-NAME.json`. A file may
  also hold a JSON list of such objects, one per principal.

The whole import is checked before anything is written: a malformed file is refused with its
name and the field, and the inventory is left as it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from django.db import IntegrityError, transaction

from audit.trail import record
from inventory.accounts import save_account
from inventory.archive import Recorder
from inventory.models import ACCOUNT_ID_VALIDATOR, AwsAccount, CollectionRun
from inventory.parse import ParseError, SnapshotBuilder
from inventory.store import save_snapshot

AUTHORIZATION_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")


class ImportRefused(Exception):
    """An import that cannot start (bad account id, a collection already running)."""


@dataclass(frozen=True)
class ImportFile:
    name: str
    content: bytes


def read_files(paths: list[Path]) -> list[ImportFile]:
    files = []
    for path in paths:
        try:
            files.append(ImportFile(path.name, path.read_bytes()))
        except OSError as exc:
            raise ParseError(str(path), f"cannot read the file ({exc.strerror})") from None
    return files


def _kind_of(value, name: str) -> str:
    if isinstance(value, dict):
        if any(key in value for key in AUTHORIZATION_KEYS):
            return "authorization_details"
        if "ServicesLastAccessed" in value:
            return "access_advisor"
        if "Content" in value:
            return "credential_report"
    raise ParseError(
        name,
        "not a file Attest can import: expected GetAccountAuthorizationDetails output, "
        "a credential report, or Access Advisor details",
    )


def add_file(builder: SnapshotBuilder, file: ImportFile) -> str:
    """Read one file into the builder; returns the kind of file it was."""
    name = file.name
    try:
        text = file.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(name, f"not UTF-8 text (byte {exc.start})") from None
    if text.lstrip().startswith("user,arn,"):
        builder.add_credential_report(text, name)
        return "credential_report"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            name, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ParseError(name, "an empty list")
    kinds = set()
    for i, item in enumerate(items):
        where = f"{name}[{i}]" if isinstance(data, list) else name
        kind = _kind_of(item, where)
        kinds.add(kind)
        if kind == "authorization_details":
            builder.add_authorization_details(item, where)
        elif kind == "access_advisor":
            if "Arn" not in item:
                raise ParseError(
                    f"{where}.Arn",
                    "missing: Access Advisor answers do not name their principal; add its ARN "
                    'as a top-level "Arn" key',
                )
            builder.add_service_last_accessed(item["Arn"], item, where)
        else:
            content = item["Content"]
            if not isinstance(content, str):
                raise ParseError(f"{where}.Content", "expected base64 text")
            try:
                csv_text = base64.b64decode(content, validate=True).decode("utf-8-sig")
            except (binascii.Error, UnicodeDecodeError):
                raise ParseError(f"{where}.Content", "not a base64-encoded CSV report") from None
            builder.add_credential_report(csv_text, where)
    if len(kinds) > 1:
        raise ParseError(name, "a file holds one kind of answer")
    return kinds.pop()


def import_files(
    account_id: str, account_name: str, files: list[ImportFile], user=None
) -> CollectionRun:
    """Check every file, then save them as one complete import run of the account."""
    try:
        ACCOUNT_ID_VALIDATOR(account_id)
    except Exception:
        raise ImportRefused(f"{account_id!r} is not an AWS account id (12 digits)") from None
    if not files:
        raise ImportRefused("no files to import")
    builder = SnapshotBuilder(account_id)
    recorder = Recorder()
    sources = []
    for file in files:
        kind = add_file(builder, file)
        digest = hashlib.sha256(file.content).hexdigest()
        sources.append(
            {"file": file.name, "kind": kind, "sha256": digest, "bytes": len(file.content)}
        )
        recorder.add(
            {"file": file.name, "sha256": digest, "content": file.content.decode("utf-8-sig")}
        )
    if not builder.has_authorization_details:
        raise ParseError(
            ", ".join(file.name for file in files),
            "none of the files is GetAccountAuthorizationDetails output, which lists the "
            "principals: import it with the others",
        )
    snapshot = builder.build()
    if not builder.has_credential_report:
        snapshot.warnings.append("no credential report: passwords and access keys are not known")
    if not any(source["kind"] == "access_advisor" for source in sources):
        snapshot.warnings.append("no Access Advisor data: service usage is not known")

    with transaction.atomic():
        account = AwsAccount.objects.filter(account_id=account_id).first()
        if account is None:
            account = AwsAccount(
                account_id=account_id, name=account_name or account_id, mode=AwsAccount.Mode.IMPORT
            )
        elif account_name:
            account.name = account_name
        save_account(account, actor=user, actor_name="import")
        try:
            with transaction.atomic():
                run = CollectionRun.objects.create(
                    account=account,
                    source=CollectionRun.Source.IMPORT,
                    requested_by=user,
                    requested_by_name=user.get_username() if user else "",
                    sources=sources,
                    progress_total=len(snapshot.principals),
                )
                record(
                    "collection.started",
                    run,
                    actor=user,
                    after={"account": account_id, "source": "import"},
                )
        except IntegrityError:
            raise ImportRefused(
                f"a collection of account {account_id} is running; import when it has finished"
            ) from None
        save_snapshot(run, snapshot, recorder)
    return run

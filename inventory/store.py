"""Save what a collection saw as its account's current inventory, in one transaction.

Each table is compared with the rows the account's current run shows, by natural key: a row that
is new is inserted; one AWS no longer shows is marked removed by this run; one whose identity
changed (a recreated role, a rewritten inline policy, newer usage) is marked removed and inserted
again, so history keeps both; one whose observed details changed (tags, last used) is updated in
place. The run becomes complete and its account's current run in the same transaction, so a run
that fails at any point leaves the inventory exactly as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice

from django.db import connection, models, transaction
from django.utils import timezone

from audit.trail import record
from inventory.archive import Recorder
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
from inventory.parse import Snapshot
from inventory.signals import collection_completed

logger = logging.getLogger(__name__)

CHUNK = 2000


class RunNotRunning(Exception):
    """The run was finished by someone else (a sweeper, a second delivery) while it worked."""


@dataclass(frozen=True)
class Table:
    model: type[models.Model]
    key: tuple[str, ...]
    versioned: tuple[str, ...]
    observed: tuple[str, ...] = ()
    # Whether other rows point at this table's rows, so inserts must return their ids.
    referenced: bool = False

    @property
    def has_account(self) -> bool:
        return any(f.name == "account" for f in self.model._meta.fields)

    def current_rows(self, account: AwsAccount):
        qs = self.model.objects.current()
        if self.has_account:
            qs = qs.filter(account=account)
        elif self.model is PolicyVersion:
            qs = qs.filter(policy__account=account)
        else:
            qs = qs.filter(principal__account=account)
        return qs.order_by().values_list("pk", *self.key, *self.versioned, *self.observed)


PRINCIPALS = Table(
    Principal,
    key=("arn",),
    versioned=("kind", "aws_id"),
    observed=(
        "name",
        "path",
        "created_at",
        "tags",
        "trust_policy",
        "last_used_at",
        "last_used_region",
    ),
    referenced=True,
)
POLICIES = Table(
    ManagedPolicy,
    key=("arn",),
    versioned=("policy_id",),
    observed=(
        "name",
        "path",
        "aws_managed",
        "default_version_id",
        "description",
        "attachment_count",
        "created_at",
        "updated_at",
    ),
    referenced=True,
)
POLICY_VERSIONS = Table(
    PolicyVersion,
    key=("policy_id", "version_id"),
    versioned=("document",),
    observed=("is_default", "created_at"),
)
RIGHTS = Table(
    Right,
    key=("principal_id", "kind", "key"),
    versioned=("policy_id", "group_id", "document"),
    observed=(
        "status",
        "created_at",
        "last_used_at",
        "last_used_service",
        "last_used_region",
        "mfa_active",
    ),
)
SERVICE_USAGE = Table(
    ServiceUsage,
    key=("principal_id", "service_namespace"),
    versioned=(
        "service_name",
        "last_authenticated_at",
        "last_authenticated_entity",
        "last_authenticated_region",
        "total_authenticated_entities",
        "actions_tracked",
    ),
)
ACTION_USAGE = Table(
    ActionUsage,
    key=("principal_id", "service_namespace", "action"),
    versioned=("last_accessed_at", "last_accessed_entity", "last_accessed_region"),
)


def save_snapshot(run: CollectionRun, snapshot: Snapshot, recorder: Recorder | None = None) -> dict:
    """Write `snapshot` as the run's result and make the run its account's current one.

    Returns the changes per table. Raises RunNotRunning, and writes nothing, when the run is no
    longer running.
    """
    changes = {}
    with transaction.atomic():
        # One writer per account at a time; readers are not blocked.
        account = AwsAccount.objects.select_for_update().get(pk=run.account_id)
        principal_ids, changes["principals"] = _sync(
            PRINCIPALS, account, run, {(row["arn"],): row for row in snapshot.principals.values()}
        )
        policy_ids, changes["policies"] = _sync(
            POLICIES, account, run, {(row["arn"],): row for row in snapshot.policies.values()}
        )
        by_arn = {arn: principal_ids[(arn,)] for (arn,) in principal_ids}
        policy_by_arn = {arn: policy_ids[(arn,)] for (arn,) in policy_ids}

        versions = {}
        for row in snapshot.policy_versions:
            row = dict(row, policy_id=policy_by_arn[row["policy_arn"]])
            del row["policy_arn"]
            versions[(row["policy_id"], row["version_id"])] = row
        _, changes["policy_versions"] = _sync(POLICY_VERSIONS, account, run, versions)

        rights = {}
        for row in snapshot.rights:
            row = dict(
                row,
                principal_id=by_arn[row["principal_arn"]],
                policy_id=policy_by_arn.get(row["policy_arn"]),
                group_id=by_arn.get(row["group_arn"]),
            )
            for name in ("principal_arn", "policy_arn", "group_arn"):
                del row[name]
            rights[(row["principal_id"], row["kind"], row["key"])] = row
        _, changes["rights"] = _sync(RIGHTS, account, run, rights)

        _, changes["service_usage"] = _sync(
            SERVICE_USAGE,
            account,
            run,
            {
                (by_arn[row["principal_arn"]], row["service_namespace"]): _with_principal(
                    row, by_arn
                )
                for row in snapshot.service_usage
            },
        )
        _, changes["action_usage"] = _sync(
            ACTION_USAGE,
            account,
            run,
            {
                (by_arn[row["principal_arn"]], row["service_namespace"], row["action"]): (
                    _with_principal(row, by_arn)
                )
                for row in snapshot.action_usage
            },
        )

        finished = timezone.now()
        _keep_archive(run, recorder)
        done = CollectionRun.objects.filter(pk=run.pk, status=CollectionRun.Status.RUNNING).update(
            status=CollectionRun.Status.COMPLETE,
            finished_at=finished,
            heartbeat_at=finished,
            phase="",
            progress_done=models.F("progress_total"),
            counts={**snapshot.counts(), "changes": changes},
            warnings=snapshot.warnings,
            root_user=snapshot.root_user,
            raw_sha256=_archive_sha256(run),
            api_calls=run.api_calls,
            retries=run.retries,
            errors=run.errors,
            caller_arn=run.caller_arn,
            sources=run.sources,
        )
        if done != 1:
            raise RunNotRunning(f"run {run.uuid} is no longer running")
        account.current_run = run
        account.save(update_fields=["current_run"])
        run.refresh_from_db()
        record(
            "collection.completed",
            run,
            actor=run.requested_by,
            after={
                "account": account.account_id,
                "source": run.source,
                "counts": run.counts,
                "raw_sha256": run.raw_sha256,
                "files": [(f["file"], f["sha256"]) for f in run.sources],
            },
        )
        transaction.on_commit(
            lambda: collection_completed.send(sender=CollectionRun, account=account, run=run)
        )
    return changes


def fail_run(run: CollectionRun, errors: list[dict], recorder: Recorder | None = None) -> bool:
    """Mark a running run failed with its errors; the inventory stays as it was."""
    with transaction.atomic():
        running = CollectionRun.objects.select_for_update().filter(
            pk=run.pk, status=CollectionRun.Status.RUNNING
        )
        # Checked under the lock before the archive is written: a run finished elsewhere keeps
        # the archive its raw_sha256 names.
        done = running.exists()
        if done:
            _keep_archive(run, recorder)
            finished = timezone.now()
            running.update(
                status=CollectionRun.Status.FAILED,
                finished_at=finished,
                heartbeat_at=finished,
                errors=errors,
                api_calls=run.api_calls,
                retries=run.retries,
                caller_arn=run.caller_arn,
                sources=run.sources,
                raw_sha256=_archive_sha256(run),
            )
            record(
                "collection.failed",
                run,
                actor=run.requested_by,
                after={"account": run.account.account_id, "errors": errors},
            )
    run.refresh_from_db()
    return done


def _keep_archive(run: CollectionRun, recorder: Recorder | None) -> None:
    if recorder is None:
        return
    content, sha256, size = recorder.finish()
    RunArchive.objects.update_or_create(
        run=run, defaults={"content": content, "sha256": sha256, "size": size}
    )


def _archive_sha256(run: CollectionRun) -> str:
    return RunArchive.objects.filter(run=run).values_list("sha256", flat=True).first() or ""


def _with_principal(row: dict, by_arn: dict) -> dict:
    row = dict(row, principal_id=by_arn[row["principal_arn"]])
    del row["principal_arn"]
    return row


def _sync(table: Table, account: AwsAccount, run: CollectionRun, new: dict[tuple, dict]):
    """Make the table's current rows for `account` equal `new`; returns ids by key and changes."""
    width = len(table.key)
    versioned = slice(width + 1, width + 1 + len(table.versioned))
    observed = slice(versioned.stop, None)
    current = {row[1 : width + 1]: row for row in table.current_rows(account)}

    ids: dict[tuple, int] = {}
    close: list[int] = []
    insert: list[tuple[tuple, dict]] = []
    update: list[models.Model] = []
    added = 0
    for key, row in new.items():
        old = current.pop(key, None)
        if old is None:
            added += 1
        elif old[versioned] != tuple(row[f] for f in table.versioned):
            close.append(old[0])  # same key, new identity: a new version
        else:
            ids[key] = old[0]
            values = tuple(row[f] for f in table.observed)
            if old[observed] != values:
                update.append(
                    table.model(pk=old[0], **dict(zip(table.observed, values, strict=True)))
                )
            continue
        insert.append((key, row))
    changed = len(close) + len(update)
    close.extend(old[0] for old in current.values())

    for chunk in _chunks(close, CHUNK):
        table.model.objects.filter(pk__in=chunk).update(removed_run=run)
    if update:
        table.model.objects.bulk_update(update, list(table.observed), batch_size=500)
    rows = [dict(row, first_seen_run_id=run.pk, removed_run_id=None) for _, row in insert]
    if table.has_account:
        for row in rows:
            row["account_id"] = account.pk
    if table.referenced:
        created = table.model.objects.bulk_create(
            [table.model(**row) for row in rows], batch_size=CHUNK
        )
        ids.update((key, obj.pk) for (key, _), obj in zip(insert, created, strict=True))
    else:
        _insert(table.model, rows)
    return ids, {"added": added, "removed": len(current), "changed": changed}


def _chunks(items: list, size: int):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _insert(model: type[models.Model], rows: list[dict]) -> None:
    """Insert rows whose ids nobody needs; PostgreSQL takes them through COPY."""
    if not rows:
        return
    if connection.vendor != "postgresql" or len(rows) < 500:
        model.objects.bulk_create([model(**row) for row in rows], batch_size=CHUNK)
        return
    from psycopg.types.json import Jsonb

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = [f.attname for f in fields]
    json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {table} ({columns}) FROM STDIN"  # names from the model, not input
        ) as copy,
    ):
        for row in rows:
            copy.write_row(
                [
                    Jsonb(row[name]) if name in json_fields and row[name] is not None else row[name]
                    for name in names
                ]
            )

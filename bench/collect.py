"""Benchmark of a collection of a synthetic account of 5,000 principals.

Prints, one line per figure with its reference measured in the same run:
- the database write of a collection (5,000 principals, 50,000 rights, 200,000 usage rows) beside
  a raw PostgreSQL COPY of the very same rows into the same tables (goal: within 2x);
- AWS API calls per principal of a live collection against the AWS emulator of the test suite
  (moto with its Access Advisor extension, each job completing on its second poll) beside the
  least a collection can make: one GetAccountAuthorizationDetails page per 1,000 entities, two
  credential report calls, one Access Advisor job and two polls per principal (goal: 1.05x).

Run with `make bench`. It uses a database of its own, `<DATABASE_URL's name>_bench`, made anew.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup_django() -> str:
    import environ

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/attest")
    config = environ.Env.db_url_config(url)
    name = f"{config['NAME']}_bench"
    os.environ["DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or None,
        user=config["USER"],
        dbname="postgres",
        autocommit=True,
    ) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return name


def synthetic_snapshot(account_id: str, principals: int, rights_each: int, usage_each: int):
    """An account's snapshot: principals of every kind, each with `rights_each` rights and
    `usage_each` usage rows (half service level, half action level)."""
    from inventory.parse import Snapshot

    now = datetime(2026, 11, 1, tzinfo=UTC)
    snapshot = Snapshot(account_id)
    policies = [f"arn:aws:iam::{account_id}:policy/app/policy-{i}" for i in range(200)]
    for arn in policies:
        snapshot.policies[arn] = {
            "arn": arn, "name": arn.rsplit("/", 1)[1], "path": "/app/", "policy_id": "ANPA" + arn[-8:],
            "aws_managed": False, "default_version_id": "v1", "description": "",
            "attachment_count": 25, "created_at": now, "updated_at": now,
        }  # fmt: skip
        snapshot.policy_versions.append(
            {"policy_arn": arn, "version_id": "v1", "is_default": True, "created_at": now,
             "document": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "dynamodb:Query"], "Resource": "*"}]}}
        )  # fmt: skip
    kinds = ["role", "user", "role", "user", "group"]
    services = usage_each // 2
    for i in range(principals):
        kind = kinds[i % len(kinds)]
        arn = f"arn:aws:iam::{account_id}:{kind}/app/{kind}-{i:05d}"
        snapshot.principals[arn] = {
            "kind": kind, "arn": arn, "name": f"{kind}-{i:05d}", "path": "/app/",
            "aws_id": f"AROA{i:017d}", "created_at": now - timedelta(days=i % 900),
            "tags": {"owner": f"team-{i % 40}@example.com"}, "trust_policy": None,
            "last_used_at": now - timedelta(hours=i % 2000), "last_used_region": "ap-northeast-1",
        }  # fmt: skip
        for j in range(rights_each):
            policy = policies[(i + j) % len(policies)]
            snapshot.rights.append(
                {"principal_arn": arn, "kind": "managed_policy", "key": policy, "policy_arn": policy,
                 "group_arn": None, "document": None, "status": "", "created_at": None,
                 "last_used_at": None, "last_used_service": "", "last_used_region": "", "mfa_active": None}
            )  # fmt: skip
        for j in range(services):
            used = now - timedelta(days=(i + j) % 400) if (i + j) % 3 else None
            snapshot.service_usage.append(
                {"principal_arn": arn, "service_namespace": f"svc{j:02d}", "service_name": f"Service {j}",
                 "last_authenticated_at": used, "last_authenticated_entity": arn if used else "",
                 "last_authenticated_region": "ap-northeast-1" if used else "",
                 "total_authenticated_entities": 1 if used else 0, "actions_tracked": j < 4}
            )  # fmt: skip
            snapshot.action_usage.append(
                {"principal_arn": arn, "service_namespace": f"svc{j % 4:02d}", "action": f"Action{j:02d}",
                 "last_accessed_at": used, "last_accessed_entity": arn if used else "",
                 "last_accessed_region": "ap-northeast-1" if used else ""}
            )  # fmt: skip
    return snapshot


TABLES = [
    "inventory_principal",
    "inventory_managedpolicy",
    "inventory_policyversion",
    "inventory_right",
    "inventory_serviceusage",
    "inventory_actionusage",
]


def _reset():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE "
            + ", ".join(
                [*TABLES, "inventory_runarchive", "inventory_collectionrun", "inventory_awsaccount"]
            )
            + " CASCADE"
        )


def _new_run(account_id: str):
    from inventory.models import AwsAccount, CollectionRun

    account = AwsAccount.objects.create(account_id=account_id, name="bench")
    return CollectionRun.objects.create(account=account, source=CollectionRun.Source.IMPORT)


def measure_write(snapshot, rounds: int) -> tuple[float, float]:
    """Best time of our write and of a COPY of the same rows, alternating, `rounds` times."""
    from django.db import connection, transaction

    from inventory.store import save_snapshot

    ours, copies = [], []
    for _ in range(rounds):
        _reset()
        run = _new_run(snapshot.account_id)
        started = time.perf_counter()
        save_snapshot(run, snapshot)
        ours.append(time.perf_counter() - started)

        dumps = {}
        with connection.cursor() as cursor:
            for table in TABLES:
                buffer = io.BytesIO()
                with cursor.cursor.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                    for block in copy:
                        buffer.write(block)
                dumps[table] = buffer.getvalue()
            # CASCADE: campaigns' tables point at the inventory (they are empty here).
            cursor.execute("TRUNCATE " + ", ".join(TABLES) + " CASCADE")
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            for table in TABLES:
                with cursor.cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                    copy.write(dumps[table])
        copies.append(time.perf_counter() - started)
    return min(ours), min(copies)


def measure_api_calls(principals: int) -> tuple[dict, dict, float]:
    """Collect an emulated account of `principals` roles and users live; returns the calls the
    collector made by operation, the requests the emulator received, and the wall time."""
    import math
    from datetime import UTC, datetime

    from django.conf import settings
    from moto import mock_aws

    from inventory.collect import collect_run
    from inventory.models import AwsAccount, CollectionRun
    from tests.aws_emulator import OWN_ACCOUNT_ID, action_usage, emulate, service_usage

    settings.ACCESS_ADVISOR_POLL_SECONDS = 0
    settings.ACCESS_ADVISOR_POLL_MAX_SECONDS = 0
    os.environ.pop("AWS_ENDPOINT_URL", None)
    used = datetime(2026, 10, 1, tzinfo=UTC)
    with mock_aws(), emulate() as aws:
        iam = aws.session().client("iam")
        trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        for i in range(principals):
            if i % 2:
                arn = iam.create_role(RoleName=f"role-{i}", AssumeRolePolicyDocument=trust)["Role"][
                    "Arn"
                ]
            else:
                arn = iam.create_user(UserName=f"user-{i}")["User"]["Arn"]
            aws.usage[arn] = [
                service_usage(
                    "s3",
                    "Amazon S3",
                    last=used,
                    entity=arn,
                    actions=[action_usage("GetObject", last=used)],
                ),
                service_usage("dynamodb", "Amazon DynamoDB"),
            ]
        aws.requests.clear()
        _reset()
        account = AwsAccount.objects.create(account_id=OWN_ACCOUNT_ID, name="emulated")
        run = CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)
        started = time.perf_counter()
        run = collect_run(run.pk)
        elapsed = time.perf_counter() - started
        assert run.status == CollectionRun.Status.COMPLETE, run.errors
        entities = principals + run.counts["policies"]
        least = {
            "GetAccountAuthorizationDetails": math.ceil(entities / 1000),
            "GenerateCredentialReport": 1,
            "GetCredentialReport": 1,
            "GenerateServiceLastAccessedDetails": principals,
            "GetServiceLastAccessedDetails": 2 * principals,
        }
        return run.api_calls, least, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--principals", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database = _setup_django()
    print(f"# database {database}; {args.principals:,} principals", flush=True)

    snapshot = synthetic_snapshot("123456789012", args.principals, rights_each=10, usage_each=40)
    rows = (
        len(snapshot.principals)
        + len(snapshot.rights)
        + len(snapshot.service_usage)
        + len(snapshot.action_usage)
    )
    ours, copy = measure_write(snapshot, args.rounds)
    print(
        f"db write of a collection ({len(snapshot.principals):,} principals, "
        f"{len(snapshot.rights):,} rights, "
        f"{len(snapshot.service_usage) + len(snapshot.action_usage):,} usage rows, {rows:,} in all): "
        f"{ours:.2f} s; COPY of the same rows {copy:.2f} s; ratio {ours / copy:.2f}x (goal <= 2x)",
        flush=True,
    )

    calls, least, elapsed = measure_api_calls(args.principals)
    made, needed = sum(calls.values()), sum(least.values())
    print(
        f"api calls per principal ({args.principals:,} principals, emulator completing each job "
        f"on its second poll): {made / args.principals:.3f}; least possible "
        f"{needed / args.principals:.3f}; ratio {made / needed:.3f}x (goal <= 1.05x)",
        flush=True,
    )
    print(f"#   made  {calls}", flush=True)
    print(f"#   least {least}; collected in {elapsed:.1f} s", flush=True)


if __name__ == "__main__":
    main()

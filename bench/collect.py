"""Benchmark of a collection of a synthetic account of 5,000 principals.

Prints, one line per figure with its reference measured in the same run:
- the wall time of a collection against the AWS emulator of the test suite served over HTTP
  (moto with its Access Advisor extension) that throttles each account beyond 20 requests a
  second, beside the least time that limit allows: the calls the emulator answered / 20
  (goal: within 1.1x);
- the wall time of a collection when every call takes 40 ms and nothing is throttled, beside the
  same account collected with one thread and one Access Advisor job at a time (goal: 5x faster);
- the database write of a collection (5,000 principals, 50,000 rights, 200,000 usage rows) beside
  a raw PostgreSQL COPY of the very same rows into the same tables (goal: within 2x);
- AWS API calls per principal of a live collection against the AWS emulator of the test suite
  (moto with its Access Advisor extension, each job completing on its second poll) beside the
  least a collection can make: one GetAccountAuthorizationDetails page per 1,000 entities, two
  credential report calls, one Access Advisor job and two polls per principal (goal: 1.05x).

Then it collects several accounts, each throttled on its own at 20 requests a second, with 1, 2
and 4 real Celery worker processes (`celery -A config worker --pool=solo`, one task at a time
each) taking the accounts' tasks from Redis, and prints the wall time and speed-up of each.

Run with `make bench`. It uses a database of its own, `<DATABASE_URL's name>_bench`, made anew,
and the broker of CELERY_BROKER_URL, on a queue of its own.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import subprocess
import sys
import time
from contextlib import contextmanager
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


USED = datetime(2026, 10, 1, tzinfo=UTC)
READER_ROLE = "AttestReadOnly"
EXTERNAL_ID = "attest-bench"


@contextmanager
def emulator_server():
    """The test suite's AWS emulator served over HTTP by moto in this process; boto3 clients of
    this process and of the workers it starts find it through AWS_ENDPOINT_URL."""
    from tests.aws_emulator import FAKE_CREDENTIALS, emulate, moto_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with emulate() as aws, moto_server() as url:
        saved = {
            name: os.environ.get(name)
            for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        os.environ.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID=FAKE_CREDENTIALS["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=FAKE_CREDENTIALS["aws_secret_access_key"],
        )
        try:
            yield aws, url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def seed_account(aws, account_id: str, principals: int) -> None:
    """`principals` users and roles in the account, each with Access Advisor usage, a credential
    report ready, and (outside Attest's own account) the role Attest reads it through."""
    from tests.aws_emulator import OWN_ACCOUNT_ID, action_usage, service_usage

    iam = aws.session(account_id).client("iam")
    trust = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
         "Principal": {"AWS": f"arn:aws:iam::{OWN_ACCOUNT_ID}:root"},
         "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}}]}
    )  # fmt: skip
    if account_id != OWN_ACCOUNT_ID:
        iam.create_role(RoleName=READER_ROLE, AssumeRolePolicyDocument=trust)
    for i in range(principals):
        if i % 2:
            arn = iam.create_role(RoleName=f"role-{i}", AssumeRolePolicyDocument=trust)["Role"][
                "Arn"
            ]
        else:
            arn = iam.create_user(UserName=f"user-{i}")["User"]["Arn"]
        aws.usage[arn] = [
            service_usage("s3", "Amazon S3", last=USED, entity=arn,
                          actions=[action_usage("GetObject", last=USED)]),
            service_usage("dynamodb", "Amazon DynamoDB"),
        ]  # fmt: skip
    aws.credential_report(ready=True, account_id=account_id)


def _collect_once(account_id: str, **overrides) -> tuple[float, object]:
    """One live collection of the (own) account in this process: wall time and the run."""
    from django.test import override_settings

    from inventory.collect import collect_run
    from inventory.models import AwsAccount, CollectionRun

    _reset()
    account = AwsAccount.objects.create(account_id=account_id, name="emulated", role_arn="")
    run = CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)
    with override_settings(**overrides):
        started = time.perf_counter()
        run = collect_run(run.pk)
        elapsed = time.perf_counter() - started
    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    return elapsed, run


def measure_throttled(principals: int, rate: float) -> dict:
    """Collect an account the emulator throttles beyond `rate` requests a second (a burst of
    one second's worth, as token buckets of AWS allow); the reference is the calls it answered
    divided by the rate."""
    from tests.aws_emulator import OWN_ACCOUNT_ID

    with emulator_server() as (aws, _):
        seed_account(aws, OWN_ACCOUNT_ID, principals)
        aws.requests.clear()
        aws.throttled.clear()
        aws.limit(rate)
        elapsed, run = _collect_once(OWN_ACCOUNT_ID)
        answered = sum(aws.requests.values()) - sum(aws.throttled.values())
        return {
            "elapsed": elapsed,
            "answered": answered,
            "throttled": sum(aws.throttled.values()),
            "calls": sum(run.api_calls.values()),
            "retries": run.retries,
        }


def measure_latency(principals: int, latency: float) -> tuple[float, float, int]:
    """Collect an account whose every call takes `latency` seconds, unthrottled: with the
    defaults, then with one thread and one Access Advisor job at a time."""
    from tests.aws_emulator import OWN_ACCOUNT_ID

    with emulator_server() as (aws, _):
        seed_account(aws, OWN_ACCOUNT_ID, principals)
        aws.latency = latency
        ours, run = _collect_once(OWN_ACCOUNT_ID)
        single, _ = _collect_once(
            OWN_ACCOUNT_ID, COLLECT_CONCURRENCY=1, ACCESS_ADVISOR_JOB_WINDOW=1
        )
        return ours, single, sum(run.api_calls.values())


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_workers(count: int, url: str, queue: str, logs: Path) -> list[tuple]:
    celery = Path(sys.executable).parent / "celery"
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "ACCESS_ADVISOR_POLL_SECONDS": "0",
        "ACCESS_ADVISOR_POLL_MAX_SECONDS": "0",
    }
    for name in ("CELERY_BROKER_WRITE_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    workers = []
    for i in range(count):
        log = logs / f"worker-{count}-{i}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(celery), "-A", "config", "worker", "--pool=solo", "--loglevel=INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 f"--queues={queue}", f"--hostname=bench-{os.getpid()}-{count}-{i}@%h"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        workers.append((process, log))
    deadline = time.monotonic() + 120
    for process, log in workers:
        while b"ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
    return workers


def _stop_workers(workers) -> None:
    for process, _ in workers:
        process.terminate()
    for process, _ in workers:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_workers(accounts: int, principals: int, rate: float, counts: list[int]) -> list[dict]:
    """Collect `accounts` accounts, each throttled on its own at `rate` requests a second, with
    each number of worker processes of `counts`; the accounts' tasks go through Redis."""
    import tempfile

    from config import celery_app
    from inventory import tasks
    from inventory.models import AwsAccount, CollectionRun

    if celery_app.conf.task_always_eager:
        raise SystemExit("worker scaling needs a broker: set CELERY_BROKER_URL")
    queue = f"attest-bench-{os.getpid()}"
    celery_app.conf.task_default_queue = queue
    ids = [f"{210000000000 + i:012d}" for i in range(accounts)]
    results = []
    with emulator_server() as (aws, url), tempfile.TemporaryDirectory() as logs:
        for account_id in ids:
            seed_account(aws, account_id, principals)
        for count in counts:
            _reset()
            rows = [
                AwsAccount.objects.create(
                    account_id=account_id, name=f"bench {account_id}", external_id=EXTERNAL_ID,
                    role_arn=f"arn:aws:iam::{account_id}:role/{READER_ROLE}",
                )
                for account_id in ids
            ]  # fmt: skip
            workers = _start_workers(count, url, queue, Path(logs))
            try:
                cpu = sum(_cpu_seconds(process.pid) for process, _ in workers)
                aws.limit(rate)
                before = sum(aws.requests.values()) - sum(aws.throttled.values())
                started = time.perf_counter()
                runs = tasks.start_collections(rows)
                while CollectionRun.objects.filter(
                    pk__in=[run.pk for run in runs], status=CollectionRun.Status.RUNNING
                ).exists():
                    if any(process.poll() is not None for process, _ in workers):
                        raise RuntimeError("a worker died")
                    time.sleep(0.1)
                elapsed = time.perf_counter() - started
                cpu = sum(_cpu_seconds(process.pid) for process, _ in workers) - cpu
            finally:
                aws.limit(None)
                _stop_workers(workers)
            done = CollectionRun.objects.filter(pk__in=[run.pk for run in runs])
            failed = [run.errors for run in done if run.status != CollectionRun.Status.COMPLETE]
            assert not failed, failed
            calls = sum(aws.requests.values()) - sum(aws.throttled.values()) - before
            results.append({"workers": count, "elapsed": elapsed, "calls": calls, "cpu": cpu})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--principals", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="emulator's requests a second")
    parser.add_argument("--throttled-principals", type=int, default=500)
    parser.add_argument("--latency-principals", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.04, help="seconds per call")
    parser.add_argument("--accounts", type=int, default=4, help="accounts of the worker figure")
    parser.add_argument("--account-principals", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4", help="worker processes to try")
    parser.add_argument(
        "--only", choices=["write", "calls", "throttled", "latency", "workers"], action="append"
    )
    args = parser.parse_args()
    only = set(args.only or ["write", "calls", "throttled", "latency", "workers"])
    database = _setup_django()
    print(f"# database {database}; {args.principals:,} principals", flush=True)

    if "write" in only:
        snapshot = synthetic_snapshot(
            "123456789012", args.principals, rights_each=10, usage_each=40
        )
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
            f"{len(snapshot.service_usage) + len(snapshot.action_usage):,} usage rows, "
            f"{rows:,} in all): {ours:.2f} s; COPY of the same rows {copy:.2f} s; "
            f"ratio {ours / copy:.2f}x (goal <= 2x)",
            flush=True,
        )

    if "calls" in only:
        calls, least, elapsed = measure_api_calls(args.principals)
        made, needed = sum(calls.values()), sum(least.values())
        print(
            f"api calls per principal ({args.principals:,} principals, emulator completing each "
            f"job on its second poll): {made / args.principals:.3f}; least possible "
            f"{needed / args.principals:.3f}; ratio {made / needed:.3f}x (goal <= 1.05x)",
            flush=True,
        )
        print(f"#   made  {calls}", flush=True)
        print(f"#   least {least}; collected in {elapsed:.1f} s", flush=True)

    from django.conf import settings

    settings.ACCESS_ADVISOR_POLL_SECONDS = 0
    settings.ACCESS_ADVISOR_POLL_MAX_SECONDS = 0
    if "throttled" in only:
        found = measure_throttled(args.throttled_principals, args.rate)
        floor = found["answered"] / args.rate
        print(
            f"collection against an emulator throttling at {args.rate:g} requests/s "
            f"({args.throttled_principals:,} principals, over HTTP): {found['elapsed']:.1f} s; "
            f"calls answered / {args.rate:g} = {floor:.1f} s; "
            f"ratio {found['elapsed'] / floor:.3f}x (goal <= 1.1x)",
            flush=True,
        )
        print(
            f"#   {found['answered']} calls answered ({found['calls']} made by the collector), "
            f"{found['throttled']} throttled, {found['retries']} retried; the emulator's burst "
            f"of {args.rate:g} requests makes the floor {(found['answered'] - args.rate) / args.rate:.1f} s",
            flush=True,
        )

    if "latency" in only:
        ours, single, calls = measure_latency(args.latency_principals, args.latency)
        print(
            f"collection at {args.latency * 1000:g} ms a call, unthrottled "
            f"({args.latency_principals:,} principals, {calls:,} calls, over HTTP): {ours:.1f} s; "
            f"one thread, one job at a time {single:.1f} s; {single / ours:.1f}x faster "
            f"(goal >= 5x)",
            flush=True,
        )

    if "workers" in only:
        counts = [int(count) for count in args.workers.split(",")]
        results = measure_workers(args.accounts, args.account_principals, args.rate, counts)
        first = results[0]
        for result in results:
            count = result["workers"]
            print(
                f"collection of {args.accounts} accounts x {args.account_principals} principals, "
                f"each throttled at {args.rate:g} requests/s, with {count} worker process(es): "
                f"{result['elapsed']:.1f} s; speed-up {first['elapsed'] / result['elapsed']:.2f}x "
                f"(ideal {min(count, args.accounts) / min(first['workers'], args.accounts):.0f}x); "
                f"{result['calls']} calls, {1000 * result['cpu'] / result['calls']:.1f} ms of "
                "worker CPU per call",
                flush=True,
            )
        per_account = math.ceil(results[-1]["calls"] / args.accounts) / args.rate
        print(f"#   floor per account: {per_account:.1f} s", flush=True)


if __name__ == "__main__":
    main()

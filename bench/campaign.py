"""Benchmark of a campaign of 100,000 items, from launch to evidence.

Prints, one line per figure with its reference measured in the same run:
- launching the campaign (10,000 principals of 10 rights each, 10 reviewers) beside an
  INSERT ... SELECT of the very same item rows into the same table (goal: within 3x);
- the reviewer's queue served by gunicorn (2 workers, loopback, driven by wrk) beside a trivial
  view behind the same sign-in on the same server: throughput (goal: at least half the trivial
  view's), p95 latency (goal: 150 ms at most) and queries per page at different offsets
  (goal: the same for every page);
- the time and queries of the main pages on that campaign (reviewer queue, campaign dashboard,
  campaign items, remediations), served in-process;
- one bulk decision on a reviewer's 10,000 items, with its Decision rows and audit events,
  beside one UPDATE of the same rows (goal: within 5x);
- the evidence export of the campaign, in a process of its own, beside a COPY TO of the rows it
  is made of (goal: within 3x; the medians of three of each, in turn, as the machine's speed
  swings by a third from minute to minute), and that process's peak RSS (goal: 250 MB at most).
The campaign is closed before the last pages and the export (the unanswered items get the
default outcome, and their remediations wait for approval), so that they show it whole.

Run with `make bench`. It uses a database of its own, `<DATABASE_URL's name>_bench_campaign`,
made anew, and needs `wrk` (the Makefile installs it). While working on one figure,
`--keep` reuses the database of an earlier run (its inventory, and its open campaign unless the
launch is measured again) and `--only launch --only queue` measures those figures alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ACCOUNT_ID = "210987654321"
SERVICES = 20
FIGURES = ("launch", "queue", "pages", "bulk", "close", "export")


def _database_url() -> tuple[str, dict]:
    import environ

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/attest")
    config = environ.Env.db_url_config(url)
    name = config["NAME"]
    if not name.endswith("_bench_campaign"):  # the export's process inherits the bench's
        name += "_bench_campaign"
    return url.rsplit("/", 1)[0] + "/" + name, config


def _environment(static_root: str) -> None:
    """What the benchmark's processes share: the bench database, plain HTTP on loopback (which
    production redirects to HTTPS), and collected static files as a deployment has them."""
    os.environ["DATABASE_URL"] = _database_url()[0]
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["DEBUG"] = "false"
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ["SECURE_COOKIES"] = "false"
    os.environ["STATIC_ROOT"] = static_root
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"


def _setup_django(static_root: str, *, fresh: bool, keep: bool = False) -> tuple[str, bool]:
    """The bench database's name, and whether it was made anew: with `keep`, the database of an
    earlier run is kept if it holds the inventory (it is migrated, in case the code moved on)."""
    url, config = _database_url()
    _environment(static_root)
    name = url.rsplit("/", 1)[1]
    if fresh:
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=config["HOST"],
            port=config["PORT"] or None,
            user=config["USER"],
            dbname="postgres",
            autocommit=True,
        ) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if keep and exists:
                fresh = False
            else:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
                )
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    import django

    django.setup()
    # Each sign-in of the benchmark's clients would log a line.
    logging.getLogger("axes").setLevel(logging.WARNING)
    if fresh or keep:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
    if keep and not fresh:
        from inventory.models import AwsAccount

        if not AwsAccount.objects.filter(account_id=ACCOUNT_ID).exists():
            raise SystemExit(f"{name} holds no inventory of an earlier run: run without --keep")
    return name, fresh


# The inventory ----------------------------------------------------------------------------------


def synthetic_snapshot(principals: int, rights_each: int, reviewers: int):
    """An account's snapshot: roles, each with `rights_each` managed policies out of 200 (one
    in ten privileged), usage of 10 services of 20 (half used, two tracked to the action) and
    an owner tag naming one of `reviewers` people. (Not IAM users: one tagged with its owner is
    that person's own access, which they cannot review.)"""
    from inventory.parse import Snapshot

    now = datetime.now(UTC).replace(microsecond=0)
    snapshot = Snapshot(ACCOUNT_ID)
    policies = [f"arn:aws:iam::{ACCOUNT_ID}:policy/app/policy-{i:03d}" for i in range(200)]
    for p, arn in enumerate(policies):
        statements = [
            {"Effect": "Allow", "Action": [f"svc{(p + k) % SERVICES:02d}:{verb}*" for k, verb in enumerate(["Get", "Put", "List"])], "Resource": "*"},
        ]  # fmt: skip
        if p % 10 == 0:
            statements.append({"Effect": "Allow", "Action": "iam:*", "Resource": "*"})
        snapshot.policies[arn] = {
            "arn": arn, "name": arn.rsplit("/", 1)[1], "path": "/app/", "policy_id": "ANPA" + arn[-8:],
            "aws_managed": False, "default_version_id": "v1", "description": "",
            "attachment_count": principals * rights_each // len(policies), "created_at": now, "updated_at": now,
        }  # fmt: skip
        snapshot.policy_versions.append(
            {"policy_arn": arn, "version_id": "v1", "is_default": True, "created_at": now,
             "document": {"Version": "2012-10-17", "Statement": statements}}
        )  # fmt: skip
    for i in range(principals):
        kind = "role"
        arn = f"arn:aws:iam::{ACCOUNT_ID}:{kind}/app/{kind}-{i:05d}"
        snapshot.principals[arn] = {
            "kind": kind, "arn": arn, "name": f"{kind}-{i:05d}", "path": "/app/",
            "aws_id": f"AROA{i:017d}", "created_at": now - timedelta(days=400 + i % 900),
            "tags": {"owner": f"team-{i % reviewers}@example.com"}, "trust_policy": None,
            "last_used_at": now - timedelta(hours=i % 2000), "last_used_region": "ap-northeast-1",
        }  # fmt: skip
        for j in range(rights_each):
            policy = policies[(i * 7 + j * 13) % len(policies)]
            snapshot.rights.append(
                {"principal_arn": arn, "kind": "managed_policy", "key": policy, "policy_arn": policy,
                 "group_arn": None, "document": None, "status": "", "created_at": None,
                 "last_used_at": None, "last_used_service": "", "last_used_region": "", "mfa_active": None}
            )  # fmt: skip
        for j in range(10):
            namespace = f"svc{(i + j) % SERVICES:02d}"
            used = now - timedelta(days=(i + j) % 200) if (i + j) % 2 else None
            snapshot.service_usage.append(
                {"principal_arn": arn, "service_namespace": namespace, "service_name": f"Service {namespace}",
                 "last_authenticated_at": used, "last_authenticated_entity": arn if used else "",
                 "last_authenticated_region": "ap-northeast-1" if used else "",
                 "total_authenticated_entities": 1 if used else 0, "actions_tracked": j < 2}
            )  # fmt: skip
            if j < 2:
                snapshot.action_usage.append(
                    {"principal_arn": arn, "service_namespace": namespace, "action": "GetThing",
                     "last_accessed_at": used, "last_accessed_entity": arn if used else "",
                     "last_accessed_region": "ap-northeast-1" if used else ""}
                )  # fmt: skip
    return snapshot


def build_world(principals: int, rights_each: int, reviewers: int):
    """The account with its current collection, the reviewers and the manager; untimed."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from config import roles
    from inventory.models import AwsAccount, CollectionRun
    from inventory.store import save_snapshot

    users = get_user_model()
    manager = users.objects.create_user("max.manager", "max.manager@example.com", "bench")
    manager.groups.add(Group.objects.get(name=roles.MANAGER))
    team = []
    for k in range(reviewers):
        user = users.objects.create_user(f"team-{k}", f"team-{k}@example.com", "bench")
        user.groups.add(Group.objects.get(name=roles.REVIEWER))
        team.append(user)
    account = AwsAccount.objects.create(account_id=ACCOUNT_ID, name="bench", owner=manager)
    run = CollectionRun.objects.create(account=account, source=CollectionRun.Source.IMPORT)
    save_snapshot(run, synthetic_snapshot(principals, rights_each, reviewers))
    _analyze()
    return manager, team, account


def existing_world(reviewers: int):
    """The manager, reviewers and account of an earlier run's database (--keep)."""
    from django.contrib.auth import get_user_model

    from inventory.models import AwsAccount

    users = get_user_model().objects
    team = [users.get(username=f"team-{k}") for k in range(reviewers)]
    return users.get(username="max.manager"), team, AwsAccount.objects.get(account_id=ACCOUNT_ID)


def open_campaign():
    """The campaign an earlier run launched and left open with nothing decided (--keep), or
    None."""
    from reviews.models import Campaign

    return (
        Campaign.objects.filter(name="Bench", state=Campaign.State.ACTIVE)
        .exclude(items__decided_at__isnull=False)
        .last()
    )


def closed_campaign():
    """The campaign an earlier run closed (--keep --only export), or None."""
    from reviews.models import Campaign

    return Campaign.objects.filter(name="Bench", state=Campaign.State.CLOSED).last()


def drop_open_campaigns() -> None:
    """The open campaigns of earlier runs, removed before another launch (--keep), so that the
    reviewers' queues hold one campaign. Audit events name them without a foreign key."""
    from django.db import connection

    from reviews.models import Campaign

    for campaign in Campaign.objects.filter(name="Bench", state=Campaign.State.ACTIVE):
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM reviews_decision WHERE item_id IN "
                "(SELECT id FROM reviews_reviewitem WHERE campaign_id = %s)",
                [campaign.pk],
            )
            cursor.execute("DELETE FROM reviews_reviewitem WHERE campaign_id = %s", [campaign.pk])
        campaign.accounts.clear()
        campaign.runs.clear()
        campaign.delete()


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# Launch -----------------------------------------------------------------------------------------


def measure_launch(manager, account):
    """Our launch, and an INSERT ... SELECT of the rows it wrote into another campaign."""
    from django.db import connection, transaction
    from django.utils import timezone

    from reviews.launch import launch, new_campaign
    from reviews.models import RemediationStart, ReviewItem

    due = timezone.localdate() + timedelta(days=30)
    campaign = new_campaign(name="Bench", owner=manager, due_date=due, accounts=[account])
    # Revocations wait for the manager's approval when the campaign closes: no task is queued
    # for each of them (there is no AWS account behind the inventory).
    campaign.rules["remediation_start"] = RemediationStart.AFTER_APPROVAL
    campaign.save(update_fields=["rules"])
    started = time.perf_counter()
    campaign = launch(campaign, by=manager)
    ours = time.perf_counter() - started

    other = new_campaign(name="Reference", owner=manager, due_date=due, accounts=[account])
    columns = [
        f.column for f in ReviewItem._meta.concrete_fields if f.column not in ("id", "campaign_id")
    ]
    chosen = ", ".join("gen_random_uuid()" if c == "uuid" else c for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_items AS SELECT * FROM reviews_reviewitem "
            "WHERE campaign_id = %s",
            [campaign.pk],
        )
        started = time.perf_counter()
        with transaction.atomic():
            cursor.execute(
                f"INSERT INTO reviews_reviewitem (campaign_id, {', '.join(columns)}) "
                f"SELECT %s, {chosen} FROM bench_items",
                [other.pk],
            )
        reference = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_items")
        cursor.execute("DELETE FROM reviews_reviewitem WHERE campaign_id = %s", [other.pk])
    other.accounts.clear()
    other.delete()
    _analyze()
    return campaign, ours, reference


# Pages ------------------------------------------------------------------------------------------


def _client(user):
    from django.test import Client

    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    return client


def measure_page(client, url: str, repeat: int) -> tuple[float, int]:
    """The median time of `repeat` requests of the page, and the queries of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(times), len(queries)


def measure_pages(campaign, reviewer, manager, repeat: int) -> list[tuple[str, list]]:
    """Each main page at its first, a middle and its last page:
    (name, [(page, ms, queries)], rows listed or None)."""
    from django.urls import reverse

    from reviews.views.manager import PAGE_SIZE

    mine = campaign.items.filter(reviewer=reviewer).count()
    remediations = campaign.remediations.count()
    pages = {
        "reviewer queue": (reviewer, reverse("reviews:queue"), mine),
        "campaign dashboard": (manager, reverse("reviews:campaign", args=[campaign.uuid]), None),
        "campaign items": (
            manager,
            reverse("reviews:campaign-items", args=[campaign.uuid]),
            campaign.item_count,
        ),
        "remediations": (
            manager,
            reverse("reviews:remediations", args=[campaign.uuid]),
            remediations,
        ),
    }
    results = []
    for name, (user, url, rows) in pages.items():
        client = _client(user)
        last = max(1, -(-(rows or 0) // PAGE_SIZE))
        numbers = sorted({1, (last + 1) // 2, last}) if rows else [1]  # None: not a list
        found = []
        for number in numbers:
            elapsed, queries = measure_page(client, f"{url}?page={number}", repeat)
            found.append((number, elapsed * 1000, queries))
        results.append((name, found, rows))
    return results


# The reviewer's page under load -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_cookie(user) -> str:
    from django.conf import settings

    client = _client(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _wrk(url: str, cookie: str, seconds: int, connections: int) -> tuple[float, float]:
    """Requests a second and p95 latency in ms of `url`, driven by wrk on 1 thread (the other
    core serves)."""
    script = (
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('p95_us %d\\nerrors %d\\n', latency:percentile(95),\n"
        "    summary.errors.status + summary.errors.connect + summary.errors.read\n"
        "    + summary.errors.write + summary.errors.timeout))\n"
        "end\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua.name,
             "-H", f"Cookie: {cookie}", url],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p95 = int(re.search(r"p95_us (\d+)", out).group(1)) / 1000
    errors = int(re.search(r"errors (\d+)", out).group(1))
    if errors or "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors on {url}:\n{out}")
    return rate, p95


def measure_load(reviewer, seconds: int, connections: int) -> dict:
    """The reviewer's queue and the trivial view, each driven by wrk, on one gunicorn."""
    from django.urls import reverse

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application",
         "--workers", "2", "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT),
         "--env", "DJANGO_SETTINGS_MODULE=bench.settings", "--log-level", "warning"],
        env=os.environ.copy(),
    )  # fmt: skip
    try:
        cookie = _session_cookie(reviewer)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        pages = {"trivial": "/bench/trivial/", "queue": reverse("reviews:queue")}
        for path in pages.values():  # warm both workers
            _wrk(base + path, cookie, 2, connections)
        found = {}
        for name, path in pages.items():
            found[name] = _wrk(base + path, cookie, seconds, connections)
        return found
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


# Bulk decision ----------------------------------------------------------------------------------


def measure_bulk(campaign, reviewer):
    """decide_many on the reviewer's items (revoke, with a reason), and one UPDATE of the same
    rows, committed and then undone (untimed) before ours runs."""
    from django.db import connection, transaction

    from reviews.decide import Choice, decide_many
    from reviews.models import ReviewItem

    ids = list(campaign.items.filter(reviewer=reviewer).values_list("pk", flat=True))
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reviews_reviewitem SET decision = 'revoke', decided_at = now(), "
            "version = version + 1 WHERE id = ANY(%s) AND decision = ''",
            [ids],
        )
        assert cursor.rowcount == len(ids)
    reference = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reviews_reviewitem SET decision = '', decided_at = NULL, "
            "version = version - 1 WHERE id = ANY(%s)",
            [ids],
        )
    _analyze()

    # As the bulk decision's view reads them, before it decides.
    items = list(
        ReviewItem.objects.filter(pk__in=ids).select_related("campaign", "reviewer").order_by("pk")
    )
    started = time.perf_counter()
    decided = decide_many(items, reviewer, Choice("revoke", reason="Not needed any more."))
    ours = time.perf_counter() - started
    assert decided == len(ids)
    return len(ids), ours, reference


# Evidence ---------------------------------------------------------------------------------------


def export_child(campaign_uuid: str, path: str) -> None:
    """In a process of its own: the evidence export, its time on stdout."""
    from reviews import evidence
    from reviews.models import Campaign

    campaign = Campaign.objects.get(uuid=campaign_uuid)
    started = time.perf_counter()
    with open(path, "wb") as out:
        evidence.build(campaign, out, by=campaign.owner)
    elapsed = time.perf_counter() - started
    # The high-water mark of this process's own memory: ru_maxrss would also count the parent's
    # at the fork that started it.
    status = Path("/proc/self/status").read_text()
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
    print(f"{elapsed:.6f} {peak:.1f}")


def copy_reference(campaign, path: str) -> float:
    """COPY TO of the rows the package is made of: the items, the decisions, the remediations
    and the campaign's stretch of the audit trail, to a file."""
    from django.db import connection

    from audit.models import AuditEvent

    first = (
        AuditEvent.objects.for_object("reviews.campaign", campaign.pk)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    queries = [
        f"SELECT * FROM reviews_reviewitem WHERE campaign_id = {campaign.pk} "
        "ORDER BY account_id, principal_arn, right_kind, right_key, id",
        "SELECT d.* FROM reviews_decision d JOIN reviews_reviewitem i ON i.id = d.item_id "
        f"WHERE i.campaign_id = {campaign.pk}",
        f"SELECT * FROM reviews_remediation WHERE campaign_id = {campaign.pk}",
        f"SELECT * FROM audit_auditevent WHERE id >= {first} ORDER BY id",
    ]
    started = time.perf_counter()
    with open(path, "wb") as out, connection.cursor() as cursor:
        for query in queries:
            with cursor.cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
                for block in copy:
                    out.write(block)
    return time.perf_counter() - started


def measure_export(
    campaign, static_root: str, workdir: str, runs: int
) -> tuple[list[float], list[float], float, int]:
    """The export's times and its reference's, measured in turn `runs` times, so that each
    pair meets the machine in about the same mood; the export's largest peak RSS and its size."""
    from django.db import connection

    ours, references, peak = [], [], 0.0
    package = os.path.join(workdir, "evidence.zip")
    for _ in range(runs):
        references.append(copy_reference(campaign, os.path.join(workdir, "copy.csv")))
        connection.close()
        out = subprocess.run(
            [sys.executable, __file__, "--export", str(campaign.uuid), package,
             "--static-root", static_root],
            check=True, stdout=subprocess.PIPE, text=True,
        ).stdout  # fmt: skip
        elapsed, rss = map(float, out.split()[-2:])
        ours.append(elapsed)
        peak = max(peak, rss)
    return ours, references, peak, os.path.getsize(package)


def report_export(campaign, items: int, static_root: str, workdir: str, runs: int) -> None:
    ours, references, peak, size = measure_export(campaign, static_root, workdir, runs)
    mine, reference = statistics.median(ours), statistics.median(references)
    spread = (
        f" (medians of {runs} runs in turn: ours {min(ours):.2f} to {max(ours):.2f} s, "
        f"the reference {min(references):.2f} to {max(references):.2f} s)"
        if runs > 1
        else ""
    )
    print(
        f"evidence export of the {items:,}-item campaign ({size / 2**20:.0f} MiB ZIP): "
        f"{mine:.2f} s, peak RSS {peak:.0f} MB; COPY TO of the same rows {reference:.2f} s; "
        f"ratio {mine / reference:.2f}x{spread} (goal <= 3x, peak RSS <= 250 MB)",
        flush=True,
    )


# ------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--principals", type=int, default=10000)
    parser.add_argument("--rights", type=int, default=10, help="rights of each principal")
    parser.add_argument("--reviewers", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=15, help="of wrk for each page")
    parser.add_argument("--connections", type=int, default=4, help="of wrk")
    parser.add_argument("--repeat", type=int, default=5, help="requests of each page in-process")
    parser.add_argument(
        "--export-runs", type=int, default=3, help="exports, each after its reference, for medians"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=FIGURES,
        help="measure this figure alone (repeatable); 'close' closes the campaign, then measures "
        "the closed pages and the export; 'export' alone, with --keep, exports the campaign an "
        "earlier run closed",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="reuse the database of an earlier run (and its open campaign, unless the launch is "
        "measured) rather than make it anew; the sizes must be the same",
    )
    parser.add_argument("--export", nargs=2, metavar=("CAMPAIGN", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--static-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        _setup_django(args.static_root, fresh=False)
        export_child(*args.export)
        return

    only = set(args.only or FIGURES)
    workdir = tempfile.mkdtemp(prefix="attest-bench-")
    try:
        static_root = os.path.join(workdir, "static")
        database, fresh = _setup_django(static_root, fresh=True, keep=args.keep)
        items = args.principals * args.rights
        print(
            f"# database {database}; {args.principals:,} principals of {args.rights} rights, "
            f"{args.reviewers} reviewers",
            flush=True,
        )
        if fresh:
            started = time.perf_counter()
            manager, team, account = build_world(args.principals, args.rights, args.reviewers)
            print(f"#   inventory written in {time.perf_counter() - started:.1f} s", flush=True)
        else:
            manager, team, account = existing_world(args.reviewers)
            print("#   inventory of an earlier run kept", flush=True)

        closed = None if fresh or only != {"export"} else closed_campaign()
        if closed is not None:
            print(f"#   closed campaign of an earlier run kept ({closed.item_count:,} items)")
            report_export(closed, items, static_root, workdir, args.export_runs)
            return
        campaign = None if fresh else open_campaign()
        if "launch" in only or campaign is None:
            if not fresh:
                drop_open_campaigns()
            campaign, ours, reference = measure_launch(manager, account)
            assert campaign.item_count == items, campaign.item_count
            print(
                f"launch of a {items:,}-item campaign: {ours:.2f} s; INSERT ... SELECT of the "
                f"same rows {reference:.2f} s; ratio {ours / reference:.2f}x (goal <= 3x)",
                flush=True,
            )
        else:
            print(
                f"#   campaign of an earlier run kept ({campaign.item_count:,} items)", flush=True
            )

        pages = []
        if "queue" in only:
            load = measure_load(team[2], args.seconds, args.connections)
            (trivial_rate, trivial_p95), (rate, p95) = load["trivial"], load["queue"]
        if only & {"queue", "pages"}:
            pages = measure_pages(campaign, team[2], manager, args.repeat)
        if "queue" in only:
            queue_queries = [queries for _, _, queries in pages[0][1]]
            constant = "constant" if len(set(queue_queries)) == 1 else "NOT constant"
            print(
                f"reviewer queue on the {items:,}-item campaign (gunicorn, 2 workers, wrk "
                f"{args.connections} connections, loopback): {rate:.0f} req/s, p95 {p95:.0f} ms; "
                f"trivial signed-in view {trivial_rate:.0f} req/s, p95 {trivial_p95:.0f} ms; "
                f"ratio {rate / trivial_rate:.2f}x (goal >= 0.5x, p95 <= 150 ms); queries "
                f"{'/'.join(map(str, queue_queries))} at pages "
                f"{'/'.join(str(n) for n, _, _ in pages[0][1])}, {constant} (goal constant)",
                flush=True,
            )
        if "close" not in only:
            for name, found, rows in pages:
                times = ", ".join(f"page {n} {ms:.0f} ms/{q} queries" for n, ms, q in found)
                size = "" if rows is None else f" ({rows:,} rows)"
                print(f"page: {name}{size}: {times}", flush=True)

        if "bulk" in only:
            decided, ours, reference = measure_bulk(campaign, team[0])
            print(
                f"bulk decision on {decided:,} items: {ours:.2f} s; one UPDATE of the same rows "
                f"{reference:.2f} s; ratio {ours / reference:.2f}x (goal <= 5x)",
                flush=True,
            )
        if not only & {"close", "export"}:
            return

        from reviews.decide import close

        started = time.perf_counter()
        close(campaign, by=manager)
        campaign.refresh_from_db()
        print(
            f"#   closed in {time.perf_counter() - started:.1f} s: "
            f"{campaign.remediations.count():,} remediations planned",
            flush=True,
        )
        _analyze()
        for name, found, rows in measure_pages(campaign, team[2], manager, args.repeat):
            if name == "reviewer queue":
                continue  # closed, the campaign is out of the queue: measured while open
            pages.append((name + " (closed)", found, rows))
        for name, found, rows in pages:
            times = ", ".join(f"page {n} {ms:.0f} ms/{q} queries" for n, ms, q in found)
            size = "" if rows is None else f" ({rows:,} rows)"
            print(f"page: {name}{size}: {times}", flush=True)

        report_export(campaign, items, static_root, workdir, args.export_runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

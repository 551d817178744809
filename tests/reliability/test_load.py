"""Forty reviewers deciding for ten minutes on a campaign of 100,000 items, served by gunicorn on
loopback and driven by locust, while a Celery worker collects an AWS account (moto over HTTP)
again and again and the campaign's evidence package is exported again and again.

What must hold: no answer is a 5xx, every decision a reviewer was told was saved is there once
(one Decision row, one audit event), no item is decided twice, every collection completes, every
export verifies, and the audit chain verifies. The figures (requests, decision p95, counts) are
written to test-artifacts/reliability/load.json and reported in docs/reliability.md; they are
not asserted. `RELIABILITY_LOAD_SECONDS` (600) and `RELIABILITY_LOAD_USERS` (40) set the run.
"""

import csv
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent
from inventory import tasks as inventory_tasks
from inventory.models import CollectionRun
from reviews.launch import launch, new_campaign
from reviews.models import Decision, ReviewItem
from tests import factories
from tests.aws_emulator import OWN_ACCOUNT_ID
from tests.reliability.conftest import BROKER_URL, assert_nothing_lost
from tests.reliability.test_worker_faults import WORKER_ENVIRONMENT, users_with_inline_policies
from tests.reviews.test_remediation_worker import Worker, worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.reliability]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECONDS = int(os.environ.get("RELIABILITY_LOAD_SECONDS", "600"))
USERS = int(os.environ.get("RELIABILITY_LOAD_USERS", "40"))
PRINCIPALS, RIGHTS_EACH = 10_000, 10  # 100,000 items
CSRF = "reliabilityloadcsrftoken00000000"  # 32 characters: a CSRF secret as Django keeps it
ARTIFACTS = ROOT / "test-artifacts" / "reliability"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(static_root: Path) -> dict[str, str]:
    """gunicorn's and the export's: the test database, plain HTTP on loopback (which production
    redirects to HTTPS), and static files collected as a deployment has them."""
    env = {
        **os.environ,
        "STATIC_ROOT": str(static_root),
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("CELERY_BROKER_WRITE_URL", None)
    return env


def campaign_of_100_000_items(reviewers: int):
    """bench/campaign.py's world (10,000 principals of 10 rights, one owner team each) and its
    launched campaign."""
    sys.path.insert(0, str(ROOT))
    from bench.campaign import build_world

    manager, team, account = build_world(PRINCIPALS, RIGHTS_EACH, reviewers)
    due = timezone.localdate() + timedelta(days=30)
    draft = new_campaign(name="Load", owner=manager, due_date=due, accounts=[account])
    return launch(draft, by=manager), team


def plans(campaign, team) -> list[dict]:
    """Each reviewer's signed-in session and items, as the locustfile reads them."""
    found = []
    for user in team:
        browser = Client()
        browser.force_login(user)
        items = list(
            ReviewItem.objects.filter(campaign=campaign, reviewer=user)
            .order_by("pk")
            .values_list("uuid", "version")
        )
        found.append(
            {
                "cookies": {
                    settings.SESSION_COOKIE_NAME: browser.cookies[
                        settings.SESSION_COOKIE_NAME
                    ].value,
                    settings.CSRF_COOKIE_NAME: CSRF,
                },
                "csrf": CSRF,
                "items": [[str(key), version] for key, version in items],
            }
        )
    return found


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert process.poll() is None, "gunicorn exited"
            time.sleep(0.2)
    pytest.fail("gunicorn did not listen")


def locust_figures(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    return {
        name: {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "median_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]),
            "max_ms": float(row["Max Response Time"]),
            "per_second": float(row["Requests/s"]),
        }
        for name, row in rows.items()
    }


def test_forty_reviewers_decide_for_ten_minutes_beside_a_collection_and_an_export(
    transactional_db, aws, broker, tmp_path
):
    emulator, url = aws
    started_building = time.monotonic()
    campaign, team = campaign_of_100_000_items(reviewers=USERS)
    assert campaign.items.count() == PRINCIPALS * RIGHTS_EACH
    build_seconds = time.monotonic() - started_building
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(plans(campaign, team)))

    # A second account, live, collected by a real worker again and again during the run.
    users_with_inline_policies(emulator, url, users=200, policies=3)
    live = factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")
    worker = Worker(
        url,
        tmp_path / "worker.log",
        2,
        "load",
        broker_url=BROKER_URL,
        environment=WORKER_ENVIRONMENT,
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=server_environment(tmp_path / "static"),
        check=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            "3",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(ROOT),
            "--log-level",
            "warning",
            "--access-logfile",
            str(tmp_path / "access.log"),
            "--access-logformat",
            "%(s)s %(m)s %(U)s %(M)s",
        ],
        env=server_environment(tmp_path / "static"),
        stderr=(tmp_path / "gunicorn.log").open("wb"),
    )
    exports: list[tuple[int, float, int]] = []
    runs: list[int] = []
    try:
        wait_for_port(port, server)
        prefix = tmp_path / "locust"
        result = tmp_path / "result.json"
        load = subprocess.Popen(
            [
                str(BIN / "locust"),
                "-f",
                str(Path(__file__).with_name("locustfile.py")),
                "--headless",
                "--users",
                str(USERS),
                "--spawn-rate",
                "4",
                "--run-time",
                f"{SECONDS}s",
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                str(prefix),
                "--only-summary",
                "--stop-timeout",
                "10",
                "--exit-code-on-error",
                "0",
            ],
            env={**os.environ, "LOAD_PLAN": str(plan), "LOAD_RESULT": str(result)},
            stdout=(tmp_path / "locust.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        export = None
        collection = None
        while load.poll() is None:
            if export is None or export[0].poll() is not None:
                if export is not None:
                    exports.append(
                        (
                            export[0].returncode,
                            time.monotonic() - export[1],
                            export[2].stat().st_size,
                        )
                    )
                output = tmp_path / f"evidence-{len(exports)}.zip"
                export = (
                    subprocess.Popen(
                        [sys.executable, "manage.py", "export_evidence", str(campaign.uuid),
                         "--output", str(output)],
                        cwd=ROOT,
                        env=server_environment(tmp_path / "static"),
                        stdout=subprocess.DEVNULL,
                        stderr=(tmp_path / "export.log").open("ab"),
                    ),
                    time.monotonic(),
                    output,
                )  # fmt: skip
            if collection is None or not CollectionRun.objects.get(pk=collection).is_running:
                if collection is not None:
                    runs.append(collection)
                [run] = inventory_tasks.start_collections([live])
                collection = run.pk
            assert worker.process.poll() is None, worker.log_text()
            time.sleep(1)
        export[0].wait(timeout=900)
        exports.append(
            (export[0].returncode, time.monotonic() - export[1], export[2].stat().st_size)
        )
        deadline = time.monotonic() + 300
        while CollectionRun.objects.get(pk=collection).is_running and time.monotonic() < deadline:
            time.sleep(1)
        runs.append(collection)
    finally:
        server.terminate()
        server.wait(timeout=60)
        worker.stop()

    outcome = json.loads(result.read_text())
    figures = locust_figures(prefix)
    access = Counter(
        line.split(" ", 1)[0] for line in (tmp_path / "access.log").read_text().splitlines()
    )
    server_errors = sum(n for status, n in access.items() if status.startswith("5"))
    accepted = outcome["accepted"]
    decided_twice = (
        Decision.objects.filter(item__campaign=campaign, system=False)
        .values("item")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    run_states = Counter(CollectionRun.objects.filter(pk__in=runs).values_list("status", flat=True))
    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_evidence", str(tmp_path / "evidence-0.zip")],
        cwd=ROOT,
        env=server_environment(tmp_path / "static"),
        capture_output=True,
        text=True,
    )
    events, _checkpoints, finding = trail.verify()
    report = {
        "measured": timezone.now().isoformat(timespec="seconds"),
        "seconds": SECONDS,
        "reviewers": USERS,
        "items": PRINCIPALS * RIGHTS_EACH,
        "build_seconds": round(build_seconds, 1),
        "requests": figures,
        "statuses": outcome["statuses"],
        "server_statuses": dict(sorted(access.items())),
        "server_errors_5xx": server_errors,
        "decisions_accepted": len(accepted),
        "decision_rows": Decision.objects.filter(item__campaign=campaign, system=False).count(),
        "decision_events": AuditEvent.objects.filter(action="decision.made").count(),
        "items_decided_twice": decided_twice,
        "exports": [
            {"exit": code, "seconds": round(seconds, 1), "bytes": size}
            for code, seconds, size in exports
        ],
        "collections": dict(run_states),
        "audit_events": events,
        "audit_chain": str(finding) if finding else "verifies",
    }  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))

    assert server_errors == 0, report["server_statuses"]
    assert not [code for code in outcome["statuses"] if code.startswith("5")]
    assert len(accepted) == len(set(accepted)) > 0
    assert decided_twice == 0
    assert_nothing_lost(accepted=len(accepted))
    assert set(
        ReviewItem.objects.filter(campaign=campaign)
        .exclude(decision="")
        .values_list("uuid", flat=True)
    ) == {uuid.UUID(value) for value in accepted}
    assert exports
    assert all(code == 0 for code, _s, _b in exports), exports
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert run_states == {CollectionRun.Status.COMPLETE: len(runs)}, run_states

"""A real Celery worker collects an account: queued through Redis, written to the test database,
reading AWS over HTTP from a moto server (with the emulator's Access Advisor) in this process."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection

from config import celery_app
from inventory import tasks
from inventory.models import ActionUsage, CollectionRun, Principal, Right, ServiceUsage
from tests import factories
from tests.aws_emulator import (
    OWN_ACCOUNT_ID,
    action_usage,
    emulate,
    moto_server,
    service_usage,
)

pytestmark = pytest.mark.worker

# A Redis database of its own, so the suite's broker and a stray worker never take these tasks.
BROKER_URL = "redis://127.0.0.1:6379/9"
ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
WAIT_SECONDS = 60


@pytest.fixture
def aws():
    with emulate() as emulator, moto_server() as url:
        emulator.credential_report(ready=True)
        yield emulator, url


@pytest.fixture
def broker(monkeypatch):
    """Tasks go to Redis (not run in process), to the worker's own database there."""
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    celery_app.conf.task_always_eager = False
    # Celery reads this variable before its settings; the app's pools were made for the suite's
    # broker, so new ones are made for this one.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", BROKER_URL)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    yield
    for pool in (celery_app._pool, celery_app.amqp._producer_pool):
        if pool is not None:
            pool.force_close_all()
    client.flushdb()
    client.close()


def worker_database_url():
    """The database pytest-django made for this session, which the worker must write to."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    def wait_for(self, run: CollectionRun) -> CollectionRun:
        """The run once it is no longer running; fails, with the worker's log, if it does not end
        in time or the worker dies."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if not run.is_running:
                return run
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.log_text()}")
            time.sleep(0.2)
        pytest.fail(f"the run was still {run.phase!r} after {WAIT_SECONDS} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@pytest.fixture
def worker(transactional_db, aws, broker, tmp_path):
    """`celery -A config worker` in a process of its own; always stopped, before the database
    is flushed."""
    _, url = aws
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": BROKER_URL,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ACCESS_ADVISOR_POLL_SECONDS": "0.05",
        "ACCESS_ADVISOR_POLL_MAX_SECONDS": "0.05",
    }
    for name in ("CELERY_BROKER_WRITE_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=attest-test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Worker(process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_worker_collects_an_account_queued_by_attest(worker, aws):
    emulator, url = aws
    iam = emulator.session().client("iam", endpoint_url=url)
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    policy = iam.create_policy(PolicyName="s3-get", PolicyDocument=document)["Policy"]["Arn"]
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn=policy)
    alice = iam.create_user(UserName="alice")["User"]["Arn"]
    iam.add_user_to_group(GroupName="readers", UserName="alice")
    iam.create_access_key(UserName="alice")
    iam.create_role(RoleName="auditor", AssumeRolePolicyDocument=document)
    used = factories.days_ago(2)
    emulator.usage[alice] = [
        service_usage("s3", "Amazon S3", last=used, actions=[action_usage("GetObject", last=used)])
    ]
    account = factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")

    [run] = tasks.start_collections([account])
    run = worker.wait_for(run)

    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    assert run.endpoint == url
    assert run.attempts == 1
    account.refresh_from_db()
    assert account.current_run == run
    assert set(Principal.objects.current().filter(account=account).values_list("kind", "name")) == {
        ("user", "alice"),
        ("group", "readers"),
        ("role", "auditor"),
    }
    assert set(
        Right.objects.current().filter(principal__arn=alice).values_list("kind", flat=True)
    ) == {"group_membership", "access_key"}
    assert ServiceUsage.objects.current().get(principal__arn=alice).service_namespace == "s3"
    assert ActionUsage.objects.current().get(principal__arn=alice).action == "GetObject"
    # The worker read AWS through the emulator's server, one Access Advisor job per principal.
    assert run.api_calls["GenerateServiceLastAccessedDetails"] == 3
    assert emulator.requests["GenerateServiceLastAccessedDetails"] == 3
    assert emulator.requests["GetAccountAuthorizationDetails"] == 1

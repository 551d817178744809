"""Real Celery workers carry out remediations: queued through Redis by a campaign's close,
written to the test database, changing AWS over HTTP in a moto server in this process.

A worker killed with SIGKILL in the middle of a call to AWS loses nothing (its message stays
unacknowledged in Redis, its remediation stays claimed, the state before is already saved) and
removes nothing twice: whoever takes the remediation over (the sweeper's task after the lease
when the whole worker died, the same task at once when only its pool process did) reads what
AWS holds now and makes only the calls still missing. Two deliveries of one remediation at once
make its calls once. The moto server's `Emulator.before` hooks hold a call in flight while the
test kills the worker, and count the calls that reach AWS.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Connection
from moto.iam.models import iam_backends

from audit import trail
from audit.models import AuditEvent
from inventory.collect import collect_run
from inventory.models import AwsAccount, CollectionRun, Right
from reviews import tasks
from reviews.decide import Choice, close, decide
from reviews.models import Campaign, Remediation, ReviewItem
from tests import factories
from tests.aws_emulator import OWN_ACCOUNT_ID, emulate, moto_server
from tests.brokers import tasks_through
from tests.reviews.builders import launched

pytestmark = pytest.mark.worker

# A Redis database of its own (tests/inventory/test_worker.py uses 9): a worker of another test
# never takes these tasks, and restoring unacknowledged messages touches only these.
BROKER_URL = "redis://127.0.0.1:6379/11"
QUEUE = "celery"
ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
WAIT_SECONDS = 30
REASON = "Left the payments team; the access is no longer needed."
S3_GET = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
SQS_SEND = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}],
}
State = Remediation.State
# Celery's line for a finished task: its id and what it returned ('verified', 'skipped'...).
FINISHED = re.compile(r"\[([0-9a-f-]{36})\] succeeded in [0-9.e-]+s: '?([^'\n]*)'?")


def aws_environment(url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture
def aws(monkeypatch):
    """moto over HTTP, read by this process (the collection) and by the workers alike."""
    with emulate() as emulator, moto_server() as url:
        emulator.credential_report(ready=True)
        emulator.polls_to_complete = 1
        for name, value in aws_environment(url).items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(settings, "AWS_ENDPOINT_URL", url)
        monkeypatch.setattr(settings, "ACCESS_ADVISOR_POLL_SECONDS", 0.05)
        monkeypatch.setattr(settings, "ACCESS_ADVISOR_POLL_MAX_SECONDS", 0.05)
        yield emulator, url


@pytest.fixture
def broker(monkeypatch):
    """Tasks go to Redis (not run in process), to the workers' own database there."""
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    with tasks_through(monkeypatch, BROKER_URL):
        yield client
    client.flushdb()
    client.close()


def worker_database_url() -> str:
    """The database pytest-django made for this session, which the workers must write to."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A config worker` with a prefork pool, in a process group of its own so that it
    can be killed with its pool processes, as a host going down kills them."""

    def __init__(
        self,
        url: str,
        log: Path,
        concurrency: int,
        name: str,
        *,
        broker_url: str = BROKER_URL,
        environment: dict[str, str] | None = None,
    ):
        env = {
            **os.environ,
            **aws_environment(url),
            "DATABASE_URL": worker_database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": broker_url,
            **(environment or {}),
        }
        for variable in ("CELERY_BROKER_WRITE_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(variable, None)
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    str(CELERY),
                    "-A",
                    "config",
                    "worker",
                    "--pool=prefork",
                    f"--concurrency={concurrency}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    f"--hostname={name}-{os.getpid()}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes: nothing is acknowledged or given back."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def pool_processes(self) -> list[int]:
        """The pids of the worker's pool processes (its children), from /proc."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def outcomes(self) -> dict[str, str]:
        """What each task this worker finished returned, by task id, as its log says."""
        return dict(FINISHED.findall(self.log.read_text(errors="replace")))


@pytest.fixture
def start_worker(transactional_db, aws, broker, tmp_path):
    """Starts workers on demand; all are stopped before the database is flushed."""
    _, url = aws
    started: list[Worker] = []

    def start(concurrency: int = 1) -> Worker:
        name = f"remediation-{len(started) + 1}"
        worker = Worker(url, tmp_path / f"{name}.log", concurrency, name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


class Gate:
    """Holds the first request of an operation in the moto server (an `Emulator.before` hook)
    until the test opens the gate, `opens_by_itself()` turns true or a second request of it
    arrives; `released` says which. Later requests pass at once. Counts them all."""

    def __init__(self, opens_by_itself: Callable[[], bool] = lambda: False):
        self.arrived = threading.Event()
        self.opened = threading.Event()
        self.opens_by_itself = opens_by_itself
        self.count = 0
        self.released = ""
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1
            first = self.count == 1
        if not first:
            self.released = self.released or "by a second request"
            self.opened.set()
            return
        self.arrived.set()
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.opened.wait(0.05):
                return
            if self.opens_by_itself():
                self.released = "by itself"
                return
        self.released = "by the deadline"

    def open(self) -> None:
        self.released = self.released or "by the test"
        self.opened.set()


def once_alice_has_no_policy_attached() -> None:
    """An `Emulator.before` hook: the request waits until moto itself shows alice without any
    attached policy, i.e. until a detach already received has been carried out."""
    user = iam_backends[OWN_ACCOUNT_ID]["aws"].get_user("alice")
    deadline = time.monotonic() + WAIT_SECONDS
    while user.managed_policies and time.monotonic() < deadline:
        time.sleep(0.02)


def build_account(emulator, url, *, inline: bool = True):
    """alice, a user holding the customer managed policy s3-get (and the inline policy
    send-sqs), collected from AWS by `collect_run` as a worker would."""
    iam = emulator.session().client("iam", endpoint_url=url)
    policy = iam.create_policy(PolicyName="s3-get", PolicyDocument=json.dumps(S3_GET))
    policy_arn = policy["Policy"]["Arn"]
    iam.create_user(UserName="alice")
    iam.attach_user_policy(UserName="alice", PolicyArn=policy_arn)
    if inline:
        iam.put_user_policy(
            UserName="alice", PolicyName="send-sqs", PolicyDocument=json.dumps(SQS_SEND)
        )
    reviewer = factories.UserFactory(username="rita.reviewer")
    account = factories.AwsAccountFactory(
        account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="", owner=reviewer
    )
    run = collect_run(
        CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE).pk
    )
    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    return iam, policy_arn, AwsAccount.objects.get(pk=account.pk), reviewer


def revoke_and_close(account, reviewer) -> Campaign:
    """A campaign over the account whose items the reviewer all revokes; closing it plans the
    remediations and, once committed, queues their tasks in Redis."""
    manager = factories.UserFactory(username="max.manager")
    campaign = launched(manager, [account])
    for item in campaign.items.order_by("pk"):
        decide(item, reviewer, Choice(ReviewItem.Decision.REVOKE, reason=REASON))
    close(campaign, by=manager)
    return campaign


def remediation_of(campaign, kind: str) -> Remediation:
    return Remediation.objects.select_related("item").get(campaign=campaign, item__right_kind=kind)


def wait_until(condition: Callable[[], bool], what: str, *workers: Worker) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        for worker in workers:
            if worker.process.poll() is not None:
                pytest.fail(
                    f"the worker exited ({worker.process.returncode}):\n{worker.log_text()}"
                )
        time.sleep(0.1)
    logs = "\n".join(worker.log_text() for worker in workers)
    pytest.fail(f"{what} did not happen in {WAIT_SECONDS} s:\n{logs}")


def settled(campaign) -> bool:
    return not Remediation.objects.filter(
        campaign=campaign, state__in=[State.PLANNED, State.RUNNING, State.APPLIED]
    ).exists()


def unacknowledged(client: redis.Redis) -> list[dict]:
    """The messages a worker took from the queue and has not acknowledged, as Redis keeps them
    until its visibility timeout gives them back."""
    return [json.loads(raw)[0] for raw in client.hvals("unacked")]


def give_back_unacknowledged() -> None:
    """What Redis' visibility timeout (an hour by default) would do to a message whose worker
    died: put it back in its queue for the next worker."""
    with Connection(BROKER_URL, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible()


def events_of(remediation: Remediation) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="reviews.remediation", object_id=str(remediation.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_a_worker_killed_mid_remediation_is_replaced_and_the_right_is_removed_once(
    start_worker, aws, broker
):
    emulator, url = aws
    iam, policy_arn, account, reviewer = build_account(emulator, url)
    detach = Gate()
    emulator.before("DetachUserPolicy", detach)
    delete_inline = Gate()
    delete_inline.open()  # counted, never held
    emulator.before("DeleteUserPolicy", delete_inline)

    campaign = revoke_and_close(account, reviewer)
    first = start_worker()
    try:
        assert detach.arrived.wait(WAIT_SECONDS), first.log_text()
        # The detach has reached AWS and its answer has not come back: the worker dies now.
        first.kill()
    finally:
        # AWS carries out the request it received; nobody is left to hear the answer.
        detach.open()
    wait_until(
        lambda: not iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"],
        "the detach in flight landing in AWS",
    )

    managed = remediation_of(campaign, Right.Kind.MANAGED_POLICY)
    # Nothing was lost: the worker's claim, the state before and the task's message remain.
    assert managed.state == State.RUNNING
    assert managed.before == {"attached": True}
    [held] = [
        message
        for message in unacknowledged(broker)
        if message["headers"]["task"] == tasks.carry_out_remediation.name
    ]
    assert held["headers"]["argsrepr"] == f"({managed.pk},)"
    assert managed.claimed_by == held["headers"]["id"]

    second = start_worker()
    # Redis gives the message back only after its visibility timeout (an hour): before then,
    # the operator's beat sweeps the remediation whose worker went silent past the lease.
    Remediation.objects.filter(pk=managed.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS + 1)
    )
    tasks.sweep_remediations.delay()
    wait_until(lambda: settled(campaign), "the remediations ending", second)

    managed.refresh_from_db()
    inline = remediation_of(campaign, Right.Kind.INLINE_POLICY)
    assert (managed.state, inline.state) == (State.VERIFIED, State.VERIFIED), (
        managed.error,
        inline.error,
    )
    assert managed.attempts == 2
    assert managed.before == {"attached": True}
    assert managed.after_state == {"attached": False}
    assert inline.before == {"document": SQS_SEND}
    assert inline.after_state == {"document": None}
    # Each right was removed by one request to AWS, and no call was written down twice.
    assert (detach.count, delete_inline.count) == (1, 1)
    for remediation in (managed, inline):
        operations = [call["operation"] for call in remediation.calls]
        assert len(operations) == len(set(operations)), remediation.calls
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == []
    # The policy itself is left for whoever else holds it.
    assert iam.get_policy(PolicyArn=policy_arn)["Policy"]["AttachmentCount"] == 0

    # An hour later Redis hands the dead worker's message back: the remediation is done, so the
    # task makes no call to AWS at all.
    requests = emulator.requests.copy()
    give_back_unacknowledged()
    wait_until(
        lambda: second.outcomes().get(held["headers"]["id"]) == "skipped",
        "the dead worker's task coming back and being skipped",
        second,
    )
    assert emulator.requests == requests
    managed.refresh_from_db()
    assert (managed.state, managed.attempts) == (State.VERIFIED, 2)
    wait_until(lambda: not broker.hlen("unacked"), "every message acknowledged", second)

    # The trail says each remediation was applied and verified once, and its chain holds.
    assert events_of(managed) == ["remediation.applied", "remediation.verified"]
    assert events_of(inline) == ["remediation.applied", "remediation.verified"]
    assert trail.verify()[2] is None


def test_the_same_remediation_queued_twice_is_carried_out_once(start_worker, aws, broker):
    emulator, url = aws
    iam, _, account, reviewer = build_account(emulator, url, inline=False)

    campaign = revoke_and_close(account, reviewer)
    [remediation] = Remediation.objects.filter(campaign=campaign)
    # A second delivery of the same remediation, as the sweeper's would be.
    tasks.carry_out_remediation.delay(remediation.pk)
    queued = [json.loads(raw)["headers"] for raw in broker.lrange(QUEUE, 0, -1)]
    assert [headers["argsrepr"] for headers in queued] == [f"({remediation.pk},)"] * 2

    # The detach of the delivery that claims the remediation is held until the other delivery
    # has finished (having found it claimed), or until a second detach arrives (it did not).
    workers: list[Worker] = []
    detach = Gate(opens_by_itself=lambda: "skipped" in workers[0].outcomes().values())
    emulator.before("DetachUserPolicy", detach)
    workers.append(start_worker(concurrency=2))
    [worker] = workers
    wait_until(lambda: settled(campaign), "the remediation ending", worker)

    remediation.refresh_from_db()
    assert remediation.state == State.VERIFIED, remediation.error
    assert (detach.count, detach.released) == (1, "by itself")
    assert [call["operation"] for call in remediation.calls] == ["DetachUserPolicy"]
    assert remediation.attempts == 1  # only one delivery ever claimed it
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    wait_until(lambda: len(worker.outcomes()) == 2, "both deliveries finishing", worker)
    assert sorted(worker.outcomes()[headers["id"]] for headers in queued) == [
        "skipped",
        "verified",
    ]
    assert events_of(remediation) == ["remediation.applied", "remediation.verified"]
    assert trail.verify()[2] is None


def test_a_pool_process_killed_mid_remediation_is_run_again_at_once(start_worker, aws, broker):
    emulator, url = aws
    iam, _, account, reviewer = build_account(emulator, url, inline=False)
    detach = Gate()
    emulator.before("DetachUserPolicy", detach)

    campaign = revoke_and_close(account, reviewer)
    [remediation] = Remediation.objects.filter(campaign=campaign)
    [queued] = [json.loads(raw)["headers"]["id"] for raw in broker.lrange(QUEUE, 0, -1)]
    worker = start_worker()
    try:
        assert detach.arrived.wait(WAIT_SECONDS), worker.log_text()
        # Only the pool process holding the task dies (the OOM killer's choice, say): the
        # worker sees it lost and gives the message back at once (reject_on_worker_lost).
        [pool_process] = worker.pool_processes()
        os.kill(pool_process, signal.SIGKILL)
        wait_until(lambda: pool_process not in worker.pool_processes(), "the pool process gone")
        # The detach in flight lands in AWS before the task, run again, reads what AWS holds.
        emulator.before("ListAttachedUserPolicies", once_alice_has_no_policy_attached)
    finally:
        detach.open()
    wait_until(lambda: settled(campaign), "the remediation ending", worker)

    remediation.refresh_from_db()
    assert remediation.state == State.VERIFIED, remediation.error
    # The same delivery came back and took its own claim again, without waiting for the lease.
    assert worker.outcomes() == {queued: "verified"}
    assert "WorkerLostError" in worker.log.read_text()
    assert remediation.attempts == 2
    assert remediation.before == {"attached": True}
    assert detach.count == 1
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    wait_until(lambda: not broker.hlen("unacked"), "the message acknowledged", worker)
    assert events_of(remediation) == ["remediation.applied", "remediation.verified"]
    assert trail.verify()[2] is None


def test_a_removal_landing_after_the_run_taking_over_read_aws_still_ends_verified(
    start_worker, aws, broker
):
    emulator, url = aws
    iam, _, account, reviewer = build_account(emulator, url, inline=False)
    detach = Gate()
    arrived = []

    def the_second_detach_waits_for_the_first_to_land():
        arrived.append(time.monotonic())
        if len(arrived) == 2:
            detach.open()
            once_alice_has_no_policy_attached()

    # Hooks run in order: the gate, after this one, holds the first detach.
    emulator.before("DetachUserPolicy", the_second_detach_waits_for_the_first_to_land)
    emulator.before("DetachUserPolicy", detach)
    campaign = revoke_and_close(account, reviewer)
    [remediation] = Remediation.objects.filter(campaign=campaign)
    worker = start_worker()
    assert detach.arrived.wait(WAIT_SECONDS), worker.log_text()
    # The pool process dies with its detach in flight; the task runs again at once and reads
    # the policy still attached, so it detaches too; the first detach lands just before.
    [pool_process] = worker.pool_processes()
    os.kill(pool_process, signal.SIGKILL)
    wait_until(lambda: settled(campaign), "the remediation ending", worker)

    remediation.refresh_from_db()
    assert detach.count == 2  # the run taking over could not know of the call in flight
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    assert remediation.state == State.VERIFIED, remediation.error

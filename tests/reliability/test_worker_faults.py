"""Real Celery workers, a Redis of the test's own and a moto server, all on loopback: a worker
killed with SIGKILL in the middle of a collection, of a campaign's launch and of its close, and
Redis restarted, cleanly and then with SIGKILL, while a thousand remediations are queued and
being carried out. Each collection, launch, close and remediation ends done once: no AWS write
twice, no row twice, every event in the chain.

(A worker killed in the middle of a remediation is in tests/reviews/test_remediation_worker.py.)
"""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from kombu import Connection
from moto.iam.models import iam_backends

from audit import trail
from audit.models import AuditEvent
from inventory import tasks as inventory_tasks
from inventory.collect import collect_run
from inventory.models import CollectionRun, Principal, Right
from reviews import handover
from reviews import tasks as review_tasks
from reviews.decide import Choice, close, decide_many, request_close
from reviews.launch import new_campaign, request_launch
from reviews.models import Campaign, Decision, Remediation, ReviewItem
from tests import factories
from tests.aws_emulator import OWN_ACCOUNT_ID, service_usage
from tests.reliability.conftest import BROKER_URL, assert_nothing_lost
from tests.reviews.builders import a_lock_is_awaited, launched
from tests.reviews.test_remediation_worker import Gate, Worker, wait_until

pytestmark = pytest.mark.worker

REASON = "Left the payments team; the access is no longer needed."
State = Remediation.State
WORKER_ENVIRONMENT = {
    "ACCESS_ADVISOR_POLL_SECONDS": "0.05",
    "ACCESS_ADVISOR_POLL_MAX_SECONDS": "0.05",
}
S3_GET = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


@pytest.fixture
def start_worker(transactional_db, aws, broker, tmp_path):
    """Workers on the test's own Redis; all stopped before the database is flushed."""
    _, url = aws
    started: list[Worker] = []

    def start(concurrency: int = 1) -> Worker:
        name = f"reliability-{len(started) + 1}"
        worker = Worker(
            url,
            tmp_path / f"{name}.log",
            concurrency,
            name,
            broker_url=BROKER_URL,
            environment=WORKER_ENVIRONMENT,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def users_with_inline_policies(emulator, url, users: int, policies: int) -> None:
    """`users` users of `policies` inline policies each, straight into moto's backend (a
    thousand HTTP calls would only slow the test), with S3 usage for Access Advisor."""
    backend = iam_backends[OWN_ACCOUNT_ID]["aws"]
    for n in range(users):
        user = backend.create_user(region_name="us-east-1", user_name=f"user-{n:03d}")
        for p in range(policies):
            backend.put_user_policy(f"user-{n:03d}", f"policy-{p:02d}", S3_GET)
        emulator.usage[user.arn] = [
            service_usage("s3", "Amazon S3", last=factories.days_ago(1), actions=[])
        ]


def collection_of(account) -> CollectionRun:
    return CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)


def test_a_worker_killed_mid_collection_is_replaced_and_the_run_completes_once(
    start_worker, aws, broker
):
    emulator, url = aws
    users_with_inline_policies(emulator, url, users=12, policies=2)
    account = factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")
    poll = Gate()
    emulator.before("GetServiceLastAccessedDetails", poll)

    first = start_worker()
    [run] = inventory_tasks.start_collections([account])
    try:
        assert poll.arrived.wait(60), first.log_text()
        # The authorization details are read and Access Advisor jobs are running.
        first.kill()
    finally:
        poll.open()
    run.refresh_from_db()
    assert (run.status, run.attempts) == (CollectionRun.Status.RUNNING, 1)
    assert not Principal.objects.filter(first_seen_run=run).exists()  # nothing half-written
    [held] = [json.loads(raw)[0]["headers"] for raw in broker.hvals("unacked")]
    assert held["argsrepr"] == f"({run.pk},)"

    second = start_worker()
    # The operator's beat sweeps the run once its heartbeat is older than the stale time.
    CollectionRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=settings.COLLECTION_STALE_MINUTES + 1)
    )
    inventory_tasks.sweep_stale_runs.delay()
    wait_until(lambda: not CollectionRun.objects.get(pk=run.pk).is_running, "the run", second)

    run.refresh_from_db()
    account.refresh_from_db()
    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    assert run.attempts == 2
    assert account.current_run_id == run.pk
    assert Principal.objects.filter(account=account).count() == 12
    assert Right.objects.filter(principal__account=account).count() == 24
    assert (
        AuditEvent.objects.filter(action="collection.completed", object_id=str(run.pk)).count() == 1
    )

    # Redis gives the dead worker's message back after its visibility timeout: the run is
    # finished, so the task reads nothing from AWS and writes nothing.
    requests = emulator.requests.copy()
    _give_back_the_dead_workers_message(broker, second)
    time.sleep(1)
    assert emulator.requests == requests
    assert CollectionRun.objects.get(pk=run.pk).attempts == 2
    assert_nothing_lost(accepted=0)


def test_a_worker_killed_mid_close_leaves_the_campaign_closing_and_the_sweep_closes_it_once(
    start_worker, broker, manager, reviewer
):
    account = factories.collected_account("210987654321", "payments", owner=reviewer, principals=4)
    campaign = launched(manager, [account])
    items = campaign.items.count()
    # An item held by a transaction of the test's own: the close waits on it, having marked
    # the campaign closed in its own transaction.
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=_holding, args=(_hold_item(campaign.items.first().pk), held, release)
    )
    holder.start()
    assert held.wait(30)

    first = start_worker()
    try:
        request_close(campaign, by=manager)
        wait_until(a_lock_is_awaited, "the close waiting for the held item", first)
        assert handover.CLOSE.sweep() == []  # a close under way is left alone
        first.kill()
    finally:
        release.set()
        holder.join(30)

    # The dead worker's transaction is rolled back whole: nothing of its close is left.
    wait_until(lambda: _row_free(campaign.pk), "the dead close's locks gone")
    campaign.refresh_from_db()
    assert (campaign.state, campaign.closed_at) == (Campaign.State.CLOSING, None)
    assert not Decision.objects.filter(item__campaign=campaign).exists()
    assert not AuditEvent.objects.filter(action="campaign.closed").exists()

    second = start_worker()
    assert handover.CLOSE.sweep() == [campaign.pk]
    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).state == Campaign.State.CLOSED,
        "the close",
        second,
    )
    # Redis gives the dead worker's message back: the campaign is closed, nothing happens.
    _give_back_the_dead_workers_message(broker, second)
    assert Decision.objects.filter(item__campaign=campaign, system=True).count() == items
    assert AuditEvent.objects.filter(action="campaign.closed").count() == 1
    assert_nothing_lost(accepted=0)


def test_a_worker_killed_mid_launch_leaves_the_campaign_launching_and_the_sweep_launches_it_once(
    start_worker, broker, manager, reviewer
):
    account = factories.collected_account("210987654321", "payments", owner=reviewer, principals=4)
    draft = new_campaign(
        name="Year-end review",
        owner=manager,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=[account],
        by=manager,
    )
    request_launch(draft, by=manager)  # queued for a worker not started yet
    # The audit trail held by a transaction of the test's own: the launch waits on it to
    # record itself, every item written in its own transaction.
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holding, args=(trail._lock, held, release))
    holder.start()
    assert held.wait(30)

    first = start_worker()
    try:
        wait_until(a_lock_is_awaited, "the launch waiting for the audit trail", first)
        assert handover.LAUNCH.sweep() == []  # a launch under way is left alone
        first.kill()
    finally:
        release.set()
        holder.join(30)

    # The dead worker's transaction is rolled back whole: nothing of its launch is left.
    wait_until(lambda: _row_free(draft.pk), "the dead launch's locks gone")
    draft.refresh_from_db()
    assert (draft.state, draft.launched_at) == (Campaign.State.LAUNCHING, None)
    assert not draft.items.exists()
    assert not draft.tallies.exists()
    assert not AuditEvent.objects.filter(action="campaign.launched").exists()

    second = start_worker()
    assert handover.LAUNCH.sweep() == [draft.pk]
    wait_until(
        lambda: Campaign.objects.get(pk=draft.pk).state == Campaign.State.ACTIVE,
        "the launch",
        second,
    )
    # Redis gives the dead worker's message back: the campaign is active, nothing happens.
    _give_back_the_dead_workers_message(broker, second)
    draft.refresh_from_db()
    assert draft.items.count() == draft.item_count > 0
    assert AuditEvent.objects.filter(action="campaign.launched").count() == 1
    assert_nothing_lost(accepted=0)


def _give_back_the_dead_workers_message(broker, worker) -> None:
    """What Redis does with a message its worker never acknowledged, at once rather than once
    the visibility timeout has passed; `worker` takes it again and acknowledges it."""
    with Connection(BROKER_URL, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible()
    wait_until(lambda: not broker.hlen("unacked") and not broker.llen("celery"), "ack", worker)


def _holding(lock, held: threading.Event, release: threading.Event) -> None:
    """`lock()` taken in a transaction of a thread of its own, until `release` is set."""
    try:
        with transaction.atomic():
            lock()
            held.set()
            release.wait(60)
    finally:
        connections.close_all()


def _hold_item(pk: int):
    return lambda: ReviewItem.objects.select_for_update().get(pk=pk)


def _row_free(campaign_id: int) -> bool:
    """No transaction holds the campaign's row (a close would)."""
    with transaction.atomic():
        return Campaign.objects.select_for_update(skip_locked=True).filter(pk=campaign_id).exists()


@pytest.mark.reliability
def test_a_thousand_queued_remediations_survive_redis_restarts_and_each_is_done_once(
    start_worker, aws, broker, redis_server
):
    emulator, url = aws
    users_with_inline_policies(emulator, url, users=100, policies=10)
    reviewer = factories.UserFactory(username="rita.reviewer")
    manager = factories.UserFactory(username="max.manager")
    account = factories.AwsAccountFactory(
        account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="", owner=reviewer
    )
    run = collect_run(collection_of(account).pk)
    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    campaign = launched(manager, [account])
    items = list(campaign.items.filter(reviewer=reviewer).order_by("pk"))
    assert len(items) == 1000
    accepted = decide_many(items, reviewer, Choice(ReviewItem.Decision.REVOKE, REASON))
    close(campaign, by=manager)  # queues the thousand remediations once committed

    assert broker.llen("celery") == 1000
    # A clean restart: the append-only file keeps every message.
    redis_server.stop()
    redis_server.start()
    assert broker.llen("celery") == 1000

    worker = start_worker(concurrency=2)
    done = Remediation.objects.filter(campaign=campaign, state=State.VERIFIED)
    wait_until(lambda: done.count() >= 150, "the first remediations", worker)
    # Redis dies at once: what it did in its last second may not be on disk, so messages
    # already taken can come back, and messages in flight are in nobody's hands.
    redis_server.kill()
    time.sleep(2)
    redis_server.start()

    def settled():
        return not Remediation.objects.filter(
            campaign=campaign, state__in=[State.PLANNED, State.RUNNING, State.APPLIED]
        ).exists()

    sweeps = 0
    deadline = time.monotonic() + 600
    while not settled() and time.monotonic() < deadline:
        before = done.count()
        time.sleep(15)
        if done.count() == before and not settled():
            # Nothing moves: what Redis lost is the sweeper's to find, after the lease.
            Remediation.objects.filter(
                campaign=campaign, state__in=[State.PLANNED, State.RUNNING]
            ).update(
                planned_at=timezone.now() - timedelta(seconds=3600),
                claimed_at=timezone.now() - timedelta(seconds=3600),
            )
            review_tasks.sweep_remediations.delay()
            sweeps += 1
        assert worker.process.poll() is None, worker.log_text()
    skipped = list(worker.outcomes().values()).count("skipped")
    print(f"\nRedis restarts: {sweeps} sweeps, {skipped} deliveries found done and skipped")

    remediations = Remediation.objects.filter(campaign=campaign)
    assert remediations.count() == 1000
    assert set(remediations.values_list("state", flat=True)) == {State.VERIFIED}
    # Each policy was deleted by one request to AWS: none twice, none forgotten.
    assert emulator.requests["DeleteUserPolicy"] == 1000
    assert not any(user.policies for user in iam_backends[OWN_ACCOUNT_ID]["aws"].users.values())
    for action in ("remediation.applied", "remediation.verified"):
        assert AuditEvent.objects.filter(action=action).count() == 1000
    assert_nothing_lost(accepted=accepted)
    assert trail.verify()[0] == AuditEvent.objects.count()

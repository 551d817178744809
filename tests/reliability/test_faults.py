"""Faults that take seconds to stage, in the test's own process: a PostgreSQL connection cut in
the middle of a request and of a collection, a crash between a commit and the enqueue of its
task, and AWS throttling three requests in ten while one endpoint hangs. After each, what was
accepted is there once, nothing is half written, and the audit chain verifies.

AWS is moto over HTTP (tests/aws_emulator.py), so botocore's timeouts and retries are the real
ones. The long runs with real workers and Redis restarts are in test_worker_faults.py.
"""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from inventory import collect, store
from inventory import tasks as inventory_tasks
from inventory.models import CollectionRun, Principal, Right, ServiceUsage
from reviews import tasks as review_tasks
from reviews.models import Decision, Remediation, ReviewItem
from tests import factories
from tests.aws_emulator import OWN_ACCOUNT_ID, service_usage, throttling
from tests.reliability.conftest import assert_nothing_lost, own_backend, terminate_backend
from tests.reviews.builders import launched
from tests.reviews.test_remediation_worker import build_account, revoke_and_close

REASON = "Left the payments team; the access is no longer needed."
State = Remediation.State


def seeded_account(emulator, url, users: int = 6):
    """An account of `users` users, each with an inline policy and S3 usage."""
    iam = emulator.session().client("iam", endpoint_url=url)
    for n in range(users):
        arn = iam.create_user(UserName=f"user-{n}")["User"]["Arn"]
        iam.put_user_policy(
            UserName=f"user-{n}",
            PolicyName="read-s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "s3:GetObject", "Resource": "*"}]}',
        )
        emulator.usage[arn] = [
            service_usage("s3", "Amazon S3", last=factories.days_ago(n + 1), actions=[])
        ]
    return factories.AwsAccountFactory(account_id=OWN_ACCOUNT_ID, name="sandbox", role_arn="")


# PostgreSQL connection dropped ------------------------------------------------------------------


def test_a_decision_whose_database_connection_drops_mid_request_is_refused_whole(
    transactional_db, account, reviewer, manager, monkeypatch
):
    campaign = launched(manager, [account])
    item = campaign.items.filter(reviewer=reviewer).order_by("pk").first()
    browser = Client(raise_request_exception=False)
    browser.force_login(reviewer)
    url = reverse("reviews:decide", args=[item.uuid])
    form = {"decision": "revoke", "reason": REASON, "version": item.version}
    from reviews import decide as decide_module

    original = decide_module.record_many
    cut = []

    def cut_after_the_item_is_updated(*args, **kwargs):
        # The item's UPDATE is done in this transaction; its Decision row and event are next.
        if not cut:
            cut.append(own_backend())
            terminate_backend(cut[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(decide_module, "record_many", cut_after_the_item_is_updated)
    failed = browser.post(url, form, HTTP_HX_REQUEST="true")

    assert cut, "the request never reached the audit write"
    assert failed.status_code == 500
    item.refresh_from_db()
    # Nothing of the decision was kept: the item as it was, no row, no event.
    assert (item.decision, item.decided_at) == ("", None)
    assert_nothing_lost(accepted=0)

    # The reviewer sends it again, on a new connection, and it lands once.
    retried = browser.post(url, form, HTTP_HX_REQUEST="true")
    assert retried.status_code == 200
    item.refresh_from_db()
    assert item.decision == ReviewItem.Decision.REVOKE
    assert Decision.objects.get(item=item).reason == REASON
    assert_nothing_lost(accepted=1)


def test_a_collection_whose_database_connection_drops_while_saving_fails_and_writes_nothing(
    transactional_db, aws, monkeypatch
):
    emulator, url = aws
    account = seeded_account(emulator, url)
    first = collect.collect_run(
        CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE).pk
    )
    assert first.status == CollectionRun.Status.COMPLETE, first.errors
    before = (Principal.objects.count(), Right.objects.count(), ServiceUsage.objects.count())
    emulator.session().client("iam", endpoint_url=url).create_user(UserName="newcomer")

    original = store._keep_archive
    cut = []

    def cut_after_the_rows_are_written(run, recorder):
        # Every row of the run is written in its transaction; the run's completion is next.
        if not cut:
            cut.append(own_backend())
            terminate_backend(cut[0])
        return original(run, recorder)

    monkeypatch.setattr(store, "_keep_archive", cut_after_the_rows_are_written)
    second = CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE)
    # PostgreSQL's word for it ("terminating connection") arrives before the socket closes,
    # or psycopg finds the socket closed first: the same lost connection either way.
    with pytest.raises(OperationalError):
        collect.collect_run(second.pk)

    assert cut
    second.refresh_from_db()
    account.refresh_from_db()
    # A clear failure, on the run, and the previous collection stays what pages show.
    assert second.status == CollectionRun.Status.FAILED
    assert second.errors[-1]["code"] == "Internal"
    assert "terminat" in second.errors[-1]["message"]
    assert account.current_run_id == first.pk
    assert (Principal.objects.count(), Right.objects.count(), ServiceUsage.objects.count()) == (
        before
    )
    assert not Principal.objects.filter(first_seen_run=second).exists()
    assert AuditEvent.objects.filter(action="collection.failed", object_id=str(second.pk)).count()
    assert not AuditEvent.objects.filter(action="collection.completed", object_id=str(second.pk))

    # The next collection, on a new connection, completes and sees the newcomer.
    third = collect.collect_run(
        CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE).pk
    )
    assert third.status == CollectionRun.Status.COMPLETE, third.errors
    assert Principal.objects.current().filter(account=account, name="newcomer").count() == 1
    assert_nothing_lost(accepted=0)


# A crash between commit and enqueue --------------------------------------------------------------


def test_a_collection_committed_but_never_queued_is_run_by_the_sweeper(
    transactional_db, aws, monkeypatch
):
    emulator, url = aws
    account = seeded_account(emulator, url)
    # The process dies after the run is committed and before its task reaches the broker.
    with monkeypatch.context() as crash:
        crash.setattr(inventory_tasks.collect_account, "delay_on_commit", lambda *args: None)
        [run] = inventory_tasks.start_collections([account])
    run.refresh_from_db()
    assert (run.status, run.attempts, run.heartbeat_at) == (CollectionRun.Status.RUNNING, 0, None)

    inventory_tasks.sweep_stale_runs()
    run.refresh_from_db()
    assert run.status == CollectionRun.Status.RUNNING  # not yet stale: nobody took it twice

    CollectionRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(minutes=settings.COLLECTION_STALE_MINUTES + 1)
    )
    inventory_tasks.sweep_stale_runs()
    run.refresh_from_db()
    account.refresh_from_db()
    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    assert run.attempts == 1
    assert account.current_run_id == run.pk
    assert Principal.objects.current().filter(account=account).count() == 6
    assert emulator.requests["GetAccountAuthorizationDetails"] == 1
    assert_nothing_lost(accepted=0)


def test_a_remediation_committed_but_never_queued_is_carried_out_by_the_sweeper(
    transactional_db, aws, monkeypatch
):
    emulator, url = aws
    iam, _policy, account, reviewer = build_account(emulator, url, inline=False)
    # The campaign's close commits its remediations; the process dies before they are queued.
    with monkeypatch.context() as crash:
        crash.setattr(review_tasks.carry_out_remediation, "delay", lambda *args: None)
        campaign = revoke_and_close(account, reviewer)
    [remediation] = Remediation.objects.filter(campaign=campaign)
    assert (remediation.state, remediation.claimed_at) == (State.PLANNED, None)
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]

    review_tasks.sweep_remediations()
    remediation.refresh_from_db()
    assert remediation.state == State.PLANNED  # within its lease: not swept yet

    Remediation.objects.filter(pk=remediation.pk).update(
        planned_at=timezone.now() - timedelta(seconds=settings.REMEDIATION_LEASE_SECONDS + 1)
    )
    review_tasks.sweep_remediations()
    remediation.refresh_from_db()
    assert remediation.state == State.VERIFIED, remediation.error
    assert remediation.attempts == 1
    assert emulator.requests["DetachUserPolicy"] == 1
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    # Swept again, the verified remediation is left alone.
    review_tasks.sweep_remediations()
    assert emulator.requests["DetachUserPolicy"] == 1
    assert_nothing_lost(accepted=Decision.objects.filter(system=False).count())


# AWS throttling and a hung endpoint --------------------------------------------------------------


def test_a_collection_finishes_through_thirty_percent_throttling_and_a_hung_endpoint(
    transactional_db, aws, settings
):
    emulator, url = aws
    account = seeded_account(emulator, url, users=8)
    settings.AWS_READ_TIMEOUT = 1.0
    chance = random.Random(20261130)
    lock = threading.Lock()
    hung: list[float] = []
    throttled: list[str] = []

    def three_in_ten_throttled():
        with lock:
            refused = chance.random() < 0.3
            if refused:
                throttled.append("Throttling")
        if refused:
            raise throttling()

    def the_first_answer_never_comes():
        with lock:
            first = not hung
            hung.append(time.monotonic())
        if first:
            time.sleep(settings.AWS_READ_TIMEOUT * 3)

    for operation in (
        "GetCallerIdentity",
        "GetAccountAuthorizationDetails",
        "GenerateCredentialReport",
        "GetCredentialReport",
        "GenerateServiceLastAccessedDetails",
        "GetServiceLastAccessedDetails",
    ):
        emulator.before(operation, three_in_ten_throttled)
    emulator.before("GetAccountAuthorizationDetails", the_first_answer_never_comes)

    run = collect.collect_run(
        CollectionRun.objects.create(account=account, source=CollectionRun.Source.LIVE).pk
    )

    assert run.status == CollectionRun.Status.COMPLETE, run.errors
    assert run.counts["users"] == 8
    assert ServiceUsage.objects.current().filter(principal__account=account).count() == 8
    # About three requests in ten of the run's were refused (the draw is seeded).
    assert len(throttled) >= 3
    # The hung request timed out and was sent again; every refused one was retried.
    assert len(hung) >= 2
    assert run.retries >= len(throttled) + 1
    assert_nothing_lost(accepted=0)

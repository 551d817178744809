"""Celery tasks of the inventory: one collection task per account, fanned out."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_noop

from audit.trail import record
from inventory import collect
from inventory.models import AwsAccount, CollectionRun
from inventory.store import fail_run

logger = logging.getLogger(__name__)

# Beyond this many deliveries a run is given up rather than tried again.
MAX_ATTEMPTS = 3


@shared_task(acks_late=True, reject_on_worker_lost=True)
def collect_account(run_id: int) -> None:
    collect.collect_run(run_id)


@shared_task
def collect_all() -> None:
    """Beat: collect every active live account."""
    start_collections(AwsAccount.objects.filter(active=True, mode=AwsAccount.Mode.LIVE))


@shared_task
def sweep_stale_runs() -> None:
    """Beat: start again the runs whose worker died or whose task was never delivered, and give
    up those tried too often."""
    for run in collect.stale_runs():
        if run.attempts >= MAX_ATTEMPTS:
            fail_run(
                run,
                [
                    *run.errors,
                    {
                        "code": "Abandoned",
                        "message": f"no worker finished the run in {run.attempts} attempts",
                    },
                ],
            )
        else:
            logger.warning("Collection run %s went silent; queueing it again", run.uuid)
            collect_account.delay(run.pk)


def start_collections(accounts, user=None) -> list[CollectionRun]:
    """Start a run for each account, or take the one already running. Each run's task is
    queued once the runs are committed."""
    runs = []
    for account in accounts:
        try:
            with transaction.atomic():
                run = CollectionRun.objects.create(
                    account=account,
                    source=CollectionRun.Source.LIVE,
                    requested_by=user,
                    requested_by_name=user.get_username() if user else "",
                    phase=gettext_noop("Queued"),
                )
                record("collection.started", run, actor=user, after={"account": account.account_id})
        except IntegrityError:
            run = CollectionRun.objects.get(account=account, status=CollectionRun.Status.RUNNING)
            runs.append(run)
            continue
        collect_account.delay_on_commit(run.pk)
        runs.append(run)
    return runs


def runs_in_progress(runs: list[CollectionRun]) -> list[CollectionRun]:
    """The runs re-read, in the same order."""
    fresh = CollectionRun.objects.select_related("account").in_bulk([run.pk for run in runs])
    return [fresh[run.pk] for run in runs]

"""Celery tasks of the reviews: launching campaigns (on schedule, or as their manager asked),
closing them, reminders, remediation."""

import logging
import random

from celery import shared_task
from django.db import transaction

from audit.trail import record
from reviews import decide, handover, remediate, reminders
from reviews import launch as launching
from reviews.launch import LaunchRefused, launch_due
from reviews.models import CampaignDefinition, Remediation

logger = logging.getLogger(__name__)


@shared_task
def launch_due_campaigns() -> None:
    """Beat: launch each active definition's campaign of the current period, once."""
    for definition in CampaignDefinition.objects.filter(active=True).select_related("owner"):
        try:
            campaign = launch_due(definition)
        except LaunchRefused as exc:
            # Tried again at the next beat, when a collection may have caught up.
            logger.warning("Campaign of %s not launched: %s", definition, exc)
            with transaction.atomic():
                record(
                    "campaign.launch_refused",
                    definition,
                    actor_name="system",
                    after={"reason": str(exc)},
                )
            continue
        if campaign is not None:
            logger.info("Launched %s with %d items", campaign, campaign.item_count)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def launch_campaign(campaign_id: int, user_id: int | None = None) -> int | None:
    """Launch a campaign its manager asked to launch (`launch.request_launch`): redelivered if
    its worker dies, since the launch commits whole or not at all. A launch that fails or is
    refused makes the campaign a draft again, with the reason in the audit trail and on its
    page. Returns how many items it froze; None when there was nothing to launch."""
    launched = handover.LAUNCH.carry_out(
        campaign_id, user_id, launching.launch, refused=LaunchRefused
    )
    if launched is None:
        return None
    logger.info("Launched %s with %d items", launched, launched.item_count)
    return launched.item_count


@shared_task
def sweep_launching() -> None:
    """Beat: launch again the campaigns left launching by a lost task."""
    for pk in handover.LAUNCH.sweep():
        logger.warning("Campaign %s was left launching; its launch is queued again", pk)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def close_campaign(campaign_id: int, user_id: int | None = None) -> dict | None:
    """Close a campaign its manager asked to close (`decide.request_close`): redelivered if its
    worker dies, since the close commits whole or not at all. A close that fails opens the
    campaign again, with the error in the audit trail and on its page. Returns how many items
    got which outcome; None when there was nothing to close."""
    applied = handover.CLOSE.carry_out(campaign_id, user_id, decide.close, refused=decide.Refused)
    if applied is not None:
        logger.info("Closed campaign %s: %s", campaign_id, applied)
    return applied


@shared_task
def sweep_closing() -> None:
    """Beat: close again the campaigns left closing by a lost task."""
    for pk in handover.CLOSE.sweep():
        logger.warning("Campaign %s was left closing; its close is queued again", pk)


@shared_task
def send_reminders() -> None:
    """Beat: today's reminders and escalations (each goes out once)."""
    reminders.send_due_reminders()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def carry_out_remediation(self, remediation_id: int) -> str:
    """One remediation; redelivered if its worker dies, retried with back-off when throttled."""
    return _with_backoff(self, remediate.run, remediation_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def roll_back_remediation(self, remediation_id: int) -> str:
    """One rollback the manager asked for; delivered, retried and redelivered as above."""
    return _with_backoff(self, remediate.run_rollback, remediation_id)


def _with_backoff(task, step, remediation_id: int) -> str:
    """Run `step` as the task's delivery; while AWS throttles or is out of reach, try again
    later, and fail the remediation once the retries are spent."""
    try:
        return step(remediation_id, worker=task.request.id or "in-process")
    except remediate.Throttled as exc:
        if task.request.retries >= task.max_retries:
            remediate.give_up(remediation_id, exc)
            return Remediation.State.FAILED
        raise task.retry(countdown=_backoff(task.request.retries), exc=exc) from exc


def _backoff(retries: int) -> int:
    """Seconds before the next try: doubling from 5, at most 5 minutes, with jitter."""
    return min(300, 5 * 2**retries) + random.randint(0, 5)  # noqa: S311


@shared_task
def sweep_remediations() -> None:
    """Beat: queue again the remediations committed but never run or whose worker went silent,
    give up those that died too often, and delete access keys past their grace period."""
    forward, backward = remediate.stale()
    silent = Remediation.objects.only("uuid", "attempts").in_bulk(forward + backward)
    for pk, remediation in silent.items():
        if remediation.attempts >= remediate.MAX_ATTEMPTS:
            remediate.abandon(pk)
            continue
        logger.warning("Remediation %s went silent; queueing it again", remediation.uuid)
        (roll_back_remediation if pk in backward else carry_out_remediation).delay(pk)
    remediate.delete_expired_keys()


@shared_task
def expire_kept_rights() -> None:
    """Beat: revoke what was kept until a day now past, unless a later campaign kept it."""
    planned = remediate.expire_kept()
    if planned:
        logger.info("Planned %d revocations of rights kept until a past day", planned)

"""Celery tasks of the reviews: launching campaigns on schedule, reminders."""

import logging

from celery import shared_task
from django.db import transaction

from audit.trail import record
from reviews import reminders
from reviews.launch import LaunchRefused, launch_due
from reviews.models import CampaignDefinition

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


@shared_task
def send_reminders() -> None:
    """Beat: today's reminders and escalations (each goes out once)."""
    reminders.send_due_reminders()

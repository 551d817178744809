"""Campaign changes too long for a request, handed over to a worker: launching and closing.

A campaign of 100,000 items takes longer to launch or to close than a browser (or the reverse
proxy before it) waits for a page. The request puts the campaign in a state of its own
(`launching`, `closing`), which every other path already refuses, records who asked, and queues
the task once that commits; the task does the work in one transaction, which holds the
campaign's row until it commits. A task that fails puts the campaign back where it was and
records the error, which the campaign's page shows until the change is asked for again. A task
lost with its broker is queued again by beat (`sweep`): a campaign left in the state whose row
no transaction holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.models import AuditEvent
from audit.trail import record
from reviews.models import Campaign

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handover:
    state: str  # the campaign's state while a worker makes the change
    before: str  # the state the change starts from, and where a failure leaves the campaign
    asked: str  # the audit action of the request
    failed: str  # the audit action of a failure
    task: str  # the name of the task in reviews.tasks, called with (campaign id, user id)

    def ask(self, campaign: Campaign, by) -> bool:
        """Whether the campaign was `before` and is now in the handover's state, recorded and
        its task queued once the caller's transaction commits."""
        if not Campaign.objects.filter(pk=campaign.pk, state=self.before).update(state=self.state):
            return False
        record(self.asked, campaign, actor=by, actor_name="" if by else "system")
        self.queue_when_committed(campaign.pk, by.pk if by else None)
        return True

    def queue_when_committed(self, campaign_id: int, user_id: int | None) -> None:
        def queue():
            from reviews import tasks  # the tasks module imports those that import this one

            getattr(tasks, self.task).delay(campaign_id, user_id)

        transaction.on_commit(queue)

    def carry_out(
        self, campaign_id: int, user_id: int | None, work: Callable, *, refused: type[Exception]
    ):
        """The task's body: what `work(campaign, by=user)` returns, for a campaign still in the
        handover's state; None when an earlier delivery did the work, or when it failed or was
        refused (`refused`, its words shown as they are), which puts the campaign back."""
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None or campaign.state != self.state:
            return None  # done by an earlier delivery
        by = get_user_model().objects.filter(pk=user_id).first() if user_id else None
        try:
            return work(campaign, by=by)
        except refused as exc:
            # Another delivery did the work meanwhile (and the campaign is past the state,
            # which `fail` leaves alone), or the campaign no longer allows it.
            self.fail(campaign, str(exc))
        except Exception as exc:
            # Handled rather than raised: the campaign is back where it was, and says why.
            logger.exception("%s of %s failed", self.task, campaign)
            self.fail(campaign, exc)
        return None

    def sweep(self) -> list[int]:
        """Queue the task again of each campaign left in the state that no worker is working
        on: its task was lost with a broker, or never started. A task queued twice does its
        work once; the second finds the campaign past the state."""
        with transaction.atomic():
            idle = list(
                Campaign.objects.filter(state=self.state)
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)
            )
        for pk in idle:
            by = (
                AuditEvent.objects.for_object("reviews.campaign", pk)
                .filter(action=self.asked)
                .order_by("-id")
                .values_list("actor_id", flat=True)
                .first()
            )
            with transaction.atomic():
                self.queue_when_committed(pk, by)
        return idle

    def fail(self, campaign: Campaign, error: Exception | str) -> None:
        """Put the campaign back after its task failed (the work itself was rolled back
        whole), so that its manager sees why and can ask again. `error` is an exception, or
        the words of a refusal."""
        with transaction.atomic():
            if Campaign.objects.filter(pk=campaign.pk, state=self.state).update(state=self.before):
                record(
                    self.failed,
                    campaign,
                    actor_name="system",
                    after={"error": describe(error)},
                )

    def failure(self, campaign: Campaign) -> dict | None:
        """The error of the campaign's last handover, when it failed and the change was not
        asked for since: {"at": when, "error": what}."""
        last = (
            AuditEvent.objects.for_object("reviews.campaign", campaign.pk)
            .filter(action__in=(self.asked, self.failed))
            .order_by("-id")
            .values("action", "occurred_at", "after")
            .first()
        )
        if last is None or last["action"] != self.failed:
            return None
        return {"at": last["occurred_at"], "error": (last["after"] or {}).get("error", "")}


def describe(error: Exception | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:2000]


LAUNCH = Handover(
    state=Campaign.State.LAUNCHING,
    before=Campaign.State.DRAFT,
    asked="campaign.launching",
    failed="campaign.launch_failed",
    task="launch_campaign",
)
CLOSE = Handover(
    state=Campaign.State.CLOSING,
    before=Campaign.State.ACTIVE,
    asked="campaign.closing",
    failed="campaign.close_failed",
    task="close_campaign",
)

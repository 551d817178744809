"""Reminders to reviewers with undecided items, and escalation to the manager when overdue.

Each scheduled e-mail goes out once (the database keeps one per campaign, person, kind and day),
however often beat runs; a manager's "remind now" goes out whenever asked.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audit.trail import record
from reviews import tallies
from reviews.models import Campaign, Reminder

# Overdue campaigns escalate on their first overdue day and then weekly.
ESCALATE_EVERY_DAYS = 7


def _undecided_by_reviewer(campaign: Campaign) -> list[tuple]:
    rows = (
        tallies.of(campaign=campaign, decision="", reviewer__is_active=True)
        .values("reviewer")
        .annotate(n=Sum("items"))
        .order_by("reviewer")
    )
    users = get_user_model().objects.in_bulk([row["reviewer"] for row in rows])
    return [(users[row["reviewer"]], row["n"]) for row in rows]


def _send(campaign: Campaign, recipient, kind: str, day: date, undecided: int) -> bool:
    """Send one e-mail unless it went out already; True if sent."""
    if not recipient.email:
        return False
    try:
        with transaction.atomic():
            Reminder.objects.create(
                campaign=campaign, recipient=recipient, kind=kind, on_day=day, undecided=undecided
            )
            record(
                f"reminder.{kind}",
                campaign,
                actor_name="system",
                after={"to": recipient.get_username(), "undecided": undecided},
            )
    except IntegrityError:
        return False  # this one went out already
    # Attest keeps no language per person: every e-mail is in the installation's language, the
    # same whether beat sends it or a manager's "remind now" does.
    with translation.override(settings.LANGUAGE_CODE):
        subject, body = _message(campaign, kind, undecided)
    send_mail(subject, body, None, [recipient.email])
    return True


def _message(campaign: Campaign, kind: str, undecided: int) -> tuple[str, str]:
    """The subject and body of a reminder or an escalation, in the active language."""
    link = settings.SITE_URL.rstrip("/")
    due = formats.date_format(campaign.due_date, "SHORT_DATE_FORMAT")
    if kind == Reminder.Kind.ESCALATION:
        subject = _("[Attest] %(campaign)s is overdue") % {"campaign": campaign}
        body = _(
            "The campaign %(campaign)s was due on %(due)s and %(count)d items are undecided.\n\n"
            "See who is behind: %(link)s\n"
        ) % {
            "campaign": campaign,
            "due": due,
            "count": undecided,
            "link": link + campaign.get_absolute_url(),
        }
    else:
        subject = ngettext(
            "[Attest] %(count)d access review is waiting for you",
            "[Attest] %(count)d access reviews are waiting for you",
            undecided,
        ) % {"count": undecided}
        body = _(
            "%(count)d items of the campaign %(campaign)s wait for your decision; it is due on "
            "%(due)s.\n\nReview them: %(link)s\n"
        ) % {
            "count": undecided,
            "campaign": campaign,
            "due": due,
            "link": link + reverse("reviews:queue") + f"?campaign={campaign.uuid}",
        }
    return subject, body


def send_due_reminders(today: date | None = None) -> int:
    """Beat: the reminders due today, and the escalations of overdue campaigns."""
    today = today or timezone.localdate()
    sent = 0
    for campaign in Campaign.objects.filter(state=Campaign.State.ACTIVE).select_related("owner"):
        days_left = (campaign.due_date - today).days
        if days_left in campaign.rules.get("reminder_days", []):
            for reviewer, undecided in _undecided_by_reviewer(campaign):
                sent += _send(campaign, reviewer, Reminder.Kind.REMINDER, today, undecided)
        if days_left < 0 and (-days_left - 1) % ESCALATE_EVERY_DAYS == 0:
            undecided = campaign.items.filter(decision="").count()
            if undecided:
                _overdue(campaign, today, undecided)
                sent += _send(campaign, campaign.owner, Reminder.Kind.ESCALATION, today, undecided)
    return sent


def _overdue(campaign: Campaign, day: date, undecided: int) -> None:
    """Record, once that day, that the campaign is overdue (webhooks tell of it); whether or not
    its manager has an e-mail address."""
    by_reviewer = {
        reviewer.get_username(): count for reviewer, count in _undecided_by_reviewer(campaign)
    }
    try:
        with transaction.atomic():
            Reminder.objects.create(
                campaign=campaign,
                recipient=campaign.owner,
                kind=Reminder.Kind.OVERDUE,
                on_day=day,
                undecided=undecided,
            )
            record(
                "campaign.overdue",
                campaign,
                actor_name="system",
                after={
                    "due": campaign.due_date,
                    "undecided": undecided,
                    "undecided_by_reviewer": by_reviewer,
                    "without_active_reviewer": undecided - sum(by_reviewer.values()),
                },
            )
    except IntegrityError:
        pass  # recorded already today


def remind_now(campaign: Campaign, by) -> int:
    """The manager's "remind now": every reviewer with undecided items, at once."""
    sent = 0
    today = timezone.localdate()
    for reviewer, undecided in _undecided_by_reviewer(campaign):
        sent += _send(campaign, reviewer, Reminder.Kind.MANUAL, today, undecided)
    with transaction.atomic():
        record("campaign.reminded", campaign, actor=by, after={"sent": sent})
    return sent

"""Reminders to reviewers with undecided items, escalation to the manager, and "remind now"."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation

from audit.models import AuditEvent
from reviews import tasks
from reviews.decide import Choice, close, decide_many, reassign, sign_off
from reviews.models import Reminder
from reviews.reminders import remind_now, send_due_reminders
from tests import factories
from tests.reviews.builders import definition, launched, settled

REASON = "Not needed any more."


@pytest.fixture
def lena(db):
    return factories.UserFactory(username="lena.lead", email="lena.lead@example.com")


def days_before_due(campaign, days):
    return campaign.due_date - timedelta(days=days)


def recipients(mails):
    return [address for mail in mails for address in mail.to]


def give(campaign, user, count, by):
    """Hand `count` of the campaign's orphan items to `user`."""
    orphans = list(campaign.items.filter(reviewer__isnull=True).order_by("pk")[:count])
    reassign(orphans, user, by, "Lena reviews marketing.")


# Scheduled reminders ---------------------------------------------------------------------------


def test_reminders_go_out_on_the_configured_days_before_the_due_date(campaign, mailoutbox):
    # An ad hoc campaign reminds 7 days and 1 day before it is due; this one is due in 14.
    sent_on = {}
    for days in range(14, -1, -1):
        sent = send_due_reminders(days_before_due(campaign, days))
        if sent:
            sent_on[days] = sent
    assert sent_on == {7: 1, 1: 1}
    assert recipients(mailoutbox) == ["rita.reviewer@example.com"] * 2


def test_a_reminder_says_how_many_items_wait_until_when_and_where(campaign, mailoutbox):
    send_due_reminders(days_before_due(campaign, 7))

    [mail] = mailoutbox
    assert mail.subject == "[Attest] 6 access reviews are waiting for you"
    assert mail.from_email == settings.DEFAULT_FROM_EMAIL
    assert f"6 items of the campaign {campaign.name} wait for your decision" in mail.body
    assert f"it is due on {campaign.due_date}" in mail.body
    assert f"/reviews/?campaign={campaign.uuid}" in mail.body
    assert settings.SITE_URL.rstrip("/") + "/reviews/" in mail.body


def test_each_reminder_goes_out_once_however_often_beat_runs(campaign, mailoutbox):
    day = days_before_due(campaign, 1)
    assert [send_due_reminders(day) for _ in range(3)] == [1, 0, 0]
    assert len(mailoutbox) == 1
    reminder = Reminder.objects.get()
    assert (reminder.recipient.username, reminder.kind, reminder.on_day, reminder.undecided) == (
        "rita.reviewer",
        "reminder",
        day,
        6,
    )
    event = AuditEvent.objects.get(action="reminder.reminder")
    assert event.after == {"to": "rita.reviewer", "undecided": 6}


def test_only_reviewers_with_undecided_items_are_reminded(
    campaign, reviewer, manager, lena, mailoutbox
):
    give(campaign, lena, 1, manager)
    decide_many(list(campaign.items.filter(reviewer=reviewer)), reviewer, Choice("revoke", REASON))

    send_due_reminders(days_before_due(campaign, 7))

    # Rita decided everything; nobody is reminded of the orphans, the manager sees those.
    [mail] = mailoutbox
    assert mail.to == ["lena.lead@example.com"]
    assert mail.subject == "[Attest] 1 access review is waiting for you"


def test_each_reviewer_is_reminded_of_their_own_count(campaign, manager, lena, mailoutbox):
    give(campaign, lena, 2, manager)
    send_due_reminders(days_before_due(campaign, 1))
    assert {mail.to[0]: mail.subject for mail in mailoutbox} == {
        "lena.lead@example.com": "[Attest] 2 access reviews are waiting for you",
        "rita.reviewer@example.com": "[Attest] 6 access reviews are waiting for you",
    }


@pytest.mark.parametrize("change", [{"is_active": False}, {"email": ""}])
def test_reviewers_who_cannot_sign_in_or_have_no_address_get_no_mail(
    campaign, reviewer, mailoutbox, change
):
    for field, value in change.items():
        setattr(reviewer, field, value)
    reviewer.save()
    assert send_due_reminders(days_before_due(campaign, 7)) == 0
    assert mailoutbox == []


def test_the_reminder_days_are_the_definitions(account, manager, mailoutbox):
    campaign = launched(
        manager, definition=definition(manager, accounts=[account], reminder_days=[3, 10, 3])
    )
    sent_on = [
        days for days in range(14, -1, -1) if send_due_reminders(days_before_due(campaign, days))
    ]
    assert sent_on == [10, 3]
    assert len(mailoutbox) == 2


def test_a_new_definition_reminds_a_week_ahead_and_the_day_before(account, manager, mailoutbox):
    campaign = launched(manager, definition=definition(manager, accounts=[account]))
    sent_on = [
        days for days in range(14, -1, -1) if send_due_reminders(days_before_due(campaign, days))
    ]
    assert sent_on == [7, 1]


@pytest.mark.parametrize("value", ["7", [7, "1"], [0], [400], [True], {"days": 7}])
def test_reminder_days_that_are_not_days_are_refused_by_name(account, manager, value):
    bad = definition(manager, accounts=[account])
    bad.reminder_days = value
    with pytest.raises(ValidationError) as refused:
        bad.full_clean()
    assert list(refused.value.message_dict) == ["reminder_days"]


def test_closed_or_signed_off_campaigns_remind_nobody(campaign, manager, mailoutbox):
    close(campaign)
    for days in (7, 1, -1):
        assert send_due_reminders(days_before_due(campaign, days)) == 0
    settled(campaign, manager)
    sign_off(campaign, manager, "correct horse battery staple", "Reviewed.")
    for days in (7, 1, -1, -8):
        assert send_due_reminders(days_before_due(campaign, days)) == 0
    assert mailoutbox == []


# Escalation ------------------------------------------------------------------------------------


def test_an_overdue_campaign_escalates_to_its_manager_on_the_first_day_and_then_weekly(
    campaign, mailoutbox
):
    sent_on = [
        late for late in range(1, 16) if send_due_reminders(days_before_due(campaign, -late))
    ]
    assert sent_on == [1, 8, 15]
    assert recipients(mailoutbox) == ["max.manager@example.com"] * 3
    mail = mailoutbox[0]
    assert mail.subject == f"[Attest] {campaign.name} is overdue"
    assert f"was due on {campaign.due_date} and 12 items are undecided" in mail.body
    assert f"/campaigns/{campaign.uuid}/" in mail.body


def test_an_escalation_goes_out_once_a_day_however_often_beat_runs(campaign, mailoutbox):
    overdue = days_before_due(campaign, -1)
    assert [send_due_reminders(overdue) for _ in range(2)] == [1, 0]
    # The e-mail, and the day's overdue notice the webhooks are told of.
    assert sorted(Reminder.objects.values_list("kind", flat=True)) == ["escalation", "overdue"]
    assert len(mailoutbox) == 1


def test_an_overdue_campaign_whose_items_are_all_decided_does_not_escalate(
    account, reviewer, manager, mailoutbox
):
    campaign = launched(manager, [account])
    decide_many(list(campaign.items.all()), reviewer, Choice("revoke", REASON))
    assert send_due_reminders(days_before_due(campaign, -1)) == 0
    assert mailoutbox == []


# Reminding now, and beat ----------------------------------------------------------------------


def test_remind_now_mails_every_reviewer_with_undecided_items_each_time_asked(
    campaign, manager, lena, mailoutbox
):
    give(campaign, lena, 3, manager)

    assert remind_now(campaign, manager) == 2
    assert remind_now(campaign, manager) == 2

    assert sorted(recipients(mailoutbox)) == [
        "lena.lead@example.com",
        "lena.lead@example.com",
        "rita.reviewer@example.com",
        "rita.reviewer@example.com",
    ]
    assert Reminder.objects.filter(kind=Reminder.Kind.MANUAL).count() == 4
    events = AuditEvent.objects.filter(action="campaign.reminded").order_by("id")
    assert [(e.actor, e.after) for e in events] == [(manager, {"sent": 2})] * 2


def test_e_mails_are_in_the_installations_language_whoever_presses_remind_now(
    campaign, manager, mailoutbox, settings
):
    # Attest keeps no language per person: the reader of an e-mail may not be who sent it.
    with translation.override("ja"):
        remind_now(campaign, manager)
    settings.LANGUAGE_CODE = "ja"
    with translation.override("en"):
        remind_now(campaign, manager)

    english, japanese = mailoutbox
    assert english.subject == "[Attest] 6 access reviews are waiting for you"
    assert japanese.subject == "[Attest] 6 件のアクセスレビューがあなたを待っています"
    assert f"期限は {campaign.due_date:%Y/%m/%d} です" in japanese.body


def test_beat_sends_todays_reminders_once(account, manager, mailoutbox):
    launched(manager, [account], due_in=7)
    tasks.send_reminders.delay()
    tasks.send_reminders.delay()
    assert recipients(mailoutbox) == ["rita.reviewer@example.com"]

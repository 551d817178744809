"""Closing a campaign in a worker: decisions stop when the manager asks, a worker gives the
unanswered items their default outcome, the dashboard reloads itself once that is done, a close
that fails opens the campaign again and says why, and a close whose task was lost is queued
again."""

import threading

import pytest
from django.db import connections, transaction
from django.test import TestCase
from django.urls import reverse

from audit.models import AuditEvent
from reviews import handover, remediate, tasks
from reviews.decide import Choice, Refused, decide, request_close, sign_off
from reviews.models import Campaign, Decision
from tests import factories
from tests.reviews.builders import launched, post_close, text

PASSWORD = "correct horse battery staple"  # every factory user's


@pytest.fixture
def queued(monkeypatch):
    """The closes handed to the broker, held here rather than run: [(campaign id, user id)]."""
    held = []
    monkeypatch.setattr(tasks.close_campaign, "delay", lambda *args: held.append(args))
    return held


def dashboard(campaign):
    return reverse("reviews:campaign", args=[campaign.uuid])


def poll(client, campaign):
    """What the closing notice asks every few seconds."""
    return client.get(dashboard(campaign) + "?poll=closing", HTTP_HX_REQUEST="true")


def closing_events(campaign):
    return list(
        AuditEvent.objects.for_object("reviews.campaign", campaign.pk)
        .filter(action__startswith="campaign.clos")
        .order_by("id")
        .values_list("action", "actor_name")
    )


def test_decisions_stop_when_the_manager_closes_and_a_worker_gives_the_default_outcome(
    client, manager, reviewer, campaign, items, queued
):
    client.force_login(manager)
    page = text(post_close(client, campaign, follow=True))
    assert "Closing the campaign: reviewers can no longer decide." in page
    assert "This page reloads itself when it is done." in page
    assert "Close…" not in page
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSING
    assert queued == [(campaign.pk, manager.pk)]

    # While it closes: no decision, no queue, no sign-off; the dashboard waits.
    with pytest.raises(Refused) as refused:
        decide(items[0], reviewer, Choice("keep", reason="Still needed."))
    assert refused.value.code == "closed"
    with pytest.raises(Refused) as refused:
        sign_off(campaign, manager, PASSWORD, "Reviewed.")
    assert refused.value.code == "closing"
    waiting = poll(client, campaign)
    assert waiting.status_code == 204
    assert "HX-Refresh" not in waiting
    client.force_login(reviewer)
    assert "Nothing to review." in text(client.get(reverse("reviews:queue")))

    assert tasks.close_campaign(*queued[0]) == {"keep": 6, "reduce": 6}
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert not campaign.items.filter(decision="").exists()
    client.force_login(manager)
    done = poll(client, campaign)
    assert done.status_code == 204
    assert done["HX-Refresh"] == "true"
    assert "Closed: 12 items got the default outcome because nobody decided them." in text(
        client.get(dashboard(campaign))
    )
    assert closing_events(campaign) == [
        ("campaign.closing", manager.username),
        ("campaign.closed", manager.username),
    ]


def test_a_close_delivered_twice_closes_once(manager, campaign, queued):
    with TestCase.captureOnCommitCallbacks(execute=True):
        request_close(campaign, by=manager)
    assert tasks.close_campaign(*queued[0]) == {"keep": 6, "reduce": 6}
    assert tasks.close_campaign(*queued[0]) is None
    assert Decision.objects.filter(item__campaign=campaign, system=True).count() == 12
    assert [action for action, _ in closing_events(campaign)] == [
        "campaign.closing",
        "campaign.closed",
    ]


def test_a_close_that_fails_opens_the_campaign_again_and_says_why(
    client, manager, campaign, queued, monkeypatch
):
    def broken(*args):
        raise RuntimeError("the database went away")

    plan_campaign = remediate.plan_campaign
    monkeypatch.setattr(remediate, "plan_campaign", broken)
    client.force_login(manager)
    post_close(client, campaign)
    assert tasks.close_campaign(*queued[0]) is None

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.ACTIVE
    # Nothing of the close is left half-written.
    assert campaign.closed_at is None
    assert campaign.items.filter(decision="").count() == 12
    assert not Decision.objects.filter(item__campaign=campaign).exists()
    page = text(client.get(dashboard(campaign)))
    assert "and the campaign is open again: RuntimeError: the database went away" in page
    assert "Close…" in page
    assert poll(client, campaign)["HX-Refresh"] == "true"

    monkeypatch.setattr(remediate, "plan_campaign", plan_campaign)
    queued.clear()
    post_close(client, campaign)
    tasks.close_campaign(*queued[0])
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert "open again" not in text(client.get(dashboard(campaign)))
    assert [action for action, _ in closing_events(campaign)] == [
        "campaign.closing",
        "campaign.close_failed",
        "campaign.closing",
        "campaign.closed",
    ]


@pytest.mark.django_db(transaction=True)
def test_closing_in_process_says_the_outcome_at_once(client, manager, campaign):
    """Where tasks run in the web process (the demo), the close is done when the page comes."""
    client.force_login(manager)
    page = text(post_close(client, campaign, follow=True))
    assert "Closed. 12 unanswered items got the default outcome (Keep: 6, Reduce: 6)." in page


def test_an_outsider_polls_no_campaign(client, campaign, queued, manager):
    request_close(campaign, by=manager)  # queued once it commits, which this test does not
    client.force_login(factories.UserFactory(username="otto.outsider"))
    assert poll(client, campaign).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_sweep_queues_again_a_close_whose_task_was_lost(account, manager, queued):
    lost = launched(manager, [account])
    request_close(lost, by=manager)
    queued.clear()  # the broker lost it

    # A close under way holds its campaign's row: the sweep leaves that one alone.
    running = launched(manager, [account])
    request_close(running, by=manager)
    queued.clear()
    swept = []
    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=running.pk)
        sweep = threading.Thread(target=_sweep_into, args=(swept,))
        sweep.start()
        sweep.join(timeout=30)
    assert swept == [[lost.pk]]
    assert queued == [(lost.pk, manager.pk)]

    tasks.close_campaign(*queued[0])
    lost.refresh_from_db()
    assert lost.state == Campaign.State.CLOSED


def _sweep_into(found: list) -> None:
    try:
        found.append(handover.CLOSE.sweep())
    finally:
        connections.close_all()

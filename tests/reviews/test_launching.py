"""Launching a campaign in a worker: the manager's click hands the launch over, the draft's page
says so and reloads itself once the items are made, a launch that fails or is refused makes
the campaign a draft again and says why, and a launch whose task was lost is queued again."""

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from inventory.models import CollectionRun
from reviews import handover, tallies, tasks
from reviews.decide import Refused, sign_off
from reviews.launch import LaunchRefused, new_campaign, request_launch
from reviews.models import Campaign
from tests import factories
from tests.reviews.builders import text

PASSWORD = "correct horse battery staple"  # every factory user's


@pytest.fixture
def queued(monkeypatch):
    """The launches handed to the broker, held here rather than run: [(campaign id, user id)]."""
    held = []
    monkeypatch.setattr(tasks.launch_campaign, "delay", lambda *args: held.append(args))
    return held


def page(campaign):
    return reverse("reviews:campaign", args=[campaign.uuid])


def poll(client, campaign):
    """What the launching notice asks every few seconds."""
    return client.get(page(campaign) + "?poll=launching", HTTP_HX_REQUEST="true")


def post_launch(client, campaign, **kwargs):
    """The manager's click on "Launch", with what it queues once the request commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(reverse("reviews:launch", args=[campaign.uuid]), **kwargs)


def launch_events(campaign):
    return list(
        AuditEvent.objects.for_object("reviews.campaign", campaign.pk)
        .filter(action__startswith="campaign.launch")
        .order_by("id")
        .values_list("action", "actor_name")
    )


def test_the_launch_is_handed_to_a_worker_and_the_page_reloads_when_it_is_done(
    client, manager, draft, queued
):
    client.force_login(manager)
    shown = text(post_launch(client, draft, follow=True))
    assert "Launching the campaign: its items are being made; reviewers see them once done." in (
        shown
    )
    assert "This page reloads itself when it is done." in shown
    assert "Launch: freeze" not in shown
    draft.refresh_from_db()
    assert draft.state == Campaign.State.LAUNCHING
    assert queued == [(draft.pk, manager.pk)]
    assert poll(client, draft).status_code == 204
    assert "HX-Refresh" not in poll(client, draft)
    # Nothing is frozen yet: nothing to sign off, no evidence, nothing in anyone's queue.
    with pytest.raises(Refused, match="not launched yet"):
        sign_off(draft, manager, PASSWORD, "Reviewed.")
    assert client.get(reverse("reviews:evidence", args=[draft.uuid])).status_code == 404

    assert tasks.launch_campaign(*queued[0]) == 12

    draft.refresh_from_db()
    assert draft.state == Campaign.State.ACTIVE
    assert draft.items.count() == draft.item_count == 12
    assert poll(client, draft)["HX-Refresh"] == "true"
    assert "Completion by reviewer" in text(client.get(page(draft)))
    assert launch_events(draft) == [
        ("campaign.launching", "max.manager"),
        ("campaign.launched", "max.manager"),
    ]


def test_a_launch_delivered_twice_launches_once(manager, draft, queued):
    with TestCase.captureOnCommitCallbacks(execute=True):
        request_launch(draft, by=manager)
    assert tasks.launch_campaign(*queued[0]) == 12
    assert tasks.launch_campaign(*queued[0]) is None
    assert draft.items.count() == 12
    assert [action for action, _ in launch_events(draft)] == [
        "campaign.launching",
        "campaign.launched",
    ]


def test_a_launch_that_fails_makes_the_campaign_a_draft_again_and_says_why(
    client, manager, draft, queued, monkeypatch
):
    def broken(*args):
        raise RuntimeError("the database went away")

    # Once every item is written, as the last of the launch's writes begin.
    start = tallies.start
    monkeypatch.setattr(tallies, "start", broken)
    client.force_login(manager)
    post_launch(client, draft)
    assert tasks.launch_campaign(*queued[0]) is None

    draft.refresh_from_db()
    assert draft.state == Campaign.State.DRAFT
    assert draft.launched_at is None
    assert not draft.items.exists()  # nothing of the launch is left half-written
    assert not draft.tallies.exists()
    shown = text(client.get(page(draft)))
    assert "and the campaign is a draft again: RuntimeError: the database went away" in shown
    assert "Launch: freeze 12 items for review" in shown
    assert poll(client, draft)["HX-Refresh"] == "true"

    monkeypatch.setattr(tallies, "start", start)
    queued.clear()
    post_launch(client, draft)
    tasks.launch_campaign(*queued[0])
    draft.refresh_from_db()
    assert draft.state == Campaign.State.ACTIVE
    assert draft.items.count() == 12
    assert [action for action, _ in launch_events(draft)] == [
        "campaign.launching",
        "campaign.launch_failed",
        "campaign.launching",
        "campaign.launched",
    ]


def test_a_launch_refused_in_the_worker_says_the_refusal_on_the_draft(
    client, manager, draft, other_account, queued
):
    """An account's collection can go stale between the click and the worker."""
    client.force_login(manager)
    post_launch(client, draft)
    CollectionRun.objects.filter(pk=other_account.current_run_id).update(
        finished_at=timezone.now() - timedelta(days=30)
    )

    assert tasks.launch_campaign(*queued[0]) is None

    draft.refresh_from_db()
    assert draft.state == Campaign.State.DRAFT
    shown = text(client.get(page(draft)))
    assert (
        "and the campaign is a draft again: account marketing-prod (444455556666): its last "
        "complete collection is 30 days old" in shown
    )
    assert "LaunchRefused" not in shown


def test_a_launch_is_refused_at_once_when_the_campaign_is_launching_already(
    client, manager, draft, queued
):
    client.force_login(manager)
    post_launch(client, draft)

    shown = text(post_launch(client, draft, follow=True))

    assert "Launch refused: campaign Year-end review is launching" in shown
    assert len(queued) == 1


@pytest.mark.django_db(transaction=True)
def test_launching_in_process_says_the_outcome_at_once(client, manager, draft):
    """Where tasks run in the web process (the demo), the launch is done when the page comes."""
    client.force_login(manager)
    shown = text(client.post(reverse("reviews:launch", args=[draft.uuid]), follow=True))
    assert "Launched: 12 items to review. 1 reviewer has items to decide." in shown
    draft.refresh_from_db()
    assert draft.state == Campaign.State.ACTIVE


def test_an_outsider_polls_no_campaign(client, manager, draft, queued):
    request_launch(draft, by=manager)
    client.force_login(factories.UserFactory(username="otto.outsider"))
    assert poll(client, draft).status_code == 404


def test_the_campaign_list_says_a_campaign_is_launching(client, manager, draft, queued):
    request_launch(draft, by=manager)
    client.force_login(manager)
    row = text(client.get(reverse("reviews:campaigns")))
    assert "Year-end review Launching" in row
    assert "Launching…" in row


@pytest.mark.django_db(transaction=True)
def test_the_sweep_queues_again_a_launch_whose_task_was_lost(manager, account, queued):
    lost = _draft(manager, account, "lost")
    request_launch(lost, by=manager)
    queued.clear()  # the broker lost it

    # A launch under way holds its campaign's row: the sweep leaves that one alone.
    running = _draft(manager, account, "running")
    request_launch(running, by=manager)
    queued.clear()
    swept = []
    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=running.pk)
        sweep = threading.Thread(target=_sweep_into, args=(swept,))
        sweep.start()
        sweep.join(timeout=30)
    assert swept == [[lost.pk]]
    assert queued == [(lost.pk, manager.pk)]

    assert tasks.launch_campaign(*queued[0]) == 6
    lost.refresh_from_db()
    assert lost.state == Campaign.State.ACTIVE


def test_requesting_the_launch_of_an_active_campaign_is_refused(manager, draft, queued):
    with TestCase.captureOnCommitCallbacks(execute=True):
        request_launch(draft, by=manager)
    tasks.launch_campaign(*queued[0])
    with pytest.raises(LaunchRefused, match="is active"):
        request_launch(draft, by=manager)
    assert len(queued) == 1


def _draft(owner, account, name: str) -> Campaign:
    return new_campaign(
        name=name,
        owner=owner,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=[account],
        by=owner,
    )


def _sweep_into(found: list) -> None:
    try:
        found.append(handover.LAUNCH.sweep())
    finally:
        connections.close_all()

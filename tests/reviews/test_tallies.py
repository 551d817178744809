"""The tallies progress is read from: kept in step with the items, counted again on demand.

Every test of the suite ends by checking that each campaign's tallies count its items as they
are (tests/conftest.py); these tests show what that means for the people reading progress.
"""

import importlib
import io
import threading
import time
from collections import Counter

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connections, transaction

from reviews import tallies
from reviews.decide import Choice, close, decide, decide_many, reassign
from reviews.models import ItemTally, ReviewItem
from tests import factories
from tests.reviews.builders import a_lock_is_awaited, launched

REASON = "Used every week by the nightly export."


def test_a_launch_counts_each_reviewers_items_in_each_account(campaign):
    pairs = set(campaign.items.values_list("reviewer_id", "account_id"))
    rows = ItemTally.objects.filter(campaign=campaign)

    assert rows.count() == len(pairs)
    assert sum(row.items for row in rows) == campaign.item_count
    assert {row.decision for row in rows} == {""}


def test_progress_follows_decisions_reassignments_and_the_close(
    client, campaign, items, reviewer, manager
):
    """What the manager and the reviewers read, as each change lands."""

    def dashboard() -> str:
        return client.get(campaign.get_absolute_url()).text

    def progress(user) -> dict:
        return tallies.of(campaign=campaign, reviewer=user).aggregate(**tallies.progress())

    client.force_login(manager)
    total = campaign.item_count
    colleague = factories.UserFactory(username="otto.reviewer")
    decide(items[0], reviewer, Choice("keep", REASON))
    decide_many(items[1:3], reviewer, Choice("revoke", REASON))
    reassign([ReviewItem.objects.get(pk=items[3].pk)], colleague, manager, "Otto owns it.")

    assert f"3 of {total} decided" in dashboard()
    assert progress(reviewer) == {"total": len(items) - 1, "decided": 3}
    assert progress(colleague) == {"total": 1, "decided": 0}

    close(campaign, by=manager)
    by_decision = Counter()
    for row in tallies.of(campaign=campaign).values("decision", "defaulted", "items"):
        by_decision[(row["decision"], row["defaulted"])] += row["items"]
    assert by_decision[("", False)] == 0
    assert by_decision[("keep", False)] == 1
    assert by_decision[("revoke", False)] == 2
    defaulted = sum(n for (_, was_default), n in by_decision.items() if was_default)
    assert defaulted == total - 3
    assert f"{total} of {total} decided" in dashboard()


@pytest.mark.django_db(transaction=True)
def test_two_decisions_making_the_same_new_tally_at_once_both_count(account, reviewer, manager):
    """Two first keeps in one account, committed at the same moment (two browser tabs): the
    second waits for the first's tallies and adds to the one it made."""
    campaign = launched(manager, [account])
    first, second = campaign.items.filter(reviewer=reviewer).order_by("pk")[:2]
    keep = tallies.key(first, decision="keep")
    assert not ItemTally.objects.filter(campaign=campaign, decision="keep").exists()

    with transaction.atomic():
        decide(first, reviewer, Choice("keep", REASON))
        assert _tally(keep) == 1
        tab, failures = _beside(lambda: decide(second, reviewer, Choice("keep", REASON)))
    tab.join(timeout=30)

    assert failures == []
    assert _tally(keep) == 2


@pytest.mark.django_db(transaction=True)
def test_two_changes_making_the_same_new_tally_at_once_both_count(account, reviewer, manager):
    """The second waits on the first's new row, is refused it once the first commits, and adds
    to it instead."""
    campaign = launched(manager, [account])
    revoked = tallies.key(campaign.items.filter(reviewer=reviewer).first(), decision="revoke")

    def other_change():
        with transaction.atomic():
            tallies.add(Counter({revoked: 1}))

    with transaction.atomic():
        tallies.add(Counter({revoked: 2}))
        other, failures = _beside(other_change)
    other.join(timeout=30)

    assert failures == []
    assert _tally(revoked) == 3
    tallies.add(Counter({revoked: -3}))  # as it was: no item is revoked


def _tally(entry: tallies.Key) -> int:
    return ItemTally.objects.get(**dict(zip(tallies.FIELDS, entry, strict=True))).items


def _beside(work) -> tuple[threading.Thread, list]:
    """`work` started on a connection of its own, once it waits for a lock this transaction
    holds: its thread, and what it raised."""
    failures = []

    def run():
        try:
            work()
        except Exception as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(200):
        if a_lock_is_awaited():
            return thread, failures
        time.sleep(0.05)
    raise AssertionError(f"the other change never waited for this one: {failures}")


def test_recount_progress_repairs_items_changed_by_hand(client, campaign, items, manager):
    client.force_login(manager)
    ReviewItem.objects.filter(pk__in=[item.pk for item in items[:4]]).update(decision="keep")
    total = campaign.item_count
    assert f"0 of {total} decided" in client.get(campaign.get_absolute_url()).text

    out = io.StringIO()
    call_command("recount_progress", stdout=out)

    assert out.getvalue() == (
        f"Recounted {campaign} ({campaign.uuid})\n1 of 1 campaigns recounted\n"
    )
    assert f"4 of {total} decided" in client.get(campaign.get_absolute_url()).text
    out = io.StringIO()
    call_command("recount_progress", stdout=out)
    assert out.getvalue() == "0 of 1 campaigns recounted\n"


def test_the_migration_counts_the_items_of_campaigns_launched_before_it(
    campaign, items, reviewer, manager
):
    decide(items[0], reviewer, Choice("keep", REASON))
    close(campaign, by=manager)
    expected = tallies.tallied(campaign.pk)
    ItemTally.objects.all().delete()

    migration = importlib.import_module("reviews.migrations.0006_item_tallies")
    migration.count_items(apps, None)

    assert tallies.tallied(campaign.pk) == expected
    assert any(defaulted for *_, defaulted in expected)

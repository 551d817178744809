"""Twenty edits of one item at the same moment, each on a database connection of its own (as
twenty browser tabs on twenty web workers would be): exactly one decision lands, the others are
refused as stale with the item as it now is, and nothing is written twice."""

import threading

import pytest
from django.db import connection

from reviews.decide import Choice, Refused, decide
from reviews.models import Decision, ReviewItem
from tests.reliability.conftest import assert_nothing_lost
from tests.reviews.builders import launched

EDITS = 20
REASON = "Checked with the payments team lead."


def test_twenty_simultaneous_edits_of_one_item_leave_exactly_one_decision(
    transactional_db, account, reviewer, manager
):
    campaign = launched(manager, [account])
    item = campaign.items.filter(reviewer=reviewer).order_by("pk").first()
    assert item is not None
    read_version = item.version
    start = threading.Barrier(EDITS)
    outcomes: list[tuple[int, str, object]] = []
    lock = threading.Lock()

    def edit(number: int) -> None:
        # Each thread has its own connection; each edits the item as read before anyone wrote.
        mine = ReviewItem.objects.select_related("campaign", "reviewer").get(pk=item.pk)
        choice = Choice("keep" if number % 2 else "revoke", f"{REASON} (tab {number})")
        try:
            start.wait(timeout=30)
            decided = decide(mine, reviewer, choice, version=read_version)
            result = ("won", decided)
        except Refused as exc:
            result = (exc.code, exc.item)
        finally:
            connection.close()
        with lock:
            outcomes.append((number, *result))

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(EDITS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == EDITS

    winners = [(number, found) for number, code, found in outcomes if code == "won"]
    refused = [(number, code, found) for number, code, found in outcomes if code != "won"]
    assert len(winners) == 1
    assert {code for _number, code, _found in refused} == {"stale"}
    [(number, won)] = winners
    # Each refused tab is shown the item as the winner left it.
    assert {found.version for _n, _c, found in refused} == {read_version + 1}
    assert {found.decision for _n, _c, found in refused} == {won.decision}

    item.refresh_from_db()
    assert item.version == read_version + 1
    assert item.decision == ("keep" if number % 2 else "revoke")
    [decision] = Decision.objects.filter(item=item)
    assert decision.reason == f"{REASON} (tab {number})"
    assert_nothing_lost(accepted=1)


@pytest.fixture(autouse=True)
def _close_thread_connections():
    yield
    connection.close()

"""The reviews' world: a campaign launched over the shared accounts.

`campaign` is active, owned by the manager, due in 14 days, over `account` (owned by the
reviewer: its 6 items are theirs) and `other_account` (no owner: its 6 items are orphans).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.launch import launch, new_campaign


@pytest.fixture
def campaign(account, other_account, manager):
    draft = new_campaign(
        name="2026 Q4 access review",
        owner=manager,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=[account, other_account],
    )
    return launch(draft, by=manager)


@pytest.fixture
def draft(manager, account, other_account):
    """A draft over the same accounts, by the manager: not launched."""
    return new_campaign(
        name="Year-end review",
        owner=manager,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=[account, other_account],
        by=manager,
    )


@pytest.fixture
def items(campaign, reviewer):
    """The reviewer's items of the campaign, in queue order."""
    return list(campaign.items.filter(reviewer=reviewer).order_by("principal_name", "right_kind"))

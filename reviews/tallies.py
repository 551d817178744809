"""Each campaign's items counted by reviewer, account and decision (`ItemTally`).

The queue's progress, the home page, the campaign list, the dashboard, the campaign items
page's filters and the reminders read these counts rather than counting the items: a
reviewer's 10,000 items or a campaign's 100,000 become a few rows. Whatever changes an item's
reviewer or decision (launch, a decision, a stage passed on, a reassignment, the default
outcome at close) moves its count from one tally to another in the same transaction, through
`move`. `recount` makes a campaign's tallies again from its items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.db.models.functions import Coalesce

from reviews.models import Decision, ItemTally, ReviewItem

# What a tally counts items by: (campaign id, reviewer id, account id, account name, decision,
# defaulted).
Key = tuple[int, int | None, str, str, str, bool]
FIELDS = ("campaign_id", "reviewer_id", "account_id", "account_name", "decision", "defaulted")


def key(item: ReviewItem, **changed) -> Key:
    """The tally an item counts in; `changed` gives the fields about to change (`reviewer_id`,
    `decision`, `defaulted`) as they will be."""
    return (
        item.campaign_id,
        changed.get("reviewer_id", item.reviewer_id),
        item.account_id,
        item.account_name,
        changed.get("decision", item.decision),
        changed.get("defaulted", False),
    )


def start(counts: Counter) -> None:
    """The tallies of a campaign just launched, which has none yet."""
    _create(counts)


def move(changes: Iterable[tuple[Key, Key]]) -> None:
    """Count each item of `changes`, (its key before, its key after), in its new tally."""
    add(shifts(changes))


def shifts(changes: Iterable[tuple[Key, Key]]) -> Counter:
    """What `changes` add to each tally (negative: take away), for `add`."""
    counts: Counter = Counter()
    for before, after in changes:
        if before != after:
            counts[before] -= 1
            counts[after] += 1
    return counts


def add(counts: Counter) -> None:
    """Add each key's count (negative to take items away) to its tally. In one order of keys,
    so that two transactions changing the same tallies do not deadlock."""
    for entry in sorted(counts, key=_order):
        if not counts[entry]:
            continue
        fields = dict(zip(FIELDS, entry, strict=True))
        tally = ItemTally.objects.filter(**fields)
        if tally.update(items=F("items") + counts[entry]):
            continue
        try:
            # A savepoint: the tally another transaction makes at the same moment wins.
            with transaction.atomic():
                ItemTally.objects.create(items=counts[entry], **fields)
        except IntegrityError:
            tally.update(items=F("items") + counts[entry])


def _order(entry: Key) -> tuple:
    campaign_id, reviewer_id, *rest = entry
    return (campaign_id, reviewer_id or 0, *rest)


def counted(campaign_id: int) -> dict[Key, int]:
    """The campaign's items counted as its tallies count them, from the items themselves."""
    defaulted = Exists(Decision.objects.filter(item=OuterRef("pk"), system=True))
    rows = (
        ReviewItem.objects.filter(campaign_id=campaign_id)
        .order_by()
        .values("campaign_id", "reviewer_id", "account_id", "account_name", "decision")
        .annotate(defaulted=defaulted)
        .values_list(*FIELDS)
        .annotate(n=Count("pk"))
    )
    return {tuple(row[:-1]): row[-1] for row in rows}


def tallied(campaign_id: int) -> dict[Key, int]:
    """The campaign's tallies, those of no item left out."""
    rows = ItemTally.objects.filter(campaign_id=campaign_id, items__gt=0).values_list(
        *FIELDS, "items"
    )
    return {tuple(row[:-1]): row[-1] for row in rows}


def recount(campaign_id: int) -> bool:
    """Make the campaign's tallies again from its items; whether they were wrong."""
    with transaction.atomic():
        found = counted(campaign_id)
        if found == tallied(campaign_id):
            return False
        ItemTally.objects.filter(campaign_id=campaign_id).delete()
        _create(found)
        return True


def _create(counts: dict[Key, int]) -> None:
    ItemTally.objects.bulk_create(
        ItemTally(items=n, **dict(zip(FIELDS, entry, strict=True))) for entry, n in counts.items()
    )


# Reading --------------------------------------------------------------------------------------


def of(**lookups):
    """The tallies holding items, filtered by `lookups`, ready for `.values(...)` and
    `progress()`."""
    return ItemTally.objects.filter(items__gt=0, **lookups).order_by()


def progress(decided: str = "decided") -> dict:
    """Annotations of a grouping of tallies: its items (`total`) and how many are decided."""
    return {
        "total": Coalesce(Sum("items"), 0),
        decided: Coalesce(Sum("items", filter=~Q(decision="")), 0),
    }

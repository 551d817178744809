"""Deciding items, reassigning them, closing and signing off campaigns.

Every change is a conditional UPDATE whose row count is checked (a stale form, a closed campaign
or a second click loses cleanly), written with its Decision row and its audit event in one
transaction. Refusals worth an auditor's attention (deciding one's own access) are recorded too.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from audit.trail import record, record_many
from config import bulk, dump
from inventory.models import Right
from reviews import handover, remediate, tallies
from reviews.models import Campaign, Decision, RemediationStart, ReviewItem, SignOff
from reviews.reviewers import item_is_own_access

MAX_REASON = 2000
# Control characters other than tab and newlines have no place in a reason an auditor reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SYSTEM_NAME = "Attest (default outcome)"
# Items closed at a time.
CLOSE_CHUNK = 2000


class Refused(Exception):
    """A change that is not made, and why, in words the user reads."""

    def __init__(self, message: str, *, code: str = "invalid", item: ReviewItem | None = None):
        self.code = code
        self.item = item
        super().__init__(message)


@dataclass(frozen=True)
class Choice:
    """What a reviewer chose for one item."""

    decision: str
    reason: str = ""
    keep: tuple[str, ...] = ()
    keep_until: date | None = None


def reason_required(item: ReviewItem, decision: str) -> bool:
    rules = item.campaign.rules
    if decision == ReviewItem.Decision.REVOKE:
        return rules.get("reason_for_revoke", True)
    if decision == ReviewItem.Decision.KEEP:
        return (item.privileged and rules.get("reason_for_privileged_keep", True)) or (
            item.facts.get("unused", False) and rules.get("reason_for_unused_keep", True)
        )
    return False


def keep_choices(item: ReviewItem) -> list[str]:
    """What a reduction of the item can keep: its services, and its tracked actions."""
    choices = []
    for service in item.facts.get("services", []):
        choices.append(service["namespace"])
        choices += [f"{service['namespace']}:{action}" for action in service.get("actions", {})]
    return choices


def clean_choice(item: ReviewItem, choice: Choice) -> Choice:
    """The choice, checked against the item and the campaign's rules."""
    if choice.decision not in (ReviewItem.Decision.KEEP, ReviewItem.Decision.REVOKE, "reduce"):
        raise Refused(_("Choose keep, revoke or reduce."))
    reason = _CONTROL.sub("", choice.reason or "").strip()
    if len(reason) > MAX_REASON:
        raise Refused(
            _("The reason is %(length)d characters long; at most %(max)d are kept.")
            % {"length": len(reason), "max": MAX_REASON}
        )
    if not reason and reason_required(item, choice.decision):
        raise Refused(_("A reason is required for this decision."), code="reason_required")
    keep: tuple[str, ...] = ()
    if choice.decision == ReviewItem.Decision.REDUCE:
        if item.right_kind not in (
            Right.Kind.MANAGED_POLICY,
            Right.Kind.INLINE_POLICY,
            Right.Kind.GROUP_MEMBERSHIP,
        ):
            raise Refused(_("Only a policy or a group membership can be reduced."))
        allowed = set(keep_choices(item))
        keep = tuple(sorted(set(choice.keep)))
        if not keep:
            raise Refused(_("Choose what the reduced right keeps."), code="keep_required")
        unknown = [entry for entry in keep if entry not in allowed]
        if unknown:
            raise Refused(
                _("The right does not allow %(entries)s: a reduction keeps only what it allows.")
                % {"entries": ", ".join(unknown)}
            )
    keep_until = choice.keep_until
    if keep_until is not None:
        if choice.decision != ReviewItem.Decision.KEEP:
            raise Refused(_("Only a kept right can have an end date."))
        if keep_until <= timezone.localdate():
            raise Refused(_("The end date must be in the future."))
    return Choice(choice.decision, reason, keep, keep_until)


def _check_reviewer(item: ReviewItem, user) -> None:
    if item.campaign.state != Campaign.State.ACTIVE:
        raise Refused(_("The campaign is not open for decisions."), code="closed", item=item)
    # Before the assignment check: an attempt at one's own access is refused as such, and so
    # recorded, also when the item went to someone else (as it does at launch).
    if item_is_own_access(user, item):
        raise Refused(
            _("Nobody decides on their own access: ask the campaign manager to reassign it."),
            code="self_review",
            item=item,
        )
    if item.reviewer_id != user.pk:
        raise Refused(_("This item is assigned to someone else."), code="not_yours", item=item)


def _refusal_recorded(exc: Refused, user, item: ReviewItem) -> None:
    if exc.code == "self_review":
        # In its own transaction: the refusal is kept although the decision is not made.
        with transaction.atomic():
            record(
                "decision.refused",
                item,
                actor=user,
                after={"reason": "self_review", "campaign": str(item.campaign.uuid)},
            )


def decide(
    item: ReviewItem,
    user,
    choice: Choice,
    *,
    version: int | None = None,
    seconds_to_decide: int | None = None,
) -> ReviewItem:
    """Record the user's decision on the item; refused if the item changed since `version`."""
    try:
        _check_reviewer(item, user)
        choice = clean_choice(item, choice)
    except Refused as exc:
        _refusal_recorded(exc, user, item)
        raise
    with transaction.atomic():
        _apply([(item, choice, version, seconds_to_decide)], user)
    item.refresh_from_db()
    return item


def decide_many(items: list[ReviewItem], user, choice: Choice) -> int:
    """One decision on many items, all or none; each item is checked as a single one is."""
    checked = []
    for item in items:
        try:
            _check_reviewer(item, user)
            checked.append((item, clean_choice(item, choice), item.version, None))
        except Refused as exc:
            _refusal_recorded(exc, user, item)
            raise Refused(
                _("%(item)s: %(message)s") % {"item": item, "message": exc},
                code=exc.code,
                item=item,
            ) from exc
    with transaction.atomic():
        _apply(checked, user)
    return len(checked)


def _apply(entries: list[tuple], user) -> None:
    """Write the decisions of `entries`, each (item, cleaned choice, version the decision was
    made on, seconds to decide), with their Decision rows and audit events.

    The same UPDATEs, rows and events for one item or ten thousand, in a number of queries that
    does not grow with them: items are updated in groups that share a version and a choice, each
    group's row count checked, and the Decision rows and events are inserted in batches.
    """
    now = timezone.now()
    bulk_size = len(entries)
    groups: dict[tuple, list[ReviewItem]] = defaultdict(list)
    for item, choice, version, _seconds in entries:
        expected = item.version if version is None else version
        groups[(expected, choice.decision, choice.keep_until)].append(item)
    for (version, decision, keep_until), members in groups.items():
        pks = [item.pk for item in members]
        # The campaign is checked through a subquery, not a join: Django turns an UPDATE with a
        # join into `WHERE id IN (SELECT ...)`, and PostgreSQL then re-checks only the id on a
        # row a concurrent decision just changed, so every one of several simultaneous edits
        # would land. On one table it re-checks `version` on the row it waited for.
        updated = ReviewItem.objects.filter(
            pk__in=bulk.id_array(pks),
            version=version,
            reviewer=user,
            campaign__in=Campaign.objects.filter(state=Campaign.State.ACTIVE).values("pk"),
        ).update(decision=decision, decided_at=now, keep_until=keep_until, version=F("version") + 1)
        if updated != len(pks):
            done = set(
                ReviewItem.objects.filter(pk__in=pks, decided_at=now).values_list("pk", flat=True)
            )
            stale = next(item for item in members if item.pk not in done)
            stale.refresh_from_db()
            raise Refused(
                _("Someone changed this item while you looked at it: here is its current state."),
                code="stale",
                item=stale,
            )
    # Made by bulk.new: Model.__init__ on 10,000 Decision rows (and their events, in
    # record_many) was a third of a bulk decision.
    decided_by_name = user.get_username()
    bulk.insert(
        Decision,
        [
            bulk.new(
                Decision,
                {
                    "item_id": item.pk,
                    "campaign_id": item.campaign_id,
                    "decision": choice.decision,
                    "reason": choice.reason,
                    "keep": list(choice.keep),
                    "keep_until": choice.keep_until,
                    "decided_by_id": user.pk,
                    "decided_by_name": decided_by_name,
                    "decided_at": now,
                    "stage": item.stage,
                    "seconds_to_decide": seconds,
                    "bulk_size": bulk_size,
                    "shown_sha256": item.shown_sha256,
                },
            )
            for item, choice, _version, seconds in entries
        ],
    )
    changes = []
    # Each item's tally, before and after: decided, or undecided with the next stage's reviewer.
    moved = []
    passing: dict[tuple, list[int]] = defaultdict(list)
    reviewers: dict[int, object] = {}
    # Items alike share one before and one after: the audit trail makes each plain JSON once.
    befores: dict[tuple, dict] = {}
    afters: dict[tuple, dict] = {}
    for item, choice, _version, _seconds in entries:
        key = (item.decision, item.stage, item.reviewer_id)
        if key not in befores:
            befores[key] = {
                "decision": item.decision,
                "stage": item.stage,
                "reviewer": _name(item.reviewer),
            }
        before = befores[key]
        key = (choice, item.stage)
        if key not in afters:
            afters[key] = {
                "decision": choice.decision,
                "reason": choice.reason,
                "keep": list(choice.keep),
                "keep_until": choice.keep_until,
                "stage": item.stage,
                "bulk_size": bulk_size,
            }
        after = afters[key]
        counted_in = tallies.key(item, decision=choice.decision)
        next_stage = _next_stage(item, choice.decision)
        if next_stage is not None:
            after = dict(after)  # its own: it names the next stage
            if next_stage["reviewer"] not in reviewers:
                reviewers[next_stage["reviewer"]] = (
                    get_user_model()
                    .objects.filter(pk=next_stage["reviewer"], is_active=True)
                    .first()
                )
            reviewer = reviewers[next_stage["reviewer"]]
            if reviewer is not None and item_is_own_access(reviewer, item):
                reviewer = None
            passing[(next_stage["number"], reviewer)].append(item.pk)
            after["passed_to_stage"] = next_stage["number"]
            after["next_reviewer"] = _name(reviewer)
            counted_in = tallies.key(item, reviewer_id=reviewer and reviewer.pk, decision="")
        moved.append((tallies.key(item), counted_in))
        changes.append((item, before, after))
    for (number, reviewer), pks in passing.items():
        ReviewItem.objects.filter(pk__in=pks).update(
            stage=number,
            reviewer=reviewer,
            reviewer_source=(
                ReviewItem.ReviewerSource.STAGE if reviewer else ReviewItem.ReviewerSource.NONE
            ),
            decision="",
            decided_at=None,
            version=F("version") + 1,
        )
    tallies.move(moved)
    record_many("decision.made", changes, actor=user)
    for item, _before, after in changes:
        if item.campaign.rules.get("remediation_start") != RemediationStart.AFTER_DECISION:
            continue
        try:
            if "passed_to_stage" not in after:
                remediate.plan_item(item, user)
            else:
                remediate.cancel_for_item(item, user)
        except remediate.Refused as exc:
            raise Refused(str(exc), code="remediating", item=item) from exc


def _next_stage(item: ReviewItem, decision: str) -> dict | None:
    for stage in item.campaign.rules.get("stages", []):
        if stage["number"] != item.stage + 1:
            continue
        if decision in stage["decisions"] and (item.privileged or not stage["privileged_only"]):
            return stage
    return None


def _name(user) -> str | None:
    return user.get_username() if user is not None else None


def reassign(items: list[ReviewItem], to_user, by, reason: str) -> int:
    """Give items to another reviewer (a manager's reassignment, or a reviewer's delegation)."""
    reason = _CONTROL.sub("", reason or "").strip()
    if not reason:
        raise Refused(_("Say why the items change reviewer."), code="reason_required")
    if len(reason) > MAX_REASON:
        raise Refused(_("The reason is too long."))
    if not to_user.is_active:
        raise Refused(_("%(user)s cannot sign in.") % {"user": to_user})
    for item in items:
        if item.campaign.state != Campaign.State.ACTIVE:
            raise Refused(_("%(item)s: the campaign is not open.") % {"item": item}, item=item)
        if item_is_own_access(to_user, item):
            raise Refused(
                _("%(item)s is %(user)s's own access: it cannot be theirs to review.")
                % {"item": item, "user": to_user},
                code="self_review",
                item=item,
            )
    with transaction.atomic():
        moved = []
        for item in items:
            updated = ReviewItem.objects.filter(pk=item.pk, version=item.version).update(
                reviewer=to_user,
                reviewer_source=ReviewItem.ReviewerSource.ASSIGNED,
                version=F("version") + 1,
            )
            if updated != 1:
                raise Refused(
                    _("%(item)s changed meanwhile; reload and try again.") % {"item": item},
                    code="stale",
                    item=item,
                )
            moved.append((tallies.key(item), tallies.key(item, reviewer_id=to_user.pk)))
            record(
                "item.reassigned",
                item,
                actor=by,
                before={"reviewer": _name(item.reviewer)},
                after={"reviewer": to_user.get_username(), "reason": reason},
            )
        tallies.move(moved)
    return len(items)


def request_close(campaign: Campaign, by=None) -> None:
    """Stop the campaign's decisions now and close it in a worker (`close`, handed over as
    `reviews.handover` says)."""
    with transaction.atomic():
        if not handover.CLOSE.ask(campaign, by):
            raise Refused(_("The campaign is not open."), code="closed")
    campaign.refresh_from_db()


def close(campaign: Campaign, by=None) -> dict:
    """Close the campaign, giving its unanswered items the default outcome as decisions of
    Attest's own; returns how many items got which outcome. The campaign is open, or closing
    since `request_close`."""
    outcome = campaign.rules.get("default_outcome", "recommendation")
    now = timezone.now()
    with transaction.atomic():
        if not Campaign.objects.filter(
            pk=campaign.pk, state__in=(Campaign.State.ACTIVE, Campaign.State.CLOSING)
        ).update(state=Campaign.State.CLOSED, closed_at=now):
            raise Refused(_("The campaign is not open."), code="closed")
        applied: dict[str, int] = {}
        # Locked, and read again once a decision being written commits: a reviewer's decision
        # that lands while the campaign closes stands, rather than being overwritten here.
        pending = list(
            campaign.items.filter(decision="")
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        reason = _("No decision by the due date: the campaign's default outcome.")
        shifted = Counter()
        # In chunks: the items of a large campaign would not fit in a worker's memory at once.
        # Of what each reviewer was shown, a reduction needs only what the recommendation kept.
        # The tallies move once, with what every chunk moved.
        for chunk in _chunks(pending, CLOSE_CHUNK):
            decisions, outcomes, moved = [], defaultdict(list), []
            for item in (
                ReviewItem.objects.filter(pk__in=chunk)
                .defer("facts")
                .annotate(kept=KeyTransform("keep", "facts"))
                .order_by("pk")
            ):
                decision = outcome
                if outcome == "recommendation":
                    decision = item.recommendation if item.recommendation != "none" else "keep"
                applied[decision] = applied.get(decision, 0) + 1
                outcomes[decision].append(item.pk)
                moved.append(
                    (tallies.key(item), tallies.key(item, decision=decision, defaulted=True))
                )
                decisions.append(
                    bulk.new(
                        Decision,
                        {
                            "item_id": item.pk,
                            "campaign_id": campaign.pk,
                            "decision": decision,
                            "reason": reason,
                            "keep": (item.kept or []) if decision == "reduce" else [],
                            "decided_by_name": SYSTEM_NAME,
                            "decided_at": now,
                            "stage": item.stage,
                            "bulk_size": len(pending),
                            "system": True,
                            "shown_sha256": item.shown_sha256,
                        },
                    )
                )
            # One UPDATE per outcome rather than one per item.
            for decision, pks in outcomes.items():
                ReviewItem.objects.filter(pk__in=bulk.id_array(pks)).update(
                    decision=decision, decided_at=now, version=F("version") + 1
                )
            bulk.insert(Decision, decisions)
            shifted.update(tallies.shifts(moved))
        tallies.add(shifted)
        record(
            "campaign.closed",
            campaign,
            actor=by,
            actor_name="" if by else "system",
            after={"default_outcome": outcome, "applied": applied},
        )
        remediate.plan_campaign(campaign, by)
    campaign.refresh_from_db()
    return applied


def _chunks(values: list, size: int):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def decisions_sha256(campaign: Campaign) -> str:
    """One digest over every item's final decision: what a sign-off attests."""
    digest = hashlib.sha256()
    # Written by the database and streamed: the evidence package works it out again over
    # campaigns of 100,000 items.
    for block in dump.digest_lines(campaign.items.order_by("pk"), _DIGESTED):
        digest.update(block)
    return digest.hexdigest()


# What a sign-off's digest covers of each item, in its order: [item, principal_arn, right_kind,
# right_key, decision, keep_until] as canonical JSON, a line each.
_DIGESTED = {
    name: name
    for name in ("uuid", "principal_arn", "right_kind", "right_key", "decision", "keep_until")
}


def sign_off(campaign: Campaign, user, password: str, statement: str) -> SignOff:
    """The campaign manager attests the review, re-entering their password."""
    if campaign.owner_id != user.pk:
        raise Refused(_("Only the campaign's manager signs it off."), code="not_yours")
    if not user.check_password(password or ""):
        raise Refused(_("The password is not right."), code="password")
    statement = _CONTROL.sub("", statement or "").strip()
    if not statement:
        raise Refused(_("Write the attestation statement."), code="statement_required")
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not locked.is_launched:
            raise Refused(_("The campaign is not launched yet."), code="closed")
        if locked.state == Campaign.State.CLOSING:
            raise Refused(
                _("The campaign is still closing; sign it off once it is closed."),
                code="closing",
            )
        if locked.state not in (Campaign.State.ACTIVE, Campaign.State.CLOSED):
            raise Refused(_("The campaign is already signed off."), code="closed")
        open_items = locked.items.filter(decision="").count()
        if open_items:
            raise Refused(
                ngettext(
                    "%(count)d item is not decided yet.",
                    "%(count)d items are not decided yet.",
                    open_items,
                )
                % {"count": open_items},
                code="open_items",
            )
        unsettled = remediate.unsettled(locked).count()
        if unsettled:
            raise Refused(
                ngettext(
                    "%(count)d revocation is neither verified in AWS nor excepted.",
                    "%(count)d revocations are neither verified in AWS nor excepted.",
                    unsettled,
                )
                % {"count": unsettled},
                code="unsettled",
            )
        signoff = SignOff.objects.create(
            campaign=locked,
            signed_by=user,
            signed_by_name=user.get_username(),
            statement=statement,
            decisions_sha256=decisions_sha256(locked),
        )
        locked.state = Campaign.State.SIGNED_OFF
        if locked.closed_at is None:
            locked.closed_at = signoff.signed_at
        locked.save(update_fields=["state", "closed_at"])
        record(
            "campaign.signed_off",
            locked,
            actor=user,
            after={"statement": statement, "decisions_sha256": signoff.decisions_sha256},
        )
    campaign.refresh_from_db()
    return signoff

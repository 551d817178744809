"""Deciding items, changing decisions, later stages, bulk decisions, reassignment, closing and
signing off: what is refused, what is written, and the audit trail of each change."""

import hashlib
import importlib
import json
from datetime import date, timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent
from config import dump
from inventory.models import AwsAccount, Principal
from reviews.decide import (
    MAX_REASON,
    SYSTEM_NAME,
    Choice,
    Refused,
    close,
    decide,
    decide_many,
    decisions_sha256,
    reassign,
    sign_off,
)
from reviews.models import Campaign, Decision, ReviewItem, SignOff, StageRule
from tests import factories
from tests.reviews.builders import (
    add_principal,
    audit_mark,
    definition,
    events_since,
    import_account,
    item,
    launched,
    settled,
    shown_sha256,
)

PASSWORD = "correct horse battery staple"  # every factory user's
REASON = "Needed for the quarterly close; owner confirmed."


def person(username, **extra):
    return factories.UserFactory(username=username, email=f"{username}@example.com", **extra)


@pytest.fixture
def lena(db):
    return person("lena.lead")


@pytest.fixture
def imported(reviewer, manager):
    """A campaign over the imported organization (tests.reviews.builders), all of it the
    reviewer's: unused rights, credentials, a boundary, a group without usage data."""
    account = import_account()
    AwsAccount.objects.filter(pk=account.pk).update(owner=reviewer)
    return launched(manager, [account])


def fresh(found: ReviewItem) -> ReviewItem:
    return ReviewItem.objects.select_related("campaign", "reviewer").get(pk=found.pk)


def admin(campaign, n=0):
    """The privileged item: AdministratorAccess of payments-prod-role-n (the reviewer's)."""
    return fresh(item(campaign, f"payments-prod-role-{n}", "managed_policy"))


def inline(campaign, n=0):
    """An unprivileged, used item: the inline read-s3 policy of payments-prod-role-n."""
    return fresh(item(campaign, f"payments-prod-role-{n}", "inline_policy"))


def orphans(campaign):
    return list(campaign.items.filter(reviewer__isnull=True).order_by("pk"))


def state(campaign) -> dict:
    """Everything a refused change must leave as it was."""
    return {
        "items": list(
            campaign.items.order_by("pk").values_list(
                "decision", "version", "reviewer_id", "stage", "keep_until"
            )
        ),
        "decisions": Decision.objects.count(),
        "events": AuditEvent.objects.count(),
        "campaign": Campaign.objects.filter(pk=campaign.pk).values_list("state").get(),
        "signoffs": SignOff.objects.count(),
    }


def refused(code, action, *args, **kwargs) -> Refused:
    with pytest.raises(Refused) as caught:
        action(*args, **kwargs)
    assert caught.value.code == code, str(caught.value)
    return caught.value


# Deciding and the reason rules -----------------------------------------------------------------


def test_a_decision_records_who_when_what_was_shown_and_how_long_it_took(campaign, reviewer):
    chosen = inline(campaign)
    mark = audit_mark()

    decided = decide(chosen, reviewer, Choice("keep"), version=1, seconds_to_decide=42)

    assert (decided.decision, decided.version, decided.is_decided) == ("keep", 2, True)
    assert decided.decided_at is not None
    recorded = decided.decisions.get()
    assert recorded.decided_by == reviewer
    assert recorded.decided_by_name == "rita.reviewer"
    assert recorded.decided_at == decided.decided_at
    assert (recorded.decision, recorded.reason, recorded.stage) == ("keep", "", 1)
    assert (recorded.seconds_to_decide, recorded.bulk_size, recorded.system) == (42, 1, False)
    assert recorded.shown_sha256 == shown_sha256(chosen)
    [event] = events_since(mark)
    assert (event.action, event.actor, event.object_id) == (
        "decision.made",
        reviewer,
        str(chosen.pk),
    )
    assert event.before == {"decision": "", "stage": 1, "reviewer": "rita.reviewer"}
    assert event.after == {
        "decision": "keep",
        "reason": "",
        "keep": [],
        "keep_until": None,
        "stage": 1,
        "bulk_size": 1,
    }


@pytest.mark.parametrize("blank", ["", "   ", "\x00\x07 \x1b"])
def test_keeping_a_privileged_right_needs_a_reason(campaign, reviewer, blank):
    privileged = admin(campaign)
    assert privileged.privileged
    before = state(campaign)

    error = refused("reason_required", decide, privileged, reviewer, Choice("keep", blank))

    assert str(error) == "A reason is required for this decision."
    assert state(campaign) == before
    decided = decide(privileged, reviewer, Choice("keep", f"  {REASON}\x00 \n"))
    assert decided.decisions.get().reason == REASON


def test_revoking_needs_a_reason(campaign, reviewer):
    used = inline(campaign)
    before = state(campaign)
    refused("reason_required", decide, used, reviewer, Choice("revoke"))
    assert state(campaign) == before
    assert decide(used, reviewer, Choice("revoke", REASON)).decision == "revoke"


@pytest.mark.parametrize(
    ("principal", "kind"),
    [("legacy-batch", "inline_policy"), ("bob", "console_password"), ("bob", "access_key")],
)
def test_keeping_an_unused_right_needs_a_reason(imported, reviewer, principal, kind):
    unused = fresh(item(imported, principal, kind))
    assert unused.facts["unused"]
    assert not unused.privileged
    refused("reason_required", decide, unused, reviewer, Choice("keep"))
    assert decide(unused, reviewer, Choice("keep", REASON)).decision == "keep"


def test_keeping_a_used_right_or_one_without_data_or_reducing_needs_no_reason(imported, reviewer):
    for principal, kind, choice in [
        ("app-task", "inline_policy", Choice("keep")),  # used
        ("developers", "managed_policy", Choice("keep")),  # no usage data
        ("new-service", "inline_policy", Choice("keep")),  # younger than the window
        ("alice", "permissions_boundary", Choice("keep")),
        ("ops-admin", "managed_policy", Choice("reduce", keep=("s3",))),  # privileged
    ]:
        assert decide(fresh(item(imported, principal, kind)), reviewer, choice).is_decided


def test_a_definition_can_waive_each_reason_rule(reviewer, manager):
    account = import_account()
    AwsAccount.objects.filter(pk=account.pk).update(owner=reviewer)
    relaxed = definition(
        manager,
        accounts=[account],
        reason_for_privileged_keep=False,
        reason_for_unused_keep=False,
        reason_for_revoke=False,
    )
    campaign = launched(manager, definition=relaxed)
    for principal, kind, choice in [
        ("ops-admin", "managed_policy", "keep"),
        ("legacy-batch", "inline_policy", "keep"),
        ("app-task", "inline_policy", "revoke"),
    ]:
        assert decide(fresh(item(campaign, principal, kind)), reviewer, Choice(choice)).is_decided


def test_a_reason_longer_than_what_is_kept_is_refused(campaign, reviewer):
    error = refused("invalid", decide, inline(campaign), reviewer, Choice("revoke", "x" * 2001))
    assert str(error) == f"The reason is 2001 characters long; at most {MAX_REASON} are kept."
    assert decide(inline(campaign), reviewer, Choice("revoke", "x" * 2000)).is_decided


def test_only_keep_revoke_or_reduce_can_be_chosen(campaign, reviewer):
    for nonsense in ["", "approve", "KEEP"]:
        refused("invalid", decide, inline(campaign), reviewer, Choice(nonsense, REASON))
    assert not Decision.objects.exists()


# Reducing ------------------------------------------------------------------------------------


def test_a_reduction_keeps_the_services_and_actions_chosen(campaign, reviewer):
    # AdministratorAccess allows everything; Access Advisor knows S3 (GetObject) and IAM.
    decided = decide(admin(campaign), reviewer, Choice("reduce", keep=("s3:GetObject", "s3")))
    assert decided.decision == "reduce"
    assert decided.decisions.get().keep == ["s3", "s3:GetObject"]


@pytest.mark.parametrize(
    ("which", "keep", "named"),
    [
        (admin, ("s3", "ec2"), "ec2"),  # a service nobody knows it allows
        (inline, ("s3:GetObject", "iam"), "iam"),  # more than an S3 read policy allows
        (inline, ("s3:PutObject",), "s3:PutObject"),
    ],
    ids=["unknown-service", "another-service", "another-action"],
)
def test_a_reduction_never_keeps_more_than_the_right_allows(campaign, reviewer, which, keep, named):
    before = state(campaign)
    error = refused("invalid", decide, which(campaign), reviewer, Choice("reduce", keep=keep))
    assert str(error) == (
        f"The right does not allow {named}: a reduction keeps only what it allows."
    )
    assert state(campaign) == before


def test_a_reduction_must_keep_something(campaign, reviewer):
    refused("keep_required", decide, admin(campaign), reviewer, Choice("reduce", REASON))


@pytest.mark.parametrize(
    ("principal", "kind"),
    [("alice", "access_key"), ("alice", "console_password"), ("alice", "permissions_boundary")],
)
def test_only_policies_and_group_memberships_can_be_reduced(imported, reviewer, principal, kind):
    error = refused(
        "invalid", decide, fresh(item(imported, principal, kind)), reviewer, Choice("reduce")
    )
    assert str(error) == "Only a policy or a group membership can be reduced."


def test_a_group_membership_reduces_to_what_the_groups_policies_allow(imported, reviewer):
    membership = fresh(item(imported, "alice", "group_membership"))
    assert decide(membership, reviewer, Choice("reduce", keep=("logs",))).is_decided
    refused("invalid", decide, fresh(membership), reviewer, Choice("reduce", keep=("ecr",)))


# Keeping until a date --------------------------------------------------------------------------


def test_a_right_can_be_kept_until_a_date(campaign, reviewer):
    until = timezone.localdate() + timedelta(days=30)
    decided = decide(inline(campaign), reviewer, Choice("keep", keep_until=until))
    assert decided.keep_until == until
    assert decided.decisions.get().keep_until == until
    assert AuditEvent.objects.get(action="decision.made").after["keep_until"] == until.isoformat()


def test_the_end_date_of_a_kept_right_is_in_the_future_and_only_for_keeping(campaign, reviewer):
    today = timezone.localdate()
    before = state(campaign)
    error = refused("invalid", decide, inline(campaign), reviewer, Choice("keep", keep_until=today))
    assert str(error) == "The end date must be in the future."
    error = refused(
        "invalid",
        decide,
        inline(campaign),
        reviewer,
        Choice("revoke", REASON, keep_until=today + timedelta(days=5)),
    )
    assert str(error) == "Only a kept right can have an end date."
    assert state(campaign) == before


# Concurrent edits ------------------------------------------------------------------------------


def test_a_stale_decision_is_refused_and_nothing_is_written(campaign, reviewer):
    first_tab, second_tab = inline(campaign), inline(campaign)
    decide(first_tab, reviewer, Choice("keep"), version=1)
    before = state(campaign)

    error = refused("stale", decide, second_tab, reviewer, Choice("revoke", REASON), version=1)

    assert state(campaign) == before
    # The refusal carries the item as it is now, for the reviewer to see.
    assert (error.item.decision, error.item.version) == ("keep", 2)
    assert list(fresh(second_tab).decisions.values_list("decision", flat=True)) == ["keep"]


def test_a_decision_on_an_item_loaded_before_a_change_is_stale_too(campaign, reviewer):
    loaded = inline(campaign)
    decide(inline(campaign), reviewer, Choice("keep"))
    refused("stale", decide, loaded, reviewer, Choice("revoke", REASON))
    assert fresh(loaded).decision == "keep"


# Whose decision it is --------------------------------------------------------------------------


def test_deciding_someone_elses_item_is_refused_and_writes_nothing(campaign, manager, reviewer):
    before = state(campaign)
    refused("not_yours", decide, inline(campaign), manager, Choice("keep"))
    refused("not_yours", decide, fresh(orphans(campaign)[0]), reviewer, Choice("keep"))
    assert state(campaign) == before


def test_deciding_ones_own_access_is_refused_and_recorded(account, reviewer, manager):
    add_principal(account, "r.smith", kind=Principal.Kind.USER)
    campaign = launched(manager, [account])
    own = fresh(item(campaign, "r.smith", "inline_policy"))
    assert own.reviewer == reviewer  # the account owner's, until...
    reviewer.email = "r.smith@example.com"  # ...her address shows the IAM user is hers
    reviewer.save()
    mark = audit_mark()

    error = refused("self_review", decide, own, reviewer, Choice("keep"))

    assert str(error) == (
        "Nobody decides on their own access: ask the campaign manager to reassign it."
    )
    [event] = events_since(mark)
    assert (event.action, event.actor, event.object_id) == (
        "decision.refused",
        reviewer,
        str(own.pk),
    )
    assert event.after == {"reason": "self_review", "campaign": str(campaign.uuid)}
    assert fresh(own).decision == ""
    assert not Decision.objects.exists()


def test_an_attempt_at_ones_own_access_given_to_the_fallback_is_refused_and_recorded(
    account, reviewer, manager, lena
):
    add_principal(account, "rita.reviewer", kind=Principal.Kind.USER)
    campaign = launched(
        manager, definition=definition(manager, accounts=[account], fallback_reviewer=lena)
    )
    own = fresh(item(campaign, "rita.reviewer", "inline_policy"))
    assert (own.reviewer, own.reviewer_source) == (lena, "self_review")
    mark = audit_mark()

    refused("self_review", decide, own, reviewer, Choice("keep"))

    assert [e.action for e in events_since(mark)] == ["decision.refused"]
    assert decide(own, lena, Choice("keep")).decisions.get().decided_by == lena


def test_a_bulk_decision_including_ones_own_access_is_refused_whole_and_recorded(
    account, reviewer, manager
):
    add_principal(account, "r.smith", kind=Principal.Kind.USER)
    campaign = launched(manager, [account])
    reviewer.email = "r.smith@example.com"
    reviewer.save()
    mine = list(campaign.items.filter(reviewer=reviewer, privileged=False).order_by("pk"))
    mark = audit_mark()

    error = refused("self_review", decide_many, mine, reviewer, Choice("keep"))

    assert str(error).startswith("r.smith: read-s3: Nobody decides on their own access")
    assert [e.action for e in events_since(mark)] == ["decision.refused"]
    assert not Decision.objects.exists()


# Changing one's mind ---------------------------------------------------------------------------


def test_a_decision_can_change_until_sign_off_and_every_change_is_kept(campaign, reviewer):
    chosen = admin(campaign)
    mark = audit_mark()

    decide(chosen, reviewer, Choice("keep", REASON))
    decide(fresh(chosen), reviewer, Choice("revoke", "Not needed after all."))
    latest = decide(fresh(chosen), reviewer, Choice("reduce", keep=("s3",)))

    assert (latest.decision, latest.version) == ("reduce", 4)
    history = list(latest.decisions.order_by("decided_at", "pk"))
    assert [(d.decision, d.reason, d.keep) for d in history] == [
        ("keep", REASON, []),
        ("revoke", "Not needed after all.", []),
        ("reduce", "", ["s3"]),
    ]
    assert {d.decided_by_name for d in history} == {"rita.reviewer"}
    assert {d.shown_sha256 for d in history} == {shown_sha256(chosen)}
    # The newest first, as the item's history shows it.
    assert list(latest.decisions.values_list("decision", flat=True)) == ["reduce", "revoke", "keep"]
    events = events_since(mark)
    assert [(e.before["decision"], e.after["decision"]) for e in events] == [
        ("", "keep"),
        ("keep", "revoke"),
        ("revoke", "reduce"),
    ]


# Later stages ----------------------------------------------------------------------------------


@pytest.fixture
def security(db):
    return person("sam.security")


def staged(manager, account, reviewer_of_stage, **rule):
    scheduled = definition(manager, accounts=[account])
    StageRule.objects.create(definition=scheduled, number=2, reviewer=reviewer_of_stage, **rule)
    return launched(manager, definition=scheduled)


def test_kept_privileged_items_pass_to_the_later_stage_reviewer(
    account, reviewer, manager, security
):
    campaign = staged(manager, account, security)  # by default: kept and reduced privileged
    mark = audit_mark()

    passed = decide(admin(campaign), reviewer, Choice("keep", REASON))

    assert (passed.stage, passed.reviewer, passed.reviewer_source) == (2, security, "stage")
    assert (passed.decision, passed.is_decided, passed.version) == ("", False, 3)
    [event] = events_since(mark)
    assert event.after["passed_to_stage"] == 2
    assert event.after["next_reviewer"] == "sam.security"
    # The first reviewer has had their say; the stage reviewer decides now.
    refused("not_yours", decide, fresh(passed), reviewer, Choice("revoke", REASON))
    final = decide(fresh(passed), security, Choice("revoke", "Admin is too wide."))
    assert (final.decision, final.stage) == ("revoke", 2)
    assert [(d.stage, d.decision, d.decided_by_name) for d in final.decisions.order_by("pk")] == [
        (1, "keep", "rita.reviewer"),
        (2, "revoke", "sam.security"),
    ]


def test_what_a_stage_does_not_take_stays_decided_at_the_first(
    account, reviewer, manager, security
):
    campaign = staged(manager, account, security)
    unprivileged = decide(inline(campaign), reviewer, Choice("keep"))
    revoked = decide(admin(campaign, 1), reviewer, Choice("revoke", REASON))
    reduced = decide(admin(campaign, 2), reviewer, Choice("reduce", keep=("s3",)))
    assert (unprivileged.stage, unprivileged.decision) == (1, "keep")
    assert (revoked.stage, revoked.decision) == (1, "revoke")
    assert (reduced.stage, reduced.reviewer) == (2, security)


def test_a_stage_can_take_the_revoked_items_of_every_kind(account, reviewer, manager, security):
    campaign = staged(
        manager,
        account,
        security,
        pass_keep=False,
        pass_reduce=False,
        pass_revoke=True,
        privileged_only=False,
    )
    kept = decide(inline(campaign), reviewer, Choice("keep"))
    revoked = decide(inline(campaign, 1), reviewer, Choice("revoke", REASON))
    assert (kept.stage, kept.decision) == (1, "keep")
    assert (revoked.stage, revoked.reviewer, revoked.decision) == (2, security, "")


def test_a_stage_reviewer_never_gets_their_own_access(account, reviewer, manager, security):
    add_principal(account, "sam.security", kind=Principal.Kind.USER)
    campaign = staged(manager, account, security, privileged_only=False)
    passed = decide(
        fresh(item(campaign, "sam.security", "inline_policy")), reviewer, Choice("keep")
    )
    assert (passed.stage, passed.reviewer, passed.reviewer_source) == (2, None, "none")


# Bulk decisions --------------------------------------------------------------------------------


def test_a_bulk_decision_decides_every_item_chosen_with_one_reason(campaign, reviewer):
    chosen = [inline(campaign, n) for n in range(3)]
    mark = audit_mark()

    assert decide_many(chosen, reviewer, Choice("revoke", REASON)) == 3

    for one in chosen:
        decided = fresh(one)
        assert decided.decision == "revoke"
        recorded = decided.decisions.get()
        assert (recorded.reason, recorded.bulk_size, recorded.decided_by) == (REASON, 3, reviewer)
    events = events_since(mark)
    assert [e.action for e in events] == ["decision.made"] * 3
    assert {e.object_id for e in events} == {str(one.pk) for one in chosen}
    assert {e.after["bulk_size"] for e in events} == {3}


def test_a_bulk_decision_that_one_item_refuses_decides_none(campaign, reviewer):
    # Keeping without a reason is fine for the reads, not for AdministratorAccess.
    chosen = [inline(campaign), admin(campaign), inline(campaign, 1)]
    before = state(campaign)

    error = refused("reason_required", decide_many, chosen, reviewer, Choice("keep"))

    assert str(error) == (
        "payments-prod-role-0: AdministratorAccess: A reason is required for this decision."
    )
    assert error.item == chosen[1]
    assert state(campaign) == before


def test_a_bulk_decision_with_one_stale_item_decides_none(campaign, reviewer):
    chosen = [inline(campaign, n) for n in range(3)]
    decide(inline(campaign, 2), reviewer, Choice("keep"))  # in another tab
    before = state(campaign)

    refused("stale", decide_many, chosen, reviewer, Choice("revoke", REASON))

    assert state(campaign) == before
    assert [fresh(one).decision for one in chosen] == ["", "", "keep"]


def test_a_bulk_decision_with_someone_elses_item_decides_none(campaign, reviewer):
    chosen = [inline(campaign), fresh(orphans(campaign)[0])]
    before = state(campaign)
    refused("not_yours", decide_many, chosen, reviewer, Choice("revoke", REASON))
    assert state(campaign) == before


# Reassigning and delegating --------------------------------------------------------------------


def test_a_manager_reassigns_orphans_and_the_trail_says_who_why_and_to_whom(
    campaign, manager, lena
):
    chosen = orphans(campaign)[:2]
    mark = audit_mark()

    assert reassign(chosen, lena, manager, "  Marketing's lead reviews marketing.  ") == 2

    for one in chosen:
        moved = fresh(one)
        assert (moved.reviewer, moved.reviewer_source, moved.version) == (lena, "assigned", 2)
    events = events_since(mark)
    assert [(e.action, e.actor) for e in events] == [("item.reassigned", manager)] * 2
    assert events[0].before == {"reviewer": None}
    assert events[0].after == {
        "reviewer": "lena.lead",
        "reason": "Marketing's lead reviews marketing.",
    }
    assert decide(fresh(chosen[0]), lena, Choice("keep", REASON)).decision == "keep"


def test_a_reviewer_delegates_an_item_and_can_no_longer_decide_it(campaign, reviewer, lena):
    chosen = inline(campaign)
    reassign([chosen], lena, reviewer, "Lena runs this service now.")
    event = AuditEvent.objects.get(action="item.reassigned")
    assert (event.actor, event.before, event.after["reviewer"]) == (
        reviewer,
        {"reviewer": "rita.reviewer"},
        "lena.lead",
    )
    refused("not_yours", decide, fresh(chosen), reviewer, Choice("keep"))
    assert decide(fresh(chosen), lena, Choice("keep")).decided_at is not None


def test_reassigning_needs_a_reason_and_someone_who_can_sign_in(campaign, manager, lena):
    before = state(campaign)
    refused("reason_required", reassign, orphans(campaign), lena, manager, " \x00 ")
    assert state(campaign) == before
    lena.is_active = False
    lena.save()
    before = state(campaign)
    error = refused("invalid", reassign, orphans(campaign), lena, manager, REASON)
    assert str(error) == "lena.lead cannot sign in."
    assert state(campaign) == before


def test_nobody_is_given_their_own_access_to_review(account, reviewer, manager, lena):
    add_principal(account, "lena.lead", kind=Principal.Kind.USER)
    campaign = launched(manager, [account])
    own = fresh(item(campaign, "lena.lead", "inline_policy"))
    before = state(campaign)

    error = refused("self_review", reassign, [inline(campaign), own], lena, manager, REASON)

    assert str(error) == (
        "lena.lead: read-s3 is lena.lead's own access: it cannot be theirs to review."
    )
    assert state(campaign) == before


def test_a_reassignment_with_one_stale_item_moves_none(campaign, manager, lena, reviewer):
    chosen = [inline(campaign), inline(campaign, 1)]
    decide(inline(campaign, 1), reviewer, Choice("keep"))
    before = state(campaign)
    refused("stale", reassign, chosen, lena, manager, REASON)
    assert state(campaign) == before


def test_a_campaigns_decisions_are_its_own_however_they_were_made(
    campaign, items, reviewer, manager, account
):
    """One at a time, in bulk and by default at close; a campaign before it keeps its own."""
    earlier = launched(manager, [account])
    decide_many(list(earlier.items.filter(reviewer=reviewer)), reviewer, Choice("keep", REASON))
    close(earlier, by=manager)
    decide(items[0], reviewer, Choice("keep", REASON))
    decide_many(items[1:3], reviewer, Choice("revoke", REASON))
    close(campaign, by=manager)

    for one in (earlier, campaign):
        assert one.decisions.count() == one.item_count
        assert not one.decisions.exclude(item__campaign=one).exists()
    assert campaign.decisions.filter(system=False).count() == 3


def test_the_migration_gives_earlier_decisions_their_campaign(
    campaign, items, reviewer, manager, account
):
    decide(items[0], reviewer, Choice("keep", REASON))
    close(campaign, by=manager)
    migration = importlib.import_module("reviews.migrations.0009_decision_campaign")
    Decision.objects.update(campaign=launched(manager, [account]))  # each on a wrong one

    migration.give_campaigns(apps, None)

    assert campaign.decisions.count() == campaign.item_count == 12


# Closing ---------------------------------------------------------------------------------------


def test_closing_gives_unanswered_items_the_recommendation_as_decisions_of_attest(
    campaign, reviewer, manager
):
    answered = decide(inline(campaign), reviewer, Choice("revoke", REASON))
    mark = audit_mark()

    applied = close(campaign, by=manager)

    # 6 AdministratorAccess items recommended for reduction, 5 reads for keeping.
    assert applied == {"reduce": 6, "keep": 5}
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert campaign.closed_at is not None
    assert not campaign.items.filter(decision="").exists()
    system = Decision.objects.filter(system=True)
    assert system.count() == 11
    for made in system.select_related("item"):
        assert made.decision == made.item.recommendation == made.item.decision
        assert (made.decided_by, made.decided_by_name, made.bulk_size) == (None, SYSTEM_NAME, 11)
        assert made.keep == (["s3"] if made.decision == "reduce" else [])
        assert made.shown_sha256 == shown_sha256(made.item)
        assert made.reason == "No decision by the due date: the campaign's default outcome."
    # The reviewer's own decision stands.
    assert list(fresh(answered).decisions.values_list("decision", "system")) == [("revoke", False)]
    # The close, then the plan for the revocations and reductions it leaves.
    closed, planned = events_since(mark)
    assert (closed.action, closed.actor) == ("campaign.closed", manager)
    assert closed.after == {"default_outcome": "recommendation", "applied": applied}
    assert (planned.action, planned.actor) == ("remediation.planned", manager)
    assert planned.after["counts"] == {"planned": 7}


@pytest.mark.parametrize("outcome", ["keep", "revoke"])
def test_closing_gives_unanswered_items_the_definitions_default_outcome(
    account, other_account, manager, reviewer, outcome
):
    campaign = launched(
        manager,
        definition=definition(manager, accounts=[account, other_account], default_outcome=outcome),
    )
    decide(inline(campaign), reviewer, Choice("reduce", keep=("s3",)))

    assert close(campaign) == {outcome: 11}
    assert set(campaign.items.values_list("decision", flat=True)) == {outcome, "reduce"}
    assert not Decision.objects.filter(system=True).exclude(keep=[]).exists()
    assert AuditEvent.objects.get(action="campaign.closed").actor_name == "system"


def test_an_item_without_a_recommendation_is_kept_at_close(imported):
    close(imported)
    assert set(imported.items.filter(recommendation="none").values_list("decision", flat=True)) == {
        "keep"
    }
    assert imported.items.filter(recommendation="none").count() == 3


def test_a_closed_campaign_takes_no_decision_and_cannot_be_closed_again(
    campaign, reviewer, manager, lena
):
    close(campaign)
    before = state(campaign)
    error = refused("closed", decide, inline(campaign), reviewer, Choice("revoke", REASON))
    assert str(error) == "The campaign is not open for decisions."
    refused("closed", close, campaign)
    refused("invalid", reassign, [inline(campaign)], lena, manager, REASON)
    assert state(campaign) == before


# Signing off -----------------------------------------------------------------------------------


STATEMENT = "I attest that the access listed was reviewed and the decisions are carried out."


def test_only_the_campaigns_manager_signs_off(campaign, reviewer, db):
    close(campaign)
    another_manager = person("mia.manager")
    before = state(campaign)
    for somebody in (reviewer, another_manager):
        error = refused("not_yours", sign_off, campaign, somebody, PASSWORD, STATEMENT)
        assert str(error) == "Only the campaign's manager signs it off."
    assert state(campaign) == before


def test_sign_off_needs_the_managers_password_and_a_statement(campaign, manager):
    close(campaign)
    before = state(campaign)
    refused("password", sign_off, campaign, manager, "wrong", STATEMENT)
    refused("password", sign_off, campaign, manager, None, STATEMENT)
    refused("statement_required", sign_off, campaign, manager, PASSWORD, " \x07 ")
    assert state(campaign) == before


def test_sign_off_waits_until_every_item_is_decided(campaign, manager, reviewer):
    decide(inline(campaign), reviewer, Choice("keep"))
    before = state(campaign)
    error = refused("open_items", sign_off, campaign, manager, PASSWORD, STATEMENT)
    assert str(error) == "11 items are not decided yet."
    assert state(campaign) == before


def test_sign_off_attests_the_decisions_and_leaves_the_campaign_read_only(
    campaign, manager, reviewer, lena
):
    close(campaign)
    settled(campaign, manager)
    attested = decisions_sha256(campaign)
    mark = audit_mark()

    signed = sign_off(campaign, manager, PASSWORD, f"  {STATEMENT}  ")

    assert (signed.signed_by, signed.signed_by_name) == (manager, "max.manager")
    assert (signed.statement, signed.decisions_sha256) == (STATEMENT, attested)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SIGNED_OFF
    [event] = events_since(mark)
    assert (event.action, event.actor) == ("campaign.signed_off", manager)
    assert event.after == {"statement": STATEMENT, "decisions_sha256": attested}

    before = state(campaign)
    refused("closed", decide, inline(campaign), reviewer, Choice("revoke", REASON))
    refused("invalid", reassign, [inline(campaign)], lena, manager, REASON)
    refused("closed", close, campaign)
    error = refused("closed", sign_off, campaign, manager, PASSWORD, STATEMENT)
    assert str(error) == "The campaign is already signed off."
    assert state(campaign) == before


def test_an_open_campaign_whose_items_are_all_decided_can_be_signed_off(account, reviewer, manager):
    # Revocations are planned as they are decided, so that they can be settled before closing.
    campaign = launched(
        manager,
        definition=definition(manager, accounts=[account], remediation_start="after_decision"),
    )
    decide_many(list(campaign.items.all()), reviewer, Choice("revoke", REASON))
    settled(campaign, manager)

    sign_off(campaign, manager, PASSWORD, STATEMENT)

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SIGNED_OFF
    assert campaign.closed_at == campaign.signoff.signed_at


def test_the_attested_digest_covers_every_final_decision(campaign, reviewer):
    decide_many(list(campaign.items.filter(reviewer=reviewer)), reviewer, Choice("revoke", REASON))
    before = decisions_sha256(campaign)
    decide(inline(campaign), reviewer, Choice("keep"))
    assert decisions_sha256(campaign) != before


@pytest.mark.parametrize("writer", ["postgresql", "python"])
def test_the_attested_digest_is_the_one_the_evidence_explains(
    campaign, reviewer, writer, monkeypatch
):
    """SHA-256 over one line per item, in the order they were created: the canonical JSON of
    [item, principal_arn, right_kind, right_key, decision, keep_until] and a newline. Written by
    PostgreSQL, or by Python where there is no COPY (the demo's SQLite)."""
    kept = inline(campaign)
    decide(kept, reviewer, Choice("keep", keep_until=date(2027, 3, 31)))
    # What IAM allows in a path, and more: quotes, backslashes, control characters, non-ASCII.
    odd = campaign.items.exclude(pk=kept.pk).order_by("pk")[0]
    ReviewItem.objects.filter(pk=odd.pk).update(
        principal_arn='arn:aws:iam::111122223333:role/"q"\\b\t\x01\u2028/über-🔑'
    )
    if writer == "python":
        monkeypatch.setattr(dump, "by_copy", lambda: False)
    expected = hashlib.sha256()
    for one in campaign.items.order_by("pk"):
        row = [str(one.uuid), one.principal_arn, one.right_kind, one.right_key, one.decision]
        keep_until = one.keep_until.isoformat() if one.keep_until else None
        line = json.dumps([*row, keep_until], separators=(",", ":"), ensure_ascii=False)
        expected.update(line.encode() + b"\n")

    assert decisions_sha256(campaign) == expected.hexdigest()


# The audit trail -------------------------------------------------------------------------------


def test_every_change_writes_its_audit_events_and_the_trail_holds(
    campaign, reviewer, manager, lena
):
    def writes(count, action, *args, **kwargs):
        mark = audit_mark()
        action(*args, **kwargs)
        assert len(events_since(mark)) == count

    writes(1, decide, inline(campaign), reviewer, Choice("keep"))
    writes(1, decide, inline(campaign), reviewer, Choice("revoke", REASON))
    writes(
        2, decide_many, [admin(campaign, 1), admin(campaign, 2)], reviewer, Choice("revoke", REASON)
    )
    given = orphans(campaign)[:3]
    writes(3, reassign, given, lena, manager, REASON)
    writes(1, decide, fresh(given[0]), lena, Choice("keep"))
    writes(2, close, campaign, by=manager)  # closed, and its remediations planned
    settled(campaign, manager)
    writes(1, sign_off, campaign, manager, PASSWORD, STATEMENT)
    events, _, finding = trail.verify()
    assert finding is None
    assert events == AuditEvent.objects.count()

"""Who reviews each item: owner tag, account owner, assignment, fallback, or the orphan queue;
and nobody reviews their own access."""

import pytest

from inventory.models import AwsAccount, Principal
from reviews.models import ReviewerAssignment, ReviewItem
from tests import factories
from tests.reviews.builders import add_principal, definition, launched

Source = ReviewItem.ReviewerSource


def person(username, email=None, **extra):
    return factories.UserFactory(
        username=username, email=email or f"{username}@example.com", **extra
    )


@pytest.fixture
def lena(db):
    return person("lena.lead")


@pytest.fixture
def olga(db):
    """The fallback reviewer of the definitions below."""
    return person("olga.ops")


def reviewers(campaign) -> dict:
    """Each principal's reviewer and where it came from (every item of a principal agrees)."""
    found = {}
    for item in campaign.items.select_related("reviewer"):
        who = (item.reviewer.username if item.reviewer else None, item.reviewer_source)
        assert found.setdefault(item.principal_name, who) == who
    return found


def launch_with(manager, accounts, **fields):
    return launched(manager, definition=definition(manager, accounts=accounts, **fields))


def assign(campaign_definition, pattern, user):
    ReviewerAssignment.objects.create(
        definition=campaign_definition, arn_pattern=pattern, reviewer=user
    )


# The order of resolution ----------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["lena.lead@example.com", " Lena.Lead@EXAMPLE.com ", "lena.lead"])
def test_an_owner_tag_naming_a_user_by_e_mail_or_username_comes_before_the_account_owner(
    account, manager, lena, tag
):
    add_principal(account, "billing-api", tags={"owner": tag})
    campaign = launched(manager, [account])
    assert reviewers(campaign) == {
        "billing-api": ("lena.lead", Source.TAG),
        "payments-prod-role-0": ("rita.reviewer", Source.ACCOUNT_OWNER),
        "payments-prod-role-1": ("rita.reviewer", Source.ACCOUNT_OWNER),
        "payments-prod-role-2": ("rita.reviewer", Source.ACCOUNT_OWNER),
    }


def test_a_tag_naming_nobody_or_someone_who_cannot_sign_in_falls_to_the_account_owner(
    account, manager
):
    person("gone", is_active=False)
    add_principal(account, "ghost-api", tags={"owner": "nobody@example.com"})
    add_principal(account, "gone-api", tags={"owner": "gone@example.com"})
    add_principal(account, "blank-api", tags={"owner": "  "})
    found = reviewers(launched(manager, [account]))
    assert found["ghost-api"] == found["gone-api"] == found["blank-api"]
    assert found["ghost-api"] == ("rita.reviewer", Source.ACCOUNT_OWNER)


def test_the_owner_tag_key_is_the_definitions(account, manager, lena):
    person("otto")
    add_principal(account, "billing-api", tags={"team-lead": "lena.lead", "owner": "otto"})
    add_principal(account, "search-api", tags={"owner": "otto"})
    found = reviewers(launch_with(manager, [account], owner_tag="team-lead"))
    assert found["billing-api"] == ("lena.lead", Source.TAG)
    assert found["search-api"] == ("rita.reviewer", Source.ACCOUNT_OWNER)


def test_a_username_names_its_user_before_someone_elses_e_mail_does(account, manager):
    # jsmith's address starts with "john", but the tag "john" is the user john.
    person("jsmith", email="john@example.com")
    person("john", email="john.doe@example.com")
    add_principal(account, "billing-api", tags={"owner": "john"})
    add_principal(account, "search-api", tags={"owner": "john@example.com"})
    found = reviewers(launched(manager, [account]))
    assert found["billing-api"] == ("john", Source.TAG)
    assert found["search-api"] == ("jsmith", Source.TAG)


def test_the_account_owner_comes_before_an_assignment(account, manager, lena, olga):
    scheduled = definition(manager, accounts=[account], fallback_reviewer=olga)
    assign(scheduled, "arn:aws:iam::111122223333:role/*", lena)
    found = reviewers(launched(manager, definition=scheduled))
    assert set(found.values()) == {("rita.reviewer", Source.ACCOUNT_OWNER)}


def test_an_account_owner_who_cannot_sign_in_is_passed_over_for_an_assignment(
    account, reviewer, manager, lena, olga
):
    reviewer.is_active = False
    reviewer.save()
    scheduled = definition(manager, accounts=[account], fallback_reviewer=olga)
    assign(scheduled, "arn:aws:iam::111122223333:role/payments-prod-role-[01]", lena)
    found = reviewers(launched(manager, definition=scheduled))
    assert found == {
        "payments-prod-role-0": ("lena.lead", Source.ASSIGNED),
        "payments-prod-role-1": ("lena.lead", Source.ASSIGNED),
        "payments-prod-role-2": ("olga.ops", Source.FALLBACK),
    }


def test_assignments_match_arns_shell_style_and_the_first_one_made_wins(
    other_account, manager, lena, olga
):
    add_principal(other_account, "billing-api", path="/billing/")
    scheduled = definition(manager, accounts=[other_account])
    assign(scheduled, "*:role/billing/*", lena)
    assign(scheduled, "arn:aws:iam::444455556666:*", olga)
    found = reviewers(launched(manager, definition=scheduled))
    assert found["billing-api"] == ("lena.lead", Source.ASSIGNED)
    assert found["marketing-prod-role-0"] == ("olga.ops", Source.ASSIGNED)


def test_an_assignment_to_someone_who_cannot_sign_in_is_passed_over(
    other_account, manager, lena, olga
):
    lena.is_active = False
    lena.save()
    scheduled = definition(manager, accounts=[other_account], fallback_reviewer=olga)
    assign(scheduled, "*", lena)
    found = reviewers(launched(manager, definition=scheduled))
    assert set(found.values()) == {("olga.ops", Source.FALLBACK)}


def test_items_nobody_else_reviews_go_to_the_fallback_reviewer(other_account, manager, olga):
    found = reviewers(launch_with(manager, [other_account], fallback_reviewer=olga))
    assert set(found.values()) == {("olga.ops", Source.FALLBACK)}


def test_items_without_any_reviewer_land_in_the_orphan_queue(other_account, manager):
    campaign = launched(manager, [other_account])
    assert set(reviewers(campaign).values()) == {(None, Source.NONE)}
    assert campaign.items.filter(reviewer__isnull=True).count() == 6


def test_a_fallback_reviewer_who_cannot_sign_in_leaves_the_items_to_the_orphan_queue(
    other_account, manager, olga
):
    scheduled = definition(manager, accounts=[other_account], fallback_reviewer=olga)
    olga.is_active = False
    olga.save()
    found = reviewers(launched(manager, definition=scheduled))
    assert set(found.values()) == {(None, Source.NONE)}


# Nobody reviews their own access --------------------------------------------------------------


@pytest.mark.parametrize(
    ("iam_user", "tags"),
    [
        ("rita.reviewer", {}),  # named as her username
        ("Rita.Reviewer@example.com", {}),  # named as her e-mail
        ("svc-payments", {"owner": "rita.reviewer@example.com"}),  # hers by its owner tag
    ],
    ids=["username", "e-mail", "owner-tag"],
)
def test_a_persons_own_iam_user_goes_to_the_fallback_reviewer(
    account, manager, olga, iam_user, tags
):
    add_principal(account, iam_user, kind=Principal.Kind.USER, tags=tags)
    found = reviewers(launch_with(manager, [account], fallback_reviewer=olga))
    assert found[iam_user] == ("olga.ops", Source.SELF_REVIEW)
    assert found["payments-prod-role-0"] == ("rita.reviewer", Source.ACCOUNT_OWNER)


def test_own_access_goes_to_the_orphan_queue_when_the_fallback_is_the_same_person(
    account, reviewer, manager
):
    add_principal(account, "rita.reviewer", kind=Principal.Kind.USER)
    found = reviewers(launch_with(manager, [account], fallback_reviewer=reviewer))
    assert found["rita.reviewer"] == (None, Source.NONE)


def test_own_access_without_a_fallback_goes_to_the_orphan_queue(account, manager):
    add_principal(account, "rita.reviewer", kind=Principal.Kind.USER)
    found = reviewers(launched(manager, [account]))
    assert found["rita.reviewer"] == (None, Source.NONE)


def test_an_assigned_reviewer_does_not_review_their_own_user_either(
    other_account, manager, lena, olga
):
    add_principal(other_account, "lena.lead", kind=Principal.Kind.USER)
    scheduled = definition(manager, accounts=[other_account], fallback_reviewer=olga)
    assign(scheduled, "*", lena)
    found = reviewers(launched(manager, definition=scheduled))
    assert found["lena.lead"] == ("olga.ops", Source.SELF_REVIEW)
    assert found["marketing-prod-role-0"] == ("lena.lead", Source.ASSIGNED)


def test_a_role_or_group_named_after_a_person_is_not_their_own_access(account, manager):
    add_principal(account, "rita.reviewer", kind=Principal.Kind.ROLE)
    add_principal(account, "rita.reviewer", kind=Principal.Kind.GROUP)
    campaign = launched(manager, [account])
    assert {
        (i.principal_kind, i.reviewer.username, i.reviewer_source)
        for i in campaign.items.filter(principal_name="rita.reviewer")
    } == {
        ("role", "rita.reviewer", Source.ACCOUNT_OWNER),
        ("group", "rita.reviewer", Source.ACCOUNT_OWNER),
    }


def test_each_accounts_items_go_to_that_accounts_owner(account, other_account, manager, lena):
    AwsAccount.objects.filter(pk=other_account.pk).update(owner=lena)
    campaign = launched(manager, [account, other_account])
    assert set(
        campaign.items.filter(account_id="444455556666").values_list(
            "reviewer__username", flat=True
        )
    ) == {"lena.lead"}
    assert set(
        campaign.items.filter(account_id="111122223333").values_list(
            "reviewer__username", flat=True
        )
    ) == {"rita.reviewer"}

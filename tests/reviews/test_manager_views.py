"""The campaign manager's and auditor's pages: the list, a new draft and its preview, launch, the
dashboard, the items, close, remind, reassign and sign-off; who may do what, and that the pages
stay at a fixed number of queries however big the campaign."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from config import roles
from inventory.models import CollectionRun, Principal
from reviews.decide import Choice, Refused, decide, decide_many
from reviews.launch import new_campaign
from reviews.models import Campaign, Decision, ReviewItem, SignOff
from reviews.views import manager as manager_views
from tests import factories
from tests.reviews.builders import add_principal, definition, launched, post_close, settled, text

PASSWORD = "correct horse battery staple"  # every factory user's
REASON = "Confirmed with the team lead."


@pytest.fixture
def mia(db):
    """A second campaign manager, who does not own the campaign."""
    user = factories.UserFactory(username="mia.manager", email="mia.manager@example.com")
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    return user


@pytest.fixture
def lena(db):
    """A person with no role, who can be given items to review."""
    return factories.UserFactory(username="lena.lead", email="lena.lead@example.com")


def url(name, campaign):
    return reverse(f"reviews:{name}", args=[campaign.uuid])


def queries(client, address):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(address)
    assert response.status_code == 200
    return len(captured)


def orphans(campaign):
    return list(campaign.items.filter(reviewer__isnull=True).order_by("pk"))


def keep(items, user, seconds=None):
    for item in items:
        decide(item, user, Choice("keep", reason=REASON), seconds_to_decide=seconds)


def reviewers_items(campaign, user):
    return list(campaign.items.filter(reviewer=user).select_related("campaign").order_by("pk"))


# Who reaches what --------------------------------------------------------------------------------

WRITES = ["launch", "close", "remind", "campaign-reassign", "signoff"]


@pytest.mark.parametrize("name", WRITES)
def test_an_auditor_may_look_but_every_write_is_forbidden(client, auditor, campaign, name):
    client.force_login(auditor)
    response = client.post(url(name, campaign), {"items": [str(orphans(campaign)[0].uuid)]})
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.ACTIVE


@pytest.mark.parametrize("name", WRITES)
def test_a_reviewer_of_the_campaign_cannot_write_to_it(client, reviewer, campaign, name):
    client.force_login(reviewer)
    assert client.post(url(name, campaign)).status_code == 403


@pytest.mark.parametrize("name", ["campaign", "campaign-items", "signoff"])
def test_a_page_of_a_campaign_out_of_reach_is_not_found(client, outsider, campaign, name):
    client.force_login(outsider)
    assert client.get(url(name, campaign)).status_code == 404


@pytest.mark.parametrize("name", WRITES)
def test_an_action_on_a_campaign_out_of_reach_is_not_found(client, outsider, campaign, name):
    client.force_login(outsider)
    assert client.post(url(name, campaign)).status_code == 404
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.ACTIVE


def test_a_reviewer_cannot_see_a_campaign_without_items_of_theirs(
    client, reviewer, manager, other_account
):
    elsewhere = launched(manager, [other_account])
    client.force_login(reviewer)
    assert client.get(url("campaign", elsewhere)).status_code == 404
    assert client.get(url("campaign-items", elsewhere)).status_code == 404
    assert elsewhere.name not in client.get(reverse("reviews:campaigns")).text


@pytest.mark.parametrize("name", ["launch", "close", "remind", "campaign-reassign"])
def test_actions_refuse_a_get(client, manager, campaign, name):
    client.force_login(manager)
    assert client.get(url(name, campaign)).status_code == 405


@pytest.mark.parametrize("name", ["campaign", "campaign-items"])
def test_read_only_pages_refuse_a_post(client, manager, campaign, name):
    client.force_login(manager)
    assert client.post(url(name, campaign)).status_code == 405


def test_the_forms_refuse_methods_other_than_get_and_post(client, manager, campaign):
    client.force_login(manager)
    assert client.put(url("signoff", campaign)).status_code == 405
    assert client.delete(reverse("reviews:campaign-new")).status_code == 405


def test_the_campaign_list_refuses_a_post(client, manager):
    client.force_login(manager)
    assert client.post(reverse("reviews:campaigns")).status_code == 405


def test_an_anonymous_visitor_is_sent_to_sign_in(client, campaign):
    response = client.get(url("campaign", campaign))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# The list ----------------------------------------------------------------------------------------


def test_manager_sees_every_campaign_with_its_progress_and_can_start_a_new_one(
    client, manager, reviewer, campaign, items
):
    keep(items[:3], reviewer)
    client.force_login(manager)
    response = client.get(reverse("reviews:campaigns"))
    page = text(response)
    assert "2026 Q4 access review" in page
    assert "Active" in page
    assert "3 of 12 decided" in page
    assert "max.manager" in page
    assert reverse("reviews:campaign-new") in response.text


def test_auditor_sees_the_campaigns_but_no_new_campaign_link(client, auditor, campaign):
    client.force_login(auditor)
    response = client.get(reverse("reviews:campaigns"))
    assert "2026 Q4 access review" in response.text
    assert reverse("reviews:campaign-new") not in response.text


def test_an_overdue_campaign_says_so_in_words(client, manager, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        due_date=timezone.localdate() - timedelta(days=2)
    )
    client.force_login(manager)
    assert "Overdue" in text(client.get(reverse("reviews:campaigns")))


def test_the_list_shows_only_the_campaigns_of_the_state_chosen(client, manager, campaign, account):
    draft = new_campaign(
        name="Spot check", owner=manager, due_date=timezone.localdate() + timedelta(days=5)
    )
    client.force_login(manager)
    drafts = client.get(reverse("reviews:campaigns"), {"state": "draft"}).text
    assert draft.name in drafts
    assert campaign.name not in drafts
    assert "Not launched" in drafts


def test_the_campaign_list_runs_the_same_queries_for_3_or_10_campaigns(
    client, manager, account, other_account
):
    client.force_login(manager)
    for _ in range(3):
        launched(manager, [account])
    three = queries(client, reverse("reviews:campaigns"))
    for _ in range(7):
        launched(manager, [account, other_account])
    assert queries(client, reverse("reviews:campaigns")) == three


# A new draft -------------------------------------------------------------------------------------


def test_manager_makes_an_ad_hoc_draft_and_lands_on_its_preview(client, manager, account):
    client.force_login(manager)
    due = timezone.localdate() + timedelta(days=10)
    response = client.post(
        reverse("reviews:campaign-new"),
        {"name": "Payments spot check", "due_date": due.isoformat(), "accounts": [account.pk]},
    )
    draft = Campaign.objects.get(name="Payments spot check")
    assert response.status_code == 302
    assert response["Location"] == draft.get_absolute_url()
    assert draft.state == Campaign.State.DRAFT
    assert draft.owner == manager
    assert draft.due_date == due
    assert list(draft.accounts.all()) == [account]


def test_a_draft_from_a_definition_takes_its_name_window_and_accounts(
    client, manager, account, other_account
):
    quarterly = definition(manager, name="Quarterly", accounts=[account], review_days=10)
    client.force_login(manager)
    client.post(reverse("reviews:campaign-new"), {"definition": quarterly.pk})
    draft = Campaign.objects.get(definition=quarterly)
    assert draft.name.startswith("Quarterly ")
    assert draft.due_date == timezone.localdate() + timedelta(days=10)
    assert list(draft.accounts.all()) == [account]


def test_an_ad_hoc_draft_needs_a_name_and_a_future_due_date(client, manager, account):
    client.force_login(manager)
    yesterday = timezone.localdate() - timedelta(days=1)
    response = client.post(reverse("reviews:campaign-new"), {"due_date": yesterday.isoformat()})
    assert response.status_code == 200
    assert "Name the campaign, or choose a definition." in response.text
    assert "The due date must be after today." in response.text
    assert not Campaign.objects.exists()


def test_a_draft_refused_by_the_launcher_shows_why(client, manager, account):
    account.active = False
    account.save(update_fields=["active"])
    client.force_login(manager)
    due = timezone.localdate() + timedelta(days=10)
    response = client.post(
        reverse("reviews:campaign-new"), {"name": "Nothing to see", "due_date": due.isoformat()}
    )
    assert response.status_code == 200
    assert "no account in scope" in response.text
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("who", ["auditor", "reviewer"])
def test_only_a_manager_opens_the_new_campaign_form(client, request, who, account):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("reviews:campaign-new")).status_code == 403
    due = timezone.localdate() + timedelta(days=10)
    response = client.post(
        reverse("reviews:campaign-new"), {"name": "Mine", "due_date": due.isoformat()}
    )
    assert response.status_code == 403
    assert not Campaign.objects.exists()


# Preview and launch ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_draft_previews_its_items_by_account_and_reviewer_then_launch_freezes_them(
    client, manager, draft
):
    client.force_login(manager)
    page = text(client.get(url("campaign", draft)))
    assert "payments-prod (111122223333) 6" in page
    assert "marketing-prod (444455556666) 6" in page
    assert "rita.reviewer 6" in page
    assert "Nobody to reassign after launch 6" in page
    assert "Launch: freeze 12 items for review" in page
    assert not draft.items.exists()

    response = client.post(url("launch", draft), follow=True)
    draft.refresh_from_db()
    assert draft.state == Campaign.State.ACTIVE
    assert draft.items.count() == 12
    assert "Launched: 12 items to review. 1 reviewer has items to decide." in text(response)
    assert "Completion by reviewer" in text(response)


def test_launch_is_refused_on_stale_data_naming_the_account(client, manager, draft, other_account):
    CollectionRun.objects.filter(pk=other_account.current_run_id).update(
        finished_at=timezone.now() - timedelta(days=30)
    )
    client.force_login(manager)
    preview = text(client.get(url("campaign", draft)))
    assert "It cannot be launched yet" in preview
    assert "marketing-prod (444455556666): its last complete collection is 30 days old" in preview

    response = client.post(url("launch", draft), follow=True)
    assert "Launch refused: account marketing-prod (444455556666)" in text(response)
    draft.refresh_from_db()
    assert draft.state == Campaign.State.DRAFT
    assert not draft.items.exists()


def test_launching_a_launched_campaign_says_it_is_active(client, manager, campaign):
    client.force_login(manager)
    response = client.post(url("launch", campaign), follow=True)
    assert "Launch refused: campaign 2026 Q4 access review is active" in text(response)
    assert campaign.items.count() == 12


def test_an_auditor_sees_the_preview_without_a_launch_button(client, auditor, draft):
    client.force_login(auditor)
    response = client.get(url("campaign", draft))
    assert "What launching would freeze" in response.text
    assert url("launch", draft) not in response.text


# The dashboard -----------------------------------------------------------------------------------


def test_the_dashboard_shows_completion_by_reviewer_and_by_account(
    client, manager, reviewer, campaign, items
):
    keep(items[:2], reviewer)
    client.force_login(manager)
    page = text(client.get(url("campaign", campaign)))
    assert "2 of 12 decided (17%)" in page
    assert "rita.reviewer 2 of 6 decided 4" in page
    assert "payments-prod 111122223333 2 of 6 decided 4" in page
    assert "marketing-prod 444455556666 0 of 6 decided 6" in page
    assert "Without a reviewer 6" in page


def test_the_decisions_chart_is_an_image_with_its_numbers_in_words(
    client, manager, reviewer, campaign, items
):
    keep(items[:1], reviewer)
    client.force_login(manager)
    response = client.get(url("campaign", campaign))
    svg = re.search(r"<svg[^>]*>.*?</svg>", response.text, re.S).group(0)
    assert 'role="img"' in svg
    assert "<title" in svg
    assert re.search(r"<desc[^>]*>Keep: 1; Revoke: 0; Reduce: 0; Undecided: 11</desc>", svg)
    assert "Keep 1 8%" in text(response)  # the table beside it


def test_the_dashboard_shows_how_fast_and_how_much_in_bulk_each_reviewer_decided(
    client, manager, reviewer, campaign, items
):
    keep(items[:1], reviewer, seconds=4)
    decide_many(items[1:4], reviewer, Choice("keep", reason=REASON))
    client.force_login(manager)
    page = text(client.get(url("campaign", campaign)))
    assert "rita.reviewer 4 4 s 75% (3) ⚠ very quick ⚠ mostly in bulk" in page


def test_a_careful_reviewer_is_not_flagged(client, manager, reviewer, campaign, items):
    keep(items[:2], reviewer, seconds=95)
    client.force_login(manager)
    page = text(client.get(url("campaign", campaign)))
    assert "rita.reviewer 2 1 min 35 s 0% (0) no" in page


def test_an_overdue_campaign_says_by_how_many_days(client, manager, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        due_date=timezone.localdate() - timedelta(days=3)
    )
    client.force_login(manager)
    page = text(client.get(url("campaign", campaign)))
    assert "Overdue" in page
    assert "overdue by 3 days" in page


def test_the_owner_gets_every_action_and_the_orphan_queue_to_reassign(client, manager, campaign):
    client.force_login(manager)
    response = client.get(url("campaign", campaign))
    assert "Remind now" in response.text
    assert "Close the campaign now" in response.text
    assert url("signoff", campaign) in response.text
    assert response.text.count('name="items"') == 6
    assert 'name="reviewer"' in response.text


def test_another_manager_gets_the_actions_but_not_the_sign_off(client, mia, campaign):
    client.force_login(mia)
    response = client.get(url("campaign", campaign))
    assert "Remind now" in response.text
    assert url("signoff", campaign) not in response.text


def test_an_auditor_sees_the_dashboard_without_any_action(client, auditor, campaign):
    client.force_login(auditor)
    response = client.get(url("campaign", campaign))
    page = text(response)
    assert "Completion by reviewer" in page
    assert "Without a reviewer 6" in page
    for action in ("Remind now", "Close the campaign now", "Reassign the chosen items"):
        assert action not in page
    assert url("signoff", campaign) not in response.text
    assert 'name="items"' not in response.text


def test_a_reviewer_sees_the_campaign_and_their_own_part_of_it_only(
    client, reviewer, campaign, items
):
    keep(items[:1], reviewer)
    client.force_login(reviewer)
    response = client.get(url("campaign", campaign))
    page = text(response)
    assert "Your part" in page
    assert "1 of 6 decided" in page
    assert f"{reverse('reviews:queue')}?campaign={campaign.uuid}" in response.text
    assert "Completion by reviewer" not in page
    assert "marketing-prod-role-0" not in page


def test_the_dashboard_runs_the_same_queries_for_few_or_many_items_reviewers_and_decisions(
    client, manager, reviewer, lena, campaign, items, other_account
):
    keep(items[:1], reviewer, seconds=30)
    client.force_login(manager)
    few = queries(client, url("campaign", campaign))

    owners = [reviewer, lena, factories.UserFactory(username="omar.owner")]
    accounts = [
        factories.collected_account(f"90000000000{i}", f"big-{i}", owner=owner, principals=6)
        for i, owner in enumerate(owners)
    ]
    big = launched(manager, [*accounts, other_account])
    for owner in owners:
        mine = reviewers_items(big, owner)
        keep(mine[:3], owner, seconds=12)
        decide_many(mine[3:8], owner, Choice("keep", reason=REASON))
    assert Decision.objects.filter(item__campaign=big).count() == 24
    assert queries(client, url("campaign", big)) == few


# The items ---------------------------------------------------------------------------------------


def test_the_items_page_lists_every_item_with_a_link_to_each(client, auditor, campaign):
    client.force_login(auditor)
    response = client.get(url("campaign-items", campaign))
    assert "12 items" in text(response)
    for item in campaign.items.all():
        assert reverse("reviews:item", args=[item.uuid]) in response.text


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({"reviewer": "none"}, 6),
        ({"reviewer": "rita.reviewer"}, 6),
        ({"account": "444455556666"}, 6),
        ({"decision": "undecided"}, 10),
        ({"decision": "keep"}, 2),
        ({"recommendation": "reduce"}, 6),
        ({"privileged": "true"}, 6),
        ({"privileged": "false", "account": "111122223333", "decision": "undecided"}, 1),
        ({"q": "marketing-prod-role-1"}, 2),
    ],
)
def test_the_items_page_filters(client, manager, reviewer, campaign, items, filters, count):
    # The reviewer keeps their two read-s3 items of role-0 and role-1: unprivileged ones.
    keep([item for item in items if item.right_kind == "inline_policy"][:2], reviewer)
    client.force_login(manager)
    page = text(client.get(url("campaign-items", campaign), filters))
    assert f"{count} item" in page


def test_the_items_page_is_paginated(client, manager, campaign, monkeypatch):
    monkeypatch.setattr(manager_views, "PAGE_SIZE", 5)
    client.force_login(manager)
    first = client.get(url("campaign-items", campaign), {"reviewer": "none"})
    assert "Page 1 of 2" in text(first)
    assert "reviewer=none&amp;page=2" in first.text
    second = client.get(url("campaign-items", campaign), {"reviewer": "none", "page": 2})
    assert "Page 2 of 2" in text(second)


def test_the_items_page_answers_htmx_with_the_results_alone(client, manager, campaign):
    client.force_login(manager)
    response = client.get(
        url("campaign-items", campaign), {"reviewer": "none"}, headers={"HX-Request": "true"}
    )
    assert response.text.strip().startswith('<div id="item-results">')
    assert "<html" not in response.text
    assert "6 items" in text(response)


def test_a_reviewer_sees_only_their_own_items_of_the_campaign(client, reviewer, campaign):
    client.force_login(reviewer)
    response = client.get(url("campaign-items", campaign))
    assert "6 items" in text(response)
    assert "marketing-prod-role" not in response.text
    # Nor does the page's account filter offer an account holding none of theirs.
    assert "444455556666" not in response.text


# Close -------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the close runs once the request commits
def test_closing_gives_the_unanswered_items_the_default_outcome_and_says_how_many(
    client, manager, reviewer, campaign, items
):
    keep([item for item in items if item.right_kind == "inline_policy"][:1], reviewer)
    client.force_login(manager)
    response = post_close(client, campaign, follow=True)
    page = text(response)
    assert "Closed. 11 unanswered items got the default outcome (Keep: 5, Reduce: 6)." in page
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert not campaign.items.filter(decision="").exists()
    assert Decision.objects.filter(item__campaign=campaign, system=True).count() == 11
    assert "Closed: 11 items got the default outcome because nobody decided them." in page


def test_closing_a_closed_campaign_is_refused_in_words(client, manager, campaign):
    client.force_login(manager)
    post_close(client, campaign)
    response = post_close(client, campaign, follow=True)
    assert "The campaign is not open." in text(response)
    assert Decision.objects.filter(item__campaign=campaign, system=True).count() == 12


# Remind ------------------------------------------------------------------------------------------


def test_remind_now_mails_only_the_reviewers_with_undecided_items(
    client, manager, reviewer, lena, campaign, mailoutbox
):
    given = orphans(campaign)[:2]
    client.force_login(manager)
    client.post(
        url("campaign-reassign", campaign),
        {"items": [str(item.uuid) for item in given], "reviewer": lena.pk, "reason": REASON},
    )
    keep(list(ReviewItem.objects.filter(reviewer=lena).select_related("campaign")), lena)
    response = client.post(url("remind", campaign), follow=True)
    assert [mail.to for mail in mailoutbox] == [[reviewer.email]]
    assert "1 reminder e-mail went to a reviewer with undecided items." in text(response)


def test_a_closed_campaign_sends_no_reminder(client, manager, campaign, mailoutbox):
    client.force_login(manager)
    post_close(client, campaign)
    response = client.post(url("remind", campaign), follow=True)
    assert mailoutbox == []
    assert "Only an active campaign sends reminders." in text(response)


# Reassign ----------------------------------------------------------------------------------------


def test_manager_gives_orphans_to_someone_with_a_reason(client, manager, lena, campaign):
    given = orphans(campaign)[:2]
    client.force_login(manager)
    response = client.post(
        url("campaign-reassign", campaign),
        {"items": [str(item.uuid) for item in given], "reviewer": lena.pk, "reason": REASON},
        follow=True,
    )
    assert "2 items now go to lena.lead." in text(response)
    assert "Without a reviewer 4" in text(response)
    for item in given:
        item.refresh_from_db()
        assert item.reviewer == lena
        assert item.reviewer_source == ReviewItem.ReviewerSource.ASSIGNED
    event = AuditEvent.objects.filter(action="item.reassigned").latest("id")
    assert event.after == {"reviewer": "lena.lead", "reason": REASON}


def test_an_item_of_another_campaign_slipped_in_is_not_found_and_nothing_changes(
    client, manager, lena, campaign, other_account
):
    elsewhere = launched(manager, [other_account])
    mine, theirs = orphans(campaign)[0], orphans(elsewhere)[0]
    client.force_login(manager)
    response = client.post(
        url("campaign-reassign", campaign),
        {"items": [str(mine.uuid), str(theirs.uuid)], "reviewer": lena.pk, "reason": REASON},
    )
    assert response.status_code == 404
    assert not ReviewItem.objects.filter(reviewer=lena).exists()
    assert not AuditEvent.objects.filter(action="item.reassigned").exists()


def test_an_item_id_that_is_not_a_uuid_is_not_found(client, manager, lena, campaign):
    client.force_login(manager)
    response = client.post(
        url("campaign-reassign", campaign),
        {"items": ["1 OR 1=1"], "reviewer": lena.pk, "reason": REASON},
    )
    assert response.status_code == 404


def test_reassigning_to_the_person_whose_own_access_it_is_is_refused(
    client, manager, lena, other_account
):
    add_principal(other_account, "lena.lead", kind=Principal.Kind.USER)
    own = launched(manager, [other_account])
    hers = own.items.get(principal_name="lena.lead")
    client.force_login(manager)
    response = client.post(
        url("campaign-reassign", own),
        {"items": [str(hers.uuid)], "reviewer": lena.pk, "reason": REASON},
    )
    assert response.status_code == 200
    assert "is lena.lead&#x27;s own access: it cannot be theirs to review." in response.text
    assert f'value="{hers.uuid}" id="orphan-{hers.uuid}" checked' in response.text
    hers.refresh_from_db()
    assert hers.reviewer is None


def test_reassigning_needs_items_a_person_and_a_reason(client, manager, lena, campaign):
    client.force_login(manager)
    nothing = client.post(
        url("campaign-reassign", campaign), {"reviewer": lena.pk, "reason": REASON}
    )
    assert "Choose the items to reassign." in nothing.text
    no_reason = client.post(
        url("campaign-reassign", campaign),
        {"items": [str(orphans(campaign)[0].uuid)], "reviewer": lena.pk, "reason": "  "},
    )
    assert "This field is required." in no_reason.text
    assert not ReviewItem.objects.filter(reviewer=lena).exists()


# Sign-off ----------------------------------------------------------------------------------------


def test_the_sign_off_form_offers_a_statement_to_attest(client, manager, campaign):
    client.force_login(manager)
    response = client.get(url("signoff", campaign))
    assert response.status_code == 200
    assert "I attest that the access in scope of 2026 Q4 access review" in response.text
    assert 'autocomplete="current-password"' in response.text
    assert "12 items are not decided yet." in text(response)


def test_sign_off_is_refused_while_items_are_open(client, manager, campaign):
    client.force_login(manager)
    response = client.post(
        url("signoff", campaign), {"password": PASSWORD, "statement": "All reviewed."}
    )
    assert "12 items are not decided yet." in text(response)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.ACTIVE
    assert not SignOff.objects.exists()


def test_sign_off_counts_the_one_item_left_in_the_singular(client, manager, reviewer, account):
    mine = launched(manager, [account])
    keep(reviewers_items(mine, reviewer)[:5], reviewer)
    client.force_login(manager)
    response = client.post(
        url("signoff", mine), {"password": PASSWORD, "statement": "All reviewed."}
    )
    assert "1 item is not decided yet." in text(response)
    assert not SignOff.objects.exists()


def test_a_draft_cannot_be_signed_off(client, manager, draft):
    client.force_login(manager)
    assert "The campaign is not launched yet" in text(client.get(url("signoff", draft)))
    response = client.post(url("signoff", draft), {"password": PASSWORD, "statement": "Done."})
    assert "The campaign is not launched yet." in text(response)
    draft.refresh_from_db()
    assert draft.state == Campaign.State.DRAFT


def test_sign_off_is_refused_with_a_wrong_password(client, manager, campaign):
    client.force_login(manager)
    post_close(client, campaign)
    settled(campaign, manager)
    response = client.post(
        url("signoff", campaign), {"password": "not my password", "statement": "All reviewed."}
    )
    assert "The password is not right." in response.text
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED
    assert not SignOff.objects.exists()


def test_wrong_passwords_at_sign_off_lock_the_manager_out_as_failed_sign_ins(
    client, manager, campaign, settings
):
    client.force_login(manager)
    post_close(client, campaign)
    settled(campaign, manager)
    wrong = {"password": "not my password", "statement": "All reviewed."}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert "The password is not right." in client.post(url("signoff", campaign), wrong).text

    locked = client.post(url("signoff", campaign), wrong)
    assert locked.status_code == 429
    assert "Signing in is locked for 30 minutes" in locked.text
    right = client.post(url("signoff", campaign), {**wrong, "password": PASSWORD})
    assert right.status_code == 429
    assert not SignOff.objects.exists()
    assert AuditEvent.objects.filter(action="auth.locked_out").count() == 1


def test_another_manager_cannot_sign_off(client, manager, mia, campaign):
    client.force_login(manager)
    post_close(client, campaign)
    client.force_login(mia)
    assert client.get(url("signoff", campaign)).status_code == 403
    response = client.post(
        url("signoff", campaign), {"password": PASSWORD, "statement": "All reviewed."}
    )
    assert response.status_code == 403
    assert not SignOff.objects.exists()


def test_the_owner_signs_off_and_the_campaign_becomes_read_only(
    client, manager, reviewer, lena, campaign, items
):
    client.force_login(manager)
    post_close(client, campaign)
    settled(campaign, manager)
    response = client.post(
        url("signoff", campaign),
        {"password": PASSWORD, "statement": "Every item was reviewed by its owner."},
        follow=True,
    )
    signoff = SignOff.objects.get(campaign=campaign)
    page = text(response)
    assert "Signed off. The campaign is now read-only." in page
    assert "Signed off by max.manager on" in page
    assert "Every item was reviewed by its owner." in page
    assert signoff.decisions_sha256 in page

    dashboard = client.get(url("campaign", campaign))
    for action in ("Remind now", "Close the campaign now", "Reassign the chosen items"):
        assert action not in dashboard.text
    assert signoff.decisions_sha256 in dashboard.text

    closing = post_close(client, campaign, follow=True)
    assert "The campaign is not open." in text(closing)
    again = client.post(
        url("signoff", campaign), {"password": PASSWORD, "statement": "Again."}, follow=True
    )
    assert "The campaign is already signed off." in again.text
    reassigning = client.post(
        url("campaign-reassign", campaign),
        {"items": [str(orphans(campaign)[0].uuid)], "reviewer": lena.pk, "reason": REASON},
    )
    assert "the campaign is not open." in reassigning.text
    fresh = ReviewItem.objects.select_related("campaign").get(pk=items[0].pk)
    with pytest.raises(Refused) as refused:
        decide(fresh, reviewer, Choice("revoke", reason=REASON))
    assert refused.value.code == "closed"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SIGNED_OFF
    assert SignOff.objects.count() == 1


def test_an_auditor_reads_the_sign_off_once_it_is_made(client, manager, auditor, campaign):
    client.force_login(manager)
    post_close(client, campaign)
    settled(campaign, manager)
    client.post(url("signoff", campaign), {"password": PASSWORD, "statement": "Attested."})
    client.force_login(auditor)
    assert client.get(url("signoff", campaign)).status_code == 200
    assert "Signed off by max.manager" in text(client.get(url("signoff", campaign)))
    response = client.post(url("signoff", campaign), {"password": PASSWORD, "statement": "Me."})
    assert response.status_code == 403

"""The home page: each person sees what waits for them, by what they hold, in a fixed number of
queries; someone who holds nothing gets a friendly word rather than an empty page."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from config import roles
from reviews.decide import Choice, close, decide, sign_off
from reviews.models import Campaign, Remediation
from tests import factories
from tests.reviews.builders import launched, settled, text

REASON = "Confirmed with the team lead."
PASSWORD = "correct horse battery staple"  # every factory user's
HOME = reverse("home")


@pytest.fixture
def mia_manager(db):
    """A manager of campaigns of her own."""
    user = factories.UserFactory(username="mia.manager")
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    return user


def queries(client):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(HOME)
    assert response.status_code == 200
    return len(captured)


def test_an_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_signs_in_and_lands_on_their_home_page(client, reviewer, campaign):
    response = client.post(
        reverse("login"), {"username": reviewer.username, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == HOME
    assert "Hello, rita.reviewer" in text(response)
    assert "6 to decide" in text(response)


def test_the_home_page_refuses_a_post(client, reviewer):
    client.force_login(reviewer)
    assert client.post(HOME).status_code == 405


def test_a_reviewer_sees_their_open_items_per_campaign_with_the_due_date(
    client, reviewer, campaign
):
    client.force_login(reviewer)
    response = client.get(HOME)
    page = text(response)
    assert "6 items wait for your decision." in page
    assert "2026 Q4 access review 6 to decide 0 of 6 decided" in page
    assert f"Due {campaign.due_date:%Y-%m-%d} (in 14 days)" in page
    assert f"{reverse('reviews:queue')}?campaign={campaign.uuid}" in response.text


def test_a_reviewers_count_goes_down_as_they_decide(client, reviewer, campaign, items):
    for item in items[:2]:
        decide(item, reviewer, Choice("keep", reason=REASON))
    client.force_login(reviewer)
    assert "4 to decide 2 of 6 decided" in text(client.get(HOME))


def test_a_reviewer_who_decided_everything_is_thanked(client, reviewer, campaign, items):
    for item in items:
        decide(item, reviewer, Choice("keep", reason=REASON))
    client.force_login(reviewer)
    page = text(client.get(HOME))
    assert "You have decided everything given to you." in page
    assert "All decided" in page


def test_an_overdue_campaign_on_the_reviewers_home_says_so(client, reviewer, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        due_date=timezone.localdate() - timedelta(days=2)
    )
    client.force_login(reviewer)
    assert "overdue by 2 days" in text(client.get(HOME))


def test_a_closed_campaign_leaves_the_reviewers_home(client, reviewer, campaign):
    close(campaign)
    client.force_login(reviewer)
    page = text(client.get(HOME))
    assert "2026 Q4 access review" not in page
    assert "Nothing waits for you." in page


def test_a_manager_sees_their_campaigns_with_completion_bars(
    client, manager, mia_manager, reviewer, campaign, items, account
):
    decide(items[0], reviewer, Choice("keep", reason=REASON))
    theirs = launched(mia_manager, [account])
    client.force_login(manager)
    response = client.get(HOME)
    page = text(response)
    assert "Your campaigns" in page
    assert "2026 Q4 access review Active" in page
    assert "1 of 12 decided" in page
    assert "<progress" in response.text
    assert theirs.name not in page
    assert reverse("reviews:campaign-new") in response.text


def test_a_managers_closed_campaign_asks_for_their_sign_off(client, manager, campaign):
    close(campaign)
    client.force_login(manager)
    response = client.get(HOME)
    assert reverse("reviews:signoff", args=[campaign.uuid]) in response.text
    assert "Closed" in text(response)


def test_a_manager_is_sent_to_the_failed_remediations_of_their_campaign(client, manager, campaign):
    close(campaign)
    failed = list(campaign.remediations.all()[:2])
    assert len(failed) == 2
    Remediation.objects.filter(pk__in=[r.pk for r in failed]).update(state=Remediation.State.FAILED)
    client.force_login(manager)
    response = client.get(HOME)
    assert "2 remediations failed" in text(response)
    assert f"{reverse('reviews:remediations', args=[campaign.uuid])}?state=failed" in response.text


def test_an_auditor_sees_the_finished_campaigns(client, auditor, manager, campaign, account):
    close(campaign)
    running = launched(manager, [account])
    client.force_login(auditor)
    page = text(client.get(HOME))
    assert "Finished campaigns" in page
    assert "2026 Q4 access review Closed" in page
    assert "12 of 12 decided not yet" in page
    assert running.name not in page


def test_a_person_with_nothing_gets_a_friendly_empty_state(client, outsider, campaign):
    client.force_login(outsider)
    page = text(client.get(HOME))
    assert "Nothing waits for you." in page
    assert "2026 Q4 access review" not in page


def test_a_reviewers_home_runs_the_same_queries_for_1_or_4_campaigns(
    client, reviewer, manager, campaign, account
):
    client.force_login(reviewer)
    one = queries(client)
    for _ in range(3):
        launched(manager, [account])
    assert queries(client) == one


def test_a_managers_home_runs_the_same_queries_for_1_or_4_campaigns(
    client, manager, campaign, account
):
    client.force_login(manager)
    one = queries(client)
    for _ in range(3):
        launched(manager, [account])
    assert queries(client) == one


def finish(campaign, manager):
    close(campaign)
    settled(campaign, manager)
    sign_off(campaign, manager, PASSWORD, "Every item was reviewed.")


def test_an_auditors_home_runs_the_same_queries_for_1_or_4_signed_off_campaigns(
    client, auditor, manager, campaign, account
):
    finish(campaign, manager)
    client.force_login(auditor)
    one = queries(client)
    for _ in range(3):
        finish(launched(manager, [account]), manager)
    assert "Signed off" in text(client.get(HOME))
    assert queries(client) == one

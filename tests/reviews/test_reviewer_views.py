"""The reviewer's pages: the queue, the item panel, deciding one item or many, delegating.

The world is tests/reviews/conftest.py's: the reviewer holds six items of `campaign` (three
roles of payments-prod, each with AdministratorAccess, privileged and recommended for reduction,
and an inline read-s3 policy, used and recommended to keep); the six of marketing-prod have no
reviewer. The campaign's rules ask a reason to keep a privileged right and to revoke anything.
"""

import re
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from audit.models import AuditEvent
from inventory.models import Principal, Right, ServiceUsage
from reviews import tallies
from reviews.decide import Choice, close, decide
from reviews.launch import launch, new_campaign
from reviews.models import Campaign, Decision, Remediation, ReviewItem
from reviews.views import reviewer as views
from tests import factories

HTMX = {"HX-Request": "true"}
PANEL = {"HX-Request": "true", "HX-Target": "item-panel"}
REASON = "Runs the nightly settlement; the payments lead confirmed."


def admin(items, n=0) -> ReviewItem:
    """The privileged AdministratorAccess item of payments-prod-role-n."""
    return next(
        i
        for i in items
        if i.principal_name == f"payments-prod-role-{n}" and i.right_kind == "managed_policy"
    )


def inline(items, n=0) -> ReviewItem:
    """The unprivileged, used read-s3 item of payments-prod-role-n."""
    return next(
        i
        for i in items
        if i.principal_name == f"payments-prod-role-{n}" and i.right_kind == "inline_policy"
    )


def fresh(item) -> ReviewItem:
    return ReviewItem.objects.select_related("campaign", "reviewer").get(pk=item.pk)


def row_of(response, item) -> str:
    match = re.search(rf'<tr id="item-{item.uuid}".*?</tr>', response.text, re.S)
    assert match, f"no row of {item} in the page"
    return match.group(0)


def hidden(html, name) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} in the form"
    return match.group(1)


def post_decision(client, item, decision, *, headers=None, version=None, **fields):
    """Post a decision as the item's row does, with the version and token it was shown with."""
    data = {"decision": decision, "version": version or fresh(item).version, **fields}
    return client.post(reverse("reviews:decide", args=[item.uuid]), data, headers=headers or {})


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def person(username):
    return factories.UserFactory(username=username, email=f"{username}@example.com")


@pytest.fixture
def colleague(db):
    return person("cora.colleague")


@pytest.fixture
def reviewer_client(client, reviewer, items):
    client.force_login(reviewer)
    return client


# The queue --------------------------------------------------------------------------------------


def test_the_queue_lists_the_reviewers_items_undecided_first(reviewer_client, items, campaign):
    kept = inline(items, 1)
    decide(fresh(kept), kept.reviewer, Choice("keep"))
    response = reviewer_client.get(reverse("reviews:queue"))
    assert response.status_code == 200
    assert "My reviews" in response.text
    rows = re.findall(r'<tr id="item-([0-9a-f-]+)"', response.text)
    assert len(rows) == 6
    assert rows[-1] == str(kept.uuid)
    assert "marketing-prod" not in response.text  # the orphans are nobody's to decide here


def test_the_queue_leaves_out_campaigns_no_longer_open(reviewer_client, campaign, manager):
    close(campaign, by=manager)
    response = reviewer_client.get(reverse("reviews:queue"))
    assert "payments-prod-role-0" not in response.text
    assert "Nothing to review." in response.text


def test_the_queue_shows_each_campaigns_progress_and_due_date(reviewer_client, items, campaign):
    decide(fresh(inline(items)), items[0].reviewer, Choice("keep"))
    response = reviewer_client.get(reverse("reviews:queue"))
    assert "1 of 6 decided" in response.text
    assert campaign.due_date.isoformat() in response.text
    assert "in 14 days" in response.text
    assert "5 items wait for your decision." in response.text


def test_an_overdue_campaign_says_so_in_words(reviewer_client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        due_date=timezone.localdate() - timedelta(days=3)
    )
    assert "overdue by 3 days" in reviewer_client.get(reverse("reviews:queue")).text


def test_a_row_shows_the_right_its_use_recommendation_and_privilege(reviewer_client, items):
    response = reviewer_client.get(reverse("reviews:queue"))
    row = row_of(response, admin(items))
    assert "payments-prod-role-0" in row
    assert "Role" in row
    assert "AdministratorAccess" in row
    assert "Attached managed policy" in row
    assert "3 days ago" in row
    assert "Reduce" in row
    assert "was used in the last 90 days" in row
    assert "Privileged" in row
    assert "Undecided" in row
    assert "Privileged" not in row_of(response, inline(items))


def test_a_row_names_its_choices_in_the_readers_language_or_as_stored(reviewer_client, items):
    item = admin(items)
    ReviewItem.objects.filter(pk=item.pk).update(recommendation="retired")
    reviewer_client.cookies["django_language"] = "ja"
    row = row_of(reviewer_client.get(reverse("reviews:queue")), item)
    with translation.override("ja"):
        assert str(Principal.Kind.ROLE.label) in row
        assert str(Right.Kind.MANAGED_POLICY.label) in row
    assert '<span class="badge rec-retired">retired</span>' in row


def test_a_row_asks_for_a_reason_only_where_the_campaign_requires_one(reviewer_client, items):
    response = reviewer_client.get(reverse("reviews:queue"))
    privileged, plain = row_of(response, admin(items)), row_of(response, inline(items))
    keep = r'value="keep"[^>]*data-needs-reason'
    revoke = r'value="revoke"[^>]*data-needs-reason'
    assert re.search(keep, privileged)
    assert re.search(revoke, privileged)
    assert not re.search(keep, plain)
    assert re.search(revoke, plain)
    # The box itself is there for the keyboard to open, closed.
    assert re.search(r'class="reason-box"[^>]*hidden', plain)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("privileged=true", {"managed_policy"}),
        ("privileged=false", {"inline_policy"}),
        ("recommendation=keep", {"inline_policy"}),
        ("recommendation=reduce", {"managed_policy"}),
        ("type=user", set()),
        ("account=111122223333", {"managed_policy", "inline_policy"}),
        ("account=111122223333&type=role&privileged=true", {"managed_policy"}),
        ("q=role-1", {"managed_policy", "inline_policy"}),
    ],
)
def test_the_queue_filters(reviewer_client, items, query, expected):
    response = reviewer_client.get(f"{reverse('reviews:queue')}?{query}")
    shown = [i for i in items if f'id="item-{i.uuid}"' in response.text]
    assert {i.right_kind for i in shown} == expected


def test_the_queue_filters_by_campaign_and_status(reviewer_client, items, campaign, reviewer):
    decide(fresh(inline(items)), reviewer, Choice("keep"))
    url = reverse("reviews:queue")
    decided = reviewer_client.get(f"{url}?campaign={campaign.uuid}&status=decided")
    assert re.findall(r'<tr id="item-([0-9a-f-]+)"', decided.text) == [str(inline(items).uuid)]
    undecided = reviewer_client.get(f"{url}?status=undecided")
    assert len(re.findall(r'<tr id="item-', undecided.text)) == 5


def test_the_queue_sorts_the_least_recently_used_first(reviewer_client, items):
    ReviewItem.objects.filter(pk=inline(items, 2).pk).update(last_used_at=None)
    response = reviewer_client.get(f"{reverse('reviews:queue')}?sort=last_used")
    first = re.search(r'<tr id="item-([0-9a-f-]+)"', response.text).group(1)
    assert first == str(inline(items, 2).uuid)


def test_every_form_of_the_queue_carries_the_pages_csrf_token(reviewer_client, items):
    page = reviewer_client.get(reverse("reviews:queue")).text
    tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert len(tokens) == 3 + len(items)  # sign-out, language, bulk, and each row's decision
    assert len(set(tokens)) == 1


def test_htmx_gets_the_queue_results_alone(reviewer_client, items):
    response = reviewer_client.get(f"{reverse('reviews:queue')}?privileged=true", headers=HTMX)
    assert response.text.lstrip().startswith('<div id="queue-results"')
    assert "<html" not in response.text
    assert response.text.count("<tr id=") == 3


def test_the_queue_pages_by_fifty(client, reviewer, manager):
    big = factories.collected_account("777700000000", "batch-prod", owner=reviewer, principals=26)
    launch(
        new_campaign(
            name="Big review",
            owner=manager,
            due_date=timezone.localdate() + timedelta(days=7),
            accounts=[big],
        )
    )
    client.force_login(reviewer)
    first = client.get(reverse("reviews:queue"))
    assert first.text.count('<tr id="item-') == 50
    assert "Page 1 of 2" in first.text
    second = client.get(f"{reverse('reviews:queue')}?page=2")
    assert second.text.count('<tr id="item-') == 2


def test_an_outsider_has_nothing_to_review(client, outsider, items):
    client.force_login(outsider)
    response = client.get(reverse("reviews:queue"))
    assert response.status_code == 200
    assert "Nothing to review." in response.text
    assert "payments-prod" not in response.text


def test_the_queue_refuses_post(reviewer_client):
    assert reviewer_client.post(reverse("reviews:queue")).status_code == 405


def test_the_queue_runs_the_same_queries_for_3_or_30_items(client, reviewer, manager):
    big = factories.collected_account("777700000000", "batch-prod", owner=reviewer, principals=15)
    campaign = launch(
        new_campaign(
            name="Big review",
            owner=manager,
            due_date=timezone.localdate() + timedelta(days=7),
            accounts=[big],
        )
    )
    mine = list(campaign.items.order_by("pk"))
    assert len(mine) == 30
    decide(fresh(mine[0]), reviewer, Choice("keep", reason=REASON))
    client.force_login(reviewer)
    url = reverse("reviews:queue")
    thirty = queries(client, url)
    ReviewItem.objects.filter(pk__in=[i.pk for i in mine[3:]]).update(reviewer=None)
    tallies.recount(mine[0].campaign_id)
    assert client.get(url).text.count('<tr id="item-') == 3
    assert queries(client, url) == thirty


# The item panel ---------------------------------------------------------------------------------


def test_the_item_page_says_what_the_right_allows_and_why_it_is_recommended(reviewer_client, items):
    item = admin(items)
    response = reviewer_client.get(reverse("reviews:item", args=[item.uuid]))
    assert response.status_code == 200
    assert "<html" in response.text
    text = response.text
    # In plain words: the right, its privileges, the services and their use, the caveats.
    assert "The policy AdministratorAccess, managed by AWS, is attached" in text
    assert "Why it is privileged" in text
    assert "full administrator access" in text
    assert "Amazon S3" in text
    assert "3 days ago" in text
    assert "GetObject" in text
    assert "1 service never used by this principal:" in text
    assert "AWS IAM" in text
    assert "Only s3 of what it allows was used in the last 90 days; iam was not." in text
    assert "Another right of this principal also allows s3" in text
    # The document, read from the policy version the item refers to.
    assert "Managed policy, version v1" in text
    assert "&quot;Action&quot;: &quot;*&quot;" in text
    # Who else holds it through the same policy.
    assert "2 other principals of the account have this policy attached:" in text
    assert "payments-prod-role-1" in text
    assert "payments-prod-role-2" in text
    assert "No decision yet." in text


def test_the_item_page_shows_an_inline_policys_own_document(reviewer_client, items):
    response = reviewer_client.get(reverse("reviews:item", args=[inline(items).uuid]))
    assert "The inline policy read-s3 belongs to this principal alone" in response.text
    assert "s3:Get*" in response.text
    assert "Who else holds it" not in response.text


def test_the_decision_form_carries_the_version_a_timing_token_and_the_reduce_checklist(
    reviewer_client, items
):
    item = admin(items)
    response = reviewer_client.get(f"{reverse('reviews:item', args=[item.uuid])}?decision=reduce")
    form = re.search(r'<form id="decision-form".*?</form>', response.text, re.S).group(0)
    assert hidden(form, "version") == str(item.version)
    assert views._opened_at(hidden(form, "opened"), item, item.reviewer) is not None
    assert re.search(r'name="decision" value="reduce" checked', form)
    # The checklist offers what the right allows; the recommendation's part comes checked.
    assert re.search(r'name="keep" value="s3" checked', form)
    assert re.search(r'name="keep" value="s3:GetObject"', form)
    assert re.search(r'name="keep" value="iam">', form)
    assert "Required to keep or to revoke this right." in form


def test_htmx_gets_the_item_panel_alone(reviewer_client, items):
    response = reviewer_client.get(reverse("reviews:item", args=[admin(items).uuid]), headers=HTMX)
    assert response.text.lstrip().startswith('<section id="item-panel"')
    assert "<html" not in response.text
    assert "Open as a page" in response.text


def test_the_item_page_shows_the_decision_history(reviewer_client, items, reviewer):
    item = inline(items)
    decide(fresh(item), reviewer, Choice("keep"), seconds_to_decide=42)
    decide(fresh(item), reviewer, Choice("revoke", reason="The job moved to another account."))
    response = reviewer_client.get(reverse("reviews:item", args=[item.uuid]))
    history = re.search(r'<ol class="history">.*?</ol>', response.text, re.S).group(0)
    assert history.index("Revoke") < history.index("Keep")
    assert "The job moved to another account." in history
    assert "by rita.reviewer" in history
    assert "after 42 seconds" in history


def test_the_item_page_says_what_became_of_a_revocation_in_aws(
    reviewer_client, client, auditor, items, reviewer, campaign
):
    item = inline(items)
    decide(fresh(item), reviewer, Choice("revoke", reason="The job moved to another account."))
    close(campaign)
    remediation = Remediation.objects.get(item=item)
    Remediation.objects.filter(pk=remediation.pk).update(
        state=Remediation.State.VERIFIED, verified_at=timezone.now()
    )
    page = reviewer_client.get(reverse("reviews:item", args=[item.uuid])).text
    assert "In AWS" in page
    assert "AWS no longer shows the right" in page
    assert remediation.get_absolute_url() not in page  # the details are the manager's
    client.force_login(auditor)
    assert (
        remediation.get_absolute_url() in client.get(reverse("reviews:item", args=[item.uuid])).text
    )


def test_a_reduction_shows_the_policy_that_would_replace_it_before_anything_is_decided(
    reviewer_client, items
):
    item = admin(items)
    url = reverse("reviews:replacement", args=[item.uuid])
    panel = reviewer_client.get(reverse("reviews:item", args=[item.uuid])).text
    assert url in panel

    response = reviewer_client.get(url, {"keep": ["s3", "not-a-service"]})
    assert response.status_code == 200
    diff = re.search(r'<pre class="diff".*?</pre>', response.text, re.S).group(0)
    assert '<span class="removed">-' in diff
    assert '<span class="added">+' in diff
    assert "s3:*" in diff
    assert "not-a-service" not in response.text
    assert Decision.objects.filter(item=item).count() == 0

    nothing = reviewer_client.get(url)
    assert "Check what to keep to see the policy that would replace it." in nothing.text


def test_the_replacement_preview_is_404_outside_reach_or_for_a_credential(
    client, outsider, items, campaign
):
    orphan = campaign.items.filter(reviewer__isnull=True, right_kind="managed_policy").first()
    client.force_login(items[0].reviewer)
    assert client.get(reverse("reviews:replacement", args=[orphan.uuid])).status_code == 404
    credential = campaign.items.filter(right_kind__in=["access_key", "console_password"]).first()
    if credential is not None:
        url = reverse("reviews:replacement", args=[credential.uuid])
        assert client.get(url).status_code == 404
    client.force_login(outsider)
    url = reverse("reviews:replacement", args=[admin(items).uuid])
    assert client.get(url, {"keep": "s3"}).status_code == 404


def test_the_replacement_preview_refuses_post(reviewer_client, items):
    url = reverse("reviews:replacement", args=[admin(items).uuid])
    assert reviewer_client.post(url, {"keep": "s3"}).status_code == 405


def test_an_item_of_someone_else_is_404_to_a_reviewer(reviewer_client, campaign):
    orphan = campaign.items.filter(reviewer__isnull=True).first()
    assert reviewer_client.get(reverse("reviews:item", args=[orphan.uuid])).status_code == 404


def test_an_item_is_404_to_an_outsider(client, outsider, items):
    client.force_login(outsider)
    assert client.get(reverse("reviews:item", args=[items[0].uuid])).status_code == 404


def test_an_auditor_reads_any_item_without_a_decision_form(client, auditor, items):
    client.force_login(auditor)
    response = client.get(reverse("reviews:item", args=[admin(items).uuid]))
    assert response.status_code == 200
    assert "AdministratorAccess" in response.text
    assert "Reviewer: rita.reviewer" in response.text
    assert 'id="decision-form"' not in response.text
    assert "Reassign" not in response.text


def test_the_item_page_refuses_post(reviewer_client, items):
    response = reviewer_client.post(reverse("reviews:item", args=[items[0].uuid]))
    assert response.status_code == 405


def test_the_item_page_runs_the_same_queries_for_few_or_many_services_documents_decisions(
    reviewer_client, items, reviewer
):
    item = admin(items)
    url = reverse("reviews:item", args=[item.uuid])
    # A group brings each of its policies' documents: a managed one and inline ones.
    inline_refs = [{"name": i.right_key, "inline_right": i.right_id} for i in items[:6:2]]
    facts = fresh(item).facts
    facts["documents"] = facts["documents"] + inline_refs[:1]
    ReviewItem.objects.filter(pk=item.pk).update(facts=facts)
    decide(fresh(item), reviewer, Choice("revoke", reason=REASON))
    few = queries(reviewer_client, url)
    facts["documents"] = facts["documents"] + inline_refs[1:]
    facts["services"] = [
        {
            "namespace": f"svc{n}",
            "name": f"Service {n}",
            "last_used": None if n % 2 else timezone.now().isoformat(),
            "tracked": True,
            "actions": {f"Action{a}": None for a in range(5)},
        }
        for n in range(25)
    ]
    ReviewItem.objects.filter(pk=item.pk).update(facts=facts)
    for decision in ["keep", "revoke"] * 5:
        decide(fresh(item), reviewer, Choice(decision, reason=REASON))
    assert fresh(item).decisions.count() == 11
    page = reviewer_client.get(url)
    assert page.text.count('<details class="document">') == 4
    assert "Service 24" in page.text
    assert queries(reviewer_client, url) == few


# Deciding one item ------------------------------------------------------------------------------


def test_keep_from_the_row_returns_the_updated_row_and_progress(reviewer_client, items):
    item = inline(items)
    response = post_decision(reviewer_client, item, "keep", headers=HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="item-{item.uuid}"')
    row = row_of(response, item)
    assert "decision-keep" in row
    assert 'aria-pressed="true"' in row
    assert hidden(row, "version") == str(fresh(item).version)
    assert 'id="queue-progress" class="queue-progress"' in response.text
    assert "1 of 6 decided" in response.text
    assert "Kept: payments-prod-role-0, read-s3." in response.text
    assert "<html" not in response.text
    assert fresh(item).decision == "keep"


def test_revoke_with_a_reason_is_recorded_with_it(reviewer_client, items):
    item = inline(items)
    response = post_decision(reviewer_client, item, "revoke", headers=HTMX, reason=REASON)
    assert response.status_code == 200
    decision = fresh(item).decisions.get()
    assert (decision.decision, decision.reason, decision.decided_by_name) == (
        "revoke",
        REASON,
        "rita.reviewer",
    )


def test_reduce_keeps_what_the_reviewer_checked(reviewer_client, items):
    item = admin(items)
    response = post_decision(
        reviewer_client, item, "reduce", headers=PANEL, keep=["s3", "s3:GetObject"], in_queue="1"
    )
    assert response.status_code == 200
    assert fresh(item).decision == "reduce"
    assert fresh(item).decisions.get().keep == ["s3", "s3:GetObject"]
    assert "Reduced: payments-prod-role-0, AdministratorAccess." in response.text


def test_a_reduction_must_keep_something_the_right_allows(reviewer_client, items):
    item = admin(items)
    nothing = post_decision(reviewer_client, item, "reduce", headers=PANEL)
    assert nothing.status_code == 400
    assert "Choose what the reduced right keeps." in nothing.text
    foreign = post_decision(reviewer_client, item, "reduce", headers=PANEL, keep=["ec2"])
    assert foreign.status_code == 400
    assert "The right does not allow some of what you chose to keep." in foreign.text
    assert fresh(item).decision == ""


def test_a_right_cannot_be_kept_until_a_day_gone_by(reviewer_client, items):
    item = inline(items)
    past = post_decision(
        reviewer_client, item, "keep", headers=PANEL, keep_until=timezone.localdate().isoformat()
    )
    assert past.status_code == 400
    assert "The end date must be in the future." in past.text
    later = timezone.localdate() + timedelta(days=30)
    kept = post_decision(reviewer_client, item, "keep", headers=PANEL, keep_until=later.isoformat())
    assert kept.status_code == 200
    assert f"until {later.isoformat()}" in kept.text
    assert fresh(item).keep_until == later


def test_a_reason_required_is_asked_for_then_accepted(reviewer_client, items):
    item = admin(items)
    refused = post_decision(reviewer_client, item, "keep", headers=HTMX)
    assert refused.status_code == 400
    row = row_of(refused, item)
    assert "A reason is required for this decision." in row
    # The box is open, and says why the reason is asked for.
    assert re.search(r'class="reason-box" id="reason-box-[^"]+">', row)
    assert re.search(r'data-hint-for="keep">Keeping a privileged right needs a reason', row)
    assert fresh(item).decision == ""
    accepted = post_decision(reviewer_client, item, "keep", headers=HTMX, reason=REASON)
    assert accepted.status_code == 200
    assert fresh(item).decisions.get().reason == REASON


def test_a_reason_refused_in_the_panel_keeps_what_was_typed(reviewer_client, items):
    item = admin(items)
    response = post_decision(
        reviewer_client, item, "keep", headers=PANEL, reason="   ", keep_until="2099-01-01"
    )
    assert response.status_code == 400
    assert "A reason is required for this decision." in response.text
    assert re.search(r'name="decision" value="keep" checked', response.text)
    assert 'value="2099-01-01"' in response.text


def test_a_stale_version_is_409_and_shows_the_items_current_decision(
    reviewer_client, items, reviewer
):
    item = inline(items)
    shown = fresh(item).version
    decide(fresh(item), reviewer, Choice("keep"))  # in another tab
    response = post_decision(
        reviewer_client, item, "revoke", headers=HTMX, version=shown, reason=REASON
    )
    assert response.status_code == 409
    row = row_of(response, item)
    assert "Someone changed this item while you looked at it" in row
    assert "decision-keep" in row
    assert hidden(row, "version") == str(fresh(item).version)
    assert fresh(item).decisions.count() == 1


def test_a_stale_version_in_the_panel_shows_the_current_state(reviewer_client, items, reviewer):
    item = inline(items)
    shown = fresh(item).version
    decide(fresh(item), reviewer, Choice("revoke", reason="Moved to the shared account."))
    response = post_decision(reviewer_client, item, "keep", headers=PANEL, version=shown)
    assert response.status_code == 409
    assert "Someone changed this item while you looked at it" in response.text
    assert "Moved to the shared account." in response.text  # in the history


def test_deciding_ones_own_access_is_403_and_recorded(client, reviewer, manager, own_access):
    client.force_login(manager)
    refused = client.post(
        reverse("reviews:reassign", args=[own_access.uuid]),
        {"to": reviewer.username, "reason": "Rita knows this account best."},
        headers=PANEL,
    )
    assert refused.status_code == 400
    assert "is rita.reviewer&#x27;s own access: it cannot be theirs to review." in refused.text
    assert fresh(own_access).reviewer is None
    # However it reaches them (a username changed after assignment), it is not theirs to decide.
    ReviewItem.objects.filter(pk=own_access.pk).update(reviewer=reviewer)
    tallies.recount(own_access.campaign_id)
    client.force_login(reviewer)
    response = post_decision(client, own_access, "keep", headers=HTMX, reason=REASON)
    assert response.status_code == 403
    assert "Nobody decides on their own access" in response.text
    assert fresh(own_access).decision == ""
    event = AuditEvent.objects.filter(action="decision.refused").get()
    assert event.after["reason"] == "self_review"


def test_an_auditor_cannot_decide(client, auditor, items):
    client.force_login(auditor)
    response = post_decision(client, inline(items), "keep", headers=HTMX)
    assert response.status_code == 403
    assert "This item is assigned to someone else." in response.text
    assert fresh(inline(items)).decision == ""


def test_an_outsider_deciding_gets_404(client, outsider, items):
    client.force_login(outsider)
    assert post_decision(client, inline(items), "keep").status_code == 404
    assert fresh(inline(items)).decision == ""


def test_a_closed_campaign_takes_no_decision(reviewer_client, items, campaign, manager):
    close(campaign, by=manager)
    response = post_decision(reviewer_client, inline(items), "revoke", headers=HTMX, reason=REASON)
    assert response.status_code == 409
    assert "The campaign is not open for decisions." in response.text


def test_deciding_takes_a_post(reviewer_client, items):
    response = reviewer_client.get(reverse("reviews:decide", args=[items[0].uuid]))
    assert response.status_code == 405


def test_a_plain_post_redirects_back_with_a_message(reviewer_client, items):
    item = inline(items)
    queue = f"{reverse('reviews:queue')}?status=undecided"
    response = post_decision(reviewer_client, item, "keep", next=queue)
    assert response.status_code == 302
    assert response["Location"] == queue
    page = reviewer_client.get(queue)
    assert "Kept: payments-prod-role-0, read-s3." in page.text


def test_a_plain_post_never_redirects_off_site(reviewer_client, items):
    item = inline(items)
    response = post_decision(reviewer_client, item, "keep", next="https://evil.example/")
    assert response["Location"] == item.get_absolute_url()


def test_a_plain_post_refused_shows_the_item_page_with_the_message(reviewer_client, items):
    response = post_decision(reviewer_client, admin(items), "revoke")
    assert response.status_code == 400
    assert "<html" in response.text
    assert "A reason is required for this decision." in response.text


# How long a decision took ----------------------------------------------------------------------


def test_the_time_to_decide_runs_from_when_the_server_showed_the_item(reviewer_client, items):
    item = inline(items)
    now = time.time()
    with mock.patch("time.time", return_value=now - 90):
        page = reviewer_client.get(reverse("reviews:item", args=[item.uuid]))
    form = re.search(r'<form id="decision-form".*?</form>', page.text, re.S).group(0)
    with mock.patch("time.time", return_value=now):
        post_decision(reviewer_client, item, "keep", opened=hidden(form, "opened"))
    assert fresh(item).decisions.get().seconds_to_decide == 90


def test_a_forged_or_borrowed_timing_token_records_no_time(reviewer_client, items, reviewer):
    signer = signing.TimestampSigner(salt=views.OPENED_SALT)
    genuine = views.opened_token(items[1], reviewer)
    value, _stamp, signature = genuine.rsplit(":", 2)
    forgeries = [
        "",
        "not a token",
        f"{value}:{signing.b62_encode(int(time.time()) - 3600)}:{signature}",  # moved back
        genuine,  # another item's
        signer.sign(f"{items[0].uuid}/{reviewer.pk + 1}"),  # another user's
        signing.TimestampSigner(key="x" * 50, salt=views.OPENED_SALT).sign(
            f"{items[0].uuid}/{reviewer.pk}"
        ),
    ]
    item = items[0]
    for forged in forgeries:
        response = post_decision(reviewer_client, item, "revoke", reason=REASON, opened=forged)
        assert response.status_code == 302
        assert fresh(item).decisions.first().seconds_to_decide is None


def test_on_a_queue_page_the_time_runs_from_the_previous_decision(reviewer_client, items):
    first, second = inline(items, 0), inline(items, 1)
    with mock.patch("time.time", return_value=time.time() - 600):
        page = reviewer_client.get(reverse("reviews:queue"))
    post_decision(reviewer_client, first, "keep", opened=hidden(row_of(page, first), "opened"))
    post_decision(reviewer_client, second, "keep", opened=hidden(row_of(page, second), "opened"))
    assert fresh(first).decisions.get().seconds_to_decide >= 600
    # Not the ten minutes since the page was loaded: the moments since the first decision.
    assert fresh(second).decisions.get().seconds_to_decide < 60


# The panel inside the queue ---------------------------------------------------------------------


def test_a_decision_in_the_panel_updates_the_row_and_progress_out_of_band(reviewer_client, items):
    item = inline(items)
    response = post_decision(reviewer_client, item, "keep", headers=PANEL, in_queue="1")
    assert response.status_code == 200
    assert '<section id="item-panel"' in response.text
    assert re.search(
        rf'<template>\s*<tr id="item-{item.uuid}"[^>]*hx-swap-oob="true"', response.text
    )
    assert re.search(r'<section id="queue-progress"[^>]*hx-swap-oob="true"', response.text)
    assert "Kept: payments-prod-role-0, read-s3." in response.text


def test_on_the_item_page_a_decision_returns_the_panel_alone(reviewer_client, items):
    response = post_decision(reviewer_client, inline(items), "keep", headers=PANEL)
    assert '<section id="item-panel"' in response.text
    assert "hx-swap-oob" not in response.text


def test_htmx_is_told_to_swap_in_every_refusal_the_views_send():
    """htmx 2 leaves 4xx answers out of the page; reviews.js lists what to swap instead. The
    first rule matching a status decides, as in htmx."""
    script = (Path(settings.BASE_DIR) / "static" / "reviews.js").read_text()
    rules = re.findall(r'code: "([^"]+)", swap: (true|false)', script)
    assert rules, "reviews.js no longer sets htmx.config.responseHandling"
    for status in {400, *views.REFUSAL_STATUS.values()}:
        swap = next(swap for code, swap in rules if re.search(code, str(status)))
        assert swap == "true", f"htmx would not show a {status} refusal"


# Deciding many ----------------------------------------------------------------------------------


def test_bulk_decides_the_selected_items(reviewer_client, items):
    chosen = [inline(items, 0), inline(items, 1)]
    response = reviewer_client.post(
        reverse("reviews:bulk"),
        {"item": [str(i.uuid) for i in chosen], "decision": "keep", "reason": ""},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "Keep: 2 items decided." in response.text
    assert '<div id="queue-results"' in response.text
    assert re.search(r'<section id="queue-progress"[^>]*hx-swap-oob="true"', response.text)
    assert "2 of 6 decided" in response.text
    assert "4 items wait for your decision." in response.text
    # The rows are the results themselves, not swaps of their own.
    assert not re.search(r"<tr[^>]*hx-swap-oob", response.text)
    assert [fresh(i).decision for i in chosen] == ["keep", "keep"]
    assert {d.bulk_size for d in Decision.objects.all()} == {2}
    assert fresh(inline(items, 2)).decision == ""


def test_bulk_decides_all_items_matching_the_filter(reviewer_client, items):
    response = reviewer_client.post(
        f"{reverse('reviews:bulk')}?privileged=true",
        {"all_matching": "1", "decision": "revoke", "reason": "Nobody needs admin here."},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "Revoke: 3 items decided." in response.text
    assert sorted(fresh(i).decision for i in items) == ["", "", "", "revoke", "revoke", "revoke"]
    assert all(fresh(admin(items, n)).decision == "revoke" for n in range(3))


def test_bulk_with_another_reviewers_item_is_404_and_decides_nothing(
    reviewer_client, items, campaign
):
    orphan = campaign.items.filter(reviewer__isnull=True).first()
    response = reviewer_client.post(
        reverse("reviews:bulk"),
        {"item": [str(inline(items).uuid), str(orphan.uuid)], "decision": "keep"},
        headers=HTMX,
    )
    assert response.status_code == 404
    assert not Decision.objects.exists()


def test_bulk_refused_for_one_item_decides_none(reviewer_client, items):
    response = reviewer_client.post(
        reverse("reviews:bulk"),
        {"item": [str(inline(items).uuid), str(admin(items).uuid)], "decision": "keep"},
        headers=HTMX,
    )
    assert response.status_code == 400
    assert "A reason is required for this decision." in response.text
    assert not Decision.objects.exists()
    # The selection and the form are as the reviewer left them, to add the reason.
    assert re.search(rf'value="{admin(items).uuid}"[^>]*checked', response.text)


def test_bulk_asks_for_a_selection(reviewer_client, items):
    response = reviewer_client.post(reverse("reviews:bulk"), {"decision": "keep"}, headers=HTMX)
    assert response.status_code == 400
    assert "Choose the items to decide." in response.text


def test_bulk_does_not_reduce(reviewer_client, items):
    response = reviewer_client.post(
        reverse("reviews:bulk"),
        {"item": [str(admin(items).uuid)], "decision": "reduce"},
        headers=HTMX,
    )
    assert response.status_code == 400
    assert not Decision.objects.exists()


def test_a_plain_bulk_post_redirects_to_the_queue_as_filtered(reviewer_client, items):
    response = reviewer_client.post(
        f"{reverse('reviews:bulk')}?privileged=false",
        {"all_matching": "1", "decision": "keep"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('reviews:queue')}?privileged=false"
    assert "Keep: 3 items decided." in reviewer_client.get(response["Location"]).text


def test_an_auditor_cannot_decide_in_bulk(client, auditor, items):
    client.force_login(auditor)
    response = client.post(
        reverse("reviews:bulk"), {"item": [str(inline(items).uuid)], "decision": "keep"}
    )
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_an_outsider_deciding_in_bulk_gets_404(client, outsider, items):
    client.force_login(outsider)
    response = client.post(
        reverse("reviews:bulk"), {"item": [str(inline(items).uuid)], "decision": "keep"}
    )
    assert response.status_code == 404


def test_bulk_takes_a_post(reviewer_client):
    assert reviewer_client.get(reverse("reviews:bulk")).status_code == 405


# Another reviewer -------------------------------------------------------------------------------


def test_a_reviewer_delegates_their_item(reviewer_client, items, colleague):
    item = inline(items)
    response = reviewer_client.post(
        reverse("reviews:reassign", args=[item.uuid]),
        {"to": colleague.username, "reason": "Cora runs this service now.", "in_queue": "1"},
        headers=PANEL,
    )
    assert response.status_code == 200
    assert "now goes to cora.colleague" in response.text
    assert "Now with cora.colleague" in row_of(response, item)
    assert fresh(item).reviewer == colleague
    event = AuditEvent.objects.filter(action="item.reassigned").get()
    assert event.after == {"reviewer": "cora.colleague", "reason": "Cora runs this service now."}
    queue = reviewer_client.get(reverse("reviews:queue"))
    assert f'id="item-{item.uuid}"' not in queue.text


def test_a_plain_delegation_returns_to_the_queue(reviewer_client, items, colleague):
    item = inline(items)
    response = reviewer_client.post(
        reverse("reviews:reassign", args=[item.uuid]),
        {"to": colleague.username, "reason": "Cora runs this service now."},
    )
    assert response["Location"] == reverse("reviews:queue")
    assert reviewer_client.get(reverse("reviews:item", args=[item.uuid])).status_code == 404


def test_a_manager_reassigns_any_item(client, manager, reviewer, campaign):
    orphan = campaign.items.filter(reviewer__isnull=True).first()
    client.force_login(manager)
    response = client.post(
        reverse("reviews:reassign", args=[orphan.uuid]),
        {"to": reviewer.username, "reason": "Rita owns marketing too."},
    )
    assert response.status_code == 302
    assert response["Location"] == orphan.get_absolute_url()
    assert fresh(orphan).reviewer == reviewer


def test_a_delegation_needs_a_reason_and_someone_who_signs_in(reviewer_client, items, colleague):
    item = inline(items)
    url = reverse("reviews:reassign", args=[item.uuid])
    no_reason = reviewer_client.post(url, {"to": colleague.username}, headers=PANEL)
    assert no_reason.status_code == 400
    assert "Say why the items change reviewer." in no_reason.text
    nobody = reviewer_client.post(url, {"to": "nobody.here", "reason": "x"}, headers=PANEL)
    assert nobody.status_code == 400
    assert "Nobody signs in as nobody.here." in nobody.text
    assert fresh(item).reviewer == items[0].reviewer


def test_an_auditor_cannot_reassign(client, auditor, items, colleague):
    client.force_login(auditor)
    response = client.post(
        reverse("reviews:reassign", args=[inline(items).uuid]),
        {"to": colleague.username, "reason": "x"},
    )
    assert response.status_code == 403
    assert fresh(inline(items)).reviewer.username == "rita.reviewer"


def test_a_reviewer_cannot_reassign_an_item_not_theirs(reviewer_client, campaign, reviewer):
    orphan = campaign.items.filter(reviewer__isnull=True).first()
    response = reviewer_client.post(
        reverse("reviews:reassign", args=[orphan.uuid]), {"to": reviewer.username, "reason": "x"}
    )
    assert response.status_code == 404


def test_reassigning_takes_a_post(reviewer_client, items):
    response = reviewer_client.get(reverse("reviews:reassign", args=[items[0].uuid]))
    assert response.status_code == 405


# Fixtures of this module ------------------------------------------------------------------------


@pytest.fixture
def own_access(account, reviewer, manager):
    """An item of a campaign whose principal is the reviewer's own IAM user: the account is
    theirs, so launch gave it to nobody."""
    run = account.current_run
    principal = factories.PrincipalFactory(
        account=account,
        kind=Principal.Kind.USER,
        name=reviewer.username,
        arn=f"arn:aws:iam::{account.account_id}:user/{reviewer.username}",
        first_seen_run=run,
    )
    Right.objects.create(
        principal=principal,
        kind=Right.Kind.INLINE_POLICY,
        key="read-s3",
        document=factories.S3_READ_DOCUMENT,
        first_seen_run=run,
    )
    ServiceUsage.objects.create(
        principal=principal,
        service_namespace="s3",
        service_name="Amazon S3",
        last_authenticated_at=factories.days_ago(1),
        first_seen_run=run,
    )
    campaign = launch(
        new_campaign(
            name="Own access",
            owner=manager,
            due_date=timezone.localdate() + timedelta(days=7),
            accounts=[account],
        )
    )
    return campaign.items.get(principal=principal)

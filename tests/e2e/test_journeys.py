"""Journeys through Attest in a real browser, each walked as a new user of its role would.

What is asserted is what the person sees (words, figures, rows, messages); the database is read
afterwards only where it proves that the action they took really happened. Each main page is
kept as a screenshot under test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from reviews import evidence, tasks
from reviews.decide import Choice, close, decide, decide_many, sign_off
from reviews.launch import new_campaign
from reviews.models import Campaign, Decision, Outcome, Remediation, Reminder, ReviewItem
from tests.e2e.conftest import PASSWORD, shot, sign_in, sign_out
from tests.reviews.builders import definition, import_account, item, launched, settled

pytestmark = pytest.mark.browser

KEEP_REASON = "Payments needs it to ship."
REVOKE_REASON = "Nobody has run this since the spring."


def rows(page):
    return page.locator("tr.queue-row")


def row(page, principal: str, right: str):
    """The queue's row of a principal's right, found by what the reviewer reads in it."""
    return rows(page).filter(has_text=principal).filter(has_text=right)


def stat(page, term: str):
    """A figure of a page's summary (`dl.stats`), by the word above it."""
    term_cell = page.locator("dt", has_text=re.compile(rf"^\s*{re.escape(term)}\s*$"))
    return page.locator("dl.stats > div").filter(has=term_cell).locator("dd")


def message(page):
    return page.locator("ul.messages")


def section(page, heading: str):
    return page.locator("section", has=page.get_by_role("heading", name=heading))


def matching(count: int) -> str:
    """What the queue says above its rows when they fit on one page."""
    return f"{count} items match; 1\u2013{count} shown."


def htmx_idle(page) -> None:
    """Wait until htmx has swapped in an answer and made its new content live: a change made
    to a control swapped in a moment ago would otherwise go unheard."""
    busy = ".htmx-request, .htmx-swapping, .htmx-settling, .htmx-added"
    page.wait_for_function(f"() => !document.querySelector('{busy}')")


def back_to(page, campaign) -> None:
    """To the campaign's page, through the breadcrumb."""
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    crumbs.get_by_role("link", name=campaign.name).click()


# The reviewer -----------------------------------------------------------------------------------


@pytest.fixture
def review(reviewer, manager, account, other_account):
    """An active campaign over the reviewer's account (their 6 items: 3 roles, each with an
    inline read-s3 to keep and AdministratorAccess recommended for reduction) and an account
    nobody owns (6 orphans)."""
    return launched(manager, [account, other_account])


def test_reviewer_works_through_their_queue_with_the_keyboard(page, live_server, reviewer, review):
    sign_in(page, live_server, reviewer)
    expect(page.get_by_role("heading", name="Your reviews")).to_be_visible()
    expect(page.get_by_text("6 items wait for your decision.")).to_be_visible()
    card = page.locator("li.card", has_text=review.name)
    expect(card).to_contain_text("6 to decide")
    expect(card).to_contain_text("0 of 6 decided")
    shot(page, "reviewer-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My reviews").click()
    expect(page.get_by_role("heading", name="My reviews")).to_be_visible()
    progress = page.locator("#queue-progress")
    expect(progress).to_contain_text("6 items wait for your decision.")
    expect(rows(page)).to_have_count(6)
    shot(page, "reviewer-queue")

    # j and k move the current row; the first key lands on the first row.
    first_kept = row(page, "payments-prod-role-0", "read-s3")
    first_admin = row(page, "payments-prod-role-0", "AdministratorAccess")
    page.keyboard.press("j")
    expect(first_kept).to_be_focused()
    page.keyboard.press("j")
    expect(first_admin).to_be_focused()
    page.keyboard.press("k")
    expect(first_kept).to_be_focused()

    # a keeps a right used every day: no reason asked, the next row becomes current.
    page.keyboard.press("a")
    expect(first_kept.locator("td.decision")).to_have_text("✓ Keep")
    expect(page.locator("#queue-status")).to_have_text("Kept: payments-prod-role-0, read-s3.")
    expect(progress).to_contain_text("1 of 6 decided")
    expect(progress).to_contain_text("5 items wait for your decision.")
    expect(first_admin).to_be_focused()

    # r on a revocation, which this campaign wants a reason for, opens the reason box first.
    page.keyboard.press("r")
    reason_box = first_admin.locator(".reason-box")
    expect(reason_box).to_be_visible()
    expect(reason_box.get_by_text("Revoking needs a reason in this campaign.")).to_be_visible()
    expect(reason_box.get_by_role("textbox")).to_be_focused()
    expect(first_admin.locator("td.decision")).to_have_text("Undecided")
    shot(page, "reviewer-queue-reason")
    page.keyboard.type(REVOKE_REASON)
    page.keyboard.press("Enter")
    expect(first_admin.locator("td.decision")).to_have_text("✓ Revoke")
    expect(progress).to_contain_text("2 of 6 decided")
    expect(row(page, "payments-prod-role-1", "read-s3")).to_be_focused()

    # Enter opens the item beside the queue, with the decision and its reason in its history.
    page.keyboard.press("k")
    expect(first_admin).to_be_focused()
    page.keyboard.press("Enter")
    panel = page.locator("#item-panel")
    expect(panel).to_be_focused()
    expect(panel.get_by_role("heading", name="payments-prod-role-0")).to_be_visible()
    expect(panel).to_contain_text("Attached managed policy: AdministratorAccess")
    history = panel.locator("ol.history")
    expect(history).to_contain_text("Revoke")
    expect(history).to_contain_text("by rita.reviewer")
    expect(history.locator("blockquote")).to_have_text(REVOKE_REASON)
    # The reduction's preview loads into its own place, and the panel stays on this item.
    expect(panel.locator(".replacement-preview")).to_contain_text("The policy that replaces it")
    expect(panel.get_by_role("heading", name="payments-prod-role-0")).to_be_visible()
    expect(panel).to_contain_text("Attached managed policy: AdministratorAccess")
    shot(page, "reviewer-item-panel")
    page.keyboard.press("Escape")
    expect(panel).to_have_count(0)
    expect(first_admin).to_be_focused()

    # The two other reductions, filtered, selected with x and revoked at once with one reason.
    # Each filter swaps the results, filters included: the next one waits for the first.
    page.get_by_label("Recommendation").select_option(label="Reduce")
    expect(page.get_by_text(matching(3))).to_be_visible()
    htmx_idle(page)
    page.get_by_label("Status").select_option(label="Undecided")
    expect(page.get_by_text(matching(2))).to_be_visible()
    expect(page).to_have_url(re.compile(r"recommendation=reduce.*status=undecided"))
    expect(rows(page)).to_have_count(2)
    rows(page).first.locator("td.last-used").click()
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("[data-selected-count]")).to_have_text("2")
    page.get_by_label("Decision", exact=True).select_option(label="Revoke")
    page.get_by_placeholder("One reason for every item decided").fill(REVOKE_REASON)
    page.get_by_role("button", name="Decide selected").click()
    expect(page.locator("#queue-status")).to_have_text("Revoke: 2 items decided.")
    expect(page.get_by_text("No item of yours matches the filter.")).to_be_visible()
    expect(progress).to_contain_text("4 of 6 decided")
    expect(progress).to_contain_text("2 items wait for your decision.")

    page.get_by_role("link", name="Show them all").click()
    expect(rows(page)).to_have_count(6)
    decisions = page.locator("tr.queue-row td.decision")
    expect(decisions).to_have_text(["Undecided"] * 2 + ["✓ Keep"] + ["✓ Revoke"] * 3)

    page.get_by_role("link", name="Attest").click()
    expect(page.get_by_text("2 items wait for your decision.")).to_be_visible()
    expect(page.locator("li.card", has_text=review.name)).to_contain_text("4 of 6 decided")

    decisions = {
        (d.item.principal_name, d.item.right_label): d
        for d in Decision.objects.filter(item__campaign=review).select_related("item")
    }
    assert len(decisions) == 4
    kept = decisions["payments-prod-role-0", "read-s3"]
    assert (kept.decision, kept.reason, kept.bulk_size) == ("keep", "", 1)
    assert kept.decided_by == reviewer
    assert kept.seconds_to_decide is not None
    alone = decisions["payments-prod-role-0", "AdministratorAccess"]
    assert (alone.decision, alone.reason, alone.bulk_size) == ("revoke", REVOKE_REASON, 1)
    for principal in ("payments-prod-role-1", "payments-prod-role-2"):
        bulk = decisions[principal, "AdministratorAccess"]
        assert (bulk.decision, bulk.reason, bulk.bulk_size) == ("revoke", REVOKE_REASON, 2)


def test_keyboard_alone_reaches_every_control_of_the_queue_with_a_visible_focus(
    page, live_server, reviewer, review
):
    sign_in(page, live_server, reviewer)
    page.goto(reverse("reviews:queue"))
    expect(rows(page)).to_have_count(6)

    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const element = document.activeElement;
                const style = getComputedStyle(element);
                return {
                    tag: element.tagName.toLowerCase(),
                    label: (element.getAttribute("aria-label") || element.textContent || "")
                        .trim().replace(/\\s+/g, " ").slice(0, 60),
                    row: element.matches("tr.queue-row"),
                    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0,
                    shadow: style.boxShadow !== "none",
                };
            }"""
        )
        assert focused["tag"] != "body", f"the focus was lost after {seen}"
        assert focused["outline"] or focused["shadow"], f"no visible focus on {focused}"
        seen.append(focused)
        if focused["tag"] == "button" and focused["label"].startswith("Keep"):
            break
    shot(page, "reviewer-queue-keyboard-focus")

    labels = [entry["label"] for entry in seen]
    assert labels[0] == "Skip to content"
    assert "Filter" in labels
    assert "Decide selected" in labels
    assert any(entry["row"] for entry in seen), "Tab never reached the queue's rows"
    assert labels[-1].startswith("Keep"), "Tab never reached a row's decision buttons"


# The manager ------------------------------------------------------------------------------------


@pytest.fixture
def payments(reviewer):
    """An import-only account owned by the reviewer (15 items): what is revoked in it becomes a
    plan to carry out by hand, so nothing here calls AWS."""
    imported = import_account()
    imported.owner = reviewer
    imported.save(update_fields=["owner"])
    return imported


def test_manager_launches_watches_chases_closes_and_signs_off(
    page, live_server, reviewer, manager, payments, other_account, mailoutbox
):
    definition(
        manager,
        name="Payments quarterly",
        accounts=[payments, other_account],
        default_outcome=Outcome.KEEP,
    )
    sign_in(page, live_server, manager)
    expect(page.get_by_role("heading", name="Your campaigns")).to_be_visible()
    expect(page.get_by_text("You manage no open campaign.")).to_be_visible()
    shot(page, "manager-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    expect(page.get_by_text("No campaign yet.")).to_be_visible()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Definition").select_option(label="Payments quarterly")
    page.get_by_role("button", name="Create the draft").click()

    # The preview: what launching would freeze, and who would review it.
    expect(message(page)).to_contain_text("created: check what it will review, then launch it.")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Payments quarterly "))
    expect(stat(page, "Items")).to_have_text("21")
    expect(stat(page, "Accounts")).to_have_text("2")
    expect(stat(page, "Reviewers")).to_have_text("1")
    expect(stat(page, "Without a reviewer")).to_have_text("6")
    planned = section(page, "Items by reviewer")
    expect(planned.get_by_role("row", name="rita.reviewer")).to_contain_text("15")
    expect(planned.get_by_role("row", name=re.compile("Nobody"))).to_contain_text("6")
    shot(page, "manager-campaign-draft")
    page.get_by_role("button", name="Launch: freeze 21 items for review").click()

    expect(message(page)).to_have_text(
        "Launched: 21 items to review. 1 reviewer has items to decide."
    )
    expect(stat(page, "Decided")).to_contain_text("0")
    expect(stat(page, "Without a reviewer")).to_have_text("6")
    expect(page.get_by_text("0 of 21 decided (0%)")).to_be_visible()
    campaign = Campaign.objects.get(state=Campaign.State.ACTIVE)

    # Meanwhile the reviewer decides all of theirs: every right kept but one revoked.
    legacy = item(campaign, "legacy-batch", "inline_policy")
    decide(legacy, reviewer, Choice("revoke", REVOKE_REASON))
    decide_many(
        list(campaign.items.filter(reviewer=reviewer, decision="")),
        reviewer,
        Choice("keep", KEEP_REASON),
    )
    page.reload()
    expect(page.get_by_text("15 of 21 decided (71%)")).to_be_visible()
    by_reviewer = section(page, "Completion by reviewer")
    rita = by_reviewer.get_by_role("row", name=re.compile("rita.reviewer"))
    expect(rita).to_contain_text("15 of 15 decided")
    expect(rita).to_contain_text("done")
    shot(page, "manager-campaign-dashboard")

    # An orphan goes to the reviewer, who then has one item again; reminders go to them.
    orphans = page.locator("#orphans")
    orphans.get_by_label("marketing-prod-role-0: read-s3").check()
    orphans.get_by_label("New reviewer").select_option(label="rita.reviewer")
    orphans.get_by_label("Reason").fill("Rita looks after marketing's roles too.")
    orphans.get_by_role("button", name="Reassign the chosen items").click()
    expect(message(page)).to_have_text("1 item now goes to rita.reviewer.")
    expect(stat(page, "Without a reviewer")).to_have_text("5")
    expect(rita).to_contain_text("15 of 16 decided")

    page.get_by_role("button", name="Remind now").click()
    expect(message(page)).to_have_text("1 reminder e-mail went to a reviewer with undecided items.")
    assert [m.to for m in mailoutbox] == [["rita.reviewer@example.com"]]
    assert "1 access review is waiting for you" in mailoutbox[0].subject

    page.get_by_text("Close…").click()
    expect(page.get_by_text("The 6 undecided items get the default outcome: Keep.")).to_be_visible()
    page.get_by_role("button", name="Close the campaign now").click()
    expect(message(page)).to_have_text(
        "Closed. 6 unanswered items got the default outcome (Keep: 6)."
    )
    expect(page.get_by_text("It waits for your sign-off.")).to_be_visible()
    expect(page.get_by_role("button", name="Remind now")).to_have_count(0)

    # Sign-off waits for the one revocation, an import-only account's change to make by hand.
    page.get_by_role("link", name="Sign off").click()
    expect(page.get_by_text("1 revocation is neither verified in AWS nor excepted")).to_be_visible()
    page.get_by_role("link", name="See the remediations").click()
    expect(page.get_by_text("1 remediation", exact=True)).to_be_visible()
    listed = page.get_by_role("row", name=re.compile("legacy-batch"))
    expect(listed).to_contain_text("Revoke")
    expect(listed).to_contain_text("Manual")
    shot(page, "manager-remediation-list")
    listed.get_by_role("link", name="legacy-batch").click()
    expect(page.get_by_role("heading", name="To do by hand")).to_be_visible()
    expect(page.get_by_text(REVOKE_REASON)).to_be_visible()
    excepting = page.locator("form#except")
    excepting.get_by_label("Reason").fill("The batch is switched off in the new year; accepted.")
    excepting.get_by_role("button", name="Except").click()
    expect(message(page)).to_have_text("Excepted: sign-off no longer waits for this revocation.")
    shot(page, "manager-remediation-excepted")

    back_to(page, campaign)
    page.get_by_role("link", name="Sign off").click()
    expect(page.get_by_text("Every revocation is verified in AWS or excepted.")).to_be_visible()
    expect(page.get_by_label("Attestation")).to_have_value(re.compile(r"^I attest that"))
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Sign off").click()
    expect(page.get_by_text("The password is not right.")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CLOSED

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign off").click()
    expect(message(page)).to_have_text("Signed off. The campaign is now read-only.")
    expect(page.locator(".signoff-record")).to_contain_text("Signed off by max.manager")
    expect(page.get_by_role("button", name="Sign off")).to_have_count(0)
    shot(page, "manager-signoff")

    back_to(page, campaign)
    expect(page.locator(".subhead")).to_contain_text("Signed off")
    expect(page.get_by_role("button", name="Remind now")).to_have_count(0)
    expect(page.get_by_text("Close…")).to_have_count(0)
    expect(page.get_by_text("21 of 21 decided (100%)")).to_be_visible()

    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SIGNED_OFF
    assert campaign.signoff.signed_by == manager
    reassigned = item(campaign, "marketing-prod-role-0", "inline_policy")
    assert reassigned.reviewer == reviewer
    assert reassigned.decisions.get().system
    assert Reminder.objects.filter(campaign=campaign, recipient=reviewer).count() == 1
    excepted = Remediation.objects.get(campaign=campaign)
    assert (excepted.item, excepted.excepted_by_name) == (legacy, "max.manager")


def test_a_campaign_closed_by_a_worker_shows_its_outcome_by_itself(
    page, live_server, manager, review, monkeypatch
):
    """Where a worker closes the campaign, the manager's page says it is closing, then reloads
    itself once the worker is done."""
    worker = []
    monkeypatch.setattr(tasks.close_campaign, "delay", lambda *args: worker.append(args))
    sign_in(page, live_server, manager)
    page.goto(live_server.url + reverse("reviews:campaign", args=[review.uuid]))
    page.get_by_text("Close…").click()
    page.get_by_role("button", name="Close the campaign now").click()
    expect(message(page)).to_have_text("Closing the campaign: reviewers can no longer decide.")
    expect(page.locator("p.notice")).to_contain_text("This page reloads itself when it is done.")
    expect(page.get_by_text("Closing", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Remind now")).to_have_count(0)
    expect(page.get_by_role("link", name="Sign off")).to_have_count(0)
    shot(page, "manager-campaign-closing")

    tasks.close_campaign(*worker[0])
    expect(
        page.get_by_text("Closed: 12 items got the default outcome because nobody decided them.")
    ).to_be_visible(timeout=10_000)
    expect(message(page)).to_have_count(0)
    expect(page.get_by_role("link", name="Sign off")).to_be_visible()


def test_a_campaign_launched_by_a_worker_shows_its_dashboard_by_itself(
    page, live_server, manager, payments, other_account, monkeypatch
):
    """Where a worker launches the campaign, the draft's page says it is launching, then
    reloads itself into the campaign's dashboard once the worker is done."""
    worker = []
    monkeypatch.setattr(tasks.launch_campaign, "delay", lambda *args: worker.append(args))
    draft = new_campaign(
        name="Year-end review",
        owner=manager,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=[payments, other_account],
        by=manager,
    )
    sign_in(page, live_server, manager)
    page.goto(live_server.url + reverse("reviews:campaign", args=[draft.uuid]))
    page.get_by_role("button", name=re.compile(r"^Launch: freeze \d+ items for review$")).click()
    expect(message(page)).to_have_text(
        "Launching the campaign: its items are being made; reviewers see them once done."
    )
    expect(page.locator("p.notice")).to_contain_text("This page reloads itself when it is done.")
    expect(page.get_by_text("Launching", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Launch"))).to_have_count(0)
    shot(page, "manager-campaign-launching")

    tasks.launch_campaign(*worker[0])
    expect(page.get_by_text(re.compile(r"^0 of \d+ decided \(0%\)$"))).to_be_visible(timeout=10_000)
    expect(message(page)).to_have_count(0)
    expect(page.get_by_role("button", name="Remind now")).to_be_visible()


# The auditor ------------------------------------------------------------------------------------


@pytest.fixture
def finished(reviewer, manager, payments):
    """A campaign over the import-only account, decided, closed with the recommendation for
    what nobody decided, its revocations excepted and signed off by its manager."""
    campaign = launched(manager, [payments])
    decide(item(campaign, "legacy-batch", "inline_policy"), reviewer, Choice("revoke", "Unused."))
    close(campaign, by=manager)
    sign_off(settled(campaign, manager), manager, PASSWORD, "Reviewed and attested.")
    campaign.refresh_from_db()
    return campaign


def test_auditor_reads_the_trail_and_changes_nothing(
    page, live_server, auditor, manager, review, finished
):
    sign_in(page, live_server, auditor)
    expect(page.get_by_role("heading", name="Finished campaigns")).to_be_visible()
    done = page.get_by_role("row", name=re.compile(re.escape(finished.name)))
    expect(done).to_contain_text("Signed off")
    expect(done).to_contain_text("max.manager")
    shot(page, "auditor-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    page.get_by_label("Action").fill("campaign.")
    page.get_by_label("Actor").fill("max.manager")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=campaign\.&actor=max\.manager"))
    events = page.locator("table.list tbody tr")
    for action in ("campaign.launched", "campaign.closed", "campaign.signed_off"):
        expect(events.filter(has_text=action).first).to_be_visible()
    expect(events.filter(has_text="decision.")).to_have_count(0)
    signed = events.filter(has_text="campaign.signed_off")
    signed.get_by_text("Before and after").click()
    expect(signed).to_contain_text("Reviewed and attested.")
    shot(page, "auditor-audit-trail")
    viewed = AuditEvent.objects.filter(action="audit.viewed", actor=auditor).latest("id")
    filled = {name: value for name, value in viewed.after["filters"].items() if value}
    assert filled == {"action": "campaign.", "actor": "max.manager"}

    # An active campaign, as the auditor sees it: progress, and none of the manager's buttons.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name=review.name).click()
    expect(page.get_by_role("heading", name=review.name)).to_be_visible()
    expect(page.get_by_text("0 of 12 decided (0%)")).to_be_visible()
    for control in ("Remind now", "Close the campaign now", "Reassign the chosen items"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    expect(page.get_by_role("link", name="Sign off")).to_have_count(0)
    expect(page.get_by_role("link", name="New campaign")).to_have_count(0)
    shot(page, "auditor-campaign-dashboard")

    # Posted by hand, with the session's CSRF token so that only the permission can refuse.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for name in ("reviews:close", "reviews:remind", "reviews:signoff"):
        answer = page.request.post(
            reverse(name, args=[review.uuid]),
            headers={"X-CSRFToken": token},
            form={"password": PASSWORD, "statement": "Attested by the auditor."},
            max_redirects=0,
        )
        assert answer.status == 403, name
        assert "Your role does not allow this." in answer.text(), name
    review.refresh_from_db()
    assert review.state == Campaign.State.ACTIVE
    assert not Reminder.objects.filter(campaign=review).exists()
    assert not mail.outbox


def test_auditor_downloads_the_evidence_and_it_verifies(
    page, live_server, auditor, finished, tmp_path
):
    sign_in(page, live_server, auditor)
    page.goto(live_server.url + finished.get_absolute_url())
    link = page.get_by_role("link", name="Download the evidence (ZIP)")
    expect(link).to_be_visible()
    shot(page, "auditor-campaign-signed-off")
    link.click()

    # The package tells who can do what in AWS: the download asks for the password again.
    expect(page.get_by_role("heading", name=f"Evidence of {finished.name}")).to_be_visible()
    button = page.get_by_role("button", name="Download the evidence (ZIP)")
    page.get_by_label("Your password").fill("not my password")
    button.click()
    expect(page.get_by_text("The password is not right.")).to_be_visible()
    assert not AuditEvent.objects.filter(action="evidence.exported").exists()
    page.get_by_label("Your password").fill(PASSWORD)
    with page.expect_download() as download:
        button.click()
    name = download.value.suggested_filename
    assert name.startswith(f"attest-evidence-{finished.uuid}-final-")
    assert name.endswith(".zip")
    saved = tmp_path / name
    download.value.save_as(saved)

    assert evidence.verify(saved) == []
    with zipfile.ZipFile(saved) as package:
        manifest = json.loads(package.read("manifest.json"))
        signoff = json.loads(package.read("signoff.json"))
    assert manifest["interim"] is False
    assert signoff["statement"] == finished.signoff.statement
    [exported] = AuditEvent.objects.filter(action="evidence.exported")
    assert exported.actor == auditor


# Someone with no role ---------------------------------------------------------------------------


def test_outsider_sees_nothing_of_the_campaigns_or_accounts(
    page, live_server, outsider, reviewer, review
):
    sign_in(page, live_server, outsider)
    expect(page.get_by_text("Nothing waits for you.")).to_be_visible()
    main_nav = page.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Campaigns")).to_have_count(0)
    expect(main_nav.get_by_role("link", name="Audit trail")).to_have_count(0)
    shot(page, "outsider-home")

    main_nav.get_by_role("link", name="My reviews").click()
    expect(page.get_by_text("Nothing to review.")).to_be_visible()
    main_nav.get_by_role("link", name="Accounts").click()
    expect(page.get_by_text("No AWS account is visible to you.")).to_be_visible()
    main_nav.get_by_role("link", name="Principals").click()
    expect(page.get_by_text("No principal matches.")).to_be_visible()
    page.goto(reverse("reviews:campaigns"))
    expect(page.get_by_text("No campaign yet.")).to_be_visible()
    expect(page.get_by_role("link", name="New campaign")).to_have_count(0)
    assert "payments-prod" not in page.content()

    someone_elses = ReviewItem.objects.filter(campaign=review, reviewer=reviewer).first()
    for url in (
        review.get_absolute_url(),
        reverse("reviews:campaign-items", args=[review.uuid]),
        reverse("reviews:signoff", args=[review.uuid]),
        someone_elses.get_absolute_url(),
        reverse("inventory:account", args=["111122223333"]),
    ):
        answer = page.goto(url)
        assert answer.status == 404, url
        assert "payments-prod" not in page.content()
    shot(page, "outsider-not-found")
    assert page.goto(reverse("audit:events")).status == 403

    page.goto(reverse("home"))
    sign_out(page)

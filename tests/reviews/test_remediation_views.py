"""The remediation pages: a campaign's remediations, one remediation with everything known about
it, the plan of an import-only account, and the manager's answers (approve, roll back, except,
confirm, retry); who may do what, what each answer records, and that the list stays at a fixed
number of queries however many remediations it shows.

Remediations are built with the ORM in the states each test needs: nothing here talks to AWS,
and tasks a view queues are patched and only checked for having been queued.
"""

import re
from unittest.mock import patch

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from inventory.models import AwsAccount
from reviews import tallies
from reviews.models import Campaign, Decision, Remediation, ReviewItem, SignOff
from tests.reviews.builders import audit_mark, events_since, item, text

State = Remediation.State
REASON = "The owner of the role left the team."
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
ROLE = "payments-prod-role-0"
CARRY_OUT = "reviews.tasks.carry_out_remediation.delay"
ROLL_BACK = "reviews.tasks.roll_back_remediation.delay"
S3_GET_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "*"}],
}


def call(operation, request_id="", **params):
    entry = {"operation": operation, "params": params, "at": timezone.now().isoformat()}
    if request_id:
        entry["request_id"] = request_id
    else:
        entry["dry_run"] = True
    return entry


def remediation(review_item, state=State.PLANNED, *, action="revoke", keep=(), **fields):
    """A remediation of the item's decision, in `state`, as remediate would have left it."""
    decision = Decision.objects.create(
        item=review_item,
        campaign_id=review_item.campaign_id,
        decision=action,
        reason=REASON,
        keep=list(keep),
        decided_by_name="rita.reviewer",
        shown_sha256="0" * 64,
    )
    ReviewItem.objects.filter(pk=review_item.pk).update(
        decision=action, decided_at=decision.decided_at
    )
    tallies.recount(review_item.campaign_id)
    fields.setdefault("approved_at", timezone.now())
    return Remediation.objects.create(
        item=review_item,
        campaign_id=review_item.campaign_id,
        account=AwsAccount.objects.get(account_id=review_item.account_id),
        decision=decision,
        action=action,
        state=state,
        **fields,
    )


def applied(review_item, **fields):
    """Detached in AWS, with the state before saved and the call's request id."""
    fields.setdefault("before", {"attached": True})
    fields.setdefault("calls", [call("DetachRolePolicy", "req-detach-1", PolicyArn=ADMIN_ARN)])
    return remediation(review_item, State.APPLIED, applied_at=timezone.now(), **fields)


@pytest.fixture
def closed(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(
        state=Campaign.State.CLOSED, closed_at=timezone.now()
    )
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def admin_item(closed):
    """The reviewer's item of AdministratorAccess on the first role of payments-prod."""
    return item(closed, ROLE, "managed_policy")


@pytest.fixture
def failed(admin_item):
    """A remediation that detached the policy, then failed: every answer applies to it."""
    return remediation(
        admin_item,
        State.FAILED,
        before={"attached": True},
        calls=[call("DetachRolePolicy", "req-detach-1", RoleName=ROLE, PolicyArn=ADMIN_ARN)],
        error={
            "operation": "ListAttachedRolePolicies",
            "code": "AccessDenied",
            "message": "not authorized to perform iam:ListAttachedRolePolicies",
            "request_id": "req-denied-2",
        },
    )


@pytest.fixture
def import_only(account):
    AwsAccount.objects.filter(pk=account.pk).update(mode=AwsAccount.Mode.IMPORT)
    return account


@pytest.fixture
def manual(import_only, admin_item):
    return remediation(
        admin_item,
        State.MANUAL,
        note="The account is import-only: run the plan's commands, then confirm with a ticket.",
    )


def sign(campaign, manager):
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.SIGNED_OFF)
    SignOff.objects.create(
        campaign=campaign,
        signed_by=manager,
        signed_by_name=manager.get_username(),
        statement="Reviewed.",
        decisions_sha256="0" * 64,
    )


def list_url(campaign, **query):
    address = reverse("reviews:remediations", args=[campaign.uuid])
    return address + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def detail_url(remediation, action=""):
    name = f"reviews:remediation-{action}" if action else "reviews:remediation"
    return reverse(name, args=[remediation.uuid])


def plan_url(campaign, account_id):
    return reverse("reviews:remediation-plan", args=[campaign.uuid, account_id])


def events(action, remediation):
    return AuditEvent.objects.filter(action=action, object_id=str(remediation.pk))


# Who reaches what --------------------------------------------------------------------------------


def pages(campaign, remediation):
    return {
        "list": list_url(campaign),
        "summary": reverse("reviews:remediations-summary", args=[campaign.uuid]),
        "detail": detail_url(remediation),
        "plan": plan_url(campaign, remediation.account.account_id),
    }


WRITES = ["approve", "rollback", "except", "confirm", "retry"]


def write_url(name, remediation):
    if name == "approve":
        return reverse("reviews:remediations-approve", args=[remediation.campaign.uuid])
    return detail_url(remediation, name)


@pytest.mark.parametrize("page", ["list", "summary", "detail", "plan"])
def test_managers_and_auditors_see_every_remediation_page(client, manager, auditor, manual, page):
    for user in (manager, auditor):
        client.force_login(user)
        assert client.get(pages(manual.campaign, manual)[page]).status_code == 200


@pytest.mark.parametrize("page", ["list", "summary", "detail", "plan"])
def test_a_page_is_not_found_by_whoever_does_not_oversee_campaigns(
    client, outsider, reviewer, manual, page
):
    # The reviewer decided the item: they see the campaign, but not what was done in AWS.
    for user in (outsider, reviewer):
        client.force_login(user)
        assert client.get(pages(manual.campaign, manual)[page]).status_code == 404


def test_a_remediation_that_does_not_exist_is_not_found(client, manager, manual):
    client.force_login(manager)
    manual.delete()
    assert client.get(detail_url(manual)).status_code == 404


@pytest.mark.parametrize("name", WRITES)
def test_an_auditor_may_look_but_every_answer_is_forbidden(client, auditor, failed, name):
    client.force_login(auditor)
    mark = audit_mark()
    response = client.post(write_url(name, failed), {"reason": REASON, "ticket": "CHG-1"})
    assert response.status_code == 403
    assert events_since(mark) == []
    failed.refresh_from_db()
    assert failed.state == State.FAILED
    assert failed.excepted_at is None


@pytest.mark.parametrize("name", WRITES)
def test_an_answer_by_whoever_does_not_oversee_campaigns_is_not_found(
    client, outsider, reviewer, failed, name
):
    for user in (outsider, reviewer):
        client.force_login(user)
        response = client.post(write_url(name, failed), {"reason": REASON, "ticket": "CHG-1"})
        assert response.status_code == 404
    failed.refresh_from_db()
    assert failed.state == State.FAILED


@pytest.mark.parametrize("name", WRITES)
def test_answers_refuse_a_get(client, manager, failed, name):
    client.force_login(manager)
    assert client.get(write_url(name, failed)).status_code == 405


@pytest.mark.parametrize("page", ["list", "summary", "detail", "plan"])
def test_pages_refuse_a_post(client, manager, manual, page):
    client.force_login(manager)
    assert client.post(pages(manual.campaign, manual)[page]).status_code == 405


@pytest.mark.parametrize("name", WRITES)
def test_an_answer_without_the_csrf_token_is_forbidden(manager, failed, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    mark = audit_mark()
    response = client.post(write_url(name, failed), {"reason": REASON, "ticket": "CHG-1"})
    assert response.status_code == 403
    assert events_since(mark) == []


# The list ---------------------------------------------------------------------------------------


def test_the_list_shows_each_remediation_with_its_state_account_and_last_request_id(
    client, manager, closed, failed
):
    inline = item(closed, "payments-prod-role-1", "inline_policy")
    verified = applied(inline, calls=[call("DeleteRolePolicy", "req-inline-7")])
    Remediation.objects.filter(pk=verified.pk).update(state=State.VERIFIED)
    client.force_login(manager)
    response = client.get(list_url(closed))
    assert response.status_code == 200
    page = text(response)
    assert "2 remediations" in page
    assert f"{ROLE} Role AdministratorAccess" in page
    assert "Failed" in page
    assert "Verified" in page
    assert "payments-prod 111122223333" in page
    # A failure's request id is that of the error; otherwise the last call's.
    assert "req-denied-2" in page
    assert "req-inline-7" in page
    assert failed.get_absolute_url() in response.text
    assert 'class="badge remediation-failed"' in response.text
    # Of the two revocations, the verified one is settled and the failed one holds up sign-off.
    assert response.context["unsettled"] == 1
    assert response.context["counts"]["total"] == 2


def test_the_list_filters_by_state_and_account(client, manager, closed, failed, other_account):
    orphan = closed.items.filter(account_id=other_account.account_id).order_by("pk").first()
    remediation(orphan, State.MANUAL)
    client.force_login(manager)
    by_state = client.get(list_url(closed, state=State.MANUAL))
    assert [r.pk for r in by_state.context["page"].object_list] == [
        Remediation.objects.get(item=orphan).pk
    ]
    by_account = client.get(list_url(closed, account=failed.account.account_id))
    assert [r.pk for r in by_account.context["page"].object_list] == [failed.pk]


def test_a_filter_from_htmx_gets_the_rows_alone(client, manager, failed):
    client.force_login(manager)
    response = client.get(list_url(failed.campaign, state=State.FAILED), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="remediation-results">')
    assert "<html" not in response.text


def test_the_list_shows_approve_only_while_some_wait_for_approval(client, manager, admin_item):
    waiting = remediation(admin_item, approved_at=None)
    client.force_login(manager)
    approve = reverse("reviews:remediations-approve", args=[waiting.campaign.uuid])
    assert approve in client.get(list_url(waiting.campaign)).text
    Remediation.objects.filter(pk=waiting.pk).update(approved_at=timezone.now())
    assert approve not in client.get(list_url(waiting.campaign)).text


def test_an_auditor_is_not_offered_approval(client, auditor, admin_item):
    waiting = remediation(admin_item, approved_at=None)
    client.force_login(auditor)
    approve = reverse("reviews:remediations-approve", args=[waiting.campaign.uuid])
    assert approve not in client.get(list_url(waiting.campaign)).text


def test_approving_queues_every_waiting_remediation_and_records_it(
    client, manager, admin_item, django_capture_on_commit_callbacks
):
    waiting = remediation(admin_item, approved_at=None)
    client.force_login(manager)
    with (
        patch(CARRY_OUT) as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("reviews:remediations-approve", args=[waiting.campaign.uuid]), follow=True
        )
    assert response.redirect_chain[-1][0] == list_url(waiting.campaign)
    assert "Approved: 1 remediation is queued" in text(response)
    queued.assert_called_once_with(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.approved_at is not None
    assert waiting.approved_by_name == manager.get_username()
    event = AuditEvent.objects.get(action="remediation.approved")
    assert event.actor == manager
    assert event.after == {"count": 1}


def test_approving_when_nothing_waits_says_so(client, manager, failed):
    client.force_login(manager)
    mark = audit_mark()
    response = client.post(
        reverse("reviews:remediations-approve", args=[failed.campaign.uuid]), follow=True
    )
    assert "No remediation of this campaign waits for approval." in text(response)
    assert events_since(mark) == []


def test_a_signed_off_campaign_approves_nothing(client, manager, admin_item):
    waiting = remediation(admin_item, approved_at=None)
    sign(waiting.campaign, manager)
    client.force_login(manager)
    with patch(CARRY_OUT) as queued:
        response = client.post(
            reverse("reviews:remediations-approve", args=[waiting.campaign.uuid]), follow=True
        )
    assert "The campaign is signed off" in text(response)
    queued.assert_not_called()
    waiting.refresh_from_db()
    assert waiting.approved_at is None


def test_the_list_runs_the_same_queries_for_3_or_12_remediations(
    client, manager, closed, django_assert_num_queries
):
    everything = list(closed.items.order_by("pk"))
    assert len(everything) == 12
    for index, review_item in enumerate(everything[:3]):
        applied(review_item, calls=[call("DetachRolePolicy", f"req-{index}")])
    client.force_login(manager)
    with CaptureQueriesContext(connection) as three:
        assert client.get(list_url(closed)).status_code == 200
    for index, review_item in enumerate(everything[3:]):
        state = [State.FAILED, State.MANUAL, State.SIMULATED][index % 3]
        remediation(review_item, state, calls=[call("DetachRolePolicy", f"req-{index + 3}")])
    with django_assert_num_queries(len(three)):
        response = client.get(list_url(closed))
    assert len(response.context["page"].object_list) == 12


# The plan of an import-only account ------------------------------------------------------------


def test_the_plan_of_an_import_only_account_holds_the_cli_commands(client, manager, manual):
    client.force_login(manager)
    response = client.get(plan_url(manual.campaign, "111122223333"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/x-shellscript")
    assert response["Content-Disposition"] == 'attachment; filename="attest-plan-111122223333.sh"'
    script = response.content.decode()
    assert script.startswith("#!/bin/sh\n")
    assert f"aws iam detach-role-policy --role-name {ROLE} --policy-arn {ADMIN_ARN}\n" in script
    assert str(manual.uuid) in script


def test_the_list_links_the_plan_of_each_import_only_account_with_manual_work(
    client, manager, manual
):
    client.force_login(manager)
    response = client.get(list_url(manual.campaign))
    assert plan_url(manual.campaign, "111122223333") in response.text
    assert "Download the plan for payments-prod (111122223333)" in text(response)


def test_there_is_no_plan_for_an_account_without_manual_remediations(
    client, manager, manual, other_account
):
    client.force_login(manager)
    assert client.get(plan_url(manual.campaign, other_account.account_id)).status_code == 404
    assert client.get(plan_url(manual.campaign, "999999999999")).status_code == 404
    Remediation.objects.filter(pk=manual.pk).update(state=State.APPLIED)
    assert client.get(plan_url(manual.campaign, "111122223333")).status_code == 404


def test_there_is_no_plan_for_a_live_account(client, manager, admin_item):
    # Manual in a live account means the right changed since review: no script for it.
    stopped = remediation(admin_item, State.MANUAL, note="The policy changed.")
    client.force_login(manager)
    assert client.get(plan_url(stopped.campaign, "111122223333")).status_code == 404
    assert (
        plan_url(stopped.campaign, "111122223333")
        not in client.get(list_url(stopped.campaign)).text
    )


# One remediation ---------------------------------------------------------------------------------


def test_the_detail_shows_the_decision_the_calls_the_error_and_the_saved_state(
    client, manager, failed
):
    client.force_login(manager)
    response = client.get(detail_url(failed))
    assert response.status_code == 200
    page = text(response)
    assert f"Revoke: {ROLE}" in page
    assert "by rita.reviewer on" in page
    assert REASON in page
    assert "AccessDenied" in page
    assert "req-denied-2" in page
    assert "not authorized to perform iam:ListAttachedRolePolicies" in page
    assert "DetachRolePolicy" in page
    assert "req-detach-1" in page
    assert "&quot;PolicyArn&quot;: &quot;arn:aws:iam::aws:policy/AdministratorAccess&quot;" in (
        response.text
    )
    assert "&quot;attached&quot;: true" in response.text
    # AdministratorAccess is attached to the two other roles of the account too.
    assert "2 other principals hold the same grant" in page
    assert "payments-prod-role-1" in page


def test_the_detail_marks_the_calls_of_a_dry_run_as_not_made(client, manager, admin_item):
    simulated = remediation(
        admin_item,
        State.SIMULATED,
        dry_run=True,
        before={"attached": True},
        calls=[call("DetachRolePolicy", RoleName=ROLE, PolicyArn=ADMIN_ARN)],
    )
    client.force_login(manager)
    page = text(client.get(detail_url(simulated)))
    assert "not made: dry run" in page
    assert "Dry run Yes: the calls are recorded, not made" in page


def test_the_detail_of_a_reduction_shows_the_replacement_beside_the_policy_reviewed(
    client, manager, closed
):
    inline = item(closed, ROLE, "inline_policy")
    reduced = remediation(
        inline, State.PLANNED, action="reduce", keep=["s3:Get*"], replacement=S3_GET_ONLY
    )
    client.force_login(manager)
    response = client.get(detail_url(reduced))
    assert response.status_code == 200
    assert "The inline policy is rewritten in place" in text(response)
    assert '<span class="removed">-        &quot;s3:List*&quot;</span>' in response.text
    assert response.context["reviewed_count"] == 1


def test_the_detail_of_a_manual_remediation_gives_its_commands(client, manager, manual):
    client.force_login(manager)
    page = text(client.get(detail_url(manual)))
    assert f"aws iam detach-role-policy --role-name {ROLE} --policy-arn {ADMIN_ARN}" in page
    assert "The account is import-only" in page


def test_a_reduction_attest_could_not_compute_has_no_commands(client, manager, manual, closed):
    inline = item(closed, "payments-prod-role-1", "inline_policy")
    hopeless = remediation(inline, State.MANUAL, action="reduce", note="Nothing kept is allowed.")
    client.force_login(manager)
    response = client.get(detail_url(hopeless))
    assert response.context["commands"] is None
    assert "Attest cannot write the commands for this one" in text(response)
    # Nor does it go into the account's plan, which holds the other one alone.
    script = client.get(plan_url(closed, "111122223333")).content.decode()
    assert str(manual.uuid) in script
    assert str(hopeless.uuid) not in script


def answers(response):
    return set(response.context["forms"])


@pytest.mark.parametrize(
    ("state", "fields", "offered"),
    [
        (State.PLANNED, {}, {"except"}),
        (State.APPLIED, {"before": {"attached": True}}, {"rollback", "except"}),
        (State.VERIFIED, {"before": {"attached": True}}, {"rollback"}),
        (State.FAILED, {"before": {"attached": True}}, {"rollback", "except", "retry"}),
        (State.FAILED, {}, {"except", "retry"}),
        (State.SIMULATED, {"before": {"attached": True}, "dry_run": True}, {"except", "retry"}),
        (State.MANUAL, {}, {"except", "confirm"}),
        (State.CANCELLED, {}, set()),
        (State.ROLLED_BACK, {"before": {"attached": True}}, {"except"}),
    ],
)
def test_the_detail_offers_the_answers_that_apply_to_its_state(
    client, manager, admin_item, state, fields, offered
):
    found = remediation(admin_item, state, **fields)
    client.force_login(manager)
    assert answers(client.get(detail_url(found))) == offered


def test_an_excepted_remediation_is_not_offered_another_exception(client, manager, failed):
    Remediation.objects.filter(pk=failed.pk).update(
        excepted_at=timezone.now(), exception_reason=REASON
    )
    client.force_login(manager)
    assert answers(client.get(detail_url(failed))) == {"rollback", "retry"}


def test_a_signed_off_campaign_offers_only_the_rollback(client, manager, failed):
    sign(failed.campaign, manager)
    client.force_login(manager)
    assert answers(client.get(detail_url(failed))) == {"rollback"}


def test_an_auditor_is_offered_no_answer(client, auditor, failed):
    client.force_login(auditor)
    response = client.get(detail_url(failed))
    assert answers(response) == set()
    assert "<textarea" not in response.text


def test_a_dry_run_is_offered_to_run_for_real(client, manager, admin_item):
    simulated = remediation(admin_item, State.SIMULATED, dry_run=True)
    client.force_login(manager)
    assert "Run for real" in text(client.get(detail_url(simulated)))


# Except ------------------------------------------------------------------------------------------


def test_excepting_needs_a_reason_and_changes_nothing_without_one(client, manager, failed):
    client.force_login(manager)
    mark = audit_mark()
    response = client.post(detail_url(failed, "except"), {"reason": "  "})
    assert response.status_code == 200
    assert re.search(
        r'role="alert"><ul class="errorlist"[^>]*><li>An exception needs a reason.', response.text
    )
    # The field is marked invalid and points at its error.
    assert 'aria-invalid="true" aria-describedby="except-reason_error"' in response.text
    assert 'id="except-reason_error"' in response.text
    assert events_since(mark) == []
    failed.refresh_from_db()
    assert failed.excepted_at is None


def test_excepting_records_who_answered_for_the_revocation_and_why(client, manager, failed):
    client.force_login(manager)
    response = client.post(detail_url(failed, "except"), {"reason": REASON}, follow=True)
    assert response.redirect_chain == [(failed.get_absolute_url(), 302)]
    assert "Excepted: sign-off no longer waits for this revocation." in text(response)
    failed.refresh_from_db()
    assert failed.excepted_at is not None
    assert failed.excepted_by_name == manager.get_username()
    assert failed.exception_reason == REASON
    assert failed.settled
    event = events("remediation.excepted", failed).get()
    assert event.actor == manager
    assert event.after == {"state": State.FAILED, "reason": REASON}


def test_a_signed_off_campaign_takes_no_exception(client, manager, failed):
    sign(failed.campaign, manager)
    client.force_login(manager)
    mark = audit_mark()
    response = client.post(detail_url(failed, "except"), {"reason": REASON})
    assert response.status_code == 200
    assert "The campaign is signed off" in text(response)
    assert REASON in response.text  # what was typed stays in the form
    assert events_since(mark) == []
    failed.refresh_from_db()
    assert failed.excepted_at is None


# Roll back ---------------------------------------------------------------------------------------


def test_rolling_back_needs_a_reason(client, manager, failed):
    client.force_login(manager)
    mark = audit_mark()
    with patch(ROLL_BACK) as queued:
        response = client.post(detail_url(failed, "rollback"), {"reason": ""})
    assert "Say why the remediation is rolled back." in text(response)
    assert 'role="alert"' in response.text
    queued.assert_not_called()
    assert events_since(mark) == []
    failed.refresh_from_db()
    assert failed.state == State.FAILED


def test_rolling_back_queues_the_rollback_and_records_the_reason(
    client, manager, failed, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with (
        patch(ROLL_BACK) as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(detail_url(failed, "rollback"), {"reason": REASON}, follow=True)
    assert response.redirect_chain == [(failed.get_absolute_url(), 302)]
    assert "Rollback requested" in text(response)
    queued.assert_called_once_with(failed.pk)
    failed.refresh_from_db()
    assert failed.state == State.ROLLBACK_PLANNED
    assert failed.rollback_reason == REASON
    assert failed.rolled_back_by_name == manager.get_username()
    event = events("remediation.rollback_requested", failed).get()
    assert event.before == {"state": State.FAILED}
    assert event.after == {"state": State.ROLLBACK_PLANNED, "reason": REASON}


def test_a_rollback_stays_possible_after_sign_off(
    client, manager, failed, django_capture_on_commit_callbacks
):
    sign(failed.campaign, manager)
    client.force_login(manager)
    with patch(ROLL_BACK) as queued, django_capture_on_commit_callbacks(execute=True):
        response = client.post(detail_url(failed, "rollback"), {"reason": REASON})
    assert response.status_code == 302
    queued.assert_called_once_with(failed.pk)
    assert events("remediation.rollback_requested", failed).exists()


def test_a_dry_run_has_nothing_to_roll_back_and_keeps_the_reason_typed(client, manager, admin_item):
    simulated = remediation(
        admin_item, State.FAILED, dry_run=True, before={"attached": True}, calls=[]
    )
    client.force_login(manager)
    mark = audit_mark()
    with patch(ROLL_BACK) as queued:
        response = client.post(detail_url(simulated, "rollback"), {"reason": REASON})
    assert "Nothing was changed in AWS: there is nothing to roll back." in text(response)
    assert f">\n{REASON}</textarea>" in response.text
    queued.assert_not_called()
    assert events_since(mark) == []


# Confirm -----------------------------------------------------------------------------------------


def test_confirming_needs_the_ticket(client, manager, manual):
    client.force_login(manager)
    mark = audit_mark()
    response = client.post(detail_url(manual, "confirm"), {"ticket": ""})
    assert response.status_code == 200
    assert "Give the ticket of the change made by hand." in text(response)
    assert 'role="alert"' in response.text
    assert events_since(mark) == []
    manual.refresh_from_db()
    assert manual.state == State.MANUAL


def test_confirming_records_the_ticket_and_waits_for_the_next_import(client, manager, manual):
    client.force_login(manager)
    response = client.post(detail_url(manual, "confirm"), {"ticket": "CHG-4711"}, follow=True)
    assert response.redirect_chain == [(manual.get_absolute_url(), 302)]
    assert "Confirmed under CHG-4711" in text(response)
    manual.refresh_from_db()
    assert manual.state == State.APPLIED
    assert manual.ticket == "CHG-4711"
    assert manual.confirmed_by_name == manager.get_username()
    event = events("remediation.confirmed", manual).get()
    assert event.after == {"state": State.APPLIED, "ticket": "CHG-4711"}


def test_only_a_manual_remediation_is_confirmed(client, manager, failed):
    client.force_login(manager)
    mark = audit_mark()
    response = client.post(detail_url(failed, "confirm"), {"ticket": "CHG-4711"})
    assert "Only a remediation waiting for a manual change can be confirmed." in text(response)
    assert 'value="CHG-4711"' in response.text
    assert events_since(mark) == []


def test_a_signed_off_campaign_takes_no_confirmation(client, manager, manual):
    sign(manual.campaign, manager)
    client.force_login(manager)
    response = client.post(detail_url(manual, "confirm"), {"ticket": "CHG-4711"})
    assert "The campaign is signed off" in text(response)
    manual.refresh_from_db()
    assert manual.state == State.MANUAL


# Retry -------------------------------------------------------------------------------------------


def test_retrying_a_failure_queues_it_again(
    client, manager, failed, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with patch(CARRY_OUT) as queued, django_capture_on_commit_callbacks(execute=True):
        response = client.post(detail_url(failed, "retry"), follow=True)
    assert "Queued: Attest carries it out in AWS again." in text(response)
    queued.assert_called_once_with(failed.pk)
    failed.refresh_from_db()
    assert failed.state == State.PLANNED
    assert failed.error is None
    assert events("remediation.retried", failed).get().before == {"state": State.FAILED}


def test_running_a_dry_run_for_real(
    client, manager, admin_item, django_capture_on_commit_callbacks
):
    simulated = remediation(
        admin_item,
        State.SIMULATED,
        dry_run=True,
        before={"attached": True},
        calls=[call("DetachRolePolicy", RoleName=ROLE, PolicyArn=ADMIN_ARN)],
    )
    client.force_login(manager)
    with patch(CARRY_OUT) as queued, django_capture_on_commit_callbacks(execute=True):
        response = client.post(detail_url(simulated, "retry"), follow=True)
    assert "Queued to run for real" in text(response)
    queued.assert_called_once_with(simulated.pk)
    simulated.refresh_from_db()
    assert (simulated.state, simulated.dry_run, simulated.calls) == (State.PLANNED, False, [])


def test_what_neither_failed_nor_was_a_dry_run_is_not_retried(client, manager, manual):
    client.force_login(manager)
    mark = audit_mark()
    with patch(CARRY_OUT) as queued:
        response = client.post(detail_url(manual, "retry"))
    assert "Only a failed remediation or a dry run can be run again." in text(response)
    queued.assert_not_called()
    assert events_since(mark) == []


# The campaign's pages ----------------------------------------------------------------------------


def test_the_dashboard_of_a_closed_campaign_loads_the_remediation_summary(client, manager, failed):
    client.force_login(manager)
    response = client.get(failed.campaign.get_absolute_url())
    summary = reverse("reviews:remediations-summary", args=[failed.campaign.uuid])
    assert summary in response.text
    assert list_url(failed.campaign) in response.text


def test_the_dashboard_of_an_active_campaign_has_no_remediation_section(client, manager, campaign):
    client.force_login(manager)
    response = client.get(campaign.get_absolute_url())
    assert reverse("reviews:remediations-summary", args=[campaign.uuid]) not in response.text


def test_the_summary_counts_remediations_per_state_and_polls_while_aws_works(
    client, manager, closed, failed
):
    running = item(closed, "payments-prod-role-1", "managed_policy")
    remediation(running, State.RUNNING)
    client.force_login(manager)
    summary = reverse("reviews:remediations-summary", args=[closed.uuid])
    response = client.get(summary)
    page = text(response)
    assert "Failed 1" in page
    assert "Running 1" in page
    assert "2 revocations are neither verified in AWS nor excepted." in page
    assert 'hx-trigger="every 5s"' in response.text
    Remediation.objects.filter(state=State.RUNNING).update(state=State.VERIFIED)
    assert 'hx-trigger="every 5s"' not in client.get(summary).text


def test_the_signoff_page_says_how_many_revocations_are_unsettled(client, manager, failed):
    client.force_login(manager)
    response = client.get(reverse("reviews:signoff", args=[failed.campaign.uuid]))
    assert "1 revocation is neither verified in AWS nor excepted: sign-off waits for it." in (
        text(response)
    )
    assert list_url(failed.campaign) in response.text


def test_a_filter_value_the_page_did_not_offer_is_an_error_not_a_crash(client, manager, failed):
    client.force_login(manager)
    response = client.get(list_url(failed.campaign, state="bogus"))
    assert response.status_code == 200
    assert "Select a valid choice." in text(response)

"""The inventory's pages: who sees what, what they show, and that they stay at a fixed number of
queries however many rows they list."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import AwsAccount, CollectionRun, Principal, Right
from tests import factories


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def _principal(account, name):
    return Principal.objects.current().get(account=account, name=name)


# Sign-in -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        reverse("inventory:accounts"),
        reverse("inventory:principals"),
        reverse("inventory:account", args=["111122223333"]),
    ],
)
def test_every_page_asks_an_anonymous_visitor_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_user_signs_in_and_lands_on_their_home_page(client, manager):
    response = client.post(
        reverse("login"),
        {"username": manager.username, "password": "correct horse battery staple"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    assert "max.manager" in response.text


def test_signing_out_takes_a_post(client, manager):
    client.force_login(manager)
    assert client.get(reverse("logout")).status_code == 405
    client.post(reverse("logout"))
    assert client.get(reverse("inventory:accounts")).status_code == 302


# Accounts ----------------------------------------------------------------------------------------


def test_manager_sees_every_account_with_its_last_run(client, manager, account, other_account):
    client.force_login(manager)
    response = client.get(reverse("inventory:accounts"))
    assert response.status_code == 200
    assert "payments-prod" in response.text
    assert "marketing-prod" in response.text
    assert "Complete" in response.text
    assert "Collect now" in response.text


def test_reviewer_sees_only_the_accounts_they_own(client, reviewer, account, other_account):
    client.force_login(reviewer)
    response = client.get(reverse("inventory:accounts"))
    assert "payments-prod" in response.text
    assert "marketing-prod" not in response.text
    assert "Collect now" not in response.text


def test_outsider_sees_no_account(client, outsider, account):
    client.force_login(outsider)
    response = client.get(reverse("inventory:accounts"))
    assert response.status_code == 200
    assert "payments-prod" not in response.text
    assert "No AWS account is visible to you." in response.text


def test_accounts_page_refuses_post(client, manager):
    client.force_login(manager)
    assert client.post(reverse("inventory:accounts")).status_code == 405


def test_accounts_page_polls_only_while_a_run_is_running(client, manager, account):
    client.force_login(manager)
    assert "hx-trigger" not in client.get(reverse("inventory:accounts")).text
    CollectionRun.objects.create(
        account=account,
        source="live",
        phase="Reading Access Advisor",
        progress_total=10,
        progress_done=4,
    )
    response = client.get(reverse("inventory:accounts"))
    assert 'hx-trigger="every 2s"' in response.text
    assert "Reading Access Advisor" in response.text
    assert 'value="4"' in response.text


def test_accounts_page_answers_htmx_with_the_rows_alone(client, manager, account):
    client.force_login(manager)
    response = client.get(reverse("inventory:accounts"), headers={"HX-Request": "true"})
    assert response.text.strip().startswith("<tbody")
    assert "<html" not in response.text


def test_accounts_page_runs_the_same_queries_for_3_or_6_accounts(client, manager):
    client.force_login(manager)
    for i in range(3):
        factories.collected_account(f"10000000000{i}", f"a{i}", principals=1)
    three = _queries(client, reverse("inventory:accounts"))
    for i in range(3, 6):
        factories.collected_account(f"10000000000{i}", f"a{i}", principals=1)
    assert _queries(client, reverse("inventory:accounts")) == three


def test_account_page_shows_principal_counts_and_runs(client, auditor, account):
    client.force_login(auditor)
    response = client.get(reverse("inventory:account", args=[account.account_id]))
    assert response.status_code == 200
    assert "3</strong> Roles" in response.text.replace("\n", "")
    assert "current" in response.text


def test_account_page_of_an_account_out_of_reach_is_404(client, reviewer, other_account):
    client.force_login(reviewer)
    url = reverse("inventory:account", args=[other_account.account_id])
    assert client.get(url).status_code == 404


def test_account_page_is_404_for_an_outsider(client, outsider, account):
    client.force_login(outsider)
    assert client.get(reverse("inventory:account", args=[account.account_id])).status_code == 404


def test_account_page_refuses_post(client, manager, account):
    client.force_login(manager)
    url = reverse("inventory:account", args=[account.account_id])
    assert client.post(url).status_code == 405


# Starting a collection ---------------------------------------------------------------------------


def test_manager_starts_a_collection_and_sees_its_run(
    client, manager, account, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(reverse("inventory:collect", args=[account.account_id]))
    run = CollectionRun.objects.get(account=account, status="running")
    assert response.status_code == 302
    assert response["Location"] == reverse("inventory:run", args=[run.uuid])
    assert run.requested_by_name == "max.manager"
    assert len(queued) == 1


def test_starting_a_collection_twice_keeps_one_run(client, manager, account):
    client.force_login(manager)
    url = reverse("inventory:collect", args=[account.account_id])
    client.post(url)
    client.post(url)
    assert CollectionRun.objects.filter(account=account, status="running").count() == 1


def test_auditor_cannot_start_a_collection(client, auditor, account):
    client.force_login(auditor)
    response = client.post(reverse("inventory:collect", args=[account.account_id]))
    assert response.status_code == 403
    assert not CollectionRun.objects.filter(account=account, status="running").exists()


def test_owner_without_the_collect_permission_cannot_start_one(client, reviewer, account):
    client.force_login(reviewer)
    assert client.post(reverse("inventory:collect", args=[account.account_id])).status_code == 403


def test_outsider_starting_a_collection_gets_404(client, outsider, account):
    client.force_login(outsider)
    assert client.post(reverse("inventory:collect", args=[account.account_id])).status_code == 404


def test_starting_a_collection_by_get_is_refused(client, manager, account):
    client.force_login(manager)
    response = client.get(reverse("inventory:collect", args=[account.account_id]))
    assert response.status_code == 405
    assert not CollectionRun.objects.filter(account=account, status="running").exists()


def test_an_import_only_account_is_not_collected_live(client, manager, account):
    AwsAccount.objects.filter(pk=account.pk).update(mode=AwsAccount.Mode.IMPORT)
    client.force_login(manager)
    response = client.post(reverse("inventory:collect", args=[account.account_id]), follow=True)
    assert "is not collected live" in response.text
    assert not CollectionRun.objects.filter(account=account, status="running").exists()


def test_manager_starts_every_live_account_at_once(client, manager, account, other_account):
    client.force_login(manager)
    response = client.post(reverse("inventory:collect-all"))
    assert response.status_code == 302
    assert CollectionRun.objects.filter(status="running").count() == 2


def test_auditor_cannot_start_every_account(client, auditor, account):
    client.force_login(auditor)
    assert client.post(reverse("inventory:collect-all")).status_code == 403


def test_starting_every_account_by_get_is_refused(client, manager):
    client.force_login(manager)
    assert client.get(reverse("inventory:collect-all")).status_code == 405


# Runs --------------------------------------------------------------------------------------------


def test_run_page_shows_what_the_run_did(client, auditor, account):
    run = account.current_run
    run.api_calls = {"GetAccountAuthorizationDetails": 2, "GetServiceLastAccessedDetails": 7}
    run.errors = [
        {
            "arn": "arn:aws:iam::111122223333:role/gone",
            "code": "NoSuchEntity",
            "message": "The role cannot be found.",
        }
    ]
    run.save()
    client.force_login(auditor)
    response = client.get(reverse("inventory:run", args=[run.uuid]))
    assert response.status_code == 200
    assert "GetServiceLastAccessedDetails" in response.text
    assert "The role cannot be found." in response.text
    assert "hx-trigger" not in response.text


def test_a_running_run_page_polls_its_status_alone(client, manager, account):
    run = CollectionRun.objects.create(account=account, source="live", phase="Saving")
    client.force_login(manager)
    page = client.get(reverse("inventory:run", args=[run.uuid]))
    assert 'hx-trigger="every 2s"' in page.text
    partial = client.get(reverse("inventory:run", args=[run.uuid]), headers={"HX-Request": "true"})
    assert partial.text.strip().startswith('<div id="run-status"')
    assert "Saving" in partial.text


def test_run_page_is_404_outside_reach(client, reviewer, other_account):
    client.force_login(reviewer)
    url = reverse("inventory:run", args=[other_account.current_run.uuid])
    assert client.get(url).status_code == 404


def test_run_page_refuses_post(client, manager, account):
    client.force_login(manager)
    url = reverse("inventory:run", args=[account.current_run.uuid])
    assert client.post(url).status_code == 405


# Principals --------------------------------------------------------------------------------------


def test_principals_list_shows_every_visible_principal(client, manager, account, other_account):
    client.force_login(manager)
    response = client.get(reverse("inventory:principals"))
    assert response.status_code == 200
    assert "6 principals" in response.text
    assert "payments-prod-role-0" in response.text


def test_principals_list_filters_by_account_type_and_name(client, manager, account, other_account):
    client.force_login(manager)
    url = reverse("inventory:principals")
    assert "3 principals" in client.get(url, {"account": "111122223333"}).text
    assert "0 principals" in client.get(url, {"kind": "user"}).text
    response = client.get(url, {"q": "marketing-prod-role-1"})
    assert "1 principal" in response.text
    assert "marketing-prod-role-1" in response.text


def test_principals_list_finds_principals_unused_for_n_days(client, manager, account):
    stale = _principal(account, "payments-prod-role-0")
    stale.last_used_at = factories.days_ago(200)
    stale.save()
    never = _principal(account, "payments-prod-role-1")
    never.last_used_at = None
    never.save()
    client.force_login(manager)
    response = client.get(reverse("inventory:principals"), {"unused_days": 90})
    assert "2 principals" in response.text
    assert "payments-prod-role-2" not in response.text
    assert "never used" in response.text


def test_a_principal_younger_than_the_window_is_not_called_unused(client, manager, account):
    young = _principal(account, "payments-prod-role-0")
    young.created_at = factories.days_ago(10)
    young.last_used_at = None
    young.save()
    client.force_login(manager)
    response = client.get(reverse("inventory:principals"), {"unused_days": 90})
    assert "0 principals" in response.text


def test_a_bad_filter_value_is_explained_not_an_error(client, manager, account):
    client.force_login(manager)
    response = client.get(reverse("inventory:principals"), {"unused_days": "soon", "kind": "alien"})
    assert response.status_code == 200
    assert "Enter a number." in response.text
    assert "Select a valid choice." in response.text


def test_reviewer_lists_only_principals_of_their_accounts(client, reviewer, account, other_account):
    client.force_login(reviewer)
    response = client.get(reverse("inventory:principals"))
    assert "3 principals" in response.text
    assert "marketing-prod" not in response.text
    response = client.get(reverse("inventory:principals"), {"account": "444455556666"})
    assert "Select a valid choice." in response.text


def test_outsider_lists_no_principal(client, outsider, account):
    client.force_login(outsider)
    assert "0 principals" in client.get(reverse("inventory:principals")).text


def test_removed_principals_leave_the_list(client, manager, account):
    gone = _principal(account, "payments-prod-role-0")
    gone.removed_run = account.current_run
    gone.save()
    client.force_login(manager)
    assert "2 principals" in client.get(reverse("inventory:principals")).text


def test_principals_list_is_paginated(client, manager, account, settings):
    for i in range(52):
        factories.PrincipalFactory(account=account, name=f"extra-{i:02d}")
    client.force_login(manager)
    first = client.get(reverse("inventory:principals"), {"kind": "role"})
    assert "Page 1 of 2" in first.text
    second = client.get(reverse("inventory:principals"), {"kind": "role", "page": 2})
    assert "extra-51" in second.text or "payments-prod-role-2" in second.text
    assert "Page 2 of 2" in second.text


def test_principals_list_refuses_post(client, manager):
    client.force_login(manager)
    assert client.post(reverse("inventory:principals")).status_code == 405


def test_principals_list_runs_the_same_queries_for_3_or_30_principals(client, manager, account):
    client.force_login(manager)
    url = reverse("inventory:principals")
    three = _queries(client, url)
    for i in range(27):
        factories.PrincipalFactory(account=account, name=f"more-{i}")
    assert _queries(client, url) == three


def test_principal_page_shows_rights_documents_and_usage(client, auditor, account):
    principal = _principal(account, "payments-prod-role-0")
    principal.tags = {"owner": "rita@example.com"}
    principal.save()
    client.force_login(auditor)
    response = client.get(principal.get_absolute_url())
    assert response.status_code == 200
    text = response.text
    assert "AdministratorAccess" in text
    assert "read-s3" in text
    assert "s3:Get*" in text
    assert "Amazon S3" in text
    assert "3 days ago" in text
    assert "GetObject" in text
    assert "rita@example.com" in text


def test_principal_page_shows_a_group_and_its_members(client, manager, account):
    run = account.current_run
    group = factories.PrincipalFactory(account=account, kind="group", name="Developers")
    user = factories.PrincipalFactory(account=account, kind="user", name="ken.sato")
    Right.objects.create(
        principal=user, kind="group_membership", key="Developers", group=group, first_seen_run=run
    )
    client.force_login(manager)
    assert "ken.sato" in client.get(group.get_absolute_url()).text
    assert group.get_absolute_url() in client.get(user.get_absolute_url()).text


def test_a_removed_principal_page_says_so(client, manager, account):
    principal = _principal(account, "payments-prod-role-0")
    principal.removed_run = account.current_run
    principal.save()
    client.force_login(manager)
    response = client.get(principal.get_absolute_url())
    assert "AWS no longer shows this principal" in response.text


def test_a_removed_principal_shows_what_it_held_when_last_seen(client, manager, account):
    principal = _principal(account, "payments-prod-role-0")
    earlier = factories.CollectionRunFactory(account=account)
    gone = factories.CollectionRunFactory(account=account)
    principal.rights.filter(kind="inline_policy").update(removed_run=earlier)
    principal.rights.filter(kind="managed_policy").update(removed_run=gone)
    principal.service_usage.update(removed_run=gone)
    principal.removed_run = gone
    principal.save()
    client.force_login(manager)
    text = client.get(principal.get_absolute_url()).text
    assert "AdministratorAccess" in text
    assert "read-s3" not in text
    assert "Amazon S3" in text


def test_principal_page_is_404_outside_reach(client, reviewer, outsider, other_account):
    principal = other_account.principals.first()
    client.force_login(reviewer)
    assert client.get(principal.get_absolute_url()).status_code == 404
    client.force_login(outsider)
    assert client.get(principal.get_absolute_url()).status_code == 404


def test_principal_page_refuses_post(client, manager, account):
    client.force_login(manager)
    principal = account.principals.first()
    assert client.post(principal.get_absolute_url()).status_code == 405


def test_principal_page_runs_the_same_queries_for_3_or_12_rights(client, manager, account):
    principal = _principal(account, "payments-prod-role-0")
    client.force_login(manager)
    few = _queries(client, principal.get_absolute_url())
    run = account.current_run
    for i in range(9):
        policy = factories.ManagedPolicyFactory(account=account, name=f"extra-{i}")
        policy.versions.create(
            version_id="v1",
            is_default=True,
            first_seen_run=run,
            document=factories.S3_READ_DOCUMENT,
        )
        Right.objects.create(
            principal=principal,
            kind="managed_policy",
            key=policy.arn,
            policy=policy,
            first_seen_run=run,
        )
        principal.service_usage.create(service_namespace=f"svc{i}", first_seen_run=run)
    assert _queries(client, principal.get_absolute_url()) == few

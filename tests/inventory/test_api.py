"""The inventory's REST API: accounts, runs, principals, and starting a collection, each in the
reach the pages give."""

import pytest

from audit.models import AuditEvent
from inventory.models import AwsAccount, CollectionRun
from tests import factories


def _account_ids(response) -> list[str]:
    return [row["account_id"] for row in response.json()["results"]]


def test_accounts_are_scoped_like_the_pages(
    api, account, other_account, manager, auditor, reviewer, outsider
):
    both = ["444455556666", "111122223333"]  # marketing-prod, payments-prod: by name
    assert _account_ids(api(manager).get("/api/accounts/")) == both
    assert _account_ids(api(auditor).get("/api/accounts/")) == both
    assert _account_ids(api(reviewer).get("/api/accounts/")) == ["111122223333"]
    assert _account_ids(api(outsider).get("/api/accounts/")) == []
    assert api(reviewer).get("/api/accounts/444455556666/").status_code == 404
    body = api(reviewer).get("/api/accounts/111122223333/").json()
    assert body["owner"] == "rita.reviewer"
    assert body["current_run"] == str(account.current_run.uuid)


def test_an_accounts_runs_newest_first(api, account, manager):
    older = account.current_run
    newer = factories.CollectionRunFactory(account=account, status=CollectionRun.Status.FAILED)
    rows = api(manager).get("/api/accounts/111122223333/runs/").json()["results"]
    assert [row["id"] for row in rows] == [str(newer.uuid), str(older.uuid)]
    one = api(manager).get(f"/api/runs/{newer.uuid}/").json()
    assert (one["status"], one["account"]) == ("failed", "111122223333")


def test_a_manager_starts_a_collection_and_polls_its_run(api, account, manager):
    response = api(manager).post("/api/accounts/111122223333/collect/")
    assert response.status_code == 202
    run = CollectionRun.objects.get(uuid=response.json()["id"])
    assert run.requested_by == manager
    assert AuditEvent.objects.filter(action="collection.started").count() == 1
    assert api(manager).get(f"/api/runs/{run.uuid}/").status_code == 200


def test_a_collection_already_running_is_the_one_answered(api, account, manager):
    running = factories.CollectionRunFactory(account=account, status=CollectionRun.Status.RUNNING)
    response = api(manager).post("/api/accounts/111122223333/collect/")
    assert response.status_code == 202
    assert response.json()["id"] == str(running.uuid)


def test_an_import_only_account_is_not_collected(api, account, manager):
    AwsAccount.objects.filter(pk=account.pk).update(mode=AwsAccount.Mode.IMPORT)
    response = api(manager).post("/api/accounts/111122223333/collect/")
    assert response.status_code == 409
    assert "is not collected live" in response.json()["detail"]
    assert CollectionRun.objects.count() == 1


def test_only_roles_allowed_to_collect_start_one(api, account, auditor, reviewer, outsider):
    # The reviewer owns the account and sees it; starting a collection is not theirs.
    assert api(reviewer).post("/api/accounts/111122223333/collect/").status_code == 403
    assert api(auditor).post("/api/accounts/111122223333/collect/").status_code == 403
    assert api(outsider).post("/api/accounts/111122223333/collect/").status_code == 404
    assert api(auditor).get("/api/accounts/111122223333/collect/").status_code == 405
    assert CollectionRun.objects.count() == 1


def test_principals_list_and_filter(api, account, other_account, manager, reviewer):
    client = api(manager)
    rows = client.get("/api/principals/", {"account": "111122223333"}).json()["results"]
    assert [row["name"] for row in rows] == [f"payments-prod-role-{i}" for i in range(3)]
    rows = client.get("/api/principals/", {"name": "marketing"}).json()["results"]
    assert {row["account"] for row in rows} == {"444455556666"}
    assert client.get("/api/principals/", {"kind": "alien"}).status_code == 400
    # A reviewer sees the principals of the account they own only.
    rows = api(reviewer).get("/api/principals/").json()["results"]
    assert {row["account"] for row in rows} == {"111122223333"}


def test_one_principal_comes_with_its_rights_and_usage(api, account, manager, outsider):
    principal = account.principals.order_by("name").first()
    body = api(manager).get(f"/api/principals/{principal.uuid}/").json()
    assert {(right["kind"], right["key"]) for right in body["rights"]} == {
        ("managed_policy", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ("inline_policy", "read-s3"),
    }
    (s3,) = [service for service in body["usage"] if service["service_namespace"] == "s3"]
    assert s3["last_authenticated_at"] is not None
    assert api(outsider).get(f"/api/principals/{principal.uuid}/").status_code == 404


@pytest.mark.parametrize("url", ["/api/accounts/", "/api/principals/", "/api/runs/"])
def test_list_queries_stay_constant_however_many_rows(api, api_queries, manager, url):
    factories.collected_account(account_id="111122223333", name="one")
    client = api(manager)
    before = api_queries(client, url)
    factories.collected_account(account_id="444455556666", name="two", principals=6)
    factories.collected_account(account_id="777788889999", name="three", principals=6)
    assert api_queries(client, url) == before

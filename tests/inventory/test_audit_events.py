"""What the inventory writes to the audit trail: each change with its event, in one transaction."""

import pytest
from django.contrib.admin.sites import site
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import reverse

from audit import trail
from audit.models import AuditEvent
from inventory.models import AwsAccount, CollectionRun
from inventory.store import fail_run
from tests.inventory import aws_files


def _actions():
    return list(
        AuditEvent.objects.exclude(action__startswith="user.")
        .exclude(action__startswith="auth.")
        .order_by("id")
        .values_list("action", flat=True)
    )


def _import(tmp_path, *files):
    paths = aws_files.write_all(tmp_path, aws_files.organization())
    call_command(
        "import_aws", "--account-id", aws_files.ACCOUNT_ID, "--account-name", "payments", *paths
    )


def test_an_import_records_the_account_the_start_and_the_completed_run(db, tmp_path):
    _import(tmp_path)
    assert _actions() == ["account.added", "collection.started", "collection.completed"]
    run = CollectionRun.objects.get()
    completed = AuditEvent.objects.get(action="collection.completed")
    assert completed.object_id == str(run.pk)
    assert completed.after["raw_sha256"] == run.raw_sha256
    assert completed.after["counts"]["users"] == 2
    assert trail.verify()[2] is None


def test_a_refused_import_records_nothing(db, tmp_path):
    bad = tmp_path / "details.json"
    bad.write_text('{"UserDetailList": [')
    with pytest.raises(CommandError):
        call_command("import_aws", "--account-id", aws_files.ACCOUNT_ID, str(bad))
    assert _actions() == []


def test_a_failed_run_records_its_errors(account):
    run = CollectionRun.objects.create(account=account, source="live")
    fail_run(run, [{"code": "AccessDenied", "message": "not authorized"}])
    event = AuditEvent.objects.get(action="collection.failed")
    assert event.after["errors"] == [{"code": "AccessDenied", "message": "not authorized"}]


def test_starting_a_collection_records_who_started_it(client, manager, account):
    client.force_login(manager)
    client.post(reverse("inventory:collect", args=[account.account_id]))
    event = AuditEvent.objects.get(action="collection.started")
    assert event.actor_name == "max.manager"
    assert event.after == {"account": account.account_id}


def test_add_account_records_what_changed_and_nothing_when_nothing_did(db):
    args = ["add_account", "--account-id=111122223333", "--name=payments"]
    call_command(*args)
    call_command(*args)
    call_command(*args[:2], "--name=payments-prod")
    events = AuditEvent.objects.filter(action__startswith="account.").order_by("id")
    assert [e.action for e in events] == ["account.added", "account.changed"]
    changed = events[1]
    assert (changed.before["name"], changed.after["name"]) == ("payments", "payments-prod")
    assert changed.actor_name == "command line"


def test_an_account_changed_in_the_admin_is_recorded_with_the_administrator(db, administrator):
    account = AwsAccount.objects.create(account_id="111122223333", name="payments")
    request = RequestFactory().post("/")
    request.user = administrator
    account.name = "payments-prod"
    site._registry[AwsAccount].save_model(request, account, form=None, change=True)
    event = AuditEvent.objects.get(action="account.changed")
    assert event.actor_name == "ada.admin"
    assert event.after["name"] == "payments-prod"

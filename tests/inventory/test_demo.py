"""`manage.py load_demo`: a demo organization through the import path, and users to sign in as."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from config import roles
from inventory.models import AwsAccount, CollectionRun, Principal, Right, ServiceUsage

DEMO_USERS = {
    "reviewer": roles.REVIEWER,
    "manager": roles.MANAGER,
    "auditor": roles.AUDITOR,
    "admin": roles.ADMINISTRATOR,
}


def load_demo(*args) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo loaded once for this module, without DEMO_PASSWORD; its output.

    Loading takes seconds, so the module shares one load inside a transaction that is rolled
    back after its last test; each test's own changes are rolled back to it by `db`.
    """
    var = tmp_path_factory.mktemp("var")
    # Hashed as tests/conftest.py has each test hash, so the tests can check the passwords.
    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with (
        django_db_blocker.unblock(),
        override_settings(VAR_DIR=var, DEMO_PASSWORD="", PASSWORD_HASHERS=hashers),
        transaction.atomic(),
    ):
        yield load_demo()
        transaction.set_rollback(True)


def printed_passwords(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in DEMO_USERS:
            found[words[0]] = words[1]
    return found


def current(kind=None):
    principals = Principal.objects.current()
    return principals.filter(kind=kind) if kind else principals


# The organization -------------------------------------------------------------------------------


def test_load_demo_imports_three_accounts_and_150_principals_through_the_import_path(demo, db):
    accounts = AwsAccount.objects.all()
    assert accounts.count() >= 3
    assert current().count() >= 150
    for account in accounts:
        run = account.current_run
        assert account.mode == AwsAccount.Mode.IMPORT
        assert (run.source, run.status) == (
            CollectionRun.Source.IMPORT,
            CollectionRun.Status.COMPLETE,
        )
        assert run.raw_sha256 == account.current_run.archive.sha256
        assert {source["kind"] for source in run.sources} == {
            "authorization_details",
            "credential_report",
            "access_advisor",
        }
        assert f"Imported {account.name} ({account.account_id})" in demo
        assert current().filter(account=account).count() == sum(
            run.counts[kind] for kind in ("users", "groups", "roles")
        )
    # The demo shows both forms the importer takes: one account's answer arrives in pages.
    assert (
        max(
            sum(s["kind"] == "authorization_details" for s in a.current_run.sources)
            for a in accounts
        )
        > 1
    )
    assert ServiceUsage.objects.current().exists()


def test_each_demo_account_has_an_owner_who_reviews_it(demo, db):
    owners = dict(AwsAccount.objects.values_list("name", "owner__username"))
    assert owners == {
        "acme-production": "reviewer",
        "acme-staging": "reviewer",
        "acme-sandbox": "manager",
    }


def test_the_demo_has_an_administrator_role_that_was_never_used(demo, db):
    never_used = current("role").filter(
        last_used_at__isnull=True,
        rights__policy__arn="arn:aws:iam::aws:policy/AdministratorAccess",
        rights__removed_run__isnull=True,
    )
    assert never_used.exists()
    for role in never_used:
        assert not role.service_usage.filter(last_authenticated_at__isnull=False).exists()


def test_the_demo_has_a_user_with_an_active_access_key_about_400_days_old(demo, db):
    now = timezone.now()
    keys = Right.objects.current().filter(
        kind=Right.Kind.ACCESS_KEY,
        status="Active",
        principal__kind=Principal.Kind.USER,
        created_at__range=(now - timedelta(days=402), now - timedelta(days=398)),
    )
    assert keys.exists()


def test_the_demo_has_a_console_user_without_mfa(demo, db):
    passwords = Right.objects.current().filter(kind=Right.Kind.CONSOLE_PASSWORD)
    assert passwords.filter(mfa_active=False).exists()
    assert passwords.filter(mfa_active=True).exists()


def test_the_demo_has_service_roles_used_in_the_last_day(demo, db):
    yesterday = timezone.now() - timedelta(days=1)
    used = [
        role
        for role in current("role").filter(last_used_at__gte=yesterday)
        if any("Service" in s.get("Principal", {}) for s in role.trust_policy["Statement"])
    ]
    assert len(used) >= 3
    assert (
        ServiceUsage.objects.current()
        .filter(principal__in=[role.pk for role in used], last_authenticated_at__gte=yesterday)
        .exists()
    )


# Users ------------------------------------------------------------------------------------------


def test_the_demo_users_hold_their_roles_and_only_admin_is_superuser(demo, db):
    for username, role in DEMO_USERS.items():
        user = get_user_model().objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert user.is_superuser is (username == "admin")
        assert user.is_staff is (username == "admin")


def test_without_demo_password_each_user_gets_a_random_printed_password(demo, db):
    passwords = printed_passwords(demo)
    assert set(passwords) == set(DEMO_USERS)
    assert len(set(passwords.values())) == len(DEMO_USERS)
    for username, password in passwords.items():
        assert get_user_model().objects.get(username=username).check_password(password)


def test_with_demo_password_every_demo_user_signs_in_with_it(demo, db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEMO_PASSWORD = "correct-horse-demo"
    output = load_demo()

    assert "correct-horse-demo" not in output
    assert printed_passwords(output) == dict.fromkeys(DEMO_USERS, "(DEMO_PASSWORD)")
    for username, random_password in printed_passwords(demo).items():
        user = get_user_model().objects.get(username=username)
        assert user.check_password("correct-horse-demo")
        assert not user.check_password(random_password)


def test_loading_the_demo_again_keeps_what_is_loaded(demo, db, settings, tmp_path):
    runs = CollectionRun.objects.count()
    settings.VAR_DIR = tmp_path
    output = load_demo()
    assert "acme-production is already loaded" in output
    assert CollectionRun.objects.count() == runs
    assert "Sign in at http://127.0.0.1:8000" in output


def test_reloading_the_demo_gives_each_account_a_second_complete_run(demo, db, settings, tmp_path):
    first_runs = dict(AwsAccount.objects.values_list("account_id", "current_run"))
    principals = current().count()
    settings.VAR_DIR = tmp_path
    load_demo("--reload")

    assert dict(AwsAccount.objects.values_list("account_id", "current_run")).keys() == (
        first_runs.keys()
    )
    for account in AwsAccount.objects.all():
        runs = account.runs.order_by("pk")
        assert [(r.pk, r.status) for r in runs] == [
            (first_runs[account.account_id], CollectionRun.Status.COMPLETE),
            (account.current_run_id, CollectionRun.Status.COMPLETE),
        ]
    assert current().count() == principals
    assert get_user_model().objects.filter(username__in=DEMO_USERS).count() == len(DEMO_USERS)

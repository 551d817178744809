"""The audit trail's page, and what signing in and out writes to it."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit import trail
from audit.models import AuditEvent


def test_sign_in_sign_out_and_failures_are_recorded_with_the_source(client, reviewer):
    client.post(reverse("login"), {"username": "rita.reviewer", "password": "wrong"})
    client.post(
        reverse("login"),
        {"username": "rita.reviewer", "password": "correct horse battery staple"},
        REMOTE_ADDR="203.0.113.9",
        headers={"X-Request-ID": "req-42"},
    )
    client.post(reverse("logout"))
    actions = list(
        AuditEvent.objects.filter(action__startswith="auth.")
        .order_by("id")
        .values_list("action", "actor_name")
    )
    assert actions == [
        ("auth.login_failed", "rita.reviewer"),
        ("auth.login", "rita.reviewer"),
        ("auth.logout", "rita.reviewer"),
    ]
    login = AuditEvent.objects.get(action="auth.login")
    assert (login.source_ip, login.request_id) == ("203.0.113.9", "req-42")
    assert trail.verify()[2] is None


def test_auditor_browses_and_filters_the_trail(client, auditor):
    from django.db import transaction

    with transaction.atomic():
        trail.record("collection.completed", actor_name="system", object_repr="payments-prod")
        trail.record("account.added", actor_name="ada.admin", object_repr="marketing-prod")
    client.force_login(auditor)
    response = client.get(reverse("audit:events"), {"action": "collection"})
    assert response.status_code == 200
    assert "payments-prod" in response.text
    assert "marketing-prod" not in response.text


def test_looking_at_the_trail_is_recorded(client, manager):
    client.force_login(manager)
    client.get(reverse("audit:events"), {"actor": "someone"})
    viewed = AuditEvent.objects.get(action="audit.viewed")
    assert viewed.actor_name == "max.manager"
    assert viewed.after == {"filters": {"actor": "someone"}}


def test_reviewer_cannot_read_the_trail(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("audit:events")).status_code == 403


def test_outsider_cannot_read_the_trail(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("audit:events")).status_code == 403


def test_the_trail_page_refuses_post(client, auditor):
    client.force_login(auditor)
    assert client.post(reverse("audit:events")).status_code == 405


def test_the_trail_page_runs_the_same_queries_for_3_or_30_events(client, auditor):
    from django.db import transaction

    client.force_login(auditor)

    def count():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("audit:events")).status_code == 200
        return len(captured)

    with transaction.atomic():
        for i in range(3):
            trail.record(f"test.{i}", after={"i": i})
    three = count()
    with transaction.atomic():
        for i in range(27):
            trail.record(f"more.{i}")
    assert count() == three

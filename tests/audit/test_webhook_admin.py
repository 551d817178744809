"""Administrators add webhooks in the admin: only http(s) addresses, only known events, and every
change of a webhook goes into the audit trail."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent, Webhook


def _add(admin_client, **fields):
    data = {"name": "ticketing", "url": "https://tickets.example.com/attest", "active": "on"}
    data.update(fields)
    return admin_client.post(reverse("admin:audit_webhook_add"), data)


def test_an_administrator_adds_a_webhook_and_it_is_recorded(admin_client):
    response = _add(admin_client, events=["campaign.launched", "remediation.failed"])
    assert response.status_code == 302
    hook = Webhook.objects.get()
    assert hook.events == ["campaign.launched", "remediation.failed"]
    assert len(hook.secret) >= 40
    event = AuditEvent.objects.get(action="webhook.created")
    assert event.after["url"] == "https://tickets.example.com/attest"
    assert hook.secret not in str(event.after)


def test_only_http_addresses_and_known_events_are_taken(admin_client):
    response = _add(admin_client, url="ftp://files.example.com/x", events=["campaign.launched"])
    assert response.status_code == 200
    assert "url" in response.context["adminform"].form.errors
    response = _add(admin_client, events=["campaign.deleted"])
    assert response.status_code == 200
    assert "events" in response.context["adminform"].form.errors
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("model", ["audit_webhookdelivery", "inventory_collectionrun"])
def test_rows_attest_writes_are_shown_in_the_admin_and_never_added(admin_client, account, model):
    assert admin_client.get(reverse(f"admin:{model}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"admin:{model}_add")).status_code == 403

"""API tokens: made once and shown once, kept only as a hash, revocable, and acting with their
user's roles."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from config import models
from config.models import ApiToken

ACCOUNTS = "/api/accounts/"


def _create(username, *args) -> str:
    out = io.StringIO()
    call_command("create_api_token", username, *args, stdout=out)
    return out.getvalue().strip()


def _client(key=None, scheme="Token") -> APIClient:
    client = APIClient()
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


def test_the_command_prints_a_key_that_signs_in_and_keeps_only_its_hash(manager, account):
    key = _create("max.manager", "--name", "ticketing")

    token = ApiToken.objects.get()
    assert token.user == manager
    assert token.name == "ticketing"
    assert key not in (token.digest, token.prefix)
    assert key.startswith(token.prefix)
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    response = _client(key).get(ACCOUNTS)
    assert response.status_code == 200
    assert [row["account_id"] for row in response.json()["results"]] == ["111122223333"]
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.after == {"user": "max.manager", "name": "ticketing", "prefix": token.prefix}
    assert key not in str(event.after)


def test_the_command_refuses_an_unknown_or_deactivated_user(manager):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        _create("nobody")
    manager.is_active = False
    manager.save()
    with pytest.raises(CommandError, match="deactivated"):
        _create("max.manager")
    assert not ApiToken.objects.exists()


def test_a_revoked_token_no_longer_signs_in(manager):
    key = _create("max.manager")
    assert _client(key).get(ACCOUNTS).status_code == 200

    out = io.StringIO()
    call_command("revoke_api_token", key[:8], stdout=out)

    response = _client(key).get(ACCOUNTS)
    assert response.status_code == 401
    assert response.json()["detail"] == "The token is unknown or was revoked."
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1
    with pytest.raises(CommandError, match="No unrevoked token"):
        call_command("revoke_api_token", key[:8], stdout=out)


def test_no_key_begins_with_what_the_command_line_reads_as_an_option(monkeypatch):
    drawn = iter(["-starts-like-an-option", "_fine-after-one-more-draw"])
    monkeypatch.setattr("config.models.secrets.token_urlsafe", lambda size: next(drawn))

    assert models._new_key() == "_fine-after-one-more-draw"


def test_a_deactivated_users_tokens_stop_working(manager):
    key = _create("max.manager")
    manager.is_active = False
    manager.save()
    assert _client(key).get(ACCOUNTS).status_code == 401


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Token", "Send the token as `Authorization: Token <key>`, with nothing else."),
        ("Token a b", "Send the token as `Authorization: Token <key>`, with nothing else."),
        ("Token not-a-key", "The token is unknown or was revoked."),
    ],
)
def test_a_malformed_or_unknown_token_is_refused_with_the_reason(db, header, message):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(ACCOUNTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == message


def test_without_credentials_the_api_answers_401_not_the_sign_in_page(db):
    response = _client().get(ACCOUNTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_the_last_use_is_recorded(manager):
    key = _create("max.manager")
    assert ApiToken.objects.get().last_used_at is None
    _client(key).get(ACCOUNTS)
    assert ApiToken.objects.get().last_used_at is not None


def test_an_administrator_makes_a_token_in_the_admin_and_sees_the_key_once(admin_client, manager):
    response = admin_client.post(
        reverse("admin:attest_apitoken_add"),
        {"user": manager.pk, "name": "SIEM export"},
        follow=True,
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    (message,) = [str(m) for m in response.context["messages"] if "Copy it now" in str(m)]
    key = message.split(" is ", 1)[1].split(". Copy", 1)[0]
    assert key.startswith(token.prefix)
    assert _client(key).get(ACCOUNTS).status_code == 200
    # The token's page never shows the key again.
    page = admin_client.get(reverse("admin:attest_apitoken_change", args=[token.pk]))
    assert key not in page.content.decode()


def test_an_administrator_revokes_tokens_in_the_admin(admin_client, manager):
    token, key = ApiToken.issue(manager, "chat bot")
    admin_client.post(
        reverse("admin:attest_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _client(key).get(ACCOUNTS).status_code == 401


def test_a_session_signed_in_browser_uses_the_api_with_its_csrf_token(client, manager):
    client.force_login(manager)
    assert client.get(ACCOUNTS).status_code == 200
    csrf_client = APIClient(enforce_csrf_checks=True)
    csrf_client.force_login(manager)
    response = csrf_client.post(f"{ACCOUNTS}111122223333/collect/")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]

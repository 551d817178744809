"""Single sign-on through OpenID Connect, against a provider served on loopback in a thread.

The provider answers the authorization endpoint with a redirect back carrying a code, the token
endpoint with an RS256-signed id_token, and serves its keys and the userinfo. The browser's
redirects are followed by hand: Django's test client for Attest, requests for the provider.
"""

from __future__ import annotations

import importlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from axes.models import AccessAttempt
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django.urls import NoReverseMatch, clear_url_caches, reverse
from django.utils import translation

import config.urls
from audit.models import AuditEvent
from tests.config.test_settings import _start
from tests.security.test_login import sign_in

CLIENT_ID, CLIENT_SECRET, KID = "attest", "client-secret", "key-1"
PROVIDER = "Example ID"


class Provider:
    """A small OpenID provider: who signs in next is `person`; `tamper` forges one part."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.person: dict = {}
        self.tamper: str | None = None
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def settings(self) -> dict:
        return {
            "OIDC_ENABLED": True,
            "OIDC_PROVIDER_NAME": PROVIDER,
            "OIDC_ISSUER": self.issuer,
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/jwks",
            "AUTHENTICATION_BACKENDS": [*settings.AUTHENTICATION_BACKENDS, "config.oidc.Backend"],
        }

    def id_token(self, request: dict) -> str:
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": self.person["sub"],
            "nonce": request["nonce"],
            "iat": 1_700_000_000,
            "exp": 4_000_000_000,
        }
        key = self.key
        if self.tamper == "signature":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce-attest-sent"
        if self.tamper == "audience":
            claims["aud"] = "another-client"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body=None, headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/authorize":
                    assert query["client_id"] == CLIENT_ID
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = query
                    back = urlencode({"code": code, "state": query["state"]})
                    self._send(302, headers=[("Location", f"{query['redirect_uri']}?{back}")])
                elif url.path == "/jwks":
                    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.key.public_key()))
                    self._send(200, {"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]})
                elif url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    if token not in provider.tokens:
                        self._send(401, {"error": "invalid_token"})
                    else:
                        self._send(200, provider.tokens[token])
                else:
                    self._send(404, {})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                request = provider.codes.pop(form.get("code"), None)
                if (
                    self.path != "/token"
                    or request is None
                    or (form.get("client_id"), form.get("client_secret"))
                    != (CLIENT_ID, CLIENT_SECRET)
                    or form.get("redirect_uri") != request["redirect_uri"]
                ):
                    self._send(400, {"error": "invalid_grant"})
                    return
                access = secrets.token_urlsafe(16)
                provider.tokens[access] = dict(provider.person)
                self._send(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "id_token": provider.id_token(request),
                    },
                )

        return Handler


def _reload_urls():
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def provider(db):
    """Single sign-on configured against a provider running on loopback."""
    idp = Provider()
    idp.thread.start()
    try:
        with override_settings(**idp.settings()):
            _reload_urls()
            yield idp
    finally:
        idp.server.shutdown()
        idp.server.server_close()
        _reload_urls()


def person(email, *, verified=True, sub=None):
    return {"sub": sub or f"sub-{email}", "email": email, "email_verified": verified}


def sso(client, state=None, next_page=None):
    """The browser's round trip through the provider; returns Attest's answer to the callback."""
    query = {"next": next_page} if next_page else {}
    started = client.get(reverse("oidc_authentication_init"), query)
    assert started.status_code == 302
    assert started["Location"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    back = requests.get(started["Location"], allow_redirects=False, timeout=5)
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    assert callback.path == reverse("oidc_authentication_callback")
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    if state is not None:
        query["state"] = state
    return client.get(callback.path, query)


def signed_in(client):
    return "_auth_user_id" in client.session


def refused(response, client):
    """The sign-in page again, with its message, and nobody signed in."""
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert not signed_in(client)
    page = client.get(response["Location"])
    assert "Single sign-on did not sign you in." in page.text
    return True


# Signing in ----------------------------------------------------------------------------------


def test_an_existing_user_signs_in_by_email_and_lands_on_home(client, provider, reviewer):
    provider.person = person(reviewer.email.upper())

    response = sso(client)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(reviewer.pk)
    assert client.get(response["Location"]).status_code == 200
    [login] = AuditEvent.objects.filter(action="auth.login")
    assert login.actor == reviewer


def test_single_sign_on_returns_to_the_page_asked_for(client, provider, reviewer):
    provider.person = person(reviewer.email)
    response = sso(client, next_page=reverse("reviews:queue"))
    assert response["Location"] == reverse("reviews:queue")


def test_signing_in_through_the_provider_starts_a_new_session(client, provider, reviewer):
    session = client.session
    session["seen"] = True
    session.save()
    before = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = before
    provider.person = person(reviewer.email)

    sso(client)

    assert client.cookies[settings.SESSION_COOKIE_NAME].value != before
    assert not Session.objects.filter(session_key=before).exists()
    assert signed_in(client)


def test_an_unknown_email_gets_a_new_user_without_any_role(client, provider):
    provider.person = person("New.Person@Example.com")

    response = sso(client)

    assert response["Location"] == reverse("home")
    user = get_user_model().objects.get(email="new.person@example.com")
    assert user.username == "new.person@example.com"
    assert not user.groups.exists()
    assert not user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert AuditEvent.objects.filter(action="user.created", object_id=str(user.pk)).exists()


def test_an_unknown_email_is_refused_when_users_are_not_created(client, provider, settings):
    settings.OIDC_CREATE_USER = False
    provider.person = person("new.person@example.com")
    assert refused(sso(client), client)
    assert not get_user_model().objects.filter(email="new.person@example.com").exists()


# Refusals ------------------------------------------------------------------------------------


def test_a_deactivated_user_cannot_sign_in_through_the_provider(client, provider, reviewer):
    reviewer.is_active = False
    reviewer.save()
    provider.person = person(reviewer.email)

    assert refused(sso(client), client)
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_an_email_the_provider_has_not_verified_signs_nobody_in(client, provider, reviewer):
    provider.person = person(reviewer.email, verified=False)
    assert refused(sso(client), client)
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1


@pytest.mark.parametrize("tamper", ["signature", "nonce", "audience"])
def test_a_forged_id_token_is_refused(client, provider, reviewer, tamper):
    provider.person = person(reviewer.email)
    provider.tamper = tamper

    assert refused(sso(client), client)
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_a_wrong_state_is_refused(client, provider, reviewer):
    provider.person = person(reviewer.email)
    assert refused(sso(client, state="not-the-state-attest-sent"), client)
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 1


def test_a_callback_replayed_in_another_browser_is_refused(client, provider, reviewer):
    provider.person = person(reviewer.email)
    started = client.get(reverse("oidc_authentication_init"))
    back = requests.get(started["Location"], allow_redirects=False, timeout=5)
    stolen = Client()
    assert refused(stolen.get(back.headers["Location"].removeprefix("http://testserver")), stolen)


def test_userinfo_about_another_subject_is_refused(client, provider, reviewer):
    # The userinfo names the reviewer, the id_token someone else.
    provider.person = person(reviewer.email)
    original = provider.id_token

    def other_subject(request):
        provider.person = {**provider.person, "sub": "someone-else"}
        try:
            return original(request)
        finally:
            provider.person = person(reviewer.email)

    provider.id_token = other_subject
    assert refused(sso(client), client)


def test_a_locked_address_cannot_sign_in_through_the_provider(client, provider, reviewer):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "nobody.here", "not a password")
    assert AccessAttempt.objects.exists()
    provider.person = person(reviewer.email)

    response = sso(client)

    assert response.status_code == 429
    assert not signed_in(client)


def test_failures_through_the_provider_count_towards_the_lockout(client, provider, reviewer):
    provider.person = person(reviewer.email)
    provider.tamper = "signature"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sso(client)
    provider.tamper = None

    assert sso(client).status_code == 429
    assert not signed_in(client)


def test_failures_through_the_provider_from_one_address_leave_other_addresses_alone(
    provider, reviewer
):
    # Failures of single sign-on carry no username: counted by one shared username, they
    # would let anyone lock single sign-on for everybody.
    provider.person = person(reviewer.email)
    provider.tamper = "signature"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sso(Client(REMOTE_ADDR="10.0.0.7"))
    reviewer.is_active = False
    reviewer.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sso(Client(REMOTE_ADDR="10.0.0.8"))
    reviewer.is_active = True
    reviewer.save()
    provider.tamper = None

    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert sso(elsewhere)["Location"] == reverse("home")
    assert signed_in(elsewhere)
    assert sign_in(Client(REMOTE_ADDR="10.0.0.9"), reviewer.username).status_code == 302


# The pages -----------------------------------------------------------------------------------


def test_the_sign_in_page_offers_the_provider_beside_the_password(client, provider):
    page = client.get(reverse("login"), {"next": "/reviews/"}).text
    assert 'name="password"' in page
    assert f"Sign in with {PROVIDER}" in page
    assert f'href="{reverse("oidc_authentication_init")}?next=/reviews/"' in page
    with translation.override("ja"):
        japanese = translation.gettext("Sign in with %(provider)s") % {"provider": PROVIDER}
    assert japanese in client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ja").text


@pytest.mark.parametrize("name", ["oidc_authentication_init", "oidc_authentication_callback"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_the_sso_pages_take_get_alone(client, provider, reviewer, name, method):
    for who in (None, reviewer):
        if who:
            client.force_login(who)
        assert client.generic(method, reverse(name)).status_code == 405


@pytest.mark.parametrize("role", ["anonymous", "reviewer", "manager", "auditor", "admin"])
def test_everyone_may_start_single_sign_on(
    client, provider, reviewer, manager, auditor, administrator, role
):
    users = {"reviewer": reviewer, "manager": manager, "auditor": auditor, "admin": administrator}
    if role in users:
        client.force_login(users[role])
    response = client.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302
    assert response["Location"].startswith(provider.issuer)


def test_without_configuration_there_is_no_single_sign_on(client, db):
    assert not settings.OIDC_ENABLED
    assert "config.oidc.Backend" not in settings.AUTHENTICATION_BACKENDS
    with pytest.raises(NoReverseMatch):
        reverse("oidc_authentication_init")
    assert client.get("/sso/login/").status_code == 404
    assert client.get("/sso/callback/?code=x&state=y").status_code == 404
    page = client.get(reverse("login")).text
    assert "Sign in with" not in page
    assert "/sso/" not in page


def test_a_partial_configuration_stops_attest_naming_what_is_missing():
    result = _start(OIDC_ISSUER="https://id.example.com", OIDC_CLIENT_ID="attest")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "OIDC_CLIENT_SECRET" in result.stderr
    assert "OIDC_JWKS_ENDPOINT" in result.stderr

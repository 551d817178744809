"""Production settings pass Django's deployment check; every answer carries the security
headers, and the cookies their flags."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.security.matrix import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, **variables):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DEBUG"))}
    environment.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_settings_pass_the_deployment_check_without_a_warning(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="attest.example.com",
        VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_the_deployment_check_notices_a_weakened_setting(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="attest.example.com",
        VAR_DIR=str(tmp_path),
        SECURE_SSL_REDIRECT="false",
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr


def test_pages_carry_a_strict_content_security_policy_and_the_other_headers(client, reviewer):
    client.force_login(reviewer)
    response = client.get(reverse("home"))
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_sign_in_and_refusal_pages_carry_the_policy_too(client, outsider):
    assert "script-src 'self'" in client.get(reverse("login"))["Content-Security-Policy"]
    client.force_login(outsider)
    refused = client.get(reverse("audit:events"))
    assert refused.status_code == 403
    assert "script-src 'self'" in refused["Content-Security-Policy"]


def test_https_answers_tell_browsers_to_stay_on_https(client):
    response = client.get(reverse("login"), secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert "Strict-Transport-Security" not in client.get(reverse("login"))


def test_plain_http_is_redirected_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get(reverse("login"))
    assert response.status_code == 301
    assert response.url == "https://testserver" + reverse("login")


def test_behind_a_proxy_its_header_says_the_request_was_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get(reverse("login"), headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200


def test_the_session_and_csrf_cookies_are_secure_http_only_and_same_site(client, reviewer):
    client.get(reverse("login"))
    signed_in = client.post(reverse("login"), {"username": reviewer.username, "password": PASSWORD})
    assert signed_in.status_code == 302
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
    csrf = client.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] is True
    assert csrf["samesite"] == "Lax"

"""Signing in and staying signed in: lockout, one answer for every wrong sign-in, a new session
at sign-in, sign-out and deactivation ending the session on the server, and the idle timeout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tests.security.matrix import PASSWORD

LOCKED = "Signing in is locked for 30 minutes after too many failed attempts."
WRONG = "Your username and password didn't match. Please try again."


def sign_in(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def words(response):
    """The page as a reader sees it: no markup, no per-request token."""
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.text)
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def test_ten_failed_sign_ins_lock_the_account_for_thirty_minutes(client, reviewer):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        refused = sign_in(client, reviewer.username, "not my password")
        assert refused.status_code == 200
        assert WRONG in refused.text

    locked = sign_in(client, reviewer.username, "not my password")
    assert locked.status_code == 429
    assert LOCKED in locked.text
    # Locked: the right password does not help either.
    right = sign_in(client, reviewer.username)
    assert right.status_code == 429
    assert LOCKED in right.text
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("home")).status_code == 302

    # Thirty minutes later the right password works again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=31))
    assert sign_in(client, reviewer.username).status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_the_lockout_is_in_the_audit_trail_once(client, reviewer):
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        sign_in(client, reviewer.username, "not my password")
    [locked] = AuditEvent.objects.filter(action="auth.locked_out")
    assert locked.actor_name == reviewer.username
    assert locked.after["username"] == reviewer.username
    assert locked.after["failures"] == settings.AXES_FAILURE_LIMIT
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 12


def test_a_success_before_the_limit_starts_the_count_again(client, reviewer):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, reviewer.username, "not my password")
    assert sign_in(client, reviewer.username).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, reviewer.username, "not my password").status_code == 200
    assert sign_in(client, reviewer.username).status_code == 302


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(reviewer):
    unknown = sign_in(Client(), "nobody.here", "not a password")
    wrong = sign_in(Client(), reviewer.username, "not a password")
    assert unknown.status_code == wrong.status_code == 200
    assert words(unknown).replace("nobody.here", "NAME") == words(wrong).replace(
        reviewer.username, "NAME"
    )


def test_an_unknown_user_is_locked_like_a_real_one(reviewer):
    unknown, real = Client(), Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        last_unknown = sign_in(unknown, "nobody.here", "not a password")
        last_real = sign_in(real, reviewer.username, "not a password")
    assert last_unknown.status_code == last_real.status_code == 429
    assert words(last_unknown) == words(last_real)


def test_signing_in_starts_a_new_session(client, reviewer):
    session = client.session
    session["seen"] = True
    session.save()
    before = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = before

    assert sign_in(client, reviewer.username).status_code == 302

    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()


def _signed_in_cookie(client, user):
    assert sign_in(client, user.username).status_code == 302
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _with_cookie(key):
    stolen = Client()
    stolen.cookies[settings.SESSION_COOKIE_NAME] = key
    return stolen


def test_signing_out_ends_the_session_on_the_server(client, reviewer):
    key = _signed_in_cookie(client, reviewer)
    assert _with_cookie(key).get(reverse("home")).status_code == 200

    client.post(reverse("logout"))

    assert not Session.objects.filter(session_key=key).exists()
    replayed = _with_cookie(key).get(reverse("home"))
    assert replayed.status_code == 302
    assert replayed.url.startswith(reverse("login"))


def test_deactivating_a_user_ends_their_sessions(client, reviewer, manager):
    key = _signed_in_cookie(client, reviewer)
    other = _signed_in_cookie(Client(), manager)

    reviewer.is_active = False
    reviewer.save()

    assert not Session.objects.filter(session_key=key).exists()
    assert Session.objects.filter(session_key=other).exists()
    assert client.get(reverse("home")).status_code == 302


@pytest.fixture
def clock(monkeypatch):
    """Moves the server's clock forward by the minutes given."""
    real_now = timezone.now
    offset = timedelta()

    def now():
        return real_now() + offset

    monkeypatch.setattr(timezone, "now", now)

    def forward(minutes):
        nonlocal offset
        offset += timedelta(minutes=minutes)

    return forward


def test_a_session_ends_after_fifteen_idle_minutes(client, reviewer, clock):
    _signed_in_cookie(client, reviewer)
    assert client.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 15 * 60

    clock(10)
    assert client.get(reverse("home")).status_code == 200
    clock(10)  # 20 minutes since sign-in, 10 since the last request
    assert client.get(reverse("home")).status_code == 200
    clock(16)
    idle = client.get(reverse("home"))
    assert idle.status_code == 302
    assert idle.url.startswith(reverse("login"))


def _example(name):
    for line in (settings.BASE_DIR / ".env.example").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f".env.example does not list {name}")


def test_env_example_gives_the_defaults_of_sign_in_and_sessions():
    assert int(_example("SESSION_IDLE_MINUTES")) * 60 == settings.SESSION_COOKIE_AGE
    assert settings.SESSION_SAVE_EVERY_REQUEST
    assert int(_example("LOGIN_FAILURE_LIMIT")) == settings.AXES_FAILURE_LIMIT
    assert timedelta(minutes=int(_example("LOGIN_LOCKOUT_MINUTES"))) == settings.AXES_COOLOFF_TIME


def test_the_idle_time_comes_from_the_environment():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings;"
            " print(settings.SESSION_COOKIE_AGE)",
        ],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SESSION_IDLE_MINUTES": "5",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "300"

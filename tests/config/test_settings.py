"""Settings come only from the environment, and a malformed value stops Attest with its name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config import env

ROOT = Path(__file__).resolve().parents[2]


def _start(**variables):
    """Import the settings in a fresh interpreter with these variables; returns the result."""
    environment = {k: v for k, v in os.environ.items() if k not in variables}
    environment.update({k: v for k, v in variables.items() if v is not None})
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings;"
            " print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER)",
        ],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG: expected true or false, got 'maybe'"),
        ("COLLECT_CONCURRENCY", "four", "COLLECT_CONCURRENCY: expected a whole number"),
        ("COLLECT_CONCURRENCY", "0", "COLLECT_CONCURRENCY: must be at least 1"),
        ("AWS_READ_TIMEOUT", "soon", "AWS_READ_TIMEOUT: expected a number"),
        ("AWS_RETRY_MODE", "legacy", "AWS_RETRY_MODE: expected one of standard, adaptive"),
        ("DATABASE_URL", "mysql://db/attest", "DATABASE_URL: Attest runs on PostgreSQL"),
    ],
)
def test_a_malformed_setting_stops_attest_naming_the_variable(name, value, message):
    result = _start(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _start(SECRET_KEY=None, DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_without_database_and_broker_attest_runs_embedded(tmp_path):
    result = _start(
        DATABASE_URL=None,
        CELERY_BROKER_URL=None,
        SECRET_KEY=None,
        DEBUG="true",
        VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]
    assert (tmp_path / "secret_key").exists()


def test_with_database_and_broker_attest_uses_postgresql_and_a_worker():
    result = _start(
        DATABASE_URL="postgres://u@db:5432/attest", CELERY_BROKER_URL="redis://redis:6379/0"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


@pytest.fixture
def unlisted(monkeypatch):
    """The variables these tests read stay out of the list that .env.example is checked against."""
    monkeypatch.setattr(env, "READ", set(env.READ))


def test_a_secret_can_come_from_a_file(tmp_path, monkeypatch, unlisted):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
    assert env.env_str("SOME_SECRET") == "from-a-file"


def test_an_unreadable_secret_file_is_named(tmp_path, monkeypatch, unlisted):
    monkeypatch.setenv("SOME_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="SOME_SECRET_FILE: cannot read"):
        env.env_str("SOME_SECRET")


def test_every_beat_entry_expires_before_its_next_run():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"]["expires"] < entry["schedule"].total_seconds(), name


def test_tasks_are_json_only_and_acknowledged_late():
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_TASK_ACKS_LATE
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST

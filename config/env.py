"""Typed readers for environment variables.

Every setting of Attest comes from the environment through these helpers. A malformed value
raises ImproperlyConfigured naming the variable, never a silent default. A variable NAME can also
be given as NAME_FILE, the path of a file holding the value (for Docker and Kubernetes secrets).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# Every variable the settings read, so tests can check .env.example and docker-compose.yml.
READ: set[str] = set()

# Variables that the AWS SDK reads by itself; documented in .env.example, not read by settings.
AWS_SDK_VARIABLES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    }
)

SUPPORTED_DATABASES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    READ.add(name)
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().rstrip("\n")
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name}: {exc}") from exc
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected true or false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}: must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def env_database(name: str, default: str) -> dict:
    value = env_str(name, default)
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ImproperlyConfigured(f"{name}: not a database URL ({exc})") from exc
    if config.get("ENGINE") not in SUPPORTED_DATABASES:
        scheme = value.split(":", 1)[0]
        raise ImproperlyConfigured(
            f"{name}: Attest runs on PostgreSQL (or SQLite for the demo), not {scheme!r}"
        )
    return config


def env_email(value: str) -> dict:
    """Django's e-mail settings from EMAIL_URL (read by the settings, named here in errors)."""
    try:
        config = environ.Env.email_url_config(value)
    except Exception as exc:
        raise ImproperlyConfigured(f"EMAIL_URL: not an e-mail URL ({exc})") from exc
    return config

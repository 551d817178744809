"""docker-compose.yml, the Dockerfile and .env.example, checked without Docker (none runs here)."""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from config.env import AWS_SDK_VARIABLES, READ

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "worker", "beat")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _example_variables():
    names = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            names.append(line.split("=", 1)[0])
    return names


def test_compose_has_the_database_redis_and_three_processes_of_one_image(compose):
    assert compose["db"]["image"] == "postgres:16"
    assert "pg_isready" in " ".join(compose["db"]["healthcheck"]["test"])
    assert compose["redis"]["image"].startswith("redis")
    for name in APP_SERVICES:
        assert compose[name]["build"] == ".", name
        assert compose[name]["env_file"] == ".env", name
    assert (ROOT / "Dockerfile").read_text().startswith("# One image")


def _check_command(command):
    program, *args = command
    if program == "gunicorn":
        module, attribute = args[0].split(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    elif program == "celery":
        app_module = args[args.index("-A") + 1]
        app = importlib.import_module(app_module).celery_app
        assert app.main == "attest"
        assert args[args.index("-A") + 2] in ("worker", "beat")
    elif program == "python":
        assert args[0] == "manage.py"
        assert args[1] in get_commands(), f"no management command {args[1]}"
    else:
        pytest.fail(f"unknown program {program}")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_compose_command_names_a_real_module(compose, service):
    _check_command(compose[service]["command"])


def test_the_dockerfile_default_command_names_a_real_module():
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    _check_command(yaml.safe_load(cmd.group(1)))


def test_the_image_holds_every_template_directory():
    copied = re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    for engine in settings.TEMPLATES:
        for folder in engine["DIRS"]:
            path = Path(folder).relative_to(ROOT)
            assert any(path.is_relative_to(source) for source in copied), folder


def test_every_compose_variable_is_one_the_settings_read(compose):
    for name in APP_SERVICES:
        for variable in compose[name].get("environment", {}):
            assert variable in READ, f"{name}: the settings do not read {variable}"


def test_env_example_documents_every_setting_and_nothing_else():
    documented = _example_variables()
    assert len(documented) == len(set(documented)), "a variable is listed twice"
    unknown = set(documented) - READ - AWS_SDK_VARIABLES
    assert not unknown, f".env.example lists variables nothing reads: {sorted(unknown)}"
    missing = READ - set(documented)
    assert not missing, f".env.example does not document {sorted(missing)}"


def test_every_variable_in_env_example_has_a_comment_above_it():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            above = next(prev for prev in reversed(lines[:i]) if not re.match(r"^[A-Z_]+=", prev))
            assert above.startswith("# "), f"{line.split('=')[0]} has no comment"


def test_a_web_worker_starts_with_every_view_imported_and_what_it_loaded_frozen():
    """Loaded once, the application stays out of the cycle collector's full passes, which would
    otherwise stall a request for tens of milliseconds; a view that fails to import fails the
    worker's start, not a reader's request."""
    probe = (
        "import gc, sys; import config.wsgi; "
        "print(gc.get_freeze_count(), 'reviews.views.reviewer' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert int(out[0]) > 50_000
    assert out[1] == "True"

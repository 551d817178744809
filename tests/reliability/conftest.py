"""What the fault and load tests share: a Redis server of their own (they restart it), the
broker pointed at it, a way to cut one PostgreSQL connection, and the invariants that hold after
every fault: each accepted decision has one Decision row and one audit event, and the audit
chain verifies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis
from django.db import connection

from audit import trail
from audit.models import AuditEvent
from reviews.models import Decision
from tests.aws_emulator import emulate, moto_server
from tests.brokers import tasks_through
from tests.reviews.test_remediation_worker import aws_environment

# Never the machine's Redis on 6379: these tests stop and restart theirs.
REDIS_PORT = int(os.environ.get("RELIABILITY_REDIS_PORT", "6391"))
BROKER_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"


class RedisServer:
    """A redis-server on loopback, writing its append-only file as docker-compose.yml's Redis
    does (`--appendonly yes`, fsync every second)."""

    def __init__(self, folder: Path, port: int = REDIS_PORT):
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = self.client()
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start on port {self.port}:\n"
                        + (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.05)
        # Loading the append-only file: the server answers LOADING until it is done.
        while True:
            try:
                client.dbsize()
                break
            except redis.BusyLoadingError:
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """A clean shutdown: the append-only file is flushed first."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: what the last second of writes did may not be on disk."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=10)


@pytest.fixture
def aws(monkeypatch, settings):
    """moto over HTTP on loopback (botocore's timeouts and retries are the real ones), read by
    this process and by workers alike."""
    with emulate() as emulator, moto_server() as url:
        emulator.credential_report(ready=True)
        emulator.polls_to_complete = 1
        for name, value in aws_environment(url).items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        settings.AWS_ENDPOINT_URL = url
        settings.ACCESS_ADVISOR_POLL_SECONDS = 0.05
        settings.ACCESS_ADVISOR_POLL_MAX_SECONDS = 0.05
        yield emulator, url


@pytest.fixture
def redis_server(tmp_path):
    """A Redis of this test's own, stopped after it."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker(monkeypatch, redis_server):
    """Tasks go to the test's own Redis (not run in process)."""
    client = redis_server.client()
    with tasks_through(monkeypatch, BROKER_URL):
        yield client
    client.close()


def terminate_backend(pid: int) -> None:
    """End one PostgreSQL backend, as a failover or an administrator does, from a connection
    of its own; never any other backend."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as side:
        [(ended,)] = side.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchall()
    assert ended, f"backend {pid} was not running"


def own_backend() -> int:
    """The pid of this thread's PostgreSQL backend."""
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def assert_nothing_lost(accepted: int) -> None:
    """Every decision a reviewer was told was saved has one Decision row and one audit event,
    none more, and the audit chain verifies end to end."""
    assert Decision.objects.filter(system=False).count() == accepted
    assert AuditEvent.objects.filter(action="decision.made").count() == accepted
    _events, _checkpoints, finding = trail.verify()
    assert finding is None, str(finding)

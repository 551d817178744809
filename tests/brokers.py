"""Sending tasks to a real broker from a test, for the tests that run real Celery workers."""

from contextlib import contextmanager

from kombu import pools

from config import celery_app


@contextmanager
def tasks_through(monkeypatch, url: str):
    """Tasks go to the broker at `url` instead of running in the test's process."""
    celery_app.conf.task_always_eager = False
    # Celery reads this variable before its settings; the app's pools were made for the suite's
    # broker, so new ones are made for this one.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", url)
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    try:
        yield
    finally:
        made = [p for p in (celery_app._pool, celery_app.amqp._producer_pool) if p is not None]
        for pool in made:
            pool.force_close_all()
        # kombu keeps these pools by broker URL for the whole process: the next test would be
        # handed the closed ones. (Keyed by the URL's hash, so `pop` and not `del`.)
        for group in (pools.connections, pools.producers):
            for key, pool in list(group.items()):
                if any(pool is closed for closed in made):
                    group.pop(key)

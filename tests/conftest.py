"""The shared world of the test suite: named actors, an account with a few principals.

Tests run on PostgreSQL and Redis (`make test` starts them); SQLite never stands in.
"""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from config import celery_app, roles
from tests import factories


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "the tests run on PostgreSQL: use `make test`, or set DATABASE_URL "
            "(and CELERY_BROKER_URL) as the Makefile does"
        )
    # The test client and the live server speak plain HTTP, which production redirects to
    # HTTPS; set before the live server loads its middleware, which keeps the value it reads.
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _tasks_in_process():
    """Tasks run in the test's own process unless a test starts a real worker."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER


@pytest.fixture
def eager_retries():
    """Celery runs an eager task's retries in place only when it does not propagate errors;
    a worker would run them after their countdown."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = settings.CELERY_TASK_EAGER_PROPAGATES


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    """Deployments collect static files into a manifest; tests serve them from the source."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashers are slow on purpose; the tests sign in hundreds of times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _tallies_in_step(request):
    """Whatever a test did to review items, every campaign's tallies count its items as they
    are at the end: the progress pages read the tallies, never the items."""
    uses_database = "_django_db_helper" in request.fixturenames or request.node.get_closest_marker(
        "django_db"
    )
    if not uses_database:
        yield
        return
    # Set up first, so that the test's database is still there once the test is done.
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db import connection

    from reviews.models import Campaign
    from reviews.tallies import counted, tallied

    if connection.needs_rollback:
        return  # the test ended on a refused statement: nothing can be read before the rollback
    for campaign_id in Campaign.objects.values_list("pk", flat=True):
        assert tallied(campaign_id) == counted(campaign_id), f"tallies of campaign {campaign_id}"


def _user(username, role=None, **extra):
    user = factories.UserFactory(username=username, email=f"{username}@example.com", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def reviewer(db):
    return _user("rita.reviewer", roles.REVIEWER)


@pytest.fixture
def manager(db):
    return _user("max.manager", roles.MANAGER)


@pytest.fixture
def auditor(db):
    return _user("ann.auditor", roles.AUDITOR)


@pytest.fixture
def administrator(db):
    return _user("ada.admin", roles.ADMINISTRATOR)


@pytest.fixture
def outsider(db):
    """A signed-in user with no role and nothing of their own."""
    return _user("oscar.outsider")


@pytest.fixture
def account(db, reviewer):
    """An account owned by the reviewer, with a complete run of a few principals."""
    return factories.collected_account(
        account_id="111122223333", name="payments-prod", owner=reviewer
    )


@pytest.fixture
def other_account(db):
    """An account nobody in the world above owns."""
    return factories.collected_account(account_id="444455556666", name="marketing-prod")


@pytest.fixture
def api():
    """A REST API client signed in as the user with a token of theirs (or anonymous)."""
    from rest_framework.test import APIClient

    from config.models import ApiToken

    def client_of(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            _token, key = ApiToken.issue(user, "tests")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return client_of


@pytest.fixture
def api_queries():
    """How many queries an API GET takes once its token was used (a token's first use in a
    minute also writes when it was used)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(client, url) -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    return count

"""Every URL pattern answers each role as the access matrix says (tests/security/matrix.py).

The patterns are found by walking the resolver, so a new one without a row fails here. Each
row is asked as each role; a refusal (or a redirect to the sign-in page) must leave the audit
trail as it was, which shows that nothing was done.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audit.models import AuditEvent
from tests.security import matrix, matrix_api
from tests.security.conftest import OBJECTS
from tests.security.matrix import NONE, ROLES

ROWS = [*matrix.ROWS, *matrix_api.ROWS]
ALL_OBJECTS = {**OBJECTS, **matrix_api.OBJECTS}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ADMIN_NAMESPACE = "admin"
# A suffix such as `.json` on an API URL answers as the URL it extends.
SUFFIX_ARGUMENT = "format"


def _patterns(patterns=None, namespace=""):
    """(URL name, URL arguments, view) of every pattern the resolver knows, recursively."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace
            if pattern.namespace:
                inner = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _patterns(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            # A pattern without a name is known by its route, in its namespace.
            name = pattern.name or str(pattern.pattern)
            arguments = set(pattern.pattern.regex.groupindex)
            yield f"{namespace}:{name}" if namespace else name, arguments, pattern.callback


def _page_patterns():
    return [p for p in _patterns() if p[0].split(":")[0] != ADMIN_NAMESPACE]


def _arguments(name):
    """The URL arguments of a name, from its pattern without a format suffix."""
    found = [args for pattern, args, _view in _patterns() if pattern == name]
    return min(found, key=len) - {SUFFIX_ARGUMENT}


def _url(name, world, target):
    kwargs = {arg: ALL_OBJECTS[arg](world, target) for arg in sorted(_arguments(name))}
    return reverse(name, kwargs=kwargs)


def _client_of(client, world, role):
    if role != "anonymous":
        client.force_login(world.users[role])
    return client


def _ask(client, method, url, data, as_json=False):
    if method == "GET":
        return client.get(url, data or {})
    if as_json:
        return client.generic(method, url, json.dumps(data or {}), "application/json")
    if method == "POST":
        return client.post(url, data or {})
    return client.generic(method, url, "")


# Every pattern has its rows ---------------------------------------------------------------------


def test_every_url_pattern_has_a_row_in_the_matrix():
    named = {row.name for row in ROWS}
    missing = sorted({name for name, _args, _view in _page_patterns() if name not in named})
    assert not missing, f"URL patterns without a row in tests/security/matrix*.py: {missing}"


def test_every_row_names_a_url_pattern_and_every_argument_an_object():
    names = {name for name, _args, _view in _page_patterns()}
    unknown = sorted({row.name for row in ROWS} - names)
    assert not unknown, f"rows of URL names nothing serves: {unknown}"
    for name in names & {row.name for row in ROWS}:
        assert _arguments(name) <= set(ALL_OBJECTS), f"{name}: no object for its arguments"


def test_rows_name_a_status_for_every_role_and_an_object_where_the_url_takes_one():
    for row in ROWS:
        assert len(row.statuses) == len(ROLES), row
        assert row.method in METHODS, row
        if _arguments(row.name):
            assert row.target != NONE, row


# The rows, as each role ---------------------------------------------------------------------


def _cases():
    for row in ROWS:
        for role in ROLES:
            yield pytest.param(row, role, id=f"{row.name} {row.method} {row.target} {role}")


@pytest.mark.parametrize(("row", "role"), list(_cases()))
def test_each_role_gets_what_the_matrix_says(client, world, row, role):
    url = _url(row.name, world, row.target)
    data = row.data(world, row.target) if row.data else None
    signed_in = _client_of(client, world, role)
    before = AuditEvent.objects.count()

    response = _ask(signed_in, row.method, url, data, row.json)

    expected = row.status_of(role)
    assert response.status_code == expected, f"{row.method} {url} as {role}"
    if role == "anonymous" and expected == 302 and row.name not in ("logout", "set_language"):
        assert response.url.startswith(reverse("login")), response.url
    if expected in (403, 404, 405) or (role == "anonymous" and expected in (302, 401)):
        assert AuditEvent.objects.count() == before, "a refused request left a trace"


# Methods a URL has no row for ---------------------------------------------------------------


def _anonymous_status(name, view) -> int:
    """What someone not signed in gets for a method the URL does not take."""
    if name in matrix_api.FOR_PEOPLE:
        return 302
    if name.startswith(matrix_api.NAMESPACE):
        return 401  # the API asks for credentials before anything else
    return 405 if not getattr(view, "login_required", True) else 302


def _wrong_methods():
    allowed = {}
    for row in ROWS:
        allowed.setdefault(row.name, set()).add(row.method)
    for name, arguments, view in _page_patterns():
        if name not in allowed or SUFFIX_ARGUMENT in arguments:
            continue
        for method in METHODS:
            if method in allowed[name]:
                continue
            for role in ROLES:
                status = 405 if role != "anonymous" else _anonymous_status(name, view)
                yield pytest.param(name, method, role, status, id=f"{name} {method} {role}")


# Any id will do: the method is refused before anything is looked up.
PLACEHOLDERS = {"account_id": "000000000000", "definition_id": "0", "event_id": "0"}


@pytest.mark.parametrize(("name", "method", "role", "status"), list(_wrong_methods()))
def test_a_method_without_a_row_is_refused(
    client, reviewer, manager, auditor, administrator, outsider, name, method, role, status
):
    users = {
        "reviewer": reviewer,
        "manager": manager,
        "auditor": auditor,
        "admin": administrator,
        "outsider": outsider,
    }
    if role != "anonymous":
        client.force_login(users[role])
    kwargs = {
        arg: PLACEHOLDERS.get(arg, "00000000-0000-4000-8000-000000000000")
        for arg in _arguments(name)
    }
    before = AuditEvent.objects.count()
    response = _ask(client, method, reverse(name, kwargs=kwargs), None)
    assert response.status_code == status
    assert AuditEvent.objects.count() == before


# Django's admin: one rule for its whole namespace -------------------------------------------


@pytest.mark.parametrize("role", [role for role in ROLES])
def test_the_admin_site_is_for_staff_alone(client, world, role):
    response = _client_of(client, world, role).get(reverse("admin:index"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    user_list = _client_of(client, world, role).get(reverse("admin:auth_user_changelist"))
    assert user_list.status_code == 302


def test_staff_reach_the_admin_site(client, db):
    staff = get_user_model().objects.create_superuser("sam.staff", "sam@example.com", "x" * 20)
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200

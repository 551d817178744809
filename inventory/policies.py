"""What IAM policy documents allow, read the way Access Advisor reports it: by service and action.

This is a reading of Allow statements' `Action` and `NotAction` patterns. Deny statements,
resources and conditions narrow what a policy grants and are not weighed here: the answer is what
the documents could allow at most, which is what a reviewer must confirm.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from inventory.parse import policy_statements


def _patterns(statement: dict, key: str) -> list[str]:
    value = statement.get(key, [])
    values = [value] if isinstance(value, str) else value
    return [v.lower() for v in values if isinstance(v, str)]


def allows(documents: Iterable[dict], action: str) -> bool:
    """Whether an Allow statement of the documents names `action` ("service:Action")."""
    action = action.lower()
    for document in documents:
        for statement in policy_statements(document):
            if statement.get("Effect") != "Allow":
                continue
            if "Action" in statement and any(
                fnmatchcase(action, p) for p in _patterns(statement, "Action")
            ):
                return True
            if "NotAction" in statement and not any(
                fnmatchcase(action, p) for p in _patterns(statement, "NotAction")
            ):
                return True
    return False


def services(documents: Iterable[dict], known: Iterable[str]) -> set[str]:
    """The service namespaces the documents allow something in; wildcards (`*`, `NotAction`)
    are resolved among the `known` namespaces."""
    known = [namespace.lower() for namespace in known]
    found: set[str] = set()
    for document in documents:
        for statement in policy_statements(document):
            if statement.get("Effect") != "Allow":
                continue
            for pattern in _patterns(statement, "Action"):
                service = pattern.split(":", 1)[0]
                if any(c in service for c in "*?["):
                    found.update(n for n in known if fnmatchcase(n, service))
                else:
                    found.add(service)
            if "NotAction" in statement:
                excluded = _patterns(statement, "NotAction")
                found.update(
                    n for n in known if not any(fnmatchcase(f"{n}:*", p) for p in excluded)
                )
    return found

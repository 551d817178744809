"""What IAM policy documents allow, read the way Access Advisor reports it: by service and action.

This is a reading of Allow statements' `Action` and `NotAction` patterns. Deny statements,
resources and conditions narrow what a policy grants and are not weighed here: the answer is what
the documents could allow at most, which is what a reviewer must confirm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from django.utils.translation import gettext as _

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


# Actions that change who can do what: holding one is holding the keys to IAM.
IAM_WRITE_ACTIONS = (
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    # A member of a group can grant themselves anything through it.
    "iam:AttachGroupPolicy",
    "iam:PutGroupPolicy",
    "iam:PutRolePolicy",
    "iam:PutUserPolicy",
    "iam:CreatePolicyVersion",
    # Makes an older, wider version of a policy the one in force.
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:AddUserToGroup",
    "iam:CreateRole",
)
# Verbs of actions that change or destroy rather than read.
_WRITE_VERBS = (
    "put", "delete", "create", "update", "attach", "detach", "modify", "terminate", "run",
    "set", "add", "remove", "write", "replace", "restore", "stop", "start", "reboot", "pass",
    "invoke", "send", "publish", "tag", "untag", "revoke", "authorize", "disable", "enable",
)  # fmt: skip


def _any_resource(statement: dict) -> bool:
    if "NotResource" in statement:
        return True
    return "*" in _patterns(statement, "Resource")


# Patterns that match every action of every service.
_EVERY_ACTION = ("*", "*:*")


def _wildcard_writes(pattern: str) -> bool:
    """A pattern that allows a family of write actions at once: "s3:*", "ec2:Delete*", "ec2:D*"."""
    verb = pattern.split(":", 1)[-1]
    if not any(c in verb for c in "*?"):
        return False
    # What the pattern fixes before its first wildcard: "ec2:D*" fixes only "d", which
    # Delete, Detach and Disable start with, so it is as much a write as "ec2:Delete*".
    prefix = re.split(r"[*?\[]", verb, maxsplit=1)[0]
    return any(v.startswith(prefix) or prefix.startswith(v) for v in _WRITE_VERBS)


def privileges(documents: Iterable[dict]) -> list[dict]:
    """Why the documents make a privileged right, as codes with their details (`describe`
    words them); empty when they do not.

    Privileged: administrator access (every action on every resource), changing IAM, passing
    any role to a service (iam:PassRole on *), and whole families of write actions ("s3:*",
    "ec2:Delete*") on every resource. A single named write on "*" (logs:PutLogEvents) is not.
    """
    documents = list(documents)
    reasons: list[dict] = []
    allowed = [
        s
        for d in documents
        for s in policy_statements(d)
        if s.get("Effect") == "Allow" and ("Action" in s or "NotAction" in s)
    ]
    # "*:*" is written for "*" too, and means the same.
    if any(
        any(p in _EVERY_ACTION for p in _patterns(s, "Action")) and _any_resource(s)
        for s in allowed
    ):
        reasons.append({"code": "admin"})
    elif any("NotAction" in s and _any_resource(s) for s in allowed):
        reasons.append({"code": "almost_admin"})
    iam_writes = [a for a in IAM_WRITE_ACTIONS if allows(documents, a)]
    if iam_writes:
        reasons.append({"code": "iam_write", "actions": iam_writes[:3]})
    if any(
        _any_resource(s) and any(fnmatchcase("iam:passrole", p) for p in _patterns(s, "Action"))
        for s in allowed
    ):
        reasons.append({"code": "pass_role"})
    wide = sorted(
        {
            p.split(":", 1)[0]
            for s in allowed
            if _any_resource(s)
            for p in _patterns(s, "Action")
            # IAM is named by iam_write when it applies; "iam:Delete*" alone is still a
            # family of writes, which deletes users, roles and policies.
            if p not in _EVERY_ACTION
            and _wildcard_writes(p)
            and not (p.startswith("iam:") and iam_writes)
        }
    )
    if wide:
        reasons.append({"code": "wide_write", "services": wide})
    return reasons


def describe(reason: dict) -> str:
    """A privilege reason in plain words, in the reader's language."""
    code = reason["code"]
    if code == "admin":
        return _("Allows every action on every resource: full administrator access.")
    if code == "almost_admin":
        return _(
            "Allows every action except those it lists, on every resource: "
            "close to administrator access."
        )
    if code == "iam_write":
        return _(
            "Can change IAM (for example %(actions)s): it can grant itself or others more access."
        ) % {"actions": ", ".join(reason["actions"])}
    if code == "pass_role":
        return _(
            "Can pass any role to an AWS service (iam:PassRole on *): "
            "it can act with that role's permissions."
        )
    if code == "wide_write":
        services = reason["services"]
        shown = ", ".join(services[:6]) + (" …" if len(services) > 6 else "")
        return _('Can change or delete any resource of %(services)s (write actions on "*").') % {
            "services": shown
        }
    return code

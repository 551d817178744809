"""Each kind of right as AWS holds it: how to read it, remove or narrow it, and put it back.

A handler reads the right's present state from AWS as a plain dict, and from a state says which
calls are still needed to reach the decision's goal, whether the goal is reached, and which calls
bring the saved state back. Because the calls are derived from what AWS holds now, running a
remediation again (after a crash, or twice) makes only the calls still missing: nothing is
removed twice.
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from inventory.aws import AwsSession, NoSuchEntity
from inventory.models import Right

NOUN = {"user": "User", "group": "Group", "role": "Role"}
NAME_PARAM = {"user": "UserName", "group": "GroupName", "role": "RoleName"}
REPLACEMENT_PATH = "/attest/"
# Parameters that must never be written down.
SECRET_PARAMS = frozenset({"Password"})


@dataclass(frozen=True)
class Step:
    """One IAM API call, by its operation name and parameters."""

    operation: str
    params: dict

    def recorded(self) -> dict:
        params = {k: ("********" if k in SECRET_PARAMS else v) for k, v in self.params.items()}
        return {"operation": self.operation, "params": params}


class Stop(Exception):
    """The remediation cannot go on by itself: a person has to look (state "manual")."""


@dataclass(frozen=True)
class Target:
    """What a remediation acts on, taken from its review item."""

    principal_kind: str
    principal_name: str
    principal_arn: str
    right_kind: str
    right_key: str
    action: str
    policy_arn: str | None = None
    group: str | None = None
    key_created: datetime | None = None
    # For a reduction: the document at review time, and what replaces it.
    reviewed_document: dict | None = None
    replacement: dict | None = None
    replacement_name: str = ""

    @property
    def noun(self) -> str:
        return NOUN[self.principal_kind]

    @property
    def who(self) -> dict:
        return {NAME_PARAM[self.principal_kind]: self.principal_name}

    @property
    def account_id(self) -> str:
        return self.principal_arn.split(":")[4]

    @property
    def partition(self) -> str:
        return self.principal_arn.split(":")[1]

    @property
    def replacement_arn(self) -> str:
        return (
            f"arn:{self.partition}:iam::{self.account_id}:policy"
            f"{REPLACEMENT_PATH}{self.replacement_name}"
        )


def _pages(session: AwsSession, operation: str, key: str, **params) -> list:
    found, marker = [], None
    while True:
        answer = session.call("iam", operation, **params, **({"Marker": marker} if marker else {}))
        found += answer.get(key, [])
        if not answer.get("IsTruncated"):
            return found
        marker = answer["Marker"]


def _attached(session: AwsSession, t: Target) -> set[str]:
    return {
        policy["PolicyArn"]
        for policy in _pages(session, f"ListAttached{t.noun}Policies", "AttachedPolicies", **t.who)
    }


def _policy_exists(session: AwsSession, arn: str) -> bool:
    try:
        session.call("iam", "GetPolicy", PolicyArn=arn)
    except NoSuchEntity:
        return False
    return True


def _document(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


class Handler:
    """One kind of right and decision. Subclasses fill in the four questions."""

    def read(self, session: AwsSession, t: Target) -> dict:
        raise NotImplementedError

    def check(self, t: Target, state: dict) -> None:
        """Raise Stop when the right is no longer what the reviewer saw."""

    def steps(self, t: Target, state: dict) -> list[Step]:
        raise NotImplementedError

    def done(self, t: Target, state: dict) -> bool:
        raise NotImplementedError

    def restore(self, t: Target, before: dict, state: dict) -> list[Step]:
        raise NotImplementedError

    def assumed(self, t: Target) -> dict:
        """The state as the last collection saw it: what a plan for an import-only account is
        written against."""
        raise NotImplementedError

    def absent(self, t: Target) -> dict:
        """The state when the principal itself is gone."""
        raise NotImplementedError


class DetachPolicy(Handler):
    def read(self, session, t):
        return {"attached": t.policy_arn in _attached(session, t)}

    def steps(self, t, state):
        if not state["attached"]:
            return []
        return [Step(f"Detach{t.noun}Policy", {**t.who, "PolicyArn": t.policy_arn})]

    def done(self, t, state):
        return not state["attached"]

    def restore(self, t, before, state):
        if before["attached"] and not state["attached"]:
            return [Step(f"Attach{t.noun}Policy", {**t.who, "PolicyArn": t.policy_arn})]
        return []

    def assumed(self, t):
        return {"attached": True}

    def absent(self, t):
        return {"attached": False}


class DeleteInlinePolicy(Handler):
    def read(self, session, t):
        try:
            answer = session.call("iam", f"Get{t.noun}Policy", **t.who, PolicyName=t.right_key)
        except NoSuchEntity:
            return {"document": None}
        return {"document": answer["PolicyDocument"]}

    def steps(self, t, state):
        if state["document"] is None:
            return []
        return [Step(f"Delete{t.noun}Policy", {**t.who, "PolicyName": t.right_key})]

    def done(self, t, state):
        return state["document"] is None

    def restore(self, t, before, state):
        if before["document"] is not None and state["document"] != before["document"]:
            return [
                Step(
                    f"Put{t.noun}Policy",
                    {
                        **t.who,
                        "PolicyName": t.right_key,
                        "PolicyDocument": _document(before["document"]),
                    },
                )
            ]
        return []

    def assumed(self, t):
        return {"document": t.reviewed_document}

    def absent(self, t):
        return {"document": None}


class RemoveFromGroup(Handler):
    def read(self, session, t):
        groups = _pages(session, "ListGroupsForUser", "Groups", UserName=t.principal_name)
        return {"member": any(group["GroupName"] == t.group for group in groups)}

    def steps(self, t, state):
        if not state["member"]:
            return []
        return [Step("RemoveUserFromGroup", {"GroupName": t.group, "UserName": t.principal_name})]

    def done(self, t, state):
        return not state["member"]

    def restore(self, t, before, state):
        if before["member"] and not state["member"]:
            return [Step("AddUserToGroup", {"GroupName": t.group, "UserName": t.principal_name})]
        return []

    def assumed(self, t):
        return {"member": True}

    def absent(self, t):
        return {"member": False}


class DeleteBoundary(Handler):
    def read(self, session, t):
        answer = session.call("iam", f"Get{t.noun}", **t.who)[t.noun]
        return {"boundary": (answer.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")}

    def check(self, t, state):
        if state["boundary"] not in (None, t.right_key):
            raise Stop(
                _("The permissions boundary is now %(arn)s, not the one reviewed.")
                % {"arn": state["boundary"]}
            )

    def steps(self, t, state):
        if state["boundary"] != t.right_key:
            return []
        return [Step(f"Delete{t.noun}PermissionsBoundary", dict(t.who))]

    def done(self, t, state):
        return state["boundary"] != t.right_key

    def restore(self, t, before, state):
        if before["boundary"] and state["boundary"] != before["boundary"]:
            return [
                Step(
                    f"Put{t.noun}PermissionsBoundary",
                    {**t.who, "PermissionsBoundary": before["boundary"]},
                )
            ]
        return []

    def assumed(self, t):
        return {"boundary": t.right_key}

    def absent(self, t):
        return {"boundary": None}


class DeactivateKey(Handler):
    """An access key is made inactive; deleting it waits for the grace period (see `delete`).

    The credential report names a key by the second it was created, not by its id: a key is
    found by that second, and two keys created in the same second cannot be told apart."""

    AMBIGUOUS = "ambiguous"

    def read(self, session, t):
        keys = _pages(session, "ListAccessKeys", "AccessKeyMetadata", UserName=t.principal_name)
        same = [
            key
            for key in keys
            if t.key_created and key["CreateDate"].replace(microsecond=0) == t.key_created
        ]
        if len(same) > 1:
            return {"access_key_id": None, "status": self.AMBIGUOUS}
        if same:
            return {"access_key_id": same[0]["AccessKeyId"], "status": same[0]["Status"]}
        return {"access_key_id": None, "status": None}

    def check(self, t, state):
        # Otherwise neither key would look active, and the revocation would pass as done.
        if state["status"] == self.AMBIGUOUS:
            raise Stop(
                _(
                    "The user has two access keys created in the same second: deactivate the "
                    "one reviewed by hand."
                )
            )

    def steps(self, t, state):
        if state["status"] != "Active":
            return []
        return [self._status(t, state["access_key_id"], "Inactive")]

    def done(self, t, state):
        return state["status"] != "Active"

    def restore(self, t, before, state):
        if state["access_key_id"] is None:
            raise Stop(_("The access key was deleted: it cannot be restored."))
        if before["status"] == "Active" and state["status"] != "Active":
            return [self._status(t, state["access_key_id"], "Active")]
        return []

    def delete(self, t, state) -> list[Step]:
        if state["access_key_id"] is None:
            return []
        return [
            Step(
                "DeleteAccessKey",
                {"UserName": t.principal_name, "AccessKeyId": state["access_key_id"]},
            )
        ]

    @staticmethod
    def _status(t, key_id, status) -> Step:
        return Step(
            "UpdateAccessKey",
            {"UserName": t.principal_name, "AccessKeyId": key_id, "Status": status},
        )

    def assumed(self, t):
        return {"access_key_id": ShellValue.key_created(t), "status": "Active"}

    def absent(self, t):
        return {"access_key_id": None, "status": None}


class DeleteLoginProfile(Handler):
    def read(self, session, t):
        try:
            session.call("iam", "GetLoginProfile", UserName=t.principal_name)
        except NoSuchEntity:
            return {"login_profile": False}
        return {"login_profile": True}

    def steps(self, t, state):
        if not state["login_profile"]:
            return []
        return [Step("DeleteLoginProfile", {"UserName": t.principal_name})]

    def done(self, t, state):
        return not state["login_profile"]

    def restore(self, t, before, state):
        # AWS never gives a password back: the console login returns with a new random one
        # that must be reset, which an administrator hands over.
        if before["login_profile"] and not state["login_profile"]:
            return [
                Step(
                    "CreateLoginProfile",
                    {
                        "UserName": t.principal_name,
                        "Password": secrets.token_urlsafe(24) + "aA1!",
                        "PasswordResetRequired": True,
                    },
                )
            ]
        return []

    def assumed(self, t):
        return {"login_profile": True}

    def absent(self, t):
        return {"login_profile": False}


class ReplaceInlinePolicy(Handler):
    """A reduced inline policy is put in place of the original, under its name."""

    def read(self, session, t):
        return DeleteInlinePolicy().read(session, t)

    def check(self, t, state):
        if state["document"] not in (t.reviewed_document, t.replacement):
            raise Stop(
                _(
                    "The inline policy changed since it was reviewed: review it again rather than "
                    "narrow a document nobody saw."
                )
            )

    def steps(self, t, state):
        if state["document"] == t.replacement:
            return []
        return [
            Step(
                f"Put{t.noun}Policy",
                {
                    **t.who,
                    "PolicyName": t.right_key,
                    "PolicyDocument": _document(t.replacement),
                },
            )
        ]

    def done(self, t, state):
        return state["document"] == t.replacement

    def restore(self, t, before, state):
        return DeleteInlinePolicy().restore(t, before, state)

    def assumed(self, t):
        return {"document": t.reviewed_document}

    def absent(self, t):
        return {"document": None}


class SubstitutePolicy(Handler):
    """A reduced managed policy or group membership: a new customer managed policy with only
    what was kept is attached to the principal, then the original grant is taken away. The
    original policy and group are left untouched, so nobody else who holds them is affected."""

    def read(self, session, t):
        attached = _attached(session, t)
        if t.right_kind == Right.Kind.GROUP_MEMBERSHIP:
            original = RemoveFromGroup().read(session, t)["member"]
        else:
            original = t.policy_arn in attached
        return {
            "original": original,
            "replacement_exists": _policy_exists(session, t.replacement_arn),
            "replacement_attached": t.replacement_arn in attached,
            "document": self._current_document(session, t),
        }

    @staticmethod
    def _current_document(session, t) -> dict | None:
        if t.right_kind != Right.Kind.MANAGED_POLICY:
            return None
        try:
            policy = session.call("iam", "GetPolicy", PolicyArn=t.policy_arn)["Policy"]
            version = session.call(
                "iam",
                "GetPolicyVersion",
                PolicyArn=t.policy_arn,
                VersionId=policy["DefaultVersionId"],
            )
        except NoSuchEntity:
            return None
        return version["PolicyVersion"]["Document"]

    def check(self, t, state):
        if (
            t.right_kind == Right.Kind.MANAGED_POLICY
            and state["original"]
            and state["document"] != t.reviewed_document
        ):
            raise Stop(
                _(
                    "The policy's default version changed since it was reviewed: review it again "
                    "rather than narrow a document nobody saw."
                )
            )

    def steps(self, t, state):
        steps = []
        if not state["replacement_exists"]:
            steps.append(
                Step(
                    "CreatePolicy",
                    {
                        "PolicyName": t.replacement_name,
                        "Path": REPLACEMENT_PATH,
                        "PolicyDocument": _document(t.replacement),
                        "Description": f"Reduced by Attest from {t.right_key}"[:1000],
                    },
                )
            )
        if not state["replacement_attached"]:
            steps.append(Step(f"Attach{t.noun}Policy", {**t.who, "PolicyArn": t.replacement_arn}))
        if state["original"]:
            steps.append(self._take_original(t))
        return steps

    @staticmethod
    def _take_original(t) -> Step:
        if t.right_kind == Right.Kind.GROUP_MEMBERSHIP:
            return Step("RemoveUserFromGroup", {"GroupName": t.group, "UserName": t.principal_name})
        return Step(f"Detach{t.noun}Policy", {**t.who, "PolicyArn": t.policy_arn})

    def done(self, t, state):
        return not state["original"] and state["replacement_attached"]

    def restore(self, t, before, state):
        steps = []
        if before["original"] and not state["original"]:
            if t.right_kind == Right.Kind.GROUP_MEMBERSHIP:
                steps.append(
                    Step("AddUserToGroup", {"GroupName": t.group, "UserName": t.principal_name})
                )
            else:
                steps.append(Step(f"Attach{t.noun}Policy", {**t.who, "PolicyArn": t.policy_arn}))
        if state["replacement_attached"]:
            steps.append(Step(f"Detach{t.noun}Policy", {**t.who, "PolicyArn": t.replacement_arn}))
        if state["replacement_exists"]:
            steps.append(Step("DeletePolicy", {"PolicyArn": t.replacement_arn}))
        return steps

    def assumed(self, t):
        return {
            "original": True,
            "replacement_exists": False,
            "replacement_attached": False,
            "document": t.reviewed_document,
        }

    def absent(self, t):
        return {
            "original": False,
            "replacement_exists": False,
            "replacement_attached": False,
            "document": None,
        }


class ShellValue(str):
    """A value a remediation plan computes in the shell, written there unquoted."""

    @classmethod
    def key_created(cls, t: Target) -> ShellValue:
        created = t.key_created.strftime("%Y-%m-%dT%H:%M:%S") if t.key_created else "?"
        query = f"AccessKeyMetadata[?starts_with(CreateDate, '{created}')].AccessKeyId"
        return cls(
            f'"$(aws iam list-access-keys --user-name {shlex.quote(t.principal_name)} '
            f'--query "{query}" --output text)"'
        )


HANDLERS: dict[tuple[str, str], Handler] = {
    (Right.Kind.MANAGED_POLICY, "revoke"): DetachPolicy(),
    (Right.Kind.INLINE_POLICY, "revoke"): DeleteInlinePolicy(),
    (Right.Kind.GROUP_MEMBERSHIP, "revoke"): RemoveFromGroup(),
    (Right.Kind.PERMISSIONS_BOUNDARY, "revoke"): DeleteBoundary(),
    (Right.Kind.ACCESS_KEY, "revoke"): DeactivateKey(),
    (Right.Kind.CONSOLE_PASSWORD, "revoke"): DeleteLoginProfile(),
    (Right.Kind.MANAGED_POLICY, "reduce"): SubstitutePolicy(),
    (Right.Kind.GROUP_MEMBERSHIP, "reduce"): SubstitutePolicy(),
    (Right.Kind.INLINE_POLICY, "reduce"): ReplaceInlinePolicy(),
}


def handler_for(t: Target) -> Handler:
    return HANDLERS[(t.right_kind, t.action)]


def read(session: AwsSession, t: Target) -> dict:
    """The right's state in AWS now; a principal that is gone holds nothing."""
    handler = handler_for(t)
    try:
        return handler.read(session, t)
    except NoSuchEntity:
        return handler.absent(t)


def cli(step: Step) -> str:
    """The AWS CLI command that makes the call."""
    words = ["aws", "iam", _kebab(step.operation)]
    for name, value in step.params.items():
        option = f"--{_kebab(name)}"
        if isinstance(value, bool):
            words.append(option if value else f"--no-{_kebab(name)}")
            continue
        words.append(option)
        if isinstance(value, ShellValue):
            words.append(str(value))
        else:
            words.append(shlex.quote(value if isinstance(value, str) else json.dumps(value)))
    return " ".join(words)


def _kebab(name: str) -> str:
    out = []
    for i, char in enumerate(name):
        if char.isupper() and i and not name[i - 1].isupper():
            out.append("-")
        out.append(char.lower())
    return "".join(out)

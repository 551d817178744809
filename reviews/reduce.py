"""Narrowing an IAM policy document to what a reviewer kept, never widening it.

A reviewer who reduces a policy keeps entries: whole service namespaces ("s3") or single actions
("s3:GetObject", as Access Advisor spells them). `reduce_document` rewrites each Allow statement
so that it names only what was kept and what that statement already allowed; Deny statements,
resources, conditions and principals stay as they were. `diff_lines` shows both documents before
anything is applied.

Patterns are read as IAM reads them: without regard to case, `*` for any run of characters and
`?` for any one. An action name is "service:Action" with a single colon, so what a pattern allows
of one service can be written down exactly (`_within`): that is what keeps every replacement
statement inside the statement it replaces.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from inventory.parse import policy_statements

DEFAULT_VERSION = "2012-10-17"
ENTRY = re.compile(r"(?P<service>[A-Za-z0-9-]+)(?::(?P<action>[A-Za-z0-9*]+))?\Z")
# Action names are ASCII. Folding only ASCII letters keeps every character where it was, so the
# rest of a pattern past a position can be cut from the pattern as written.
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class ReductionError(ValueError):
    """No replacement can be made; the message tells the user why."""


@dataclass(frozen=True)
class _Entry:
    """One kept entry: a whole service (`action` None) or an action of it."""

    service: str
    action: str | None

    def __str__(self) -> str:
        return self.service if self.action is None else f"{self.service}:{self.action}"

    @property
    def is_wildcard(self) -> bool:
        return self.action is not None and "*" in self.action


def _fold(text: str) -> str:
    return text.translate(_FOLD)


def _entries(keep: Iterable[str]) -> list[_Entry]:
    """The kept entries, checked, without duplicates, in the order given."""
    if isinstance(keep, str):
        keep = [keep]
    entries: dict[str, _Entry] = {}
    for raw in keep:
        match = ENTRY.match(raw) if isinstance(raw, str) else None
        if match is None:
            raise ReductionError(
                _(
                    "%(entry)s is neither a service (such as s3) nor an action "
                    "(such as s3:GetObject)."
                )
                % {"entry": repr(raw)}
            )
        entry = _Entry(match["service"].lower(), match["action"])
        entries.setdefault(_fold(str(entry)), entry)
    return list(entries.values())


def _past_stars(pattern: str, positions: Iterable[int]) -> set[int]:
    """The positions, and those past any run of `*` from them: a star may match nothing."""
    reached = set()
    for position in positions:
        reached.add(position)
        while position < len(pattern) and pattern[position] == "*":
            position += 1
            reached.add(position)
    return reached


def _after(pattern: str, text: str) -> set[int]:
    """The positions in `pattern` that matching can stand at once `text` is read: the rest of
    the pattern from any of them may match what follows `text`."""
    pattern, text = _fold(pattern), _fold(text)
    positions = _past_stars(pattern, {0})
    for char in text:
        step = set()
        for position in positions:
            if position == len(pattern):
                continue
            if pattern[position] == "*":
                step.add(position)
            elif pattern[position] in ("?", char):
                step.add(position + 1)
        positions = _past_stars(pattern, step)
    return positions


def _matches(pattern: str, action: str) -> bool:
    """Whether IAM's `pattern` matches `action`. `[` is a plain character to IAM, unlike to
    fnmatch."""
    return len(pattern) in _after(pattern, action)


def _within(pattern: str, service: str) -> list[str]:
    """Patterns of `service` that together allow exactly what `pattern` allows of it: "s3:Get*"
    of s3 is itself, "*" of s3 is "s3:*", "s*:Get*" of s3 is "s3:Get*"; none when the pattern
    allows nothing of the service."""
    prefix = f"{service}:"
    positions = _after(pattern, prefix)
    found = []
    for position in sorted(positions):
        rest = pattern[position:]
        # An action name has no colon: a rest that needs one allows no action of the service.
        if not rest or ":" in rest:
            continue
        # Past a star that is itself reached, the rest allows nothing the star's rest does not.
        if position - 1 in positions and pattern[position - 1] == "*":
            continue
        if set(rest) == {"*"}:
            return [f"{service}:*"]
        found.append(pattern if _fold(pattern[:position]) == prefix else prefix + rest)
    return found


def _covers(pattern: str, entry: _Entry) -> bool:
    """Whether `pattern` allows all that the kept action `entry` names.

    Exact for an action. A kept wildcard ("s3:Get*") is covered only by a pattern that allows
    the whole service or is the same wildcard: that may leave out a wildcard a narrower pattern
    half covers, but never claims more than the pattern allows.
    """
    if not entry.is_wildcard:
        return _matches(pattern, str(entry))
    whole, name = f"{entry.service}:*", _fold(str(entry))
    return any(q == whole or _fold(q) == name for q in _within(pattern, entry.service))


def _patterns(statement: dict, key: str, where: str) -> list[str]:
    value = statement[key]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ReductionError(
            _("In %(where)s, %(key)s is neither an action nor a list of actions.")
            % {"where": where, "key": key}
        )
    return values


def _reduce_action(patterns: list[str], entries: list[_Entry]) -> tuple[list[str], set[_Entry]]:
    """An `Action` statement's patterns narrowed to the entries, and the entries it allows."""
    emitted: list[str] = []
    allowed: set[_Entry] = set()
    for entry in entries:
        if entry.action is not None:
            continue
        found = [q for p in patterns for q in _within(p, entry.service)]
        if found:
            allowed.add(entry)
            whole = f"{entry.service}:*"
            emitted += [whole] if whole in found else found
    for entry in entries:
        if entry.action is None:
            continue
        if any(_covers(q, entry) for q in emitted):
            allowed.add(entry)
        elif any(_covers(p, entry) for p in patterns):
            allowed.add(entry)
            emitted.append(str(entry))
        elif entry.is_wildcard:
            # The statement's own actions that the kept wildcard names, written out.
            named = [
                q
                for p in patterns
                for q in _within(p, entry.service)
                if not any(c in q for c in "*?") and _matches(str(entry), q)
            ]
            if named:
                allowed.add(entry)
                emitted += named
    return emitted, allowed


def _reduce_not_action(excluded: list[str], entries: list[_Entry]) -> tuple[list[str], set[_Entry]]:
    """What a `NotAction` statement (everything but `excluded`) allows of the entries, as
    `Action` patterns, and the entries it allows.

    "s3 except s3:Put*" cannot be written with Action alone, and IAM refuses Action beside
    NotAction: a service the statement allows only in part is left out, unless actions of it
    were kept one by one.
    """

    def whole_service(service: str) -> bool:
        return not any(_within(n, service) for n in excluded)

    emitted: list[str] = []
    allowed: set[_Entry] = set()
    for entry in entries:
        if entry.action is None and whole_service(entry.service):
            allowed.add(entry)
            emitted.append(f"{entry.service}:*")
    for entry in entries:
        if entry.action is None:
            continue
        if any(_covers(q, entry) for q in emitted):
            allowed.add(entry)
        elif (
            whole_service(entry.service)
            if entry.is_wildcard
            else not any(_matches(n, str(entry)) for n in excluded)
        ):
            allowed.add(entry)
            emitted.append(str(entry))
    return emitted, allowed


def _unique_sorted(patterns: list[str]) -> list[str]:
    """Without duplicates (IAM sees "S3:Get*" and "s3:get*" as one), in a stable order."""
    unique: dict[str, str] = {}
    for pattern in patterns:
        unique.setdefault(_fold(pattern), pattern)
    return [unique[key] for key in sorted(unique)]


def _with_actions(statement: dict, actions: list[str]) -> dict:
    """The statement with `actions` in place of its Action or NotAction, all else as it was."""
    result = {}
    for key, value in statement.items():
        if key in ("Action", "NotAction"):
            result["Action"] = actions
        else:
            result[key] = copy.deepcopy(value)
    return result


def _reduce(document: dict, entries: list[_Entry]) -> tuple[list[dict], set[_Entry]]:
    """The document's statements narrowed to the entries, and the entries it allows."""
    statements: list[dict] = []
    allowed: set[_Entry] = set()
    for number, statement in enumerate(policy_statements(document), start=1):
        sid = statement.get("Sid")
        where = (
            _('statement "%(sid)s"') % {"sid": sid}
            if isinstance(sid, str) and sid
            else _("statement %(number)d") % {"number": number}
        )
        effect = statement.get("Effect")
        if effect == "Deny":
            # A Deny only narrows: kept whole, it can never widen the replacement.
            statements.append(copy.deepcopy(statement))
            continue
        if effect != "Allow":
            raise ReductionError(
                _("The Effect of %(where)s is %(effect)s, not Allow or Deny.")
                % {"where": where, "effect": json.dumps(effect)}
            )
        if "Action" in statement and "NotAction" in statement:
            raise ReductionError(
                _("%(where)s has both Action and NotAction, which IAM refuses.") % {"where": where}
            )
        if "Action" in statement:
            actions, kept = _reduce_action(_patterns(statement, "Action", where), entries)
        elif "NotAction" in statement:
            actions, kept = _reduce_not_action(_patterns(statement, "NotAction", where), entries)
        else:
            continue  # names no action: allows nothing
        allowed |= kept
        if actions:
            statements.append(_with_actions(statement, _unique_sorted(actions)))
    return statements, allowed


def reduce_document(document: dict, keep: Iterable[str]) -> dict:
    """A replacement for `document` that allows only what it allowed of the `keep` entries
    (services such as "s3", actions such as "s3:GetObject"), never more.

    Each Allow statement keeps its own patterns of a kept service ("s3:Get*" stays, "*" becomes
    "s3:*") and names a kept action outright when it allowed it ("s3:GetObject" from "s3:*");
    a statement left with nothing is dropped, Deny statements stay. Raises `ReductionError` when
    `keep` is empty or malformed, or when the document allows none of it.
    """
    entries = _entries(keep)
    if not entries:
        raise ReductionError(_("Choose at least one service or action to keep."))
    statements, allowed = _reduce(document, entries)
    if not allowed:
        raise ReductionError(
            _("The policy allows none of what was kept: %(entries)s.")
            % {"entries": ", ".join(str(e) for e in entries)}
        )
    result = {"Version": document.get("Version", DEFAULT_VERSION)}
    for key, value in document.items():
        if key not in ("Version", "Statement"):
            result[key] = copy.deepcopy(value)
    result["Statement"] = statements
    return result


def allowed_entries(document: dict, keep: Iterable[str]) -> list[str]:
    """The `keep` entries the document allows something of, in the order given: what a
    reduction keeps. Deny statements are not weighed, as in `inventory.policies`."""
    entries = _entries(keep)
    _statements, allowed = _reduce(document, entries)
    return [str(entry) for entry in entries if entry in allowed]


def diff_lines(before: dict, after: dict) -> list[str]:
    """A unified diff of two policy documents as indented JSON, `current` to `replacement`;
    empty when they are the same."""

    def lines(document: dict) -> list[str]:
        return json.dumps(document, indent=2, ensure_ascii=False).splitlines()

    return list(
        difflib.unified_diff(
            lines(before), lines(after), fromfile="current", tofile="replacement", lineterm=""
        )
    )


def merged(documents: list[dict]) -> dict:
    """Several policies (a group's) as one document holding all their statements."""
    if len(documents) == 1:
        return documents[0]
    statements = []
    for document in documents:
        found = document.get("Statement", [])
        statements += found if isinstance(found, list) else [found]
    return {"Version": DEFAULT_VERSION, "Statement": statements}


def diff_rows(documents: list[dict], replacement: dict) -> list[dict]:
    """The replacement against the reviewed policies, line by line, each line marked as the
    file header, a hunk header, added, removed or unchanged (for display)."""
    if not documents:
        return []
    rows = []
    for line in diff_lines(merged(documents), replacement):
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "added", "-": "removed"}.get(line[:1], "")
        rows.append({"text": line, "kind": kind})
    return rows

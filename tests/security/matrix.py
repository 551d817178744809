"""Who gets what from every web page: the access matrix.

One row per URL name, method and object: the status each role gets, in the order of ROLES. A
URL with an object is asked for twice: with the acting person's own object (OWN: the reviewer's
item, account, run or principal; the campaign the reviewer has items in, owned by the manager;
its remediation) and with someone else's (OTHER: another reviewer's, another manager's), so an
id swapped in a URL or a form is a row like any other. Objects and form data come from the
world in tests/security/conftest.py; `data` gives what a form posts, from that world.

Every URL pattern needs a row: tests/security/test_matrix.py walks the resolver and fails for
one without. Methods a URL has no row for must answer 405 (302 to the sign-in page first for
someone not signed in). Django's admin is one rule for its whole namespace (test_matrix). The
REST API's rows live in matrix_api.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

ROLES = ("anonymous", "reviewer", "manager", "auditor", "admin", "outsider")
OWN, OTHER, NONE = "own", "other", "-"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    target: str
    statuses: tuple[int, ...]
    data: Callable | None = None
    json: bool = False

    def status_of(self, role: str) -> int:
        return self.statuses[ROLES.index(role)]


def row(name, method, target, anon, reviewer, manager, auditor, admin, outsider, data=None):
    return Row(name, method, target, (anon, reviewer, manager, auditor, admin, outsider), data)


# Form data, from the world and the object the row is about ----------------------------------


def _decision(w, target):
    item = w.item[target]
    return {"decision": "keep", "reason": "Still needed.", "version": item.version}


def _bulk(w, target):
    return {"item": [str(w.item[target].uuid)], "decision": "keep", "reason": "Still needed."}


def _reassign_item(w, target):
    # To the other reviewer of the two, so that the item changes hands.
    to = w.users["rob"] if target == OWN else w.users["reviewer"]
    return {"to": to.username, "reason": "Looks after these roles now."}


def _new_campaign(w, target):
    due = timezone.localdate() + timedelta(days=30)
    return {"name": "Next quarter", "due_date": due.isoformat(), "accounts": [w.account[OWN].pk]}


def _campaign_reassign(w, target):
    item = w.campaign_item_of_rob[target]
    return {"items": [str(item.uuid)], "reviewer": w.users["reviewer"].pk, "reason": "Cover."}


def _signoff(w, target):
    return {"password": PASSWORD, "statement": "Reviewed and attested."}


def _password(w, target):
    return {"password": PASSWORD}


def _reason(w, target):
    return {"reason": "Accepted by the risk owner."}


def _ticket(w, target):
    return {"ticket": "CHG-1234"}


def _wrong_sign_in(w, target):
    return {"username": "nobody", "password": "not a password"}


def _language(w, target):
    return {"language": "ja", "next": "/"}


# The table ----------------------------------------------------------------------------------
# 302: a redirect (to the sign-in page for anonymous, elsewhere after a change); 200: the page
# (or a form shown again with its error); 204: nothing to show; 403: in sight but not allowed;
# 404: out of sight, whether it exists or not.

#   URL name                             method  object  anon rev  man  aud  adm  out
ROWS = [
    row("home",                          "GET",  NONE,   302, 200, 200, 200, 200, 200),
    row("login",                         "GET",  NONE,   200, 200, 200, 200, 200, 200),
    row("login",                         "POST", NONE,   200, 200, 200, 200, 200, 200, _wrong_sign_in),
    row("logout",                        "POST", NONE,   302, 302, 302, 302, 302, 302),
    row("set_language",                  "POST", NONE,   302, 302, 302, 302, 302, 302, _language),
    # The inventory: the roles that see it see every account; a reviewer sees the accounts
    # they own, and the rest is not there for them.
    row("inventory:accounts",            "GET",  NONE,   302, 200, 200, 200, 200, 200),
    row("inventory:account",             "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("inventory:account",             "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("inventory:collect",             "POST", OWN,    302, 403, 302, 403, 302, 404),
    row("inventory:collect",             "POST", OTHER,  302, 404, 302, 403, 302, 404),
    row("inventory:collect-all",         "POST", NONE,   302, 403, 302, 403, 302, 403),
    row("inventory:run",                 "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("inventory:run",                 "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("inventory:principals",          "GET",  NONE,   302, 200, 200, 200, 200, 200),
    row("inventory:principal",           "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("inventory:principal",           "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("audit:events",                  "GET",  NONE,   302, 403, 200, 200, 200, 403),
    # A reviewer's work: their own items; the overseers look at anyone's and decide none.
    row("reviews:queue",                 "GET",  NONE,   302, 200, 200, 200, 200, 200),
    row("reviews:bulk",                  "POST", OWN,    302, 302, 403, 403, 403, 404, _bulk),
    row("reviews:bulk",                  "POST", OTHER,  302, 404, 403, 403, 403, 404, _bulk),
    row("reviews:item",                  "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("reviews:item",                  "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:decide",                "POST", OWN,    302, 302, 403, 403, 403, 404, _decision),
    row("reviews:decide",                "POST", OTHER,  302, 404, 403, 403, 403, 404, _decision),
    row("reviews:reassign",              "POST", OWN,    302, 302, 302, 403, 302, 404, _reassign_item),
    row("reviews:reassign",              "POST", OTHER,  302, 404, 302, 403, 302, 404, _reassign_item),
    row("reviews:replacement",           "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("reviews:replacement",           "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    # Campaigns: the overseers see all; a reviewer sees those they have items in, read-only.
    row("reviews:campaigns",             "GET",  NONE,   302, 200, 200, 200, 200, 200),
    row("reviews:campaign-new",          "GET",  NONE,   302, 403, 200, 403, 200, 403),
    row("reviews:campaign-new",          "POST", NONE,   302, 403, 302, 403, 302, 403, _new_campaign),
    row("reviews:campaign",              "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("reviews:campaign",              "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:campaign-items",        "GET",  OWN,    302, 200, 200, 200, 200, 404),
    row("reviews:campaign-items",        "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:launch",                "POST", OWN,    302, 403, 302, 403, 302, 404),
    row("reviews:launch",                "POST", OTHER,  302, 404, 302, 403, 302, 404),
    row("reviews:close",                 "POST", OWN,    302, 403, 302, 403, 302, 404),
    row("reviews:close",                 "POST", OTHER,  302, 404, 302, 403, 302, 404),
    row("reviews:remind",                "POST", OWN,    302, 403, 302, 403, 302, 404),
    row("reviews:remind",                "POST", OTHER,  302, 404, 302, 403, 302, 404),
    row("reviews:campaign-reassign",     "POST", OWN,    302, 403, 302, 403, 302, 404, _campaign_reassign),
    row("reviews:campaign-reassign",     "POST", OTHER,  302, 404, 302, 403, 302, 404, _campaign_reassign),
    # Sign-off: the campaign's own manager alone; other managers see that it is not theirs.
    row("reviews:signoff",               "GET",  OWN,    302, 403, 200, 403, 403, 404),
    row("reviews:signoff",               "GET",  OTHER,  302, 404, 403, 403, 403, 404),
    row("reviews:signoff",               "POST", OWN,    302, 403, 200, 403, 403, 404, _signoff),
    row("reviews:signoff",               "POST", OTHER,  302, 404, 403, 403, 403, 404, _signoff),
    # Evidence and remediation: for the roles that oversee campaigns; absent for the others.
    row("reviews:evidence",              "GET",  OWN,    302, 404, 200, 200, 200, 404),
    row("reviews:evidence",              "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:evidence",              "POST", OWN,    302, 404, 200, 200, 200, 404, _password),
    row("reviews:evidence",              "POST", OTHER,  302, 404, 200, 200, 200, 404, _password),
    row("reviews:remediations",          "GET",  OWN,    302, 404, 200, 200, 200, 404),
    row("reviews:remediations",          "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:remediations-summary",  "GET",  OWN,    302, 404, 200, 200, 200, 404),
    row("reviews:remediations-summary",  "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:remediations-approve",  "POST", OWN,    302, 404, 302, 403, 302, 404),
    row("reviews:remediations-approve",  "POST", OTHER,  302, 404, 302, 403, 302, 404),
    # The plan of an account whose manual remediation is in this campaign; OTHER names an
    # account whose remediations are in another campaign.
    row("reviews:remediation-plan",      "GET",  OWN,    302, 404, 200, 200, 200, 404),
    row("reviews:remediation-plan",      "GET",  OTHER,  302, 404, 404, 404, 404, 404),
    row("reviews:remediation",           "GET",  OWN,    302, 404, 200, 200, 200, 404),
    row("reviews:remediation",           "GET",  OTHER,  302, 404, 200, 200, 200, 404),
    row("reviews:remediation-rollback",  "POST", OWN,    302, 404, 200, 403, 200, 404, _reason),
    row("reviews:remediation-rollback",  "POST", OTHER,  302, 404, 200, 403, 200, 404, _reason),
    row("reviews:remediation-except",    "POST", OWN,    302, 404, 302, 403, 302, 404, _reason),
    row("reviews:remediation-except",    "POST", OTHER,  302, 404, 302, 403, 302, 404, _reason),
    row("reviews:remediation-confirm",   "POST", OWN,    302, 404, 302, 403, 302, 404, _ticket),
    row("reviews:remediation-confirm",   "POST", OTHER,  302, 404, 200, 403, 200, 404, _ticket),
    row("reviews:remediation-retry",     "POST", OWN,    302, 404, 200, 403, 200, 404),
    row("reviews:remediation-retry",     "POST", OTHER,  302, 404, 200, 403, 200, 404),
]  # fmt: skip

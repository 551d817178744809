"""Who gets what from the REST API under /api/: its rows of the access matrix.

Rows as in matrix.py, one per URL name, method and object; `json` rows send their data as a JSON
body. The matrix asks as a browser signed in to the pages would (the session); a token acts with
its user's roles the same way (tests/config/test_api_tokens.py). Someone not signed in gets 401,
not the sign-in page, except on the documentation page, which is for people.

A URL pattern of the API without a row fails tests/security/test_matrix.py like any other;
OBJECTS adds what the API's URLs name to matrix.py's, from the same world.
"""

from __future__ import annotations

from dataclasses import replace

from audit.models import AuditEvent
from reviews.models import CampaignDefinition
from tests.security.matrix import NONE, OTHER, OWN
from tests.security.matrix import row as page_row

NAMESPACE = "api:"
# Pages among the API's URLs: someone not signed in is sent to the sign-in page.
FOR_PEOPLE = {"api:docs"}


def row(*args, **kwargs):
    """A row of the matrix whose data goes as a JSON body."""
    return replace(page_row(*args, **kwargs), json=True)


def _definition(w, target=OWN):
    return CampaignDefinition.objects.get_or_create(
        name="Quarterly review", defaults={"owner": w.users["manager"]}
    )[0]


def _launch(w, target):
    return {"definition": _definition(w).pk}


def _decision(w, target):
    item = w.item[target]
    return {"decision": "keep", "reason": "Still needed.", "version": item.version}


def _bulk(w, target):
    return {"items": [str(w.item[target].uuid)], "decision": "keep", "reason": "Still needed."}


def _reassign(w, target):
    to = w.users["rob"] if target == OWN else w.users["reviewer"]
    return {
        "items": [str(w.item[target].uuid)],
        "reviewer": to.username,
        "reason": "Looks after these roles now.",
    }


# What each of the API's URL arguments names, for the row's object.
OBJECTS = {
    "run_id": lambda w, target: w.run[target].uuid,
    "principal_id": lambda w, target: w.principal[target].uuid,
    "campaign_id": lambda w, target: w.campaign[target].uuid,
    "item_id": lambda w, target: w.item[target].uuid,
    "remediation_id": lambda w, target: w.remediation[target].uuid,
    "definition_id": lambda w, target: _definition(w).pk,
    "event_id": lambda w, target: AuditEvent.objects.order_by("id").values_list("id", flat=True)[0],
}

# 401: not signed in; 201/202: made, started; 409: refused by the object's state (payments-prod,
# the reviewer's account, is import-only and not collected live).

#   URL name                       method  object  anon rev  man  aud  adm  out
ROWS = [
    row("api:api-root",            "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:schema",              "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:docs",                "GET",  NONE,   302, 200, 200, 200, 200, 200),
    # The inventory, as its pages.
    row("api:account-list",        "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:account-detail",      "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:account-detail",      "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    row("api:account-runs",        "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:account-runs",        "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    row("api:account-collect",     "POST", OWN,    401, 403, 409, 403, 409, 404),
    row("api:account-collect",     "POST", OTHER,  401, 404, 202, 403, 202, 404),
    row("api:run-list",            "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:run-detail",          "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:run-detail",          "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    row("api:principal-list",      "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:principal-detail",    "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:principal-detail",    "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    # Campaigns: the overseers see all, a reviewer those they have items in; managers launch.
    row("api:definition-list",     "GET",  NONE,   401, 403, 200, 403, 200, 403),
    row("api:definition-detail",   "GET",  OWN,    401, 403, 200, 403, 200, 403),
    row("api:campaign-list",       "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:campaign-list",       "POST", NONE,   401, 403, 201, 403, 201, 403, _launch),
    row("api:campaign-detail",     "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:campaign-detail",     "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    row("api:campaign-items",      "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:campaign-items",      "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    # Items: a reviewer decides their own; the overseers look at anyone's and decide none.
    row("api:item-list",           "GET",  NONE,   401, 200, 200, 200, 200, 200),
    row("api:item-detail",         "GET",  OWN,    401, 200, 200, 200, 200, 404),
    row("api:item-detail",         "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    row("api:item-decision",       "POST", OWN,    401, 200, 403, 403, 403, 404, _decision),
    row("api:item-decision",       "POST", OTHER,  401, 404, 403, 403, 403, 404, _decision),
    row("api:item-bulk-decision",  "POST", OWN,    401, 200, 403, 403, 403, 404, _bulk),
    row("api:item-bulk-decision",  "POST", OTHER,  401, 404, 403, 403, 403, 404, _bulk),
    row("api:item-reassign",       "POST", OWN,    401, 200, 200, 403, 200, 404, _reassign),
    row("api:item-reassign",       "POST", OTHER,  401, 404, 200, 403, 200, 404, _reassign),
    # Remediation and the audit trail: for the roles that oversee.
    row("api:remediation-list",    "GET",  NONE,   401, 403, 200, 200, 200, 403),
    row("api:remediation-detail",  "GET",  OWN,    401, 404, 200, 200, 200, 404),
    row("api:remediation-detail",  "GET",  OTHER,  401, 404, 200, 200, 200, 404),
    row("api:audit-event-list",    "GET",  NONE,   401, 403, 200, 200, 200, 403),
    row("api:audit-event-detail",  "GET",  OWN,    401, 403, 200, 200, 200, 403),
]  # fmt: skip

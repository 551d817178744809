"""Hostile input where users and AWS accounts can put it: every filter and sort parameter of the
pages and the API, reasons that are huge or full of control characters, and markup in what an
AWS account names. Nothing answers 5xx, nothing hostile is saved, and what is saved is shown as
text. (Malformed import files are refused in tests/inventory/test_import.py, the evidence CSVs
are checked for formulas in tests/reviews/test_evidence.py, and the parsers and the reducer are
tried on generated input in test_properties.py.)
"""

import json

import pytest
from django.test import Client
from django.urls import reverse

from audit.filters import AuditEventFilter
from inventory import api as inventory_api
from inventory.filters import PrincipalFilter
from reviews import api as reviews_api
from reviews import tallies
from reviews.decide import MAX_REASON
from reviews.models import Decision, ReviewItem
from reviews.views.manager import ItemFilter
from reviews.views.remediation import RemediationFilter
from reviews.views.reviewer import QueueFilter
from tests import factories
from tests.reliability.conftest import assert_nothing_lost
from tests.reviews.builders import launched

# Each is a value an attacker or a broken client sends: SQL, markup, NUL and other control
# characters, numbers past any column, negative and fractional pages, path tricks, odd dates,
# a huge value, unicode, JSON and a UUID that names nothing.
HOSTILE = [
    "' OR 1=1; DROP TABLE reviews_reviewitem; --",
    "<script>alert(1)</script>",
    "\x00",
    "a\x1b[31mb\x7f",
    "9" * 40,
    "-1",
    "../../../etc/passwd",
    "2026-02-30",
    "x" * 10_000,
    "名前\u202e",
    "00000000-0000-0000-0000-000000000000",
]
# The values most likely to break a query or the trail, tried on every parameter in `make test`;
# all of the above in `make reliability`.
FAST = ["' OR 1=1; --<script>alert(1)</script>", "\x00", "9" * 40]
# Parameters every list takes beside its filters: pages, sort and the API's cursor.
COMMON = ["page", "sort", "ordering", "cursor", "page_size", "q", "format"]


def parameters(filterset) -> list[str]:
    return sorted({*filterset.base_filters, *COMMON})


@pytest.mark.parametrize(
    "values",
    [pytest.param(FAST, id="fast"), pytest.param(HOSTILE, id="all", marks=pytest.mark.reliability)],
)
def test_hostile_values_in_every_filter_and_sort_parameter_never_fail_the_server(
    values, api, account, reviewer, manager, auditor
):
    client = Client(raise_request_exception=False)
    campaign = launched(manager, [account])
    pages = [
        (reviewer, reverse("reviews:queue"), QueueFilter),
        (manager, reverse("reviews:campaign-items", args=[campaign.uuid]), ItemFilter),
        (manager, reverse("reviews:remediations", args=[campaign.uuid]), RemediationFilter),
        (manager, reverse("reviews:campaigns"), None),
        (auditor, reverse("inventory:principals"), PrincipalFilter),
        (auditor, reverse("audit:events"), AuditEventFilter),
    ]
    endpoints = [
        (reviewer, "/api/items/", reviews_api.ItemFilter),
        (manager, f"/api/campaigns/{campaign.pk}/items/", reviews_api.ItemFilter),
        (manager, "/api/remediations/", reviews_api.RemediationFilter),
        (auditor, "/api/principals/", inventory_api.PrincipalFilter),
        (auditor, "/api/audit-events/", AuditEventFilter),
        (auditor, "/api/campaigns/", None),
        (auditor, "/api/accounts/", None),
    ]
    failures = []
    for user, url, filterset in pages:
        client.force_login(user)
        names = parameters(filterset) if filterset else [*COMMON, "state"]
        for name in names:
            for value in values:
                response = client.get(url, {name: value})
                if response.status_code >= 500:
                    failures.append((url, name, value[:40], response.status_code))
    for user, url, filterset in endpoints:
        signed_in = api(user)
        signed_in.raise_request_exception = False
        names = parameters(filterset) if filterset else COMMON
        for name in names:
            for value in values:
                response = signed_in.get(url, {name: value})
                if response.status_code >= 500:
                    failures.append((url, name, value[:40], response.status_code))
    assert failures == []


def test_hostile_values_as_a_repeated_parameter_never_fail_the_server(client, reviewer, account):
    client.force_login(reviewer)
    url = reverse("reviews:queue")
    for name in parameters(QueueFilter):
        response = client.get(url, {name: HOSTILE})
        assert response.status_code < 500, (name, response.status_code)


@pytest.fixture
def item(account, reviewer, manager):
    campaign = launched(manager, [account])
    return campaign.items.filter(reviewer=reviewer).order_by("pk").first()


def test_an_oversized_reason_is_refused_with_its_length_and_nothing_is_saved(
    client, reviewer, item
):
    client.force_login(reviewer)
    response = client.post(
        reverse("reviews:decide", args=[item.uuid]),
        {"decision": "revoke", "reason": "r" * 100_000, "version": item.version},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 400
    assert f"100000 characters long; at most {MAX_REASON}" in response.content.decode()
    item.refresh_from_db()
    assert item.decision == ""
    assert_nothing_lost(accepted=0)


def test_control_characters_are_taken_out_of_a_reason_before_it_is_saved(client, reviewer, item):
    client.force_login(reviewer)
    reason = "No longer\x01 needed\x1b[31m by\x08 the\x7f team.\r\nSee ticket\tSEC-12."
    response = client.post(
        reverse("reviews:decide", args=[item.uuid]),
        {"decision": "revoke", "reason": reason, "version": item.version},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert Decision.objects.get(item=item).reason == (
        "No longer needed[31m by the team.\r\nSee ticket\tSEC-12."
    )
    assert_nothing_lost(accepted=1)


def test_a_reason_of_control_characters_only_is_no_reason(client, reviewer, item):
    client.force_login(reviewer)
    response = client.post(
        reverse("reviews:decide", args=[item.uuid]),
        {"decision": "revoke", "reason": "\x07\x1b \x0b\x1f", "version": item.version},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 400
    assert "A reason is required" in response.content.decode()
    assert_nothing_lost(accepted=0)


def test_a_reason_holding_a_nul_character_is_refused_saying_so(client, reviewer, item):
    client.force_login(reviewer)
    response = client.post(
        reverse("reviews:decide", args=[item.uuid]),
        {"decision": "revoke", "reason": "Gone\x00 for good", "version": item.version},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 400
    assert "Null characters are not allowed" in response.content.decode()
    item.refresh_from_db()
    assert item.decision == ""
    assert_nothing_lost(accepted=0)


SCRIPT = "<script>alert('owned')</script>"


def test_markup_an_aws_account_puts_in_names_and_tags_is_shown_as_text(
    client, account, reviewer, manager, auditor
):
    run = account.current_run
    principal = factories.PrincipalFactory(
        account=account,
        kind="role",
        name="ops-<img src=x onerror=alert(1)>",
        arn=f"arn:aws:iam::{account.account_id}:role/ops-x",
        tags={"owner": SCRIPT, "名前": "ユルゲン"},
        first_seen_run=run,
    )
    from inventory.models import Right

    Right.objects.create(
        principal=principal,
        kind=Right.Kind.INLINE_POLICY,
        key=f"policy-{SCRIPT}",
        document=factories.S3_READ_DOCUMENT,
        first_seen_run=run,
    )
    campaign = launched(manager, [account])
    hostile = campaign.items.get(principal_arn=principal.arn)
    ReviewItem.objects.filter(pk=hostile.pk).update(reviewer=reviewer)
    tallies.recount(campaign.pk)

    pages = [
        (auditor, reverse("inventory:principals")),
        (auditor, reverse("inventory:principal", args=[principal.uuid])),
        (reviewer, reverse("reviews:queue")),
        (reviewer, reverse("reviews:item", args=[hostile.uuid])),
        (manager, reverse("reviews:campaign-items", args=[campaign.uuid])),
    ]
    for user, url in pages:
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in html or (
            "ops-&lt;img src=x onerror=alert(1)&gt;" in html
        ), url
    # The API gives the same text back as data, unchanged.
    answer = json.loads(api_item(client, reviewer, hostile))
    assert answer["right_key"] == f"policy-{SCRIPT}"


def api_item(client, reviewer, item) -> str:
    client.force_login(reviewer)
    response = client.get(f"/api/items/{item.uuid}/")
    assert response.status_code == 200
    return response.content.decode()

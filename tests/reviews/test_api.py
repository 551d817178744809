"""The REST API of campaigns, items, decisions and remediations: the pages' rules over HTTP.

`campaign` (tests/reviews/conftest.py) holds 6 items of the reviewer's account and 6 orphans.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from audit.models import AuditEvent
from config import roles
from inventory.models import CollectionRun, Principal
from reviews.decide import Choice, decide
from reviews.models import Campaign, Decision, Remediation, ReviewItem
from tests import factories
from tests.reviews.builders import add_principal, definition, item, launched

REASON = "Confirmed with the team lead."


@pytest.fixture
def lena(db):
    """A person with no role, who can be given items to review."""
    return factories.UserFactory(username="lena.lead", email="lena.lead@example.com")


def _ids(response) -> set[str]:
    return {row["id"] for row in response.json()["results"]}


def _uuids(items) -> set[str]:
    return {str(i.uuid) for i in items}


def _orphans(campaign) -> list[ReviewItem]:
    return list(campaign.items.filter(reviewer__isnull=True).order_by("pk"))


def _decide(api_client, item, body, **headers):
    return api_client.post(f"/api/items/{item.uuid}/decision/", body, format="json", **headers)


# Reading ----------------------------------------------------------------------------------------


def test_a_reviewer_lists_their_own_items_and_managers_and_auditors_all(
    api, campaign, items, reviewer, manager, auditor, outsider
):
    assert _ids(api(reviewer).get("/api/items/")) == _uuids(items)
    everything = _uuids(campaign.items.all())
    assert _ids(api(manager).get("/api/items/")) == everything
    assert _ids(api(auditor).get(f"/api/campaigns/{campaign.uuid}/items/")) == everything
    assert _ids(api(outsider).get("/api/items/")) == set()


def test_item_filters_narrow_the_list(api, campaign, items, manager):
    client = api(manager)
    base = f"/api/campaigns/{campaign.uuid}/items/"
    assert _ids(client.get(base, {"reviewer": "none"})) == _uuids(_orphans(campaign))
    assert _ids(client.get(base, {"reviewer": "rita.reviewer"})) == _uuids(items)
    assert _ids(client.get(base, {"account": "111122223333"})) == _uuids(items)
    assert _ids(client.get(base, {"q": "payments-prod-role"})) == _uuids(items)
    decide(items[0], items[0].reviewer, Choice("keep", REASON))
    assert _ids(client.get("/api/items/", {"decision": "keep"})) == {str(items[0].uuid)}
    assert len(_ids(client.get("/api/items/", {"decision": "undecided"}))) == 11
    kind = items[0].recommendation
    recommended = {str(i.uuid) for i in campaign.items.all() if i.recommendation == kind}
    assert 0 < len(recommended) < 12
    assert _ids(client.get(base, {"recommendation": kind})) == recommended
    response = client.get(base, {"decision": "maybe"})
    assert response.status_code == 400
    assert "decision" in response.json()


def test_one_item_shows_what_the_reviewer_sees_with_its_version_as_etag(
    api, campaign, items, reviewer
):
    response = api(reviewer).get(f"/api/items/{items[0].uuid}/")
    assert response.status_code == 200
    body = response.json()
    assert response["ETag"] == f'"{items[0].version}"'
    assert body["facts"] == items[0].facts
    assert body["principal_arn"] == items[0].principal_arn
    assert body["decisions"] == []


def test_items_and_campaigns_out_of_reach_are_404(api, campaign, items, outsider, reviewer):
    client = api(outsider)
    assert client.get(f"/api/items/{items[0].uuid}/").status_code == 404
    assert client.get(f"/api/campaigns/{campaign.uuid}/").status_code == 404
    assert client.get(f"/api/campaigns/{campaign.uuid}/items/").status_code == 404
    assert _ids(client.get("/api/campaigns/")) == set()
    # A reviewer reaches the campaign they have items in, never someone else's item.
    assert api(reviewer).get(f"/api/campaigns/{campaign.uuid}/").status_code == 200
    orphan = _orphans(campaign)[0]
    assert api(reviewer).get(f"/api/items/{orphan.uuid}/").status_code == 404


def test_a_campaign_shows_its_progress(api, campaign, items, reviewer, manager):
    decide(items[0], reviewer, Choice("keep", REASON))
    (row,) = api(manager).get("/api/campaigns/").json()["results"]
    assert row["id"] == str(campaign.uuid)
    assert (row["item_count"], row["decided"], row["state"]) == (12, 1, "active")
    assert row["owner"] == "max.manager"


def test_lists_are_cursor_paginated(api, campaign, manager):
    client = api(manager)
    first = client.get("/api/items/", {"page_size": 5}).json()
    second = client.get(first["next"]).json()
    third = client.get(second["next"]).json()
    seen = [row["id"] for page in (first, second, third) for row in page["results"]]
    assert len(seen) == len(set(seen)) == 12
    assert third["next"] is None


def test_list_queries_stay_constant_however_many_rows(api, api_queries, account, campaign, manager):
    client = api(manager)
    urls = [
        "/api/items/",
        f"/api/campaigns/{campaign.uuid}/items/",
        "/api/campaigns/",
        "/api/remediations/",
        "/api/definitions/",
    ]
    before = {url: api_queries(client, url) for url in urls}
    for n in range(4):
        add_principal(account, f"extra-{n}")
    launched(manager, [account], definition=definition(manager))
    more = campaign.items.filter(reviewer__isnull=False)[:3]
    for review_item in more:
        _remediation(review_item)
    definition(manager)
    after = {url: api_queries(client, url) for url in urls}
    assert after == before


# Deciding ---------------------------------------------------------------------------------------


def test_a_reviewer_decides_with_the_etag_and_it_is_recorded(api, campaign, items, reviewer):
    target = items[0]
    response = _decide(
        api(reviewer), target, {"decision": "keep", "reason": REASON}, HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200, response.json()
    assert response.json()["decision"] == "keep"
    assert response["ETag"] == '"2"'
    decision = Decision.objects.get(item=target)
    assert (decision.decided_by, decision.reason) == (reviewer, REASON)
    assert AuditEvent.objects.filter(action="decision.made", object_id=str(target.pk)).exists()


def test_a_decision_on_a_changed_item_is_refused_with_its_current_state(
    api, campaign, items, reviewer
):
    target = items[0]
    decide(target, reviewer, Choice("keep", REASON))
    response = _decide(
        api(reviewer), target, {"decision": "revoke", "reason": REASON, "version": 1}
    )
    assert response.status_code == 412
    assert response.json()["code"] == "stale"
    assert response.json()["current"]["decision"] == "keep"
    assert response.json()["current"]["version"] == 2
    assert list(Decision.objects.filter(item=target).values_list("decision", flat=True)) == ["keep"]


def test_a_decision_without_a_version_is_refused(api, campaign, items, reviewer):
    response = _decide(api(reviewer), items[0], {"decision": "keep", "reason": REASON})
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert not Decision.objects.exists()


def test_the_campaigns_reason_rules_hold(api, campaign, items, reviewer):
    response = _decide(api(reviewer), items[0], {"decision": "revoke", "version": 1})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "A reason is required for this decision.",
        "code": "reason_required",
    }
    assert not Decision.objects.exists()


def test_a_reduction_keeps_only_what_the_right_allows(api, campaign, items, reviewer):
    inline = next(i for i in items if i.right_kind == "inline_policy")
    client = api(reviewer)
    response = _decide(
        client, inline, {"decision": "reduce", "keep_actions": ["ec2"], "version": 1}
    )
    assert response.status_code == 400
    assert "does not allow ec2" in response.json()["detail"]
    choices = client.get(f"/api/items/{inline.uuid}/").json()["keep_choices"]
    assert "s3" in choices
    response = _decide(client, inline, {"decision": "reduce", "keep_actions": ["s3"], "version": 1})
    assert response.status_code == 200, response.json()
    assert Decision.objects.get(item=inline).keep == ["s3"]


def test_an_auditor_reads_but_may_not_decide(api, campaign, items, auditor):
    response = _decide(api(auditor), items[0], {"decision": "keep", "version": 1})
    assert response.status_code == 403
    assert response.json()["code"] == "not_yours"
    assert not Decision.objects.exists()


def test_an_outsider_cannot_decide_an_item_they_cannot_see(api, campaign, items, outsider):
    response = _decide(api(outsider), items[0], {"decision": "keep", "version": 1})
    assert response.status_code == 404
    assert not Decision.objects.exists()


def test_deciding_ones_own_access_is_refused_and_recorded(api, account, reviewer, manager):
    add_principal(account, "r.smith", kind=Principal.Kind.USER)
    campaign = launched(manager, [account])
    own = item(campaign, "r.smith", "inline_policy")
    reviewer.email = "r.smith@example.com"
    reviewer.save()
    response = _decide(api(reviewer), own, {"decision": "keep", "version": own.version})
    assert response.status_code == 403
    assert response.json()["code"] == "self_review"
    assert AuditEvent.objects.filter(action="decision.refused", object_id=str(own.pk)).exists()


def test_a_closed_campaign_takes_no_decision(api, campaign, items, reviewer):
    Campaign.objects.filter(pk=campaign.pk).update(state=Campaign.State.CLOSED)
    response = _decide(
        api(reviewer), items[0], {"decision": "keep", "reason": REASON, "version": 1}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "closed"


def test_a_decision_is_only_posted(api, campaign, items, reviewer):
    client = api(reviewer)
    assert client.get(f"/api/items/{items[0].uuid}/decision/").status_code == 405
    assert client.delete(f"/api/items/{items[0].uuid}/").status_code == 405
    assert client.post("/api/items/", {}, format="json").status_code == 405


def test_bad_decision_bodies_name_what_is_wrong(api, campaign, items, reviewer):
    client = api(reviewer)
    response = _decide(client, items[0], {"decision": "approve", "version": 1})
    assert response.status_code == 400
    assert "decision" in response.json()
    for etag in ("x", '"²"', '"99999999999"', '"0"'):
        response = _decide(client, items[0], {"decision": "keep"}, HTTP_IF_MATCH=etag)
        assert response.status_code == 400
        assert "If-Match" in response.json()
    response = _decide(client, items[0], {"decision": "keep", "version": 2**40})
    assert response.status_code == 400
    assert "version" in response.json()
    response = client.post(
        f"/api/items/{items[0].uuid}/decision/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert not Decision.objects.exists()


# Many items -------------------------------------------------------------------------------------


def test_a_reviewer_bulk_decides_their_items(api, campaign, items, reviewer):
    chosen = [str(i.uuid) for i in items[:3]]
    response = api(reviewer).post(
        "/api/items/bulk-decision/",
        {"items": chosen, "decision": "revoke", "reason": REASON},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"count": 3}
    assert set(Decision.objects.values_list("bulk_size", flat=True)) == {3}


def test_a_bulk_decision_naming_an_item_out_of_reach_decides_nothing(
    api, campaign, items, reviewer
):
    chosen = [str(items[0].uuid), str(_orphans(campaign)[0].uuid)]
    response = api(reviewer).post(
        "/api/items/bulk-decision/",
        {"items": chosen, "decision": "keep", "reason": REASON},
        format="json",
    )
    assert response.status_code == 404
    assert not Decision.objects.exists()


def test_a_manager_may_not_bulk_decide_a_reviewers_items(api, campaign, items, manager):
    response = api(manager).post(
        "/api/items/bulk-decision/",
        {"items": [str(items[0].uuid)], "decision": "keep", "reason": REASON},
        format="json",
    )
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_a_manager_reassigns_orphans(api, campaign, manager, lena):
    orphans = _orphans(campaign)[:2]
    response = api(manager).post(
        "/api/items/reassign/",
        {"items": [str(i.uuid) for i in orphans], "reviewer": "lena.lead", "reason": REASON},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert {i.reviewer for i in ReviewItem.objects.filter(pk__in=[o.pk for o in orphans])} == {lena}
    assert AuditEvent.objects.filter(action="item.reassigned").count() == 2


def test_a_reviewer_delegates_their_own_item_but_not_others(
    api, campaign, items, reviewer, lena, auditor
):
    client = api(reviewer)
    body = {"items": [str(items[0].uuid)], "reviewer": "lena.lead", "reason": REASON}
    assert client.post("/api/items/reassign/", body, format="json").status_code == 200
    assert ReviewItem.objects.get(pk=items[0].pk).reviewer == lena
    orphan = {"items": [str(_orphans(campaign)[0].uuid)], "reviewer": "lena.lead", "reason": REASON}
    assert client.post("/api/items/reassign/", orphan, format="json").status_code == 404
    # An auditor sees every item and may reassign none.
    response = api(auditor).post("/api/items/reassign/", orphan, format="json")
    assert response.status_code == 403


def test_a_reassignment_to_nobody_known_is_refused(api, campaign, manager):
    body = {"items": [str(_orphans(campaign)[0].uuid)], "reviewer": "ghost", "reason": REASON}
    response = api(manager).post("/api/items/reassign/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"reviewer": "Nobody signs in as ghost."}


# Launching --------------------------------------------------------------------------------------


def test_a_manager_launches_a_campaign_from_a_definition(api, account, manager):
    made = definition(manager, accounts=[account], review_days=10)
    response = api(manager).post("/api/campaigns/", {"definition": made.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    campaign = Campaign.objects.get(uuid=body["id"])
    assert campaign.state == Campaign.State.ACTIVE
    assert campaign.definition == made
    assert body["item_count"] == campaign.items.count() > 0
    assert campaign.due_date == timezone.localdate() + timedelta(days=10)
    assert AuditEvent.objects.filter(action="campaign.launched").count() == 1


def test_a_definition_launches_once_a_period(api, account, manager):
    made = definition(manager, accounts=[account])
    client = api(manager)
    assert client.post("/api/campaigns/", {"definition": made.pk}, format="json").status_code == 201
    response = client.post("/api/campaigns/", {"definition": made.pk}, format="json")
    assert response.status_code == 409
    assert "already has a campaign" in response.json()["detail"]
    assert Campaign.objects.count() == 1


def test_a_refused_launch_leaves_no_draft(api, account, manager):
    made = definition(manager, accounts=[account], max_data_age_days=1)
    CollectionRun.objects.filter(pk=account.current_run_id).update(
        finished_at=timezone.now() - timedelta(days=5)
    )
    response = api(manager).post("/api/campaigns/", {"definition": made.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Launch refused:")
    assert not Campaign.objects.exists()


def test_launch_input_is_checked(api, account, manager):
    made = definition(manager, accounts=[account])
    client = api(manager)
    response = client.post("/api/campaigns/", {"definition": 999999}, format="json")
    assert response.status_code == 400
    assert "definition" in response.json()
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = client.post(
        "/api/campaigns/", {"definition": made.pk, "due_date": yesterday}, format="json"
    )
    assert response.json() == {"due_date": ["The due date must be after today."]}
    assert not Campaign.objects.exists()


def test_only_managers_launch(api, account, manager, auditor, reviewer):
    made = definition(manager, accounts=[account])
    for user in (auditor, reviewer):
        response = api(user).post("/api/campaigns/", {"definition": made.pk}, format="json")
        assert response.status_code == 403
        assert api(user).get("/api/definitions/").status_code == 403
    assert not Campaign.objects.exists()


# Remediations -----------------------------------------------------------------------------------


def _remediation(review_item, state=Remediation.State.FAILED) -> Remediation:
    decision = Decision.objects.create(
        item=review_item,
        campaign_id=review_item.campaign_id,
        decision="revoke",
        reason=REASON,
        decided_by_name="rita.reviewer",
        shown_sha256="0" * 64,
    )
    return Remediation.objects.create(
        item=review_item,
        campaign=review_item.campaign,
        account=review_item.principal.account,
        decision=decision,
        action="revoke",
        state=state,
        error={"code": "AccessDenied", "message": "not allowed"},
    )


def test_managers_and_auditors_follow_remediations(api, campaign, items, manager, auditor):
    failed = _remediation(items[0])
    _remediation(items[1], Remediation.State.VERIFIED)
    for user in (manager, auditor):
        client = api(user)
        response = client.get("/api/remediations/", {"state": "failed"})
        assert _ids(response) == {str(failed.uuid)}
        body = client.get(f"/api/remediations/{failed.uuid}/").json()
        assert (body["item"], body["error"]["code"], body["settled"]) == (
            str(items[0].uuid),
            "AccessDenied",
            False,
        )


def test_remediations_are_not_a_reviewers(api, campaign, items, reviewer):
    failed = _remediation(items[0])
    client = api(reviewer)
    assert client.get("/api/remediations/").status_code == 403
    assert client.get(f"/api/remediations/{failed.uuid}/").status_code == 404


def test_another_managers_view_reaches_every_campaign(api, campaign, items):
    mia = factories.UserFactory(username="mia.manager")
    mia.groups.add(Group.objects.get(name=roles.MANAGER))
    assert _ids(api(mia).get("/api/campaigns/")) == {str(campaign.uuid)}

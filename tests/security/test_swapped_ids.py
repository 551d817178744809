"""Ids of someone else's objects slipped into a form or a bulk action change nothing and say
nothing about what they name (the URL's ids are the access matrix's rows)."""

from __future__ import annotations

from django.urls import reverse

from reviews.models import ReviewItem


def test_a_bulk_decision_with_someone_elses_item_decides_none(client, world):
    reviewer = world.users["reviewer"]
    mine = world.campaign["own"].items.filter(reviewer=reviewer, decision="").first()
    theirs = world.item["other"]
    client.force_login(reviewer)
    answer = client.post(
        reverse("reviews:bulk"),
        {"item": [str(mine.uuid), str(theirs.uuid)], "decision": "keep", "reason": "Fine."},
    )
    assert answer.status_code == 404
    assert ReviewItem.objects.get(pk=mine.pk).decision == ""
    assert ReviewItem.objects.get(pk=theirs.pk).decision == ""


def test_a_bulk_decision_with_an_id_of_nothing_decides_none(client, world):
    client.force_login(world.users["rob"])
    robs = world.campaign_item_of_rob["own"]
    answer = client.post(
        reverse("reviews:bulk"),
        {
            "item": [str(robs.uuid), "00000000-0000-4000-8000-000000000000"],
            "decision": "keep",
            "reason": "Fine.",
        },
    )
    assert answer.status_code == 404
    assert ReviewItem.objects.get(pk=robs.pk).decision == ""


def test_reassigning_another_campaigns_item_through_this_campaign_changes_nothing(client, world):
    elsewhere = world.campaign_item_of_rob["other"]
    client.force_login(world.users["manager"])
    answer = client.post(
        reverse("reviews:campaign-reassign", args=[world.campaign["own"].uuid]),
        {"items": [str(elsewhere.uuid)], "reviewer": world.users["reviewer"].pk, "reason": "X."},
    )
    assert answer.status_code == 404
    assert ReviewItem.objects.get(pk=elsewhere.pk).reviewer == world.users["rob"]


def test_the_plan_of_an_account_names_no_remediation_of_another_campaign(client, world):
    client.force_login(world.users["auditor"])
    own = reverse(
        "reviews:remediation-plan",
        args=[world.campaign["own"].uuid, world.account["own"].account_id],
    )
    swapped = reverse(
        "reviews:remediation-plan",
        args=[world.campaign["other"].uuid, world.account["own"].account_id],
    )
    assert client.get(own).status_code == 200
    assert client.get(swapped).status_code == 404

"""The audit trail's REST API: readable by the roles that read the page, itself recorded, and
carrying the hashes a client can check the chain with."""

import hashlib
import itertools
import json

import pytest
from django.db import transaction

from audit.models import HASHED, AuditEvent
from audit.trail import record


@pytest.fixture
def events(db):
    with transaction.atomic():
        for n in range(5):
            record("test.happened", actor_name="system", after={"n": n})


def test_an_auditor_reads_the_trail_newest_first_and_the_reading_is_recorded(api, auditor, events):
    client = api(auditor)
    rows = client.get("/api/audit-events/", {"action": "test."}).json()["results"]
    assert [row["after"]["n"] for row in rows] == [4, 3, 2, 1, 0]
    # Each event names the hash of the one before it.
    assert all(newer["prev_hash"] == older["hash"] for newer, older in itertools.pairwise(rows))
    viewed = AuditEvent.objects.filter(action="audit.viewed").get()
    assert viewed.actor == auditor
    assert viewed.after == {"filters": {"action": "test."}, "api": True}


def test_the_chain_holds_across_pages(api, auditor, events):
    client = api(auditor)
    first = client.get("/api/audit-events/", {"page_size": 2, "action": "test."}).json()
    second = client.get(first["next"]).json()
    assert first["results"][-1]["prev_hash"] == second["results"][0]["hash"]


def test_a_client_recomputes_every_events_hash_from_what_the_api_gives(api, auditor, events):
    """As a SIEM would: SHA-256 of the canonical JSON of what the hash covers, from the API's
    rows alone; signed in and acted as a user, so the actor's id is in it too."""
    client = api(auditor)
    client.get("/api/audit-events/")  # the reading is an event with the auditor as its actor
    rows = client.get("/api/audit-events/").json()["results"]

    assert any(row["actor_id"] == auditor.pk for row in rows)
    for row in rows:
        covered = {name: row[name] for name in HASHED}
        text = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode()).hexdigest() == row["hash"], row["id"]


def test_one_event(api, manager, events):
    event = AuditEvent.objects.filter(action="test.happened").first()
    body = api(manager).get(f"/api/audit-events/{event.pk}/").json()
    assert (body["hash"], body["action"]) == (event.hash, "test.happened")


def test_reviewers_and_outsiders_may_not_read_the_trail(api, reviewer, outsider, events):
    for user in (reviewer, outsider):
        assert api(user).get("/api/audit-events/").status_code == 403
    assert not AuditEvent.objects.filter(action="audit.viewed").exists()


def test_the_trail_is_read_only(api, auditor, events):
    client = api(auditor)
    event = AuditEvent.objects.first()
    assert client.post("/api/audit-events/", {}, format="json").status_code == 405
    assert client.delete(f"/api/audit-events/{event.pk}/").status_code == 405


def test_bad_filters_name_the_field(api, auditor, events):
    response = api(auditor).get("/api/audit-events/", {"since": "yesterday"})
    assert response.status_code == 400
    assert "since" in response.json()


def test_list_queries_stay_constant_however_many_events(api, api_queries, auditor, events):
    client = api(auditor)
    before = api_queries(client, "/api/audit-events/")
    with transaction.atomic():
        for n in range(20):
            record("test.happened", actor_name="system", after={"n": n})
    assert api_queries(client, "/api/audit-events/") == before

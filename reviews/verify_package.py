"""Check an Attest evidence package without Attest: Python 3.8 or newer, standard library only.

Unzip the package into a folder of its own, save this script outside that folder, and run

    python3 verify_package.py FOLDER

It checks that every file has the size and SHA-256 that manifest.json lists, that no file was
added or removed, and that the audit trail extract is an unbroken hash chain that agrees with its
signed checkpoints. With the installation's audit signing key in the environment variable
AUDIT_SIGNING_KEY it also checks the signatures of the manifest and of the checkpoints.
It prints one line for each problem and exits 1, or exits 0 when everything holds.
"""

import hashlib
import hmac
import json
import os
import sys

MANIFEST = "manifest.json"
EVENTS = "audit/events.jsonl"
CHECKPOINTS = "audit/checkpoints.json"
CHECKPOINT_FIELDS = ("signed_at", "last_event_id", "last_event_hash", "event_count")


def canonical(value):
    """The bytes Attest hashes and signs a value as: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key, message):
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def manifest_signature_holds(manifest, key):
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    given = str((manifest.get("signature") or {}).get("value", ""))
    return hmac.compare_digest(sign(key, canonical(unsigned)), given)


def check_chain(lines, extract, key=None):
    """The first problem of the audit extract, as a list of at most one line.

    `lines` are the lines of audit/events.jsonl, `extract` is audit/checkpoints.json parsed.
    Each event's hash covers every field but `id` and `hash`, its `prev_hash` included, so an
    event edited, removed, added or moved breaks the chain where it happened.
    """
    try:
        first_id, last_id = extract["first_event_id"], extract["last_event_id"]
        count = extract["events_before"]
        marks = {}
        for mark in extract["checkpoints"]:
            message = canonical({field: mark[field] for field in CHECKPOINT_FIELDS})
            if key is not None and not hmac.compare_digest(sign(key, message), mark["signature"]):
                return [f"{CHECKPOINTS}: checkpoint {mark['id']} has a bad signature"]
            marks.setdefault(mark["last_event_id"], []).append(mark)
    except (KeyError, TypeError, AttributeError) as exc:
        return [f"{CHECKPOINTS}: not an extract Attest wrote ({exc!r} is missing)"]
    previous, previous_id = None, None
    for number, line in enumerate(lines, 1):
        try:
            event = json.loads(line)
            event_id, event_hash = event["id"], event["hash"]
            content = {name: value for name, value in event.items() if name not in ("id", "hash")}
            prev_hash = content["prev_hash"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return [f"{EVENTS}: line {number} is not an audit event"]
        if previous_id is None and event_id != first_id:
            return [f"{EVENTS}: starts at event #{event_id}, not #{first_id}: events are missing"]
        if previous_id is not None and prev_hash != previous:
            return [
                f"{EVENTS}: event #{event_id} does not follow event #{previous_id}: "
                "an event was deleted, inserted or rewritten before it"
            ]
        if hashlib.sha256(canonical(content)).hexdigest() != event_hash:
            return [f"{EVENTS}: event #{event_id}: its content was changed after it was written"]
        count += 1
        for mark in marks.pop(event_id, []):
            if mark["last_event_hash"] != event_hash or mark["event_count"] != count:
                return [
                    f"{EVENTS}: event #{event_id} differs from checkpoint {mark['id']} "
                    f"signed {mark['signed_at']}"
                ]
        previous, previous_id = event_hash, event_id
    if previous_id != last_id:
        return [f"{EVENTS}: ends at event #{previous_id}, not at #{last_id}: events are missing"]
    if marks:
        return [f"{CHECKPOINTS}: a checkpoint covers event #{min(marks)}, which is not in {EVENTS}"]
    return []


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(folder, key=None):
    """Every problem found in the unzipped package in `folder`, one line each."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as stream:
            manifest = json.load(stream)
        listed = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"{MANIFEST}: cannot be read ({exc})"]
    problems = []
    if key is not None and not manifest_signature_holds(manifest, key):
        problems.append(f"{MANIFEST}: its signature does not match this key")
    present = set()
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.relpath(os.path.join(root, name), folder)
            present.add(path.replace(os.sep, "/"))
    for name in sorted(listed):
        if name not in present:
            problems.append(f"{name}: listed in {MANIFEST} but missing")
        elif file_sha256(os.path.join(folder, name)) != listed[name]:
            problems.append(f"{name}: its SHA-256 does not match {MANIFEST}")
    for name in sorted(present - set(listed) - {MANIFEST}):
        problems.append(f"{name}: not listed in {MANIFEST}")
    try:
        with open(os.path.join(folder, CHECKPOINTS), encoding="utf-8") as stream:
            extract = json.load(stream)
        # Undecodable bytes become U+FFFD, which no longer match their event's hash.
        with open(os.path.join(folder, EVENTS), encoding="utf-8", errors="replace") as stream:
            problems += check_chain(stream, extract, key)
    except (OSError, ValueError) as exc:
        problems.append(f"{CHECKPOINTS}: cannot be read ({exc})")
    return problems


def main(arguments):
    if len(arguments) != 1:
        print("usage: python3 verify_package.py FOLDER (the unzipped evidence package)")
        return 2
    key = os.environ.get("AUDIT_SIGNING_KEY") or None
    problems = check(arguments[0], key)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    signed = "signatures valid" if key else "signatures not checked (AUDIT_SIGNING_KEY not set)"
    print(f"evidence holds: every file matches {MANIFEST}, the audit chain is unbroken, {signed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

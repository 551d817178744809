"""The audit trail: written with the change, refused by the database when edited, and checked
by a verifier that names the first event that does not hold."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit import trail
from audit.models import AuditCheckpoint, AuditEvent
from tests import factories


def _events(n, prefix="test.event"):
    with transaction.atomic():
        return [trail.record(f"{prefix}.{i}", after={"i": i}) for i in range(n)]


def _tamper(sql, params=()):
    """Change the table as a database superuser would, with the append-only trigger off."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


def _verify_fails(capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit_log")
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def _change_and_record(after, fail=False):
    with transaction.atomic():
        Group.objects.create(name="temporary")
        trail.record("group.created", after=after)
        if fail:
            raise RuntimeError("the change fails")


def test_an_event_commits_with_its_change_and_rolls_back_with_it(db):
    with pytest.raises(RuntimeError):
        _change_and_record({"name": "temporary"}, fail=True)
    assert not AuditEvent.objects.exists()
    assert not Group.objects.filter(name="temporary").exists()


def test_a_change_whose_event_cannot_be_written_does_not_happen(db):
    with pytest.raises(TypeError):
        _change_and_record({"not json": object()})
    assert not Group.objects.filter(name="temporary").exists()


def test_each_event_names_its_actor_object_and_chain(db):
    user = factories.UserFactory(username="ken")
    group = Group.objects.create(name="reviewers")
    first, second = _events(2)
    with transaction.atomic():
        event = trail.record("group.renamed", group, actor=user, before={"name": "r"})
    assert event.actor_name == "ken"
    assert (event.object_type, event.object_id, event.object_repr) == (
        "auth.group",
        str(group.pk),
        "reviewers",
    )
    assert AuditEvent.objects.order_by("id").first().prev_hash == trail.GENESIS
    assert second.prev_hash == first.hash
    assert event.prev_hash == second.hash
    assert event.compute_hash() == event.hash


def test_the_database_refuses_to_update_or_delete_an_event(db):
    (event,) = _events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="edited")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_deleting_a_user_leaves_their_events_whole(db):
    user = factories.UserFactory(username="leaver")
    with transaction.atomic():
        trail.record("test.by_user", actor=user)
    user.delete()
    event = AuditEvent.objects.get(action="test.by_user")
    assert event.actor_name == "leaver"
    assert trail.verify()[2] is None


def test_an_intact_trail_verifies(db, capsys):
    _events(5)
    trail.checkpoint()
    _events(2, "later")
    call_command("verify_audit_log")
    assert "7 events and 1 signed checkpoints: the trail holds." in capsys.readouterr().out


def test_an_edited_event_is_named(db, capsys):
    events = _events(5)
    _tamper("UPDATE audit_auditevent SET after = '{\"i\": 99}' WHERE id = %s", [events[2].pk])
    assert f"event #{events[2].pk}: its content was changed" in _verify_fails(capsys)


def test_an_edited_and_rehashed_event_breaks_the_next_link(db, capsys):
    events = _events(5)
    forged = AuditEvent.objects.get(pk=events[2].pk)
    forged.action = "forged"
    _tamper(
        "UPDATE audit_auditevent SET action = %s, hash = %s WHERE id = %s",
        ["forged", forged.compute_hash(), forged.pk],
    )
    assert f"event #{events[3].pk}: does not follow event #{events[2].pk}" in _verify_fails(capsys)


def test_a_deleted_event_is_named_by_the_one_after_it(db, capsys):
    events = _events(5)
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    assert f"event #{events[2].pk}: does not follow event #{events[0].pk}" in _verify_fails(capsys)


def test_an_inserted_event_is_named(db, capsys):
    events = _events(3)
    _tamper(
        "INSERT INTO audit_auditevent (id, occurred_at, actor_name, action, object_type, object_id,"
        " object_repr, request_id, prev_hash, hash) SELECT %s, occurred_at, 'mallory', 'forged',"
        " '', '', '', '', prev_hash, md5(random()::text) FROM audit_auditevent WHERE id = %s",
        [events[1].pk + 1000, events[2].pk],
    )
    _events(1, "after")
    assert "does not follow" in _verify_fails(capsys)


def test_reordered_events_are_named(db, capsys):
    events = _events(4)
    a, b = events[1].pk, events[2].pk
    _tamper("UPDATE audit_auditevent SET id = -1 WHERE id = %s", [a])
    _tamper("UPDATE audit_auditevent SET id = %s WHERE id = %s", [a, b])
    _tamper("UPDATE audit_auditevent SET id = %s WHERE id = -1", [b])
    assert f"event #{a}: does not follow" in _verify_fails(capsys)


def test_a_trail_cut_short_after_a_checkpoint_is_named(db, capsys):
    events = _events(4)
    trail.checkpoint()
    _tamper("DELETE FROM audit_auditevent WHERE id >= %s", [events[2].pk])
    message = _verify_fails(capsys)
    assert f"event #{events[3].pk}: is missing" in message


def test_a_forged_checkpoint_is_named(db, capsys):
    _events(2)
    mark = trail.checkpoint()
    _tamper("UPDATE audit_auditcheckpoint SET event_count = 1 WHERE id = %s", [mark.pk])
    assert f"checkpoint {mark.pk} has a bad signature" in _verify_fails(capsys)


def test_a_checkpoint_is_signed_only_when_events_came(db):
    assert trail.checkpoint() is None
    _events(1)
    assert trail.checkpoint() is not None
    assert trail.checkpoint() is None
    assert AuditCheckpoint.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_chain():
    errors = []

    def write(n):
        try:
            for i in range(10):
                with transaction.atomic():
                    trail.record(f"writer.{n}.{i}")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    events, _, finding = trail.verify()
    assert finding is None
    assert events == 40

"""Users and their roles are configuration: every change to them is in the audit trail."""

from django.contrib.auth.models import Group

from audit import trail
from audit.models import AuditEvent
from tests import factories


def test_creating_a_user_and_granting_a_role_are_recorded(db):
    user = factories.UserFactory(username="newcomer")
    user.groups.add(Group.objects.get(name="auditor"))
    created = AuditEvent.objects.get(action="user.created")
    assert created.object_repr == "newcomer"
    roles = AuditEvent.objects.get(action="user.roles_changed")
    assert (roles.before, roles.after) == ({"groups": []}, {"groups": ["auditor"]})


def test_deactivating_a_user_is_recorded_with_before_and_after(db):
    user = factories.UserFactory(username="leaver")
    user.is_active = False
    user.save()
    changed = AuditEvent.objects.get(action="user.changed")
    assert (changed.before["is_active"], changed.after["is_active"]) == (True, False)


def test_saving_a_user_without_a_change_records_nothing_more(db):
    user = factories.UserFactory(username="steady")
    before = AuditEvent.objects.count()
    user.save()
    assert AuditEvent.objects.count() == before


def test_removing_a_role_and_deleting_the_user_are_recorded_and_the_chain_holds(db):
    user = factories.UserFactory(username="leaver")
    group = Group.objects.get(name="manager")
    user.groups.add(group)
    user.groups.remove(group)
    user.delete()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["user.created", "user.roles_changed", "user.roles_changed", "user.deleted"]
    assert trail.verify()[2] is None

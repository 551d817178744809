"""Sign-ins, failed sign-ins, lockouts, sign-outs, users and their roles go into the audit
trail."""

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from audit.trail import record


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender, request, user, **kwargs):
    record("auth.login", user, actor=user)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        record("auth.logout", user, actor=user)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    record("auth.login_failed", actor_name=username or "anonymous", after={"username": username})


@receiver(user_locked_out, dispatch_uid="audit-locked-out")
def _locked_out(sender, request, username, ip_address, **kwargs):
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:
        # A try while already locked: recorded as the failed sign-in it is, not a new lockout.
        return
    username = str(username or "")[:150]
    until = timezone.now() + settings.AXES_COOLOFF_TIME
    record(
        "auth.locked_out",
        actor_name=username or "anonymous",
        after={"username": username, "failures": failures, "locked_until": until.isoformat()},
    )


# Users and their roles: who may do what is configuration an auditor asks about.
_WATCHED = ("is_active", "is_staff", "is_superuser", "email")


def _user_state(user) -> dict:
    return {name: getattr(user, name) for name in _WATCHED}


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit-user-before")
def _user_before(sender, instance, **kwargs):
    stored = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = _user_state(stored) if stored else None


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit-user-after")
def _user_after(sender, instance, created, **kwargs):
    before, after = getattr(instance, "_audit_before", None), _user_state(instance)
    if created:
        record("user.created", instance, after=after)
    elif before is not None and before != after:
        record("user.changed", instance, before=before, after=after)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="audit-user-deleted")
def _user_deleted(sender, instance, **kwargs):
    record("user.deleted", instance, before=_user_state(instance))


def _group_names(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@receiver(m2m_changed, dispatch_uid="audit-user-groups")
def _groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if sender is not get_user_model().groups.through or reverse:
        return
    if action in ("pre_add", "pre_remove", "pre_clear"):
        instance._audit_groups = _group_names(instance)
    elif action in ("post_add", "post_remove", "post_clear"):
        before, after = getattr(instance, "_audit_groups", None), _group_names(instance)
        if before != after:
            record(
                "user.roles_changed", instance, before={"groups": before}, after={"groups": after}
            )

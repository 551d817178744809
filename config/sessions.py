"""A deactivated user is signed out everywhere at once, not at their next request alone."""

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.utils import timezone


def end_sessions(user) -> int:
    """Delete every live session of the user; returns how many there were.

    Sessions end after a short idle time, so the live ones are few and reading each is cheap.
    """
    ended = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


def end_sessions_of_deactivated(sender, instance, **kwargs):
    """post_save of the user model: a user who may no longer sign in keeps no session."""
    if not instance.is_active:
        end_sessions(instance)

"""The answer to a sign-in while the username or the address is locked after failed tries, and
the same lockout for a password asked again of a signed-in user."""

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import render

# Too Many Requests: the refusal is about the tries, not the credentials.
STATUS = 429


def locked_out(request, original_response=None, credentials=None):
    """The sign-in page saying that signing in is locked, for how long, and what to do.

    The same for every username, known or not, and whatever the password.
    """
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes},
        status=STATUS,
    )


def password_locked(request):
    """The lockout page when the signed-in user may not sign in now, else None: a password
    asked again (at sign-off, for the evidence) is refused while signing in is."""
    if AxesProxyHandler.is_locked(request, _credentials(request)):
        return locked_out(request)
    return None


def wrong_password(request):
    """Count a wrong password typed again as a failed sign-in of the user, so that a session
    left open is no way to guess it; the lockout page when this failure locks them out."""
    user_login_failed.send(sender=__name__, credentials=_credentials(request), request=request)
    if getattr(request, "axes_locked_out", False):
        return locked_out(request)
    return None


def _credentials(request) -> dict:
    return {"username": request.user.get_username()}

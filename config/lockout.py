"""The answer to a sign-in while the username or the address is locked after failed tries."""

from django.conf import settings
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

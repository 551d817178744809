"""Signing in to the REST API with a token (kept apart from the API's views, which Django REST
framework's settings import this from)."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from config.models import ApiToken, key_digest

# A token's last use is written at most this often, not on every request.
LAST_USED_EVERY = timedelta(minutes=1)


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>`, checked against the keys' SHA-256."""

    keyword = "Token"

    def authenticate(self, request):
        words = authentication.get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None
        if len(words) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the token as `Authorization: Token <key>`, with nothing else.")
            )
        key = words[1].decode("latin-1")
        token = (
            ApiToken.objects.usable().select_related("user").filter(digest=key_digest(key)).first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("The token is unknown or was revoked."))
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        # A 401 names the scheme, so a client without a key learns how to send one.
        return self.keyword

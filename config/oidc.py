"""Single sign-on through the company's OpenID Connect provider (on when OIDC_* are set).

mozilla-django-oidc runs the authorization code flow and checks state, nonce and the id_token's
signature; Attest adds what it leaves out: the token's issuer and audience, the userinfo's subject
against the token's, a verified e-mail, and no sign-in for a deactivated user. A person is
matched to a user by e-mail; someone without a user gets one with no role, which an
administrator grants. Every failure reaches user_login_failed, so the audit trail and the
lockout count it like a wrong password.
"""

import logging

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.shortcuts import redirect
from django.urls import path
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

logger = logging.getLogger(__name__)

# What the provider or a forged answer can make the flow raise.
_REFUSALS = (SuspiciousOperation, requests.RequestException, jwt.PyJWTError, KeyError, ValueError)


class Backend(OIDCAuthenticationBackend):
    """Authenticates the person the provider vouches for; listed after the lockout's backend."""

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if payload.get("iss") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("id_token from another issuer")
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("id_token for another client")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        # The userinfo must be about the person the id_token names (OpenID Connect Core 5.3.2).
        if not payload.get("sub") or claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo about another subject")
        return claims

    def verify_claims(self, claims):
        # An e-mail the provider has not verified could be anyone's, an administrator's included.
        return bool(claims.get("email")) and claims.get("email_verified") is True

    def create_user(self, claims):
        """A new user with no role: the e-mail is the username, and there is no password."""
        email = claims["email"].lower()
        users = get_user_model().objects
        if users.filter(username__iexact=email).exists():
            raise SuspiciousOperation("the e-mail is another user's username")
        return users.create_user(email, email=email)

    def update_user(self, user, claims):
        if not self.user_can_authenticate(user):
            # Raised rather than returned: Django then sends user_login_failed.
            raise PermissionDenied("deactivated user")
        return user


@method_decorator(login_not_required, name="dispatch")
class SignIn(OIDCAuthenticationRequestView):
    """Sends the browser to the provider with a fresh state and nonce kept in the session."""


@method_decorator(login_not_required, name="dispatch")
class Callback(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back; signs in, or returns to the sign-in page."""

    def get(self, request):
        try:
            return super().get(request)
        except _REFUSALS as exc:
            logger.warning("single sign-on refused: %s", exc)
            return self.login_failure()

    def login_failure(self):
        if not hasattr(self, "user"):
            # Refused before or while the backends were asked (a wrong state, a forged token,
            # the provider's error): Django's authenticate did not send the signal.
            user_login_failed.send(
                sender=__name__, credentials={"username": ""}, request=self.request
            )
        messages.error(self.request, _("Single sign-on did not sign you in. Please try again."))
        return redirect(settings.LOGIN_URL)


urlpatterns = [
    path("sso/login/", SignIn.as_view(), name="oidc_authentication_init"),
    path("sso/callback/", Callback.as_view(), name="oidc_authentication_callback"),
]

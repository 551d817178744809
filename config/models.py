"""API tokens: how service users (ticketing, SIEM, chat bots) sign in to the REST API.

A token's key is shown once, when it is made; Attest keeps only its SHA-256 and its first
characters, so a copy of the database gives nobody a working key. Tokens are revoked, never
deleted, so the audit trail's references to them stay readable.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.trail import record

KEY_PREFIX_LENGTH = 8


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A key a service user sends as `Authorization: Token <key>`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("What the token is for, e.g. the ticketing system.")
    )
    prefix = models.CharField(_("key starts with"), max_length=KEY_PREFIX_LENGTH, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, user, name: str, *, by=None) -> tuple["ApiToken", str]:
        """A new token for `user` and its key, which nobody can read again."""
        key = _new_key()
        with transaction.atomic():
            token = cls.objects.create(
                user=user, name=name, prefix=key[:KEY_PREFIX_LENGTH], digest=key_digest(key)
            )
            record(
                "api_token.created",
                token,
                actor=by,
                actor_name="" if by else "manage.py",
                after={"user": user.get_username(), "name": name, "prefix": token.prefix},
            )
        return token, key

    def revoke(self, *, by=None) -> bool:
        """Revoke the token; False if it was revoked already."""
        with transaction.atomic():
            revoked = ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            if revoked:
                record(
                    "api_token.revoked",
                    self,
                    actor=by,
                    actor_name="" if by else "manage.py",
                    after={"user": self.user.get_username(), "prefix": self.prefix},
                )
        self.refresh_from_db(fields=["revoked_at"])
        return bool(revoked)


def _new_key() -> str:
    """A random key that does not begin with "-": its first characters name it on the command
    line (`revoke_api_token PREFIX`), where a leading "-" reads as an option."""
    while (key := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return key

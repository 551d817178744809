from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate, post_save


class AttestConfig(AppConfig):
    name = "config"
    label = "attest"
    verbose_name = "Attest"

    def ready(self):
        from config.roles import ensure_roles
        from config.sessions import end_sessions_of_deactivated

        post_migrate.connect(ensure_roles, dispatch_uid="attest-ensure-roles")
        post_save.connect(
            end_sessions_of_deactivated,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="attest-end-sessions-of-deactivated",
        )

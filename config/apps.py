from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AttestConfig(AppConfig):
    name = "config"
    label = "attest"
    verbose_name = "Attest"

    def ready(self):
        from config.roles import ensure_roles

        post_migrate.connect(ensure_roles, dispatch_uid="attest-ensure-roles")

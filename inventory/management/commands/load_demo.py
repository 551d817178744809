import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from config import roles
from inventory import demo
from inventory.importers import import_files, read_files
from inventory.models import AwsAccount

DEMO_USERS = [
    ("reviewer", roles.REVIEWER),
    ("manager", roles.MANAGER),
    ("auditor", roles.AUDITOR),
    ("admin", roles.ADMINISTRATOR),
]
# Who owns which demo account: the account owner reviews what has no owner of its own.
OWNERS = {"acme-production": "reviewer", "acme-staging": "reviewer", "acme-sandbox": "manager"}


class Command(BaseCommand):
    help = (
        "Load the generated demo organization through the import path, and create the users "
        "reviewer, manager, auditor and admin (password from DEMO_PASSWORD, else random)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reload",
            action="store_true",
            help="Import the demo accounts again, with usage dated from now.",
        )

    def handle(self, *args, **options):
        folder = settings.VAR_DIR / "demo"
        passwords = self._users()
        loaded = set(
            AwsAccount.objects.filter(current_run__isnull=False).values_list(
                "account_id", flat=True
            )
        )
        for account in demo.generate(folder):
            if account["account_id"] in loaded and not options["reload"]:
                self.stdout.write(f"{account['name']} is already loaded (--reload loads it anew)")
                continue
            run = import_files(account["account_id"], account["name"], read_files(account["files"]))
            AwsAccount.objects.filter(account_id=account["account_id"]).update(
                owner=get_user_model().objects.get(username=OWNERS[account["name"]])
            )
            counts = run.counts
            self.stdout.write(
                f"Imported {account['name']} ({account['account_id']}): {counts['users']} users, "
                f"{counts['groups']} groups, {counts['roles']} roles, {counts['rights']} rights"
            )
        self.stdout.write("\nSign in at http://127.0.0.1:8000 as:")
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<9} {password}")

    @transaction.atomic
    def _users(self) -> dict[str, str]:
        passwords = {}
        for username, role in DEMO_USERS:
            user, _ = get_user_model().objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            password = settings.DEMO_PASSWORD or secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_staff = user.is_superuser = username == "admin"
            user.save()
            user.groups.add(Group.objects.get(name=role))
            passwords[username] = password if not settings.DEMO_PASSWORD else "(DEMO_PASSWORD)"
        return passwords

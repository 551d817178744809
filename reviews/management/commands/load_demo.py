import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from config import roles
from inventory import demo
from inventory.accounts import save_account
from inventory.importers import import_files, read_files
from inventory.models import AwsAccount
from reviews.launch import launch_due
from reviews.models import CampaignDefinition, StageRule

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
        "Load the generated demo organization through the import path, create the users "
        "reviewer, manager, auditor and admin (password from DEMO_PASSWORD, else random), and "
        "launch this quarter's access review."
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
            owned = AwsAccount.objects.get(account_id=account["account_id"])
            owned.owner = get_user_model().objects.get(username=OWNERS[account["name"]])
            save_account(owned, actor_name="load_demo")
            counts = run.counts
            self.stdout.write(
                f"Imported {account['name']} ({account['account_id']}): {counts['users']} users, "
                f"{counts['groups']} groups, {counts['roles']} roles, {counts['rights']} rights"
            )
        self._campaign()
        self.stdout.write("\nSign in at http://127.0.0.1:8000 as:")
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<9} {password}")

    def _campaign(self) -> None:
        """The quarterly review of the demo: launched for this quarter, privileged rights kept
        in the first stage passed on to the administrator as a second, security stage."""
        users = get_user_model().objects.in_bulk(["manager", "admin"], field_name="username")
        definition, created = CampaignDefinition.objects.get_or_create(
            name="Quarterly access review",
            defaults={
                "owner": users["manager"],
                "description": "Every right in every account, each quarter.",
                "reminder_days": [7, 2],
            },
        )
        if created:
            StageRule.objects.create(definition=definition, number=2, reviewer=users["admin"])
        campaign = launch_due(definition)
        if campaign is None:
            self.stdout.write(f"{definition} of this quarter is already launched")
        else:
            self.stdout.write(
                f"Launched {campaign}: {campaign.item_count} items, due {campaign.due_date}"
            )

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

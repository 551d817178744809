import json
import sys
from datetime import date

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inventory.models import AwsAccount
from reviews.launch import LaunchRefused, launch, new_campaign


class Command(BaseCommand):
    help = (
        "Launch a campaign over the accounts named (default: every active account). Prints its "
        "id and item count; exits non-zero with the reason when launch is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--account", action="append", default=[], metavar="ID")
        parser.add_argument("--due", required=True, metavar="YYYY-MM-DD")
        parser.add_argument("--owner", required=True, metavar="USERNAME")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            due = date.fromisoformat(options["due"])
        except ValueError:
            raise CommandError(f"--due: {options['due']!r} is not a date (YYYY-MM-DD)") from None
        try:
            owner = get_user_model().objects.get_by_natural_key(options["owner"])
        except get_user_model().DoesNotExist:
            raise CommandError(f"--owner: no user {options['owner']!r}") from None
        if not owner.has_perm("reviews.manage_campaign"):
            raise CommandError(f"--owner: {owner} is not a campaign manager")
        accounts = None
        if options["account"]:
            found = {
                a.account_id: a
                for a in AwsAccount.objects.filter(account_id__in=options["account"])
            }
            missing = [i for i in options["account"] if i not in found]
            if missing:
                raise CommandError(f"--account: no account {', '.join(missing)}")
            accounts = [found[i] for i in dict.fromkeys(options["account"])]
        try:
            # A refused launch leaves no draft behind.
            with transaction.atomic():
                campaign = launch(
                    new_campaign(name=options["name"], owner=owner, due_date=due, accounts=accounts)
                )
        except LaunchRefused as exc:
            self.stderr.write(f"launch refused: {exc}")
            sys.exit(1)
        items = campaign.items
        # An account in scope with nothing to review shows as 0 rather than not at all.
        by_account = {a.account_id: 0 for a in campaign.accounts.all()}
        by_reviewer = {}
        for account_id, reviewer in items.values_list("account_id", "reviewer__username"):
            by_account[account_id] = by_account.get(account_id, 0) + 1
            by_reviewer[reviewer or ""] = by_reviewer.get(reviewer or "", 0) + 1
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "id": str(campaign.uuid),
                        "items": campaign.item_count,
                        "items_by_account": dict(sorted(by_account.items())),
                        "reviewers": dict(sorted(by_reviewer.items())),
                    },
                    indent=2,
                )
            )
        else:
            self.stdout.write(f"{campaign.uuid} {campaign.item_count} items")

from django.core.management.base import BaseCommand, CommandError

from inventory.accounts import save_account
from inventory.aws import AwsError, AwsSession
from inventory.models import AwsAccount


class Command(BaseCommand):
    help = (
        "Add every account of the AWS organization (from the management or a delegated "
        "administrator account), each to be read through the same role name."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--role-name",
            default="AttestReadOnly",
            help="The read-only role in each account (default: AttestReadOnly).",
        )
        parser.add_argument("--external-id", default="", help="The ExternalId the roles require.")

    def handle(self, *args, **options):
        try:
            session = AwsSession()
            partition = session.caller_identity().arn.split(":")[1]
            found = session.organization_accounts()
        except AwsError as exc:
            raise CommandError(f"cannot list the organization's accounts: {exc}") from None
        added = 0
        for entry in sorted(found, key=lambda a: a["Id"]):
            state = entry.get("State", "")
            account = AwsAccount.objects.filter(account_id=entry["Id"]).first() or AwsAccount(
                account_id=entry["Id"]
            )
            account.name = entry.get("Name") or entry["Id"]
            account.mode = AwsAccount.Mode.LIVE
            account.role_arn = f"arn:{partition}:iam::{entry['Id']}:role/{options['role_name']}"
            account.external_id = options["external_id"]
            account.organization_state = state
            # Suspended and closing accounts cannot be read and are not reviewed.
            account.active = state == "ACTIVE"
            created = save_account(account, actor_name="discover_accounts")
            added += created
            note = "" if account.active else f" (not collected: {state.lower()})"
            self.stdout.write(f"{'Added' if created else 'Updated'} {account}{note}")
        self.stdout.write(f"{len(found)} accounts in the organization, {added} new.")

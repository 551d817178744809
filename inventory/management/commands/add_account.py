from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inventory.accounts import save_account
from inventory.models import AwsAccount


class Command(BaseCommand):
    help = "Add an AWS account to collect, or change one already added."

    def add_arguments(self, parser):
        parser.add_argument("--account-id", required=True, help="The 12-digit account id.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--role-arn", default="", help="The read-only role Attest assumes.")
        parser.add_argument(
            "--remediation-role-arn",
            default="",
            help="The role Attest assumes to carry out revocations (default: --role-arn).",
        )
        parser.add_argument("--external-id", default="", help="The ExternalId the role requires.")
        parser.add_argument("--owner", help="Username of the account's owner.")
        parser.add_argument(
            "--import-only",
            action="store_true",
            help="Attest cannot read the account live; its data comes from import_aws.",
        )

    def handle(self, *args, **options):
        owner = None
        if options["owner"]:
            try:
                owner = get_user_model().objects.get_by_natural_key(options["owner"])
            except get_user_model().DoesNotExist:
                raise CommandError(f"--owner: no user {options['owner']!r}") from None
        account = AwsAccount.objects.filter(account_id=options["account_id"]).first()
        created = account is None
        account = account or AwsAccount(account_id=options["account_id"])
        account.name = options["name"]
        account.role_arn = options["role_arn"]
        account.remediation_role_arn = options["remediation_role_arn"]
        account.external_id = options["external_id"]
        account.owner = owner
        account.mode = AwsAccount.Mode.IMPORT if options["import_only"] else AwsAccount.Mode.LIVE
        try:
            account.full_clean(exclude=["current_run"])
        except ValidationError as exc:
            problems = "; ".join(
                f"{field.replace('_', '-')}: {' '.join(messages)}"
                for field, messages in exc.message_dict.items()
            )
            raise CommandError(problems) from None
        save_account(account, actor_name="command line")
        self.stdout.write(f"{'Added' if created else 'Updated'} {account}")

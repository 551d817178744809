import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inventory.collect import describe, summary
from inventory.importers import ImportRefused, import_files, read_files
from inventory.parse import ParseError


class Command(BaseCommand):
    help = (
        "Import an account from AWS CLI output: get-account-authorization-details (required), "
        'the credential report, and Access Advisor details (each with a top-level "Arn"). '
        "Nothing is saved unless every file is good."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account-id", required=True)
        parser.add_argument("--account-name", default="")
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    def handle(self, *args, **options):
        try:
            run = import_files(
                options["account_id"], options["account_name"], read_files(options["files"])
            )
        except (ParseError, ImportRefused) as exc:
            raise CommandError(f"nothing imported: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps({"accounts": [summary(run)]}, indent=2))
        else:
            self.stdout.write(describe(summary(run)))

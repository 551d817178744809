import sys

from django.core.management.base import BaseCommand

from reviews import evidence


class Command(BaseCommand):
    help = (
        "Check an evidence package: every file against the signed manifest, and the audit "
        "trail extract. Exits 0 when it holds, otherwise 1 naming the file that does not."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The evidence package (ZIP) to check.")

    def handle(self, *args, **options):
        verdict = evidence.check(options["file"])
        if verdict.problems:
            self.stderr.write(verdict.problems[0])
            more = len(verdict.problems) - 1
            if more:
                self.stderr.write(f"({more} more problem{'s' if more > 1 else ''})")
            sys.exit(1)
        status = "interim" if verdict.manifest["interim"] else "final"
        self.stdout.write(
            f"evidence holds: {verdict.files} files match the signed manifest ({status}, "
            f"campaign {verdict.manifest['campaign']['uuid']})"
        )
